"""Structure search and phase generation: workflows that relax bulk phases with an engine.

This package sits beside :mod:`halex.studies` because it runs engines and writes to the
result store; :mod:`halex.phases` holds only the data it produces (CIFs with their
sources and loaders).

* :mod:`halex.search.candidates` — symmetry-constrained random candidates (PyXtal) and
  their relaxation at fixed space group;
* :mod:`halex.search.generate` — the reproducible generation of every computed phase
  (``halex phases generate``) and the Pb4S3X2 search (``halex phases search``);
* :mod:`halex.search.stability` — relaxed bulk references and decomposition energies.
"""
