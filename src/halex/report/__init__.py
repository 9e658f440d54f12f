"""Reports: ``report.html`` over finished exchange studies (the one place HTML is written).

The page reads top-down as a report: a short summary of what was computed and what each
study found, the settings as a table (any setting looser than halex's documented default
flagged), then per study its tables with readable headers and units, its figures with
captions, a picture of every relaxed model and, at the end, an
interactive 3D view of them all (:mod:`halex.report.viewer`, offline). Figures are drawn by :mod:`halex.plotting`
and the studies' writer (:func:`halex.studies.output.write_study`) first; the report only
links them.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING, Any

from halex.io import atomic_output, json_safe

if TYPE_CHECKING:  # pragma: no cover
    from halex.studies.exchange import Study

__all__ = ["write_report", "column_label", "FIGURE_CAPTIONS"]

#: unit suffixes of table columns and how a reader sees them
_UNITS = (("_kcal_mol", "kcal/mol"), ("_percent", "%"), ("_eV_per_A", "eV/Å"), ("_eV", "eV"), ("_deg", "°"),
          ("_A", "Å"), ("_ps", "ps"), ("_nm", "nm"))
_WORDS = {"dE": "ΔE", "cum": "cumulative"}
#: columns whose name says too little on its own
_LABELS = {"x": "halides exchanged", "x_step": "halides exchanged in the step", "x_total": "halides exchanged in total",
           "n": "n", "n_layers": "layers exchanged"}

#: caption of each figure a study writes (by file stem)
FIGURE_CAPTIONS = {
    "layers_energy_strain": "Left: exchange energy per exchanged halide after N perovskite layers are exchanged from the "
                            "interface (blue circles) or from the bottom (orange squares), cumulative (solid) and per "
                            "step (dashed, faint). Right: interfacial strain (mean |Pb–Pb strain| of the interface "
                            "layer against the standalone nanocrystal); N = 0 is the pristine model. Error bars: one "
                            "standard error from the replicas' pooled standard deviation (none with one replica).",
    "layers_profiles": "Per layer (negative: chalcohalide): in-plane Pb–Pb spacing per cell, Pb–Pb strain against the "
                       "standalone nanocrystal and octahedral tilt, for every relaxed model of the layers study.",
    "chalcohalide_energy_strain": "Left: exchange energy of each step of I into the first chalcohalide layers. Right: the "
                                  "interfacial strain after each step (dashed: before the first). Grey: each seed's "
                                  "series of site choices; blue: their mean ± standard deviation.",
    "chalcohalide_profiles": "Per-layer spacing, strain and tilt of every model of the chalcohalide study.",
    "alloy_energies": "Exchange energy of the random alloys and of each ordered pattern: mean with the sample standard "
                      "deviation over seeds (random sites, or which planes), dots: each seed.",
    "alloy_profiles": "Per-layer spacing, strain and tilt of every model of the alloy study.",
}


def column_label(name: str) -> str:
    """A table header for a person: ``dE_step_kcal_mol`` → ``ΔE step (kcal/mol)``.

    Examples
    --------
    >>> column_label("dE_step_kcal_mol"), column_label("interfacial_strain_percent")
    ('ΔE step (kcal/mol)', 'interfacial strain (%)')
    """
    if name in _LABELS:
        return _LABELS[name]
    unit = ""
    for suffix, u in _UNITS:
        if name.endswith(suffix):
            name, unit = name[: -len(suffix)], u
            break
    words = " ".join(_WORDS.get(w, w) for w in name.split("_"))
    return f"{words} ({unit})" if unit else words


def _cell(v: Any) -> str:
    v = json_safe(v)
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.4g}"
    return html.escape(str(v))


def _html_table(rows: list[dict[str, Any]]) -> str:
    cols = list(dict.fromkeys(k for r in rows for k in r))
    head = "".join(f"<th title='{html.escape(c)}'>{html.escape(column_label(c))}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{_cell(r.get(c))}</td>" for c in cols) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _settings_rows(meta: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(setting, value, flag) rows; a flag where a setting is looser than the documented default."""
    from halex.units import DEFAULT_FMAX

    eng = meta.get("engine", {})
    fmax = float(meta.get("fmax_eV_per_A", DEFAULT_FMAX))
    rows = [("engine", f"{eng.get('name', '?')} ({eng.get('version', '?')})", ""),
            ("engine settings", ", ".join(f"{k}={v}" for k, v in eng.get("settings", {}).items()) or "defaults", ""),
            ("fmax (eV/Å)", f"{fmax:.4g}", f"looser than the default {DEFAULT_FMAX:.4f} eV/Å (4.5e-4 Ha/Bohr): the "
             "energies carry more relaxation noise" if fmax > DEFAULT_FMAX * 1.001 else ""),
            ("optimizer steps at most", str(meta.get("max_steps", "")), ""),
            ("PbX2 references", str(meta.get("pbx2_reference", "")),
             "" if meta.get("pbx2_reference", "molecule") == "molecule" else "bulk crystals, not the source study's molecules"),
            ("exchange", str(meta.get("exchange", "")), ""), ("result store", str(meta.get("store", "")), "")]
    return rows


