"""Reports: ``report.html`` over finished exchange studies (the one place HTML is written).

Figures are drawn by :mod:`halex.plotting` and by each technique's ``figures`` module;
the tables and figures a report links to are written by
:func:`halex.studies.output.write_study` first.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from halex.io import atomic_output, json_safe

if TYPE_CHECKING:  # pragma: no cover
    from halex.studies.exchange import Study

__all__ = ["write_report"]


def _html_table(rows: list[dict[str, Any]]) -> str:
    cols = list(dict.fromkeys(k for r in rows for k in r))

    def fmt(v):
        v = json_safe(v)
        return "" if v is None else (f"{v:.4g}" if isinstance(v, float) else html.escape(str(v)))

    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{fmt(r.get(c))}</td>" for c in cols) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def write_report(studies: list[Study], out: str | Path, folders: dict[str, str] | None = None) -> Path:
    """``report.html`` with every study's settings, tables and figures (relative links).

    Parameters
    ----------
    studies
        Finished studies whose files :func:`halex.studies.write_study` has written.
    out
        Folder the report goes into.
    folders
        Study name → its folder relative to ``out`` (default: the study name).

    Returns
    -------
    Path
        ``out/report.html``.
    """
    out = Path(out)
    folders = folders or {s.name: s.name for s in studies}
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>halex exchange studies</title>",
             "<style>body{font-family:sans-serif;max-width:1200px;margin:auto}table{border-collapse:collapse;font-size:12px}"
             "td,th{border:1px solid #bbb;padding:2px 6px}img{max-width:100%}</style></head><body>",
             "<h1>halex exchange studies</h1>",
             "<p>ΔE exchange in kcal/mol per exchanged halide: [(E(x·I) + x/2 E(PbCl2)) − (E(x·Cl) + x/2 E(PbI2))]/x; "
             "strain of Pb–Pb distances against the standalone perovskite nanocrystal of the same size and composition.</p>"]
    for s in studies:
        folder = folders.get(s.name, s.name)
        parts.append(f"<h2>{html.escape(s.name)}</h2><pre>{html.escape(json.dumps(s.meta, indent=1, default=str))}</pre>")
        for name, rows in s.tables.items():
            if name == "structure":
                continue
            parts.append(f"<h3>{html.escape(name)} (<a href='{folder}/{name}.csv'>CSV</a>, <a href='{folder}/{name}.json'>JSON</a>)</h3>")
            parts.append(_html_table(rows))
        for png in sorted((out / folder).glob("*.png")):
            parts.append(f"<p><img src='{folder}/{png.name}' alt='{png.stem}'></p>")
        parts.append(f"<p>Per-layer profiles: <a href='{folder}/structure.csv'>structure.csv</a></p>")
    parts.append("</body></html>")
    path = out / "report.html"
    with atomic_output(path) as fh:
        fh.write("\n".join(parts))
    return path
