"""DFT parity of an engine: exchange energies of small models against a reference DFT dataset.

The exchange studies report ΔE_exchange (SPEC §4) from the default ML engine. This module
says, with numbers, how far that engine is from the reference DFT (CP2K PBE, the source
study's level of theory) on the same quantity, for reactions small enough for DFT on a
workstation (≤ 60 atoms).

The reactions (:func:`parity_reactions`), each a Cl→I swap of ``x`` halides scored by
:func:`halex.studies.energies.exchange_energy` with isolated PbCl2 / PbI2 molecules as
references:

* ``molecule``: PbCl2 → PbClI;
* ``octahedron``: the Cs4PbCl6 cluster (a PbCl6 octahedron with its four Cs) with 1, 2 (cis,
  trans), 3 (fac, mer) and 6 Cl→I;
* ``perovskite``: a periodic 2 × 2 × 2 CsPbCl3 supercell (40 atoms) with one I, two I on
  one octahedron, two I far apart, three I on one octahedron (fac, mer), the four X of one
  CsX (AX) plane, the eight X of one PbX2 (BX2) plane, and all 24;
* ``chalcohalide``: the periodic Pb4S3Cl2 cell (36 atoms; all eight Cl are one Wyckoff
  site) with one I, the closest and the farthest pair of I, a compact cluster of three and
  of four I (a Cl and its nearest Cl), and all eight (Pb4S3I2).

A dataset made before reactions were added is completed by :func:`extend_dataset` (its
products are relaxed from the dataset's own reactant geometries).

Geometries. Every structure is relaxed once by a geometry engine (the default ML engine
when the dataset was made): reactants from their built geometry, products from the relaxed
reactant with the species swapped (periodic cells with their cell). Both engines are then
compared *at these fixed geometries*: DFT single points (energies and forces, stored in the
dataset) against the engine's single points. Parity at fixed geometry isolates the energy
surface from the optimizer; the DFT residual forces are kept so the distance from the DFT
minima can be seen (``dft_fmax_eV_A`` per structure).

The dataset (:func:`write_dataset`, one JSON file: structures, DFT energies and forces, DFT
settings, the geometry engine, the reactions) is computed once and committed inside the
package (:data:`DEFAULT_DATASET`); :func:`parity_table` reproduces the comparison from it with
any engine in seconds. :func:`label_dataset` (``halex engines parity --compute``) makes or
completes it; it is resumable: each finished DFT single point is written into the dataset
at once (atomically) and cached in the store.

Errors per reaction are in kcal/mol per exchanged halide: ΔE(engine) − ΔE(DFT).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from ase import Atoms

from halex.errors import FileFormatError, HalexError, InputError

if TYPE_CHECKING:  # pragma: no cover
    from halex.engines.base import Engine
    from halex.store import ResultStore

__all__ = ["Reaction", "parity_reactions", "parity_starts", "relax_geometries", "extend_dataset", "label_dataset", "write_dataset",
           "read_dataset", "parity_table", "parity_summary", "check_dataset_engine", "DEFAULT_DATASET",
           "DATASET_FORMAT", "REFERENCES"]

log = logging.getLogger("halex.engines")

#: The committed CP2K PBE dataset (made with ``halex engines parity --compute``).
DEFAULT_DATASET = Path(__file__).parent / "data" / "parity_cp2k_pbe.json"
DATASET_FORMAT = "halex-parity-1"
#: Structures that are the PbX2 references of every reaction (one formula unit each).
REFERENCES = {"Cl": "PbCl2", "I": "PbI2"}
#: Vacuum (Å) around the non-periodic structures: the cell, hence CP2K's box (its ``box="cell"``:
#: a cube of the longest cell edge), is the same for a reactant and its products.
VACUUM = 5.0


@dataclass(frozen=True)
class Reaction:
    """One Cl→I exchange: ``reactant`` (x·Cl) → ``product`` (x·I), by structure name."""

    name: str
    family: str
    reactant: str
    product: str
    x: int


def _swap(atoms: Atoms, sites: Sequence[int], target: str = "I") -> Atoms:
    out = atoms.copy()
    symbols = out.get_chemical_symbols()
    for i in sites:
        if symbols[i] != "Cl":
            raise InputError(f"site {i} is {symbols[i]}, not Cl")
        symbols[i] = target
    out.set_chemical_symbols(symbols)
    return out


def _octahedron_sites(atoms: Atoms) -> dict[str, int]:
    """The six Cl around the first Pb by direction from it: ``+x``, ``-x``, ``+y`` … (minimum-image
    vectors, so the octahedron of a periodic cell is whole)."""
    pb = int(np.flatnonzero(atoms.symbols == "Pb")[0])
    cl = np.flatnonzero(atoms.symbols == "Cl")
    vec = atoms.get_distances(pb, cl, mic=bool(atoms.pbc.any()), vector=True)
    near = np.argsort(np.linalg.norm(vec, axis=1))[:6]
    out = {}
    for k in near:
        d = vec[k]
        j = int(np.argmax(np.abs(d)))
        out[("+" if d[j] > 0 else "-") + "xyz"[j]] = int(cl[k])
    return out


def _plane(atoms: Atoms, cation: str) -> list[int]:
    """The Cl of the (001) plane through the first ``cation`` (Cs: an AX plane, Pb: a BX2 plane)."""
    z0 = atoms.positions[atoms.symbols == cation][0, 2]
    cl = np.flatnonzero(atoms.symbols == "Cl")
    dz = atoms.positions[cl, 2] - z0
    c = atoms.cell[2, 2]
    dz = dz - c * np.rint(dz / c) if atoms.pbc[2] else dz
    return [int(i) for i in cl[np.abs(dz) < 0.5]]


def _nearest(atoms: Atoms, k: int, site: int) -> list[int]:
    """Cl ``site`` and its ``k`` − 1 nearest Cl (minimum-image distances): a compact cluster of k."""
    cl = np.flatnonzero(atoms.symbols == "Cl")
    d = atoms.get_distances(site, cl, mic=bool(atoms.pbc.any()))
    return [int(i) for i in cl[np.argsort(d, kind="stable")[:k]]]


def _pair(atoms: Atoms, which: str) -> list[int]:
    """The closest or the farthest pair of Cl (minimum-image distances)."""
    cl = np.flatnonzero(atoms.symbols == "Cl")
    d = atoms.get_all_distances(mic=True)[np.ix_(cl, cl)]
    d[np.diag_indices_from(d)] = np.inf if which == "closest" else -np.inf
    i, j = np.unravel_index(np.argmin(d) if which == "closest" else np.argmax(d), d.shape)
    return [int(cl[i]), int(cl[j])]


def _product_sites() -> dict[str, tuple[str, Any]]:
    """Product name → (reactant name, sites to swap: indices, octahedron directions or a rule)."""
    return {
        "PbClI": ("PbCl2", [1]),
        "Cs4PbCl5I": ("Cs4PbCl6", ["+x"]),
        "Cs4PbCl4I2-cis": ("Cs4PbCl6", ["+x", "+y"]),
        "Cs4PbCl4I2-trans": ("Cs4PbCl6", ["+x", "-x"]),
        "Cs4PbCl3I3-fac": ("Cs4PbCl6", ["+x", "+y", "+z"]),
        "Cs4PbCl3I3-mer": ("Cs4PbCl6", ["+x", "-x", "+y"]),
        "Cs4PbI6": ("Cs4PbCl6", ["+x", "-x", "+y", "-y", "+z", "-z"]),
        "CsPbCl3-222-I1": ("CsPbCl3-222", [2]),
        "CsPbCl3-222-I2-octahedron": ("CsPbCl3-222", "closest"),
        "CsPbCl3-222-I2-far": ("CsPbCl3-222", "farthest"),
        "CsPbI3-222": ("CsPbCl3-222", "all"),
        "Pb4S3Cl2-I1": ("Pb4S3Cl2", [28]),
        "Pb4S3Cl2-I2-closest": ("Pb4S3Cl2", "closest"),
        "Pb4S3Cl2-I2-farthest": ("Pb4S3Cl2", "farthest"),
        "Pb4S3I2": ("Pb4S3Cl2", "all"),
        # added with the first DFT-corrected engine: more environments for its fit
        "CsPbCl3-222-I3-fac": ("CsPbCl3-222", ["+x", "+y", "+z"]),
        "CsPbCl3-222-I3-mer": ("CsPbCl3-222", ["+x", "-x", "+y"]),
        "CsPbCl3-222-I4-AX-plane": ("CsPbCl3-222", ("plane", "Cs")),
        "CsPbCl3-222-I8-BX2-plane": ("CsPbCl3-222", ("plane", "Pb")),
        "Pb4S3Cl2-I3-cluster": ("Pb4S3Cl2", ("nearest", 3, 28)),
        "Pb4S3Cl2-I4-cluster": ("Pb4S3Cl2", ("nearest", 4, 28)),
    }


_FAMILY = {"PbCl2": "molecule", "Cs4PbCl6": "octahedron", "CsPbCl3-222": "perovskite", "Pb4S3Cl2": "chalcohalide"}


def parity_starts() -> dict[str, Atoms]:
    """The built reactants and the PbX2 references (start geometries), by name."""
    from halex.models.nanocrystal import perovskite_nanocrystal
    from halex.phases import cubic_perovskite, load_phase
    from halex.studies.energies import pbx2_molecule

    cluster = perovskite_nanocrystal((1, 1, 1), vacuum=VACUUM)
    # the committed CP2K dataset (and the mlip-tuned engine fitted to it) starts from this
    # cell; the exchange reactions only need a Pb4S3Cl2 environment, not the default phase
    chalco = load_phase("Pb4S3Cl2-provisional")
    chalco.info.clear()
    bulk = cubic_perovskite("Cl").repeat((2, 2, 2))
    bulk.info.clear()
    return {"PbCl2": pbx2_molecule("Cl", vacuum=VACUUM), "PbI2": pbx2_molecule("I", vacuum=VACUUM),
            "Cs4PbCl6": cluster, "CsPbCl3-222": bulk, "Pb4S3Cl2": chalco}


def product_of(name: str, relaxed_reactant: Atoms) -> Atoms:
    """The start of product ``name``: its relaxed reactant with the species swapped."""
    reactant, rule = _product_sites()[name]
    atoms = relaxed_reactant
    if rule == "all":
        sites = list(np.flatnonzero(atoms.symbols == "Cl"))
    elif rule in ("closest", "farthest"):
        sites = _pair(atoms, rule)
    elif isinstance(rule, tuple) and rule[0] == "plane":
        sites = _plane(atoms, rule[1])
    elif isinstance(rule, tuple) and rule[0] == "nearest":
        sites = _nearest(atoms, rule[1], rule[2])
    elif rule and isinstance(rule[0], str):
        oct_ = _octahedron_sites(atoms)
        sites = [oct_[d] for d in rule]
    else:
        sites = list(rule)
    return _swap(atoms, sites)


def parity_reactions() -> list[Reaction]:
    """The 21 reactions of the parity set (see module docstring); ``x`` counted on the built products."""
    starts = parity_starts()
    out = []
    for product, (reactant, _) in _product_sites().items():
        x = int(np.sum(product_of(product, starts[reactant]).symbols == "I"))
        out.append(Reaction(name=f"{reactant} -> {product}", family=_FAMILY[reactant], reactant=reactant,
                            product=product, x=x))
    return out


def relax_geometries(engine: str | Engine, *, store: ResultStore | None = None, fmax: float | None = None
                     ) -> dict[str, Atoms]:
    """Every structure of the parity set relaxed by ``engine`` (see module docstring), by name.

    Periodic cells are relaxed with their cell; products start from their relaxed reactant.
    """
    from halex.relax import relax
    from halex.units import DEFAULT_FMAX

    fmax = DEFAULT_FMAX if fmax is None else fmax
    out: dict[str, Atoms] = {}
    starts = parity_starts()
    todo = list(starts.items()) + [(p, None) for p in _product_sites()]
    for k, (name, start) in enumerate(todo, 1):
        if start is None:
            start = product_of(name, out[_product_sites()[name][0]])
        periodic = bool(np.all(start.pbc))
        r = relax(start, engine, fmax=fmax, steps=2000, cell=periodic, store=store, label=f"parity {name}",
                  trajectory=False)
        if not r.converged:
            log.warning("halex: warning: parity geometry %s did not reach fmax %.3f eV/Å (%.3f)", name, fmax, r.fmax)
        out[name] = r.atoms
        log.info("[parity] geometry %d/%d %s: %d atoms, E = %.4f eV", k, len(todo), name, len(start), r.energy)
    return out


def _structure_record(atoms: Atoms) -> dict[str, Any]:
    return {"symbols": atoms.get_chemical_symbols(), "positions_A": np.round(atoms.positions, 6).tolist(),
            "cell_A": np.round(np.asarray(atoms.cell), 6).tolist(), "pbc": [bool(p) for p in atoms.pbc]}


def _atoms(rec: Mapping[str, Any]) -> Atoms:
    return Atoms(rec["symbols"], positions=rec["positions_A"], cell=rec["cell_A"], pbc=rec["pbc"])


def write_dataset(path: str | os.PathLike, dataset: Mapping[str, Any]) -> Path:
    """Write ``dataset`` (the dict of :func:`read_dataset`) as JSON, atomically (temp file, then rename)."""
    from halex.io import atomic_output, json_safe

    with atomic_output(path) as fh:
        fh.write(json.dumps(json_safe(dict(dataset)), indent=1))
    return Path(path)


def read_dataset(path: str | os.PathLike = DEFAULT_DATASET) -> dict[str, Any]:
    """A parity dataset: ``{"format", "dft", "geometry_engine", "reactions", "structures"}``.

    ``structures`` maps a name to ``{"symbols", "positions_A", "cell_A", "pbc", "energy_eV",
    "forces_eV_A"}`` (the last two absent until labelled); ``reactions`` is a list of
    :class:`Reaction` fields.

    Raises
    ------
    FileFormatError
        The file is missing, not JSON, or not a halex parity dataset.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileFormatError(f"{str(path)!r}: no such parity dataset; make one with "
                              "'halex engines parity --compute --dataset PATH'") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FileFormatError(f"{str(path)!r} is not a parity dataset (not JSON: {exc})") from None
    if not isinstance(data, dict) or data.get("format") != DATASET_FORMAT:
        raise FileFormatError(f"{str(path)!r} is not a parity dataset (expected \"format\": \"{DATASET_FORMAT}\")")
    for key in ("structures", "reactions", "dft"):
        if key not in data:
            raise FileFormatError(f"{str(path)!r}: parity dataset without {key!r}")
    return data