def _summary(studies: list[Study]) -> list[str]:
    """One sentence per study: what was computed and the headline number, with its spread where known."""
    lines = []
    for s in studies:
        t = s.tables
        if s.name == "layers" and t.get("layers_difference"):
            d = t["layers_difference"]
            diffs = ", ".join(f"{_cell(r.get('dE_cum_interface_minus_bottom_kcal_mol'))} (N = {r.get('n_layers')})" for r in d)
            lines.append(f"<b>layers</b>: {len(t['layers'])} models; ΔE<sub>cum</sub>(interface) − ΔE<sub>cum</sub>(bottom) "
                         f"= {diffs} kcal/mol per halide; favoured start: {html.escape(str(s.meta.get('favoured_start')))}.")
        elif s.name == "chalcohalide" and t.get("chalcohalide"):
            rows = [r for r in t["chalcohalide"] if r.get("dE_step_kcal_mol") is not None]
            if rows:
                best = min(rows, key=lambda r: r["dE_step_kcal_mol"])
                lines.append(f"<b>chalcohalide</b>: {len(t['chalcohalide'])} steps; the most favourable step is to "
                             f"{_cell(best['percent'])} % I ({_cell(best['dE_step_kcal_mol'])} kcal/mol per halide).")
        elif s.name == "alloy" and t.get("alloy_summary"):
            summ = t["alloy_summary"]
            rand = summ[0]
            lowest = min(summ, key=lambda r: r["dE_kcal_mol"])
            beyond = [r["pattern"] for r in summ[1:] if r.get("beyond_2_spread")]
            lines.append(f"<b>alloy</b>: random {_cell(rand['dE_kcal_mol'])} ± {_cell(rand['spread_kcal_mol'])} kcal/mol "
                         f"(mean ± SD of {rand['n']} seeds); lowest: {html.escape(lowest['pattern'])}; patterns beyond twice "
                         f"the seeds' spread: {', '.join(beyond) or 'none'}.")
    return lines


def _conclusions(studies: list[Study]) -> list[str]:
    """The report's first section: each question, value ± standard error, 95 % interval and verdict."""
    from halex.studies.conclusions import VERDICT_RULE, study_conclusions

    rows = [r for s in studies for r in study_conclusions(s)]
    if not rows:
        return []
    engines = any("value_by_engine" in r for r in rows)
    body = "".join(
        f"<tr><td>{html.escape(r['question'])}</td><td>{_cell(r['value'])}"
        f"{'' if r['se'] is None else ' ± ' + _cell(r['se'])} {html.escape(r.get('unit', ''))}</td>"
        f"<td>{'—' if r['ci95_low'] is None else _cell(r['ci95_low']) + ' … ' + _cell(r['ci95_high'])}"
        f"</td>" + (f"<td>{_cell(r.get('value_by_engine'))}</td><td>{_cell(r.get('engine_spread'))}</td>"
                    if engines else "") +
        f"<td><b>{html.escape(r['verdict'])}</b></td><td>{html.escape(r['method'])}</td></tr>" for r in rows)
    head = ("<th>question</th><th>value ± SE</th><th>95 % interval</th>"
            + ("<th>value by engine</th><th>engine spread</th>" if engines else "")
            + "<th>verdict</th><th>method</th>")
    return ["<h2>Conclusions</h2>", f"<table><tr>{head}</tr>{body}</table>",
            f"<p class='flag'>Verdict rule: {html.escape(VERDICT_RULE)}. Tables: conclusions.csv.</p>"]


