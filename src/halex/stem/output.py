"""Write a STEM analysis: ``columns.csv``, ``summary.json``, ``score.json``, profiles and figures.

All files go into a temporary folder that replaces the output folder's contents only when
everything is written (:func:`halex.io.atomic_folder`), so a reader never sees a partial
result. Positions are in Å (and px), angles in degrees; every column of ``columns.csv``
has its unit in ``summary.json["units"]``.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from halex.io import atomic_folder, json_safe
from halex.stem.analysis import COLUMN_FIELDS, StemAnalysis

__all__ = ["write_analysis"]


def _fmt(v: Any) -> Any:
    if isinstance(v, (float, np.floating)):
        return "" if not np.isfinite(v) else f"{float(v):.6g}"
    return v


def _write_columns(path: Path, columns: dict[str, np.ndarray]) -> None:
    fields = [f for f in COLUMN_FIELDS if f in columns]
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(fields)
        for k in range(len(columns["x_A"])):
            w.writerow([_fmt(columns[f][k]) for f in fields])


def write_analysis(analysis: StemAnalysis, out: str | os.PathLike, *, score: dict | None = None,
                   figures: bool | str = True, workers=None) -> list[Path]:
    """Write ``columns.csv``, ``summary.json`` (and ``score.json``), profiles and figures into ``out``.

    Parameters
    ----------
    analysis
        Result of :func:`halex.stem.analysis.analyze_image`.
    out
        Output folder.
    score
        Comparison with the true model (:func:`halex.stem.analysis.score_against_truth`).
    figures
        Which figures to draw (:func:`halex.stem.figures.analysis_figures`): ``"none"``,
        ``"basic"`` or ``"all"``; True is ``"all"``, False ``"none"``.
    workers
        A :class:`halex.plotting.workers.FigureWorkers` that draws the figures in parallel
        processes (``halex stem analyze`` starts it before the analysis); None draws them here.

    Returns
    -------
    list of Path
        The files written, sorted by name.
    """
    with atomic_folder(out) as tmp:
        _write_columns(tmp / "columns.csv", analysis.columns)
        summary = dict(analysis.summary)
        summary["units"] = {f: u for f, u in COLUMN_FIELDS.items() if u}
        if analysis.profiles:
            summary["profiles"] = [{"segment_px": p["segment_px"], "peaks": p["peaks"]} for p in analysis.profiles]
        (tmp / "summary.json").write_text(json.dumps(json_safe(summary), indent=2, default=str))
        if score is not None:
            (tmp / "score.json").write_text(json.dumps(json_safe(score), indent=2, default=str))
        for k, p in enumerate(analysis.profiles):
            with open(tmp / f"profile_{k + 1}.csv", "w", newline="") as fh:
                w = csv.writer(fh)
                w.writerow(["distance_A", "intensity"])
                w.writerows(zip(p["distance_A"], p["intensity"]))
        which = {True: "all", False: "none"}.get(figures, figures) if isinstance(figures, bool) else figures
        if which != "none":
            from halex.stem.figures import analysis_figures

            analysis_figures(analysis, tmp, which, workers=workers)
        names = sorted(f.name for f in tmp.iterdir())
    return [Path(out) / n for n in names]