def new_dataset(geometries: Mapping[str, Atoms], dft: Engine, geometry_engine: Engine) -> dict[str, Any]:
    """An unlabelled dataset of ``geometries`` for the reactions of :func:`parity_reactions`."""
    from halex import __version__

    return {"format": DATASET_FORMAT, "halex_version": __version__, "dft": dft.describe(),
            "geometry_engine": geometry_engine.describe(), "references": REFERENCES,
            "reactions": [asdict(r) for r in parity_reactions()],
            "structures": {n: _structure_record(a) for n, a in geometries.items()}}


def extend_dataset(dataset: dict[str, Any], engine: Engine, *, store: ResultStore | None = None,
                   fmax: float | None = None) -> list[str]:
    """Add the reactions of :func:`parity_reactions` that ``dataset`` lacks (in place).

    A new product starts from its reactant's geometry *as stored in the dataset* (relaxed by
    the dataset's geometry engine) and is relaxed by ``engine``, which must be that engine;
    its DFT label is left for :func:`label_dataset`. Returns the names of the added products.

    Raises
    ------
    InputError
        ``engine`` is not the dataset's geometry engine (its products would not be comparable).
    """
    from halex.relax import relax
    from halex.units import DEFAULT_FMAX

    have = {r["name"] for r in dataset["reactions"]}
    new = [r for r in parity_reactions() if r.name not in have]
    if not new:
        return []
    if dataset.get("geometry_engine") != engine.describe():
        raise InputError(f"the dataset's geometries were relaxed by {dataset.get('geometry_engine', {}).get('name')} "
                         f"{dataset.get('geometry_engine', {}).get('settings')}; extend it with that --engine")
    added = []
    for k, r in enumerate(new, 1):
        start = product_of(r.product, _atoms(dataset["structures"][r.reactant]))
        res = relax(start, engine, fmax=DEFAULT_FMAX if fmax is None else fmax, steps=2000, cell=bool(np.all(start.pbc)),
                    store=store, label=f"parity {r.product}", trajectory=False)
        if not res.converged:
            log.warning("halex: warning: parity geometry %s did not reach its fmax (%.3f eV/Å)", r.product, res.fmax)
        dataset["structures"][r.product] = _structure_record(res.atoms)
        dataset["reactions"].append(asdict(r))
        added.append(r.product)
        log.info("[parity] new reaction %d/%d %s: %d atoms relaxed, E = %.4f eV", k, len(new), r.name, len(start),
                 res.energy)
    return added