def _figures(out: Path, folder: str) -> list[str]:
    parts = []
    for png in sorted((out / folder).glob("*.png")):
        caption = FIGURE_CAPTIONS.get(png.stem, png.stem.replace("_", " "))
        parts.append(f"<figure><img src='{folder}/{png.name}' alt='{html.escape(png.stem)}'>"
                     f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    return parts


def _models(out: Path, folder: str) -> list[str]:
    pics = sorted((out / folder / "models").glob("*.png"))
    if not pics:
        return []
    cells = "".join(f"<figure class='model'><img src='{folder}/models/{p.name}' alt='{html.escape(p.stem)}'>"
                    f"<figcaption>{html.escape(p.stem)}</figcaption></figure>" for p in pics)
    return [f"<h3>Relaxed models (coloured by layer; files in <a href='{folder}/models/'>models/</a>)</h3>"
            f"<div class='models'>{cells}</div>"]


_STYLE = ("body{font-family:sans-serif;max-width:1200px;margin:auto;line-height:1.4}"
          "table{border-collapse:collapse;font-size:12px;margin:6px 0}td,th{border:1px solid #bbb;padding:2px 6px}"
          "th{background:#f0f0f0}img{max-width:100%}figure{margin:12px 0}figcaption{font-size:13px;color:#333}"
          ".models{display:flex;flex-wrap:wrap;gap:8px}.model{width:32%;margin:0}.flag{color:#b00;font-weight:bold}")


def write_report(studies: list[Study], out: str | Path, folders: dict[str, str] | None = None) -> Path:
    """``report.html``: a summary, the settings, every study's tables, captioned figures, model pictures and an interactive 3D view.

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
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>halex exchange studies</title><style>{_STYLE}"
             "</style></head><body>", "<h1>halex exchange studies</h1>"] + _conclusions(studies) + [
        "<p><a href='#view3d'>Interactive 3D view of every relaxed model</a></p>" if any(s.models for s in studies) else "",
        "<h2>Summary</h2><ul>"]
    parts += [f"<li>{line}</li>" for line in _summary(studies)] + ["</ul>"]
    parts.append("<p>ΔE exchange in kcal/mol per exchanged halide: [(E(x·I) + x/2 E(PbCl2)) − (E(x·Cl) + x/2 E(PbI2))]/x; "
                 "strain of Pb–Pb distances against the standalone perovskite nanocrystal of the same size and "
                 "composition.</p>")
    if studies:
        rows = _settings_rows(studies[0].meta)
        parts.append("<h2>Settings</h2><table><tr><th>setting</th><th>value</th><th>note</th></tr>" + "".join(
            f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td><td class='flag'>{html.escape(f)}</td></tr>"
            for k, v, f in rows) + "</table>")
    for s in studies:
        folder = folders.get(s.name, s.name)
        parts.append(f"<h2>{html.escape(s.name)} study</h2>")
        for name, rows in s.tables.items():
            if name == "structure":
                continue
            parts.append(f"<h3>{html.escape(name.replace('_', ' '))} (<a href='{folder}/{name}.csv'>CSV</a>, "
                         f"<a href='{folder}/{name}.json'>JSON</a>)</h3>")
            parts.append(_html_table(rows))
        parts += _figures(out, folder) + _models(out, folder)
        parts.append(f"<p>Per-layer profiles: <a href='{folder}/structure.csv'>structure.csv</a></p>")
    from halex.report.viewer import viewer_section

    parts += viewer_section({f"{s.name}/{n}": a for s in studies for n, a in s.models.items()})
    parts.append("</body></html>")
    path = out / "report.html"
    with atomic_output(path) as fh:
        fh.write("\n".join(parts))
    return path
