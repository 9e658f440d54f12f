"""Write studies: tables (CSV + JSON with units and settings), figures (PNG + SVG), models.

The HTML report over several studies is written by :func:`halex.report.write_report`.

Every file is written atomically (temp file, then rename). Column names carry their units
(``_eV``, ``_kcal_mol``, ``_percent``, ``_A``, ``_deg``); the JSON next to each CSV holds
the same rows plus the study's settings (engine name/version/settings, fmax, PbX2
reference mode and energies).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from halex.io import atomic_output, json_safe
from halex.studies.exchange import Study

__all__ = ["write_study", "write_conclusions"]


def _write_table(path: Path, rows: list[dict[str, Any]], meta: dict[str, Any]) -> None:
    cols = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if json_safe(r.get(k)) is None else json_safe(r.get(k))) for k in cols})
    with atomic_output(path.with_suffix(".csv")) as fh:
        fh.write(buf.getvalue())
    with atomic_output(path.with_suffix(".json")) as fh:
        json.dump({"settings": meta, "rows": [{k: json_safe(v) for k, v in r.items()} for r in rows]}, fh, indent=1, default=str)


def _replica_error(sd: float | None, x: float) -> float | None:
    """Standard error (kcal/mol per halide) of a ΔE over x halides between two models, each with
    the replicas' pooled SD ``sd`` (eV) of a total energy."""
    from halex.units import EV_KCAL_PER_MOL

    return None if sd is None or not x else sd * np.sqrt(2.0) * EV_KCAL_PER_MOL / x


def _layers_figure(t: dict[str, list[dict[str, Any]]]):
    """ΔE (cumulative and step) and interfacial strain against exchanged layers, both starts, each
    start in one colour, with error bars of one standard error from the replicas' pooled SD."""
    from halex.plotting.figures import new_figure
    from halex.studies.conclusions import _pooled_replica_sd

    fig, (ax1, ax2) = new_figure(1, 2, figsize=(10, 4))
    rows0 = t["layers"][0]
    energy_sd, _ = _pooled_replica_sd(t["layers"])  # once for the figure: each point scales it by its halides
    strain_sd, _ = _pooled_replica_sd(t["layers"], "replica_strains_percent")
    for k, (start, mk) in enumerate((("interface", "o"), ("bottom", "s"))):
        rows = [r for r in t["layers"] if r["start"] == start]
        n = [r["n_layers"] for r in rows]
        cum = [_replica_error(energy_sd, r["x_total"]) for r in rows]
        step = [_replica_error(energy_sd, r["x_step"]) for r in rows]
        ax1.errorbar(n, [r["dE_cum_kcal_mol"] for r in rows], yerr=None if None in cum else cum, fmt=mk + "-",
                     color=f"C{k}", capsize=3, label=f"from the {start}, cumulative")
        ax1.errorbar(n, [r["dE_step_kcal_mol"] for r in rows], yerr=None if None in step else step, fmt=mk + "--",
                     color=f"C{k}", alpha=0.45, capsize=2, label=f"from the {start}, each step")
        ax2.errorbar([0] + n, [rows0["interfacial_strain_percent"]] + [r["interfacial_strain_percent"] for r in rows],
                     yerr=strain_sd, fmt=mk + "-", color=f"C{k}", capsize=3, label=f"from the {start}")
    ax1.axhline(0, color="k", lw=0.5)
    ax1.set_ylabel("ΔE exchange (kcal/mol per halide)")
    ax2.set_ylabel("interfacial strain (%)")
    ns = sorted({r["n_layers"] for r in t["layers"]})  # layers are whole numbers: one tick each
    for ax, ticks in ((ax1, [n for n in ns if n > 0]), (ax2, ns)):
        ax.set_xlabel("exchanged perovskite layers")
        ax.set_xticks(ticks)
        ax.set_xlim(min(ticks) - 0.5, max(ticks) + 0.5)
        ax.legend(fontsize=8)
    return fig


def _chalcohalide_figure(t: dict[str, list[dict[str, Any]]]):
    """ΔE of each step and the interfacial strain after it against percent I: every seed's series
    (faint) and their mean ± standard deviation over seeds."""
    from halex.plotting.figures import new_figure

    rows = t["chalcohalide"]
    seeds = list(dict.fromkeys(r.get("seed", 0) for r in rows))
    fig, (ax1, ax2) = new_figure(1, 2, figsize=(10, 4))
    for ax, col in ((ax1, "dE_step_kcal_mol"), (ax2, "interfacial_strain_after_percent")):
        for k in seeds:
            mine = [r for r in rows if r.get("seed", 0) == k and r[col] is not None]
            ax.plot([r["percent"] for r in mine], [r[col] for r in mine], "-", color="0.6", lw=0.8, alpha=0.7)
        pct = sorted({r["percent"] for r in rows})
        vals = [[r[col] for r in rows if r["percent"] == p and r[col] is not None] for p in pct]
        ok = [i for i, v in enumerate(vals) if v]
        ax.errorbar([pct[i] for i in ok], [np.mean(vals[i]) for i in ok],
                    yerr=[np.std(vals[i], ddof=1) if len(vals[i]) > 1 else 0.0 for i in ok], fmt="o-", capsize=4,
                    color="C0", label=f"mean ± SD over {len(seeds)} seed(s); grey: each seed")
    strain0 = rows[0]["interfacial_strain_before_percent"] if rows else None
    if strain0 is not None:
        ax2.axhline(strain0, color="k", ls="--", lw=0.8, label="before the first step")
    ax1.axhline(0, color="k", lw=0.5)
    ax1.set_ylabel("ΔE of the step (kcal/mol per halide)")
    ax2.set_ylabel("interfacial strain after the step (%)")
    for ax in (ax1, ax2):
        ax.set_xlabel("I in the first chalcohalide layers (%)")
        ax.legend(fontsize=8)
    return fig