def label_dataset(dataset: dict[str, Any], dft: Engine, path: str | os.PathLike, *,
                  store: ResultStore | None = None) -> dict[str, Any]:
    """DFT energies and forces for every unlabelled structure of ``dataset``, smallest first.

    Each result is written into ``path`` as soon as it is computed (atomically), so an
    interrupted run loses at most the single point in progress; a rerun skips what is there.
    """
    from halex.relax import single_point

    todo = sorted((n for n, s in dataset["structures"].items() if "energy_eV" not in s),
                  key=lambda n: len(dataset["structures"][n]["symbols"]))
    t0 = time.perf_counter()
    for k, name in enumerate(todo, 1):
        rec = dataset["structures"][name]
        r = single_point(_atoms(rec), dft, store=store, label=f"parity {name}")
        rec["energy_eV"] = float(r.energy)
        forces = np.asarray(r.atoms.get_forces())
        rec["forces_eV_A"] = np.round(forces, 6).tolist()
        rec["dft_fmax_eV_A"] = float(np.max(np.linalg.norm(forces, axis=1)))
        write_dataset(path, dataset)
        eta = (time.perf_counter() - t0) / k * (len(todo) - k)
        log.info("[parity] DFT %d/%d %s (%d atoms): E = %.5f eV; ETA %.0f min", k, len(todo), name,
                 len(rec["symbols"]), r.energy, eta / 60)
    return dataset


