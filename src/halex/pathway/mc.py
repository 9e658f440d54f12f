"""Monte Carlo of Cl/I on a halide lattice: semi-grand canonical, canonical and annealing.

The kernels are written for numba (BSD; extra ``pathway``): each trial updates the energy
incrementally from the site's neighbour list (CSR arrays of :class:`~halex.pathway.lattice.
HalideLattice`), so a trial costs O(neighbours), not O(sites). halex writes them itself because
the lattice libraries that have such samplers (icet's mchammer, CLEASE, smol) accept periodic
crystals only; ``benchmarks/bench_pathway.py`` compares the speed with icet's canonical MC.

Ensembles (β = 1 / k_B T, energies in eV):

* **semi-grand canonical** (:func:`sgc`): a trial flips one site Cl ⇄ I; the Hamiltonian is
  ``E(σ) − Δμ n_I`` with Δμ the iodide exchange chemical potential (Δμ = 0: the exchange
  reaction of SPEC §4 is neutral); Metropolis acceptance ``min(1, exp(−β ΔH))``;
* **canonical** (:func:`canonical`): a trial swaps an I and a Cl site, chosen uniformly among
  the I–Cl pairs, so n_I is fixed ("iodide supplied");
* **annealing** (:func:`anneal`): canonical runs down a temperature ladder.
"""

from __future__ import annotations

import numpy as np

from halex.errors import HalexError, InputError

__all__ = ["sgc", "canonical", "anneal", "total_energy", "KB_EV"]

#: Boltzmann constant (eV/K), CODATA 2018
KB_EV = 8.617333262e-5


def _numba():
    try:
        import numba
    except ImportError as exc:
        raise HalexError(f"lattice Monte Carlo needs numba ({exc}): pip install -e '.[pathway]'") from None
    return numba


_KERNELS: dict = {}


def _kernels():
    """Compile the kernels on first use (numba's cache keeps them between runs)."""
    if _KERNELS:
        return _KERNELS
    nb = _numba()

    @nb.njit(cache=True)
    def field(i, occ, h, indptr, nbr, J, skip):
        f = h[i]
        for k in range(indptr[i], indptr[i + 1]):
            j = nbr[k]
            if j != skip:
                f += J[k] * occ[j]
        return f

    @nb.njit(cache=True)
    def sgc_run(occ, h, indptr, nbr, J, dmu, beta, n_trials, seed, sum_occ, every):
        np.random.seed(seed)
        n = occ.size
        accepted = 0
        samples = 0
        for t in range(n_trials):
            i = np.random.randint(n)
            f = field(i, occ, h, indptr, nbr, J, -1) - dmu
            dH = f if occ[i] == 0 else -f
            if dH <= 0.0 or np.random.random() < np.exp(-beta * dH):
                occ[i] = 1 - occ[i]
                accepted += 1
            if every > 0 and (t + 1) % every == 0:
                for s in range(n):
                    sum_occ[s] += occ[s]
                samples += 1
        return accepted, samples

    @nb.njit(cache=True)
    def can_run(occ, h, indptr, nbr, J, beta, n_trials, seed, sum_occ, every):
        np.random.seed(seed)
        n = occ.size
        iodide = np.flatnonzero(occ == 1)
        chloride = np.flatnonzero(occ == 0)
        n_i, n_cl = iodide.size, chloride.size
        accepted = 0
        samples = 0
        for t in range(n_trials):
            if n_i > 0 and n_cl > 0:  # every trial proposes an I–Cl swap, uniformly over the pairs
                a = np.random.randint(n_i)
                b = np.random.randint(n_cl)
                i = iodide[a]
                j = chloride[b]
                # the I on i moves to the empty site j; i's own occupation must not count in j's field
                dE = field(j, occ, h, indptr, nbr, J, i) - field(i, occ, h, indptr, nbr, J, -1)
                if dE <= 0.0 or np.random.random() < np.exp(-beta * dE):
                    occ[i] = 0
                    occ[j] = 1
                    iodide[a] = j
                    chloride[b] = i
                    accepted += 1
            if every > 0 and (t + 1) % every == 0:
                for s in range(n):
                    sum_occ[s] += occ[s]
                samples += 1
        return accepted, samples

    _KERNELS.update(sgc=sgc_run, canonical=can_run)
    return _KERNELS


def _check(occ: np.ndarray, h: np.ndarray, indptr: np.ndarray, temperature: float) -> float:
    if not np.isfinite(temperature) or temperature <= 0:
        raise InputError(f"the temperature must be > 0 K, got {temperature!r}")
    if occ.dtype != np.int8 or occ.ndim != 1 or occ.size != h.size or indptr.size != occ.size + 1:
        raise InputError("occupation, fields and neighbour lists do not match the lattice")
    return 1.0 / (KB_EV * temperature)