def _alloy_figure(t: dict[str, list[dict[str, Any]]]):
    """ΔE of each alloy pattern: mean with the standard deviation over its seeds, and every seed."""
    from halex.plotting.figures import new_figure

    summ = t["alloy_summary"]
    fig, ax = new_figure(figsize=(6, 4))
    xs = np.arange(len(summ))
    ax.bar(xs, [s["dE_kcal_mol"] for s in summ], yerr=[s["spread_kcal_mol"] or 0 for s in summ], capsize=4,
           color=["0.6"] + [f"C{i}" for i in range(len(summ) - 1)])
    for x, s in zip(xs, summ):
        vals = [r["dE_kcal_mol"] for r in t["alloy"] if r["pattern"] == s["pattern"]]
        ax.plot(np.full(len(vals), x), vals, "k.", label="each seed" if x == 0 else None)
    ax.set_xticks(xs, [s["pattern"] for s in summ], rotation=15)
    ax.set_ylabel("ΔE exchange (kcal/mol per halide)")
    ax.legend(fontsize=8)
    return fig


def _profiles_figure(struct: list[dict[str, Any]]):
    """Lattice profile, strain and tilt per layer for every model of the study."""
    from halex.plotting.figures import new_figure

    fig, axes = new_figure(1, 3, figsize=(14, 4))
    for name in dict.fromkeys(r["model"] for r in struct):
        rows = [r for r in struct if r["model"] == name]
        for ax, col in zip(axes, ("spacing_A", "strain_percent", "tilt_deg")):
            ax.plot([r["layer"] for r in rows], [r[col] for r in rows], ".-", label=name)
    labels = ("in-plane Pb–Pb spacing per cell (Å)", "Pb–Pb strain vs standalone NC (%)", "octahedral tilt (°)")
    for ax, lab in zip(axes, labels):
        ax.set_xlabel("layer (< 0 chalcohalide, ≥ 1 perovskite)")
        ax.set_ylabel(lab)
        ax.axvline(0, color="k", lw=0.5, ls="--")
    axes[0].legend(fontsize=6, ncol=2)
    return fig


#: the study's own figure: (drawing function, file stem)
_STUDY_FIGURES = {"layers": (_layers_figure, "layers_energy_strain"),
                  "chalcohalide": (_chalcohalide_figure, "chalcohalide_energy_strain"),
                  "alloy": (_alloy_figure, "alloy_energies")}


def _figures(study: Study, out: Path) -> list[Path]:
    """The study's figure and its per-layer profiles, each as SVG and PNG."""
    from halex.plotting.figures import save_figure

    figures = []
    if study.name in _STUDY_FIGURES:
        draw, stem = _STUDY_FIGURES[study.name]
        figures.append((draw(study.tables), stem))
    if study.tables.get("structure"):
        figures.append((_profiles_figure(study.tables["structure"]), f"{study.name}_profiles"))
    paths: list[Path] = []
    for fig, stem in figures:
        paths.append(save_figure(fig, out / f"{stem}.svg", close=False))
        paths.append(save_figure(fig, out / f"{stem}.png"))
    return paths


def write_study(study: Study, out: str | Path) -> list[Path]:
    """Write the tables, figures and relaxed models of ``study`` under ``out``.

    Parameters
    ----------
    study
        A finished study.
    out
        Folder: ``<table>.csv`` and ``.json`` (the JSON adds the settings), figures as PNG
        and SVG, and ``models/<name>.extxyz``.

    Returns
    -------
    list of Path
        Every file written, ``conclusions.csv``/``.json`` among them (each question the
        study answers, with value, standard error, 95 % interval and verdict).
    """
    from halex.io import write_structure
    from halex.studies.conclusions import VERDICT_RULE, study_conclusions

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, rows in study.tables.items():
        _write_table(out / name, rows, study.meta)
        paths += [out / f"{name}.csv", out / f"{name}.json"]
    conclusions = study_conclusions(study)
    if conclusions:
        _write_table(out / "conclusions", conclusions, {**study.meta, "verdict_rule": VERDICT_RULE})
        paths += [out / "conclusions.csv", out / "conclusions.json"]
    paths += _figures(study, out)
    for name, atoms in study.models.items():
        paths.append(write_structure(out / "models" / f"{name.replace('/', '_')}.extxyz", atoms))
        paths.append(_picture(atoms, name, out / "models" / f"{name.replace('/', '_')}.png"))
    return paths


def _picture(atoms, name: str, path: Path) -> Path:
    """Side and top views of a relaxed model, coloured by layer (for the report)."""
    from halex.plotting.figures import save_figure
    from halex.plotting.show import render_model

    return save_figure(render_model(atoms, color_by="layer", title=name), path, dpi=60)


def write_conclusions(studies: list[Study], out: str | Path) -> Path:
    """``conclusions.csv`` and ``.json`` over all finished studies, in the folder ``out``.

    Parameters
    ----------
    studies
        Finished studies.
    out
        Folder.

    Returns
    -------
    Path
        The CSV file.
    """
    from halex.studies.conclusions import VERDICT_RULE, study_conclusions

    rows = [r for s in studies for r in study_conclusions(s)]
    meta = {**(studies[0].meta if studies else {}), "verdict_rule": VERDICT_RULE}
    _write_table(Path(out) / "conclusions", rows, meta)
    return Path(out) / "conclusions.csv"