def check_dataset_engine(dataset: Mapping[str, Any], engine: Engine) -> None:
    """Refuse a dataset that ``engine`` cannot compute, or whose reactions are not Cl→I swaps.

    Raises
    ------
    UnsupportedElementError
        A structure has an element the engine does not describe (the message names it).
    FileFormatError
        A reaction names a missing structure, or its product is not its reactant with
        ``x`` Cl replaced by I.
    """
    from collections import Counter

    structures = dataset["structures"]
    for name, rec in structures.items():
        try:
            engine.check(_atoms(rec))
        except HalexError as exc:
            raise type(exc)(f"parity dataset structure {name!r}: {exc}") from None
    for r in dataset["reactions"]:
        missing = [n for n in (r["reactant"], r["product"]) if n not in structures]
        if missing:
            raise FileFormatError(f"parity reaction {r['name']!r} names missing structure(s) {', '.join(missing)}")
        a, b = Counter(structures[r["reactant"]]["symbols"]), Counter(structures[r["product"]]["symbols"])
        if not (a["Cl"] - b["Cl"] == b["I"] - a["I"] == r["x"] > 0 and a - Counter(Cl=r["x"]) == b - Counter(I=r["x"])):
            raise FileFormatError(f"parity reaction {r['name']!r}: the product is not the reactant with {r['x']} Cl→I")
    for name in REFERENCES.values():
        if name not in structures:
            raise FileFormatError(f"parity dataset without its reference {name!r}")