def total_energy(occ: np.ndarray, h: np.ndarray, indptr: np.ndarray, nbr: np.ndarray, J: np.ndarray) -> float:
    """E(σ) = Σ h_i σ_i + ½ Σ_i Σ_{j∈N(i)} J_ij σ_i σ_j.

    Parameters
    ----------
    occ
        Occupations (1: I).
    h, indptr, nbr, J
        Site fields and CSR couplings (eV).

    Returns
    -------
    float
        eV.
    """
    occ = np.asarray(occ, float)
    rows = np.repeat(np.arange(occ.size), np.diff(indptr))
    return float(h @ occ + 0.5 * np.sum(J * occ[rows] * occ[nbr]))


def sgc(occ: np.ndarray, h: np.ndarray, indptr: np.ndarray, nbr: np.ndarray, J: np.ndarray, *, dmu: float,
        temperature: float, sweeps: int, seed: int = 0, sample_every_sweep: bool = True) -> dict:
    """Semi-grand canonical Metropolis run (in place on ``occ``).

    Parameters
    ----------
    occ
        int8 occupations (1: I), changed in place.
    h, indptr, nbr, J
        Site fields and CSR couplings (:meth:`~halex.pathway.model.LatticeModel.fields`).
    dmu
        Iodide exchange chemical potential Δμ (eV).
    temperature
        K.
    sweeps
        Trials / number of sites.
    seed
        Random seed.
    sample_every_sweep
        Accumulate the occupations after every sweep.

    Returns
    -------
    dict
        ``mean_occ`` (per site, over samples), ``acceptance``, ``trials``, ``samples``.

    Examples
    --------
    >>> occ = np.zeros(1, np.int8)   # one isolated site with h = 0 at Δμ = 0: half occupied
    >>> r = sgc(occ, np.zeros(1), np.array([0, 0]), np.zeros(0, np.int64), np.zeros(0), dmu=0.0,
    ...         temperature=300.0, sweeps=200000)
    >>> abs(float(r["mean_occ"][0]) - 0.5) < 0.01
    True
    """
    beta = _check(occ, h, indptr, temperature)
    n_trials = int(sweeps) * occ.size
    sums = np.zeros(occ.size)
    acc, samples = _kernels()["sgc"](occ, np.asarray(h, float), indptr, nbr, np.asarray(J, float), float(dmu), beta,
                                     n_trials, int(seed), sums, occ.size if sample_every_sweep else 0)
    return {"mean_occ": sums / max(samples, 1), "acceptance": acc / max(n_trials, 1), "trials": n_trials, "samples": samples}


def canonical(occ: np.ndarray, h: np.ndarray, indptr: np.ndarray, nbr: np.ndarray, J: np.ndarray, *, temperature: float,
              sweeps: int, seed: int = 0, sample_every_sweep: bool = True) -> dict:
    """Canonical (fixed n_I) Metropolis run with I ⇄ Cl swaps (in place on ``occ``).

    Parameters
    ----------
    occ, h, indptr, nbr, J
        As in :func:`sgc`.
    temperature
        K.
    sweeps
        Trials / number of sites.
    seed
        Random seed.
    sample_every_sweep
        Accumulate the occupations after every sweep.

    Returns
    -------
    dict
        As :func:`sgc`.
    """
    beta = _check(occ, h, indptr, temperature)
    n_trials = int(sweeps) * occ.size
    sums = np.zeros(occ.size)
    acc, samples = _kernels()["canonical"](occ, np.asarray(h, float), indptr, nbr, np.asarray(J, float), beta, n_trials,
                                           int(seed), sums, occ.size if sample_every_sweep else 0)
    return {"mean_occ": sums / max(samples, 1), "acceptance": acc / max(n_trials, 1), "trials": n_trials, "samples": samples}


def anneal(occ: np.ndarray, h: np.ndarray, indptr: np.ndarray, nbr: np.ndarray, J: np.ndarray, *, t_start: float = 2000.0,
           t_end: float = 50.0, steps: int = 20, sweeps: int = 50, seed: int = 0) -> float:
    """Canonical annealing down a geometric temperature ladder (in place on ``occ``).

    Parameters
    ----------
    occ, h, indptr, nbr, J
        As in :func:`sgc`.
    t_start, t_end
        First and last temperature (K).
    steps
        Temperatures of the ladder.
    sweeps
        Sweeps per temperature.
    seed
        Random seed.

    Returns
    -------
    float
        The final energy (eV).
    """
    if not (t_start > t_end > 0) or steps < 2:
        raise InputError(f"annealing needs t_start > t_end > 0 K and at least 2 steps, got {t_start}, {t_end}, {steps}")
    for k, temp in enumerate(np.geomspace(t_start, t_end, steps)):
        canonical(occ, h, indptr, nbr, J, temperature=float(temp), sweeps=sweeps, seed=seed + k, sample_every_sweep=False)
    return total_energy(occ, h, indptr, nbr, J)
