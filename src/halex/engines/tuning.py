"""A DFT-corrected default engine: CHGNet fine-tuned on the CP2K PBE exchange energies.

The parity dataset (:mod:`halex.engines.parity`) puts the default engine 2.5 kcal/mol per
halide from CP2K PBE on Cl→I exchange energies, five times the 0.5 kcal/mol the exchange
studies need. This module fine-tunes CHGNet on that dataset so that its *exchange energies*
match the DFT ones, and measures how well that holds on reactions it was not fitted to.

What is fitted, and why not CHGNet's own :class:`chgnet.trainer.Trainer`
--------------------------------------------------------------------------
The quantity the studies report is ΔE_exchange (SPEC §4), a difference of total energies of
structures with the same number of atoms, referenced to PbCl2 / PbI2. The loss here is that
quantity: the squared error of ΔE(model) against ΔE(DFT) over the training reactions, plus
the squared error of the forces against the DFT forces (weight ``force_weight``), plus an
L2 anchor to the pretrained weights (weight ``anchor_weight``: "L2-SP", X. Li, Y. Grandvalet,
F. Davoine, ICML 2018) that keeps the model near the universal potential it started from.
The CP2K total energies (GTH pseudopotentials) and CHGNet's (VASP PAW, MP corrections) differ
by large per-element offsets; those cancel exactly in ΔE_exchange, so this loss needs no
elemental reference refit. CHGNet's ``Trainer`` fits per-atom total energies instead; measured
on its first 15 reactions (5-fold split by reaction, 30 epochs, the AtomRef refitted to CP2K), it made
the held-out MAE *worse*, 2.53 → 3.64 kcal/mol per halide: a per-atom energy error of
0.01 eV/atom, its training error, is 0.4 eV on a 40-atom cell, ten times the reaction
energy differences to be learnt.

What is trained: the last atom-convolution layer and the readout MLP (the layers closest to
the energy; the embeddings and the first three interaction blocks stay frozen), full batch,
Adam. Every number of the protocol is an argument and is stored with the weights.

Held-out parity is measured by :func:`cross_validate`: the reactions are split into folds
(by reaction, not by structure: a held-out reaction's product is never in its fold's
training set; the shared reactants and PbX2 references are), a model is fitted per fold,
and every reaction is scored by the model that did not see it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from halex.errors import FileFormatError, InputError
from halex.units import EV_KCAL_PER_MOL

__all__ = ["TUNED_MODEL", "TRAINABLE", "reaction_folds", "training_structures", "fit_reactions", "model_energies",
           "cross_validate", "summarize_cv", "save_model", "read_metadata", "dataset_digest"]

log = logging.getLogger("halex.engines")

#: The fine-tuned weights shipped in the package (``halex engines tune`` makes them).
TUNED_MODEL = Path(__file__).parent / "data" / "mlip_tuned_cp2k_pbe.pt"
#: Parameter-name prefixes of CHGNet 0.3.0 that are trained; everything else is frozen.
TRAINABLE = ("atom_conv_layers.3.", "mlp.")
#: The fine-tuning protocol's defaults (each an argument of :func:`fit_reactions`).
DEFAULTS = {"epochs": 200, "learning_rate": 1e-3, "force_weight": 10.0, "anchor_weight": 0.01, "seed": 0}


def dataset_digest(dataset: Mapping[str, Any]) -> str:
    """SHA-256 of the dataset's structures, energies, forces and reactions (canonical JSON)."""
    payload = json.dumps({"structures": dataset["structures"], "reactions": dataset["reactions"]}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def reaction_folds(reactions: Sequence[Mapping[str, Any]], n_folds: int) -> list[list[str]]:
    """Split reactions into ``n_folds`` folds, by reaction, each family spread over the folds.

    Reactions are ordered by family (in order of first appearance) and dealt round-robin, so a
    family with at least ``n_folds`` reactions has one in every fold. Deterministic.

    Examples
    --------
    >>> rs = [{"name": f"r{i}", "family": f} for i, f in enumerate("aaabbc")]
    >>> reaction_folds(rs, 3)
    [['r0', 'r3'], ['r1', 'r4'], ['r2', 'r5']]
    """
    if not 2 <= n_folds <= len(reactions):
        raise InputError(f"the number of folds must be between 2 and the number of reactions "
                         f"({len(reactions)}), got {n_folds}")
    families = list(dict.fromkeys(r["family"] for r in reactions))
    ordered = [r["name"] for f in families for r in reactions if r["family"] == f]
    return [ordered[k::n_folds] for k in range(n_folds)]


def _structures(dataset: Mapping[str, Any], names: Sequence[str]) -> dict[str, Any]:
    from pymatgen.io.ase import AseAtomsAdaptor

    from halex.engines.parity import _atoms

    # the same conversion as CHGNet's ASE calculator, so fitting and use see the same graph
    return {n: AseAtomsAdaptor.get_structure(_atoms(dataset["structures"][n])) for n in names}


def _predict(model, structures: Mapping[str, Any], forces: bool) -> tuple[dict, dict]:
    """Total energies (eV) and, if asked, forces (eV/Å) as differentiable tensors, by name."""
    import warnings

    graphs = [model.graph_converter(s) for s in structures.values()]
    if forces:
        for g in graphs:
            g.atom_frac_coord.requires_grad = True
    with warnings.catch_warnings():  # PyTorch's note from inside CHGNet's volume computation: no bearing on results
        warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad=True")
        out = model(graphs, task="ef" if forces else "e")
    names = list(structures)
    energies = {n: out["e"][i] * len(structures[n]) for i, n in enumerate(names)}
    return energies, ({n: out["f"][i] for i, n in enumerate(names)} if forces else {})


def _exchange(e: Mapping[str, Any], r: Mapping[str, Any]):
    """SPEC §4 ΔE_exchange (kcal/mol per halide) of reaction ``r`` from energies ``e`` (eV); works on
    tensors, the same formula as :func:`halex.studies.energies.exchange_energy`."""
    from halex.engines.parity import REFERENCES

    x = r["x"]
    return ((e[r["product"]] + 0.5 * x * e[REFERENCES["Cl"]]) - (e[r["reactant"]] + 0.5 * x * e[REFERENCES["I"]])) / x \
        * EV_KCAL_PER_MOL


def _load_base():
    import contextlib
    import io

    from chgnet.model import CHGNet

    with contextlib.redirect_stdout(io.StringIO()):
        return CHGNet.load(model_name="0.3.0", verbose=False)


def training_structures(dataset: Mapping[str, Any], reactions: Sequence[str]) -> list[str]:
    """The structures a fit on ``reactions`` sees: the PbX2 references and each reaction's reactant and product."""
    from halex.engines.parity import REFERENCES

    by_name = {r["name"]: r for r in dataset["reactions"]}
    return list(dict.fromkeys([*REFERENCES.values(), *(n for name in reactions
                                                         for n in (by_name[name]["reactant"], by_name[name]["product"]))]))


def fit_reactions(dataset: Mapping[str, Any], reactions: Sequence[str] | None = None, *,
                  epochs: int = DEFAULTS["epochs"], learning_rate: float = DEFAULTS["learning_rate"],
                  force_weight: float = DEFAULTS["force_weight"], anchor_weight: float = DEFAULTS["anchor_weight"],
                  seed: int = DEFAULTS["seed"], progress: Callable[[str], None] | None = None):
    """Fine-tune CHGNet 0.3.0 on the DFT exchange energies (and forces) of ``reactions``.

    Parameters
    ----------
    dataset
        A labelled parity dataset (:func:`halex.engines.parity.read_dataset`).
    reactions
        Names of the training reactions (None: all). Their reactants, products and the PbX2
        references are the training structures; nothing else of the dataset is seen.
    epochs, learning_rate
        Full-batch Adam steps and step size.
    force_weight
        Weight of the force mean squared error ((eV/Å)²) against the reaction one
        ((kcal/mol per halide)²).
    anchor_weight
        Weight of the L2 distance of the trained parameters from the pretrained ones.
    seed
        PyTorch seed (the fit is full batch; the seed only fixes any nondeterministic kernel).
    progress
        Called with one line per 10 % of the epochs (error, forces, elapsed, ETA).

    Returns
    -------
    model : chgnet.model.CHGNet
        The fine-tuned model, in eval mode.
    history : dict
        ``reaction_rmse_kcal_mol`` and ``force_rmse_eV_A`` of the training set per epoch.
    """
    import torch

    by_name = {r["name"]: r for r in dataset["reactions"]}
    names = list(by_name) if reactions is None else list(reactions)
    unknown = [n for n in names if n not in by_name]
    if unknown or not names:
        raise InputError(f"no such reaction(s) in the parity dataset: {', '.join(unknown) or '(none given)'}")
    train = [by_name[n] for n in names]
    missing = [n for r in train for n in (r["reactant"], r["product"]) if "energy_eV" not in dataset["structures"][n]]
    if missing:
        raise FileFormatError(f"parity structures without DFT labels: {', '.join(sorted(set(missing)))}; "
                              "run 'halex engines parity --compute' first")
    snames = training_structures(dataset, names)
    structures = _structures(dataset, snames)
    e_dft = {n: float(dataset["structures"][n]["energy_eV"]) for n in snames}
    target = torch.tensor([_exchange(e_dft, r) for r in train], dtype=torch.float32)
    f_dft = {n: torch.tensor(dataset["structures"][n]["forces_eV_A"], dtype=torch.float32) for n in snames}

    torch.manual_seed(seed)
    model = _load_base()
    params = []
    for pname, p in model.named_parameters():
        p.requires_grad = pname.startswith(TRAINABLE)
        if p.requires_grad:
            params.append((p, p.detach().clone()))
    optimizer = torch.optim.Adam([p for p, _ in params], lr=learning_rate)
    history: dict[str, list[float]] = {"reaction_rmse_kcal_mol": [], "force_rmse_eV_A": []}
    start = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        optimizer.zero_grad()
        energies, forces = _predict(model, structures, force_weight > 0)
        loss_e = torch.mean((torch.stack([_exchange(energies, r) for r in train]) - target) ** 2)
        loss_f = (torch.mean(torch.cat([((forces[n] - f_dft[n]) ** 2).reshape(-1) for n in snames]))
                  if force_weight > 0 else torch.zeros(()))
        anchor = sum(((p - p0) ** 2).sum() for p, p0 in params)
        (loss_e + force_weight * loss_f + anchor_weight * anchor).backward()
        optimizer.step()
        history["reaction_rmse_kcal_mol"].append(float(loss_e.detach()) ** 0.5)
        history["force_rmse_eV_A"].append(float(loss_f.detach()) ** 0.5)
        if progress and ((epoch + 1) % max(1, epochs // 10) == 0 or epoch + 1 == epochs):
            elapsed = time.perf_counter() - start
            progress(f"epoch {epoch + 1}/{epochs}: training ΔE RMSE {history['reaction_rmse_kcal_mol'][-1]:.2f} "
                     f"kcal/mol per halide, force RMSE {history['force_rmse_eV_A'][-1]:.3f} eV/Å; "
                     f"{elapsed:.0f} s, ETA {elapsed / (epoch + 1) * (epochs - epoch - 1):.0f} s")
    model.eval()
    for p, _ in params:
        p.requires_grad = False
    return model, history


def model_energies(model, dataset: Mapping[str, Any], names: Sequence[str] | None = None) -> dict[str, float]:
    """Single-point total energies (eV) of a CHGNet ``model`` on the dataset's structures."""
    import torch

    structures = _structures(dataset, list(dataset["structures"]) if names is None else names)
    with torch.no_grad():
        energies, _ = _predict(model, structures, forces=False)
    return {n: float(e) for n, e in energies.items()}


def cross_validate(dataset: Mapping[str, Any], n_folds: int = 5, *, log_fn: Callable[[str], None] | None = None,
                   **fit_kw: Any) -> list[dict[str, Any]]:
    """Held-out parity of the fine-tuning: every reaction scored by the model fitted without it.

    Returns one row per reaction: ``reaction``, ``family``, ``x``, ``fold``, ``dE_dft_kcal_mol``,
    ``error_before_kcal_mol`` (the pretrained model) and ``error_after_kcal_mol`` (the model of
    the fold that held it out), in kcal/mol per exchanged halide.
    """
    folds = reaction_folds(dataset["reactions"], n_folds)
    by_name = {r["name"]: r for r in dataset["reactions"]}
    e_dft = {n: float(s["energy_eV"]) for n, s in dataset["structures"].items()}
    e_before = model_energies(_load_base(), dataset)
    rows = []
    start = time.perf_counter()
    for k, held in enumerate(folds):
        train = [n for n in by_name if n not in held]
        model, _ = fit_reactions(dataset, train, progress=None, **fit_kw)
        e_after = model_energies(model, dataset)
        for name in held:
            r = by_name[name]
            d = float(_exchange(e_dft, r))
            rows.append({"reaction": name, "family": r["family"], "x": r["x"], "fold": k, "dE_dft_kcal_mol": d,
                         "error_before_kcal_mol": float(_exchange(e_before, r)) - d,
                         "error_after_kcal_mol": float(_exchange(e_after, r)) - d})
        if log_fn:
            elapsed = time.perf_counter() - start
            log_fn(f"fold {k + 1}/{len(folds)} (held out: {', '.join(held)}): {elapsed:.0f} s, "
                   f"ETA {elapsed / (k + 1) * (len(folds) - k - 1):.0f} s")
    order = {r["name"]: i for i, r in enumerate(dataset["reactions"])}
    return sorted(rows, key=lambda row: order[row["reaction"]])


def save_model(model, path: str | os.PathLike, metadata: Mapping[str, Any]) -> Path:
    """Write the weights and ``metadata`` (protocol, dataset digest, held-out parity) atomically.

    The file is what :meth:`chgnet.model.CHGNet.from_file` reads (its ``"model"`` entry), with the
    metadata beside it under ``"halex"``.
    """
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"model": model.as_dict(), "halex": dict(metadata)}, tmp)
    os.replace(tmp, path)
    return path


def read_metadata(path: str | os.PathLike = TUNED_MODEL) -> dict[str, Any]:
    """The ``halex`` metadata stored with fine-tuned weights."""
    import torch

    try:
        state = torch.load(Path(path), map_location="cpu", weights_only=False)
        return dict(state["halex"])
    except (OSError, KeyError, RuntimeError, EOFError) as exc:
        raise FileFormatError(f"cannot read fine-tuned weights {path}: {exc}") from None


def summarize_cv(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Held-out MAE, max and per-family MAE before and after, from :func:`cross_validate` rows.

    Examples
    --------
    >>> s = summarize_cv([{"family": "a", "error_before_kcal_mol": 2.0, "error_after_kcal_mol": -1.0},
    ...                   {"family": "b", "error_before_kcal_mol": -4.0, "error_after_kcal_mol": 0.0}])
    >>> s["before"]["mae_kcal_mol"], s["after"]["mae_kcal_mol"], s["after"]["max_abs_error_kcal_mol"]
    (3.0, 0.5, 1.0)
    """
    out: dict[str, Any] = {"n": len(rows)}
    for when in ("before", "after"):
        e = np.array([r[f"error_{when}_kcal_mol"] for r in rows], float)
        fam = {f: float(np.mean([abs(r[f"error_{when}_kcal_mol"]) for r in rows if r["family"] == f]))
               for f in dict.fromkeys(r["family"] for r in rows)}
        out[when] = {"mae_kcal_mol": float(np.mean(np.abs(e))), "max_abs_error_kcal_mol": float(np.max(np.abs(e))),
                     "mean_error_kcal_mol": float(np.mean(e)), "family_mae_kcal_mol": fam}
    return out


def cv_figure(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike) -> Path:
    """Held-out parity before and after fine-tuning: ΔE(model) against ΔE(DFT), one marker per reaction."""
    from halex.plotting.figures import new_figure, save_figure

    s = summarize_cv(rows)
    d = np.array([r["dE_dft_kcal_mol"] for r in rows])
    fig, ax = new_figure(figsize=(5.5, 5))
    for when, marker in (("before", "o"), ("after", "s")):
        m = d + np.array([r[f"error_{when}_kcal_mol"] for r in rows])
        ax.plot(d, m, marker, mfc="none" if when == "before" else None,
                label=f"{'pretrained' if when == 'before' else 'fine-tuned, held out'}: MAE "
                      f"{s[when]['mae_kcal_mol']:.2f}, max {s[when]['max_abs_error_kcal_mol']:.2f}")
    lo, hi = float(min(d.min(), ax.get_ylim()[0])) - 1, float(max(d.max(), ax.get_ylim()[1])) + 1
    ax.plot([lo, hi], [lo, hi], "k-", lw=0.8)
    ax.fill_between([lo, hi], [lo - 0.5, hi - 0.5], [lo + 0.5, hi + 0.5], color="0.85", label="± 0.5 kcal/mol")
    ax.set_xlabel("ΔE_exchange DFT (kcal/mol per halide)")
    ax.set_ylabel("ΔE_exchange model (kcal/mol per halide)")
    ax.set_title(f"CHGNet vs CP2K PBE, {s['n']} reactions, each held out of the fit", fontsize=8)
    ax.legend(fontsize=7)
    return save_figure(fig, path)