def _engine_energies(dataset: Mapping[str, Any], engine: Engine, store: ResultStore | None) -> dict[str, float]:
    """``engine``'s single-point energies (eV) on the dataset's geometries, by structure name."""
    from halex.relax import single_point

    return {name: single_point(_atoms(rec), engine, store=store, label=f"parity {name}").energy
            for name, rec in dataset["structures"].items()}


def parity_table(dataset: Mapping[str, Any], engine: Engine, *, store: ResultStore | None = None) -> list[dict[str, Any]]:
    """Per reaction ΔE(DFT), ΔE(engine) and their difference (kcal/mol per exchanged halide).

    Reactions whose structures are not all DFT-labelled yet are listed with ``dE_dft`` None.
    """
    from halex.studies.energies import exchange_energy

    check_dataset_engine(dataset, engine)
    e_dft = {n: float(s["energy_eV"]) for n, s in dataset["structures"].items() if "energy_eV" in s}
    e_eng = _engine_energies(dataset, engine, store)
    rows = []
    for r in dataset["reactions"]:
        def de(e: Mapping[str, float]) -> float | None:
            need = (r["product"], r["reactant"], REFERENCES["Cl"], REFERENCES["I"])
            if not all(n in e for n in need):
                return None
            return exchange_energy(e[r["product"]], e[r["reactant"]], r["x"], e[REFERENCES["Cl"]], e[REFERENCES["I"]])

        d, m = de(e_dft), de(e_eng)
        rows.append({"reaction": r["name"], "family": r["family"], "x": r["x"],
                     "atoms": len(dataset["structures"][r["product"]]["symbols"]),
                     "dE_dft_kcal_mol": d, "dE_engine_kcal_mol": m,
                     "error_kcal_mol": None if d is None else m - d})
    return rows


def parity_summary(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """MAE, RMSE, largest error and mean signed error (kcal/mol per halide), overall and per family.

    ``within_family_mae_kcal_mol`` is the MAE after removing each family's mean error: the
    error left in a *comparison* of reactions of one family (e.g. cis against trans), which
    is what the exchange studies compare; a family with one reaction contributes nothing.

    Examples
    --------
    >>> s = parity_summary([{"family": "a", "error_kcal_mol": 1.0}, {"family": "a", "error_kcal_mol": -3.0},
    ...                     {"family": "b", "error_kcal_mol": None}])
    >>> s["n"], s["mae_kcal_mol"], s["max_abs_error_kcal_mol"], s["mean_error_kcal_mol"], s["unlabelled"]
    (2, 2.0, 3.0, -1.0, 1)
    >>> s["within_family_mae_kcal_mol"]
    2.0
    """
    def stats(errors: list[float]) -> dict[str, Any]:
        e = np.asarray(errors, float)
        if len(e) == 0:
            return {"n": 0}
        return {"n": int(len(e)), "mae_kcal_mol": float(np.mean(np.abs(e))), "rmse_kcal_mol": float(np.sqrt(np.mean(e**2))),
                "max_abs_error_kcal_mol": float(np.max(np.abs(e))), "mean_error_kcal_mol": float(np.mean(e))}

    done = [r for r in rows if r["error_kcal_mol"] is not None]
    out = stats([r["error_kcal_mol"] for r in done])
    out["unlabelled"] = len(rows) - len(done)
    out["by_family"] = {f: stats([r["error_kcal_mol"] for r in done if r["family"] == f])
                        for f in dict.fromkeys(r["family"] for r in done)}
    centred = [r["error_kcal_mol"] - out["by_family"][r["family"]]["mean_error_kcal_mol"] for r in done
               if out["by_family"][r["family"]]["n"] > 1]
    out["within_family_mae_kcal_mol"] = float(np.mean(np.abs(centred))) if centred else None
    return out


def parity_figure(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike, *, engine: str, dft: str) -> Path:
    """Parity plot: ΔE(engine) against ΔE(DFT), one marker per reaction, coloured by family."""
    from halex.plotting.figures import new_figure, save_figure

    done = [r for r in rows if r["error_kcal_mol"] is not None]
    fig, ax = new_figure(figsize=(5.5, 5))
    for fam in dict.fromkeys(r["family"] for r in done):
        sel = [r for r in done if r["family"] == fam]
        ax.plot([r["dE_dft_kcal_mol"] for r in sel], [r["dE_engine_kcal_mol"] for r in sel], "o", label=fam)
    if done:
        v = np.array([[r["dE_dft_kcal_mol"], r["dE_engine_kcal_mol"]] for r in done])
        lo, hi = float(v.min()) - 1, float(v.max()) + 1
        ax.plot([lo, hi], [lo, hi], "k-", lw=0.8, label="parity")
        s = parity_summary(done)
        ax.set_title(f"{engine} vs {dft}: MAE {s['mae_kcal_mol']:.2f}, max {s['max_abs_error_kcal_mol']:.2f} "
                     f"kcal/mol per halide (n = {s['n']})", fontsize=8)
    ax.set_xlabel(f"ΔE_exchange {dft} (kcal/mol per halide)")
    ax.set_ylabel(f"ΔE_exchange {engine} (kcal/mol per halide)")
    ax.legend(fontsize=7)
    return save_figure(fig, path)
