"""Write a pathway run: CSV + JSON tables, figures, snapshots, summary.json and report.html."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import numpy as np

from halex.io import atomic_output, json_safe

__all__ = ["write_pathway", "write_mixing_check", "verdict_line"]


def _titration_rows(res: dict[str, Any]) -> list[dict[str, Any]]:
    t = res["titration"]
    rows = []
    for i, d in enumerate(t["dmu_eV"]):
        row = {"particle": res["name"], "dmu_eV": d, "x_cl_forward": t["x_cl_forward"][i], "x_cl_backward": t["x_cl_backward"][i]}
        row.update({f"i_fraction_{name.replace(' ', '_')}": t["i_fraction_forward"][i][k] for k, name in enumerate(t["layers"])})
        rows.append(row)
    return rows


def _titration_figure(results: list[dict[str, Any]]):
    from halex.plotting.figures import new_figure

    fig, (ax1, ax2) = new_figure(1, 2, figsize=(11, 4))
    for k, res in enumerate(results):
        t = res["titration"]
        ax1.plot(t["dmu_eV"], t["x_cl_forward"], "o-", color=f"C{k}", ms=3, label=f"{res['name']}: forward")
        ax1.plot(t["dmu_eV"], t["x_cl_backward"], "s--", color=f"C{k}", ms=3, mfc="none", label=f"{res['name']}: backward")
        c = res["canonical"]
        ax2.plot(c["iodide_supplied_fraction"], 1 - np.asarray(c["iodide_supplied_fraction"]), ":", color="0.7")
        for j, name in enumerate(c["layers"]):
            ax2.plot(c["iodide_supplied_fraction"], np.asarray(c["i_fraction"])[:, j], "-", lw=1,
                     color=f"C{k}", alpha=0.3 + 0.7 * j / max(1, len(c["layers"]) - 1))
    ax1.set_xlabel("iodide exchange chemical potential Δμ (eV)")
    ax1.set_ylabel("X_Cl of the lattice sites")
    ax1.legend(fontsize=8)
    ax2.set_xlabel("iodide supplied (fraction of the sites)")
    ax2.set_ylabel("I fraction per layer (light: interface side)")
    return fig


def _heatmap(res: dict[str, Any]):
    from halex.plotting.figures import new_figure

    t = res["titration"]
    f = np.asarray(t["i_fraction_forward"], float).T
    fig, ax = new_figure(figsize=(8, 0.35 * len(t["layers"]) + 2))
    im = ax.imshow(f, aspect="auto", origin="lower", cmap="viridis", vmin=0, vmax=1,
                   extent=(t["dmu_eV"][0], t["dmu_eV"][-1], -0.5, len(t["layers"]) - 0.5))
    ax.set_yticks(range(len(t["layers"])), t["layers"], fontsize=7)
    n_ch = sum(name.startswith("chalcohalide") for name in t["layers"])
    if 0 < n_ch < len(t["layers"]):
        ax.axhline(n_ch - 0.5, color="w", ls="--", lw=1.5)
        ax.text(t["dmu_eV"][0], n_ch - 0.5, " interface", color="w", va="bottom", fontsize=8)
    ax.set_xlabel("Δμ (eV), forward sweep")
    fig.colorbar(im, ax=ax, label="I fraction")
    ax.set_title(f"{res['name']}: I fraction per layer")
    return fig


def _parity(results: list[dict[str, Any]]):
    from halex.plotting.figures import new_figure

    fig, ax = new_figure(figsize=(5, 5))
    for k, res in enumerate(results):
        cv = res["model"].cv
        y, p = np.asarray(cv["target_eV"]), np.asarray(cv["predicted_eV"])
        ax.plot(y, p, ".", color=f"C{k}", label=f"{res['name']}: CV RMSE {cv['rmse_meV_per_halide']:.1f} meV/halide")
    lim = ax.get_xlim()
    ax.plot(lim, lim, "k-", lw=0.5)
    ax.set_xlabel("relaxed reaction energy (eV)")
    ax.set_ylabel("lattice model, cross-validated (eV)")
    ax.legend(fontsize=8)
    return fig


def _summary(res: dict[str, Any]) -> dict[str, Any]:
    lat, model = res["lattice"], res["model"]
    return {"sites": lat.n_sites, "site_kinds": lat.kinds, "shells_A": lat.shells.tolist(),
            "site_energy_eV": dict(zip(lat.kinds, model.site_energy.tolist())),
            "pair_energy_eV": model.pair_energy.tolist(), "cv": {k: v for k, v in model.cv.items() if not k.endswith("_eV")},
            "training_rounds": res["history"]["rounds"], "verdicts": res["verdicts"]}


def _error_where(cv: dict[str, Any]) -> str:
    """The cross-validated error by iodide fraction, in words."""
    rows = [r for r in cv.get("error_by_iodide_fraction", []) if r["configurations"]]
    return "by iodide fraction: " + "; ".join(
        f"{r['iodide_fraction']}: {r['configurations']} configurations, {r['rms_eV']:.2f} eV RMS in total, "
        f"{r['rms_meV_per_halide']:.0f} meV per halide, mean predicted − relaxed {r['mean_error_eV']:+.2f} eV" for r in rows)


def _of(fraction: float, u: dict[str, Any]) -> str:
    """``"in 19 of 20 refits"``."""
    return f"in {round(fraction * u['refits'])} of {u['refits']} refits"


def _unsettled(resolved: bool) -> str:
    """``"; <b>not resolved</b>"`` for a yes/no verdict the refits split on (else nothing)."""
    return "" if resolved else "; <b>not resolved</b>"


def verdict_line(res: dict[str, Any]) -> str:
    """One line of verdicts per particle, each with how often the bootstrap refits agree."""
    v, u = res["verdicts"], res["verdicts"].get("uncertainty")
    order = [r["layer"] for r in v["conversion_order"] if r["half_converted_at_dmu_eV"] is not None]
    line = f"{res['name']}: CV RMSE {res['model'].cv['rmse_meV_per_halide']:.1f} meV per halide; converts first: "
    line += ", ".join(order) or "none"
    if u:
        line += (f" (first {_of(u['first_layer_agreement'], u)}, whole order {_of(u['same_order'], u)}"
                 + ("" if u["first_layer_resolved"] else "; NOT RESOLVED") + ")")
    line += f"; segmented: {'yes' if v['segmented_state'] else 'no'}"
    line += f" (yes {_of(u['segmented_fraction'], u)})" if u else ""
    line += f"; two-phase regions: {len(v['two_phase_regions'])}"
    return line + (f" (a jump {_of(u['jump_fraction'], u)})" if u else "")


def _trust(res: dict[str, Any]) -> list[str]:
    """Sentences on how far the verdicts can be trusted (none without refits)."""
    u = res["verdicts"].get("uncertainty")
    if not u:
        return []
    name = html.escape(res["name"])
    close = [p for p in u["adjacent_pairs"] if p["agreement"] < u["resolved_at"]]
    out = [f"<b>{name}</b>, over {u['refits']} bootstrap refits of the lattice model: the first layer "
           f"({html.escape(str(u['first_layer']))}) converts first {_of(u['first_layer_agreement'], u)}"
           + (" (resolved)" if u["first_layer_resolved"] else f" (<b>not resolved</b>: fewer than "
              f"{100 * u['resolved_at']:.0f} %)") + f"; the whole order is the same {_of(u['same_order'], u)}. "
           + ("Neighbours in the order that the refits swap: " + "; ".join(
               f"{html.escape(p['before'])} before {html.escape(p['after'])} {_of(p['agreement'], u)} "
               f"(ΔΔμ {1000 * p['gap_eV']:.0f} meV)" for p in close) + "." if close else
              "Every neighbouring pair keeps its order in at least "
              f"{100 * u['resolved_at']:.0f} % of the refits.")]
    inside = [p for p in u["adjacent_pairs"] if p["within_cv_error"]]
    out.append(f"The model's cross-validated error is {u['cv_rmse_meV_per_halide']:.1f} meV per halide "
               f"(k<sub>B</sub>T = {u['kT_meV']:.1f} meV); "
               + (f"{len(inside)} of {len(u['adjacent_pairs'])} neighbouring layers convert less than that apart in Δμ, "
                  "so the model's form, not only its fit, could swap them." if inside else
                  "every neighbouring pair of layers converts further apart in Δμ than that."))
    return out


def _sentences(res: dict[str, Any]) -> list[str]:
    v = res["verdicts"]
    u = v.get("uncertainty")
    order = [r["layer"] for r in v["conversion_order"] if r["half_converted_at_dmu_eV"] is not None]
    seg = v["segmented_state"]
    jumps = v["two_phase_regions"]
    return [f"<b>{html.escape(res['name'])}</b>: layers convert in the order {html.escape(', '.join(order) or 'none')}.",
            "A segmented state (a perovskite layer ≥ 80 % I next to one ≤ 20 % I) "
            + (f"appears at Δμ = {seg['dmu_eV']:.3f} eV" if seg else "does not appear")
            + (f" (a segmented state {_of(u['segmented_fraction'], u)}{_unsettled(u['segmented_resolved'])})."
               if u else "."),
            (("A two-phase region (forward and backward sweeps differ): "
              + "; ".join(f"Δμ {j['dmu_low_eV']:.3f}–{j['dmu_high_eV']:.3f} eV, ΔX_Cl {j['jump_x_cl']:.2f}" for j in jumps))
             if jumps else "No two-phase region: the titration is continuous at this temperature")
            + (f" (a jump {_of(u['jump_fraction'], u)}{_unsettled(u['jump_resolved'])})." if u else "."), *_trust(res)]


def _conversion_figure(results: list[dict[str, Any]]):
    """Each layer's half-conversion Δμ, ± its SD over the bootstrap refits, per particle."""
    from halex.plotting.figures import new_figure

    names = list(dict.fromkeys(r["layer"] for res in results for r in res["verdicts"]["conversion_order"]))
    fig, ax = new_figure(figsize=(7, 0.4 * len(names) + 2))
    for k, res in enumerate(results):
        u = res["verdicts"].get("uncertainty") or {}
        sd = {x["layer"]: x["sd_eV"] for x in u.get("layers", [])}
        rows = [r for r in res["verdicts"]["conversion_order"] if r["half_converted_at_dmu_eV"] is not None]
        y = [names.index(r["layer"]) + 0.15 * (k - (len(results) - 1) / 2) for r in rows]
        err = [sd.get(r["layer"]) or 0.0 for r in rows]
        ax.errorbar([r["half_converted_at_dmu_eV"] for r in rows], y, xerr=err if u else None, fmt="o", capsize=3,
                    color=f"C{k}", label=res["name"] + (f" (± SD over {u['refits']} refits)" if u else ""))
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("Δμ at which the layer is half converted (eV), forward sweep")
    ax.legend(fontsize=8)
    return fig


def write_pathway(results: list[dict[str, Any]], out: str | Path, meta: dict[str, Any]) -> Path:
    """Tables, figures, snapshots, summary.json and report.html of a pathway run; returns report.html."""
    from halex.pathway.workflow import snapshots
    from halex.plotting.figures import save_figure
    from halex.studies.output import _write_table

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _write_table(out / "titration", [r for res in results for r in _titration_rows(res)], meta)
    figs = [save_figure(_titration_figure(results), out / "titration.png"), save_figure(_parity(results), out / "parity.png")]
    figs.append(save_figure(_conversion_figure(results), out / "conversion.png"))
    figs += [save_figure(_heatmap(res), out / f"layers_{res['name']}.png") for res in results]
    for res in results:
        snapshots(res, out, meta["temperature_K"])
    summary = {"settings": meta, "particles": {res["name"]: _summary(res) for res in results}}
    with atomic_output(out / "summary.json") as fh:
        json.dump(json_safe(summary), fh, indent=1, default=str)
    lines = [s for res in results for s in _sentences(res)]
    page = ["<!doctype html><html><head><meta charset='utf-8'><title>halex exchange pathway</title><style>"
            "body{font-family:sans-serif;max-width:1100px;margin:auto}img{max-width:100%}</style></head><body>",
            "<h1>halex exchange pathway</h1><h2>Verdicts</h2><ul>" + "".join(f"<li>{s}</li>" for s in lines) + "</ul>",
            "<h2>Lattice models</h2><ul>" + "".join(
                f"<li>{html.escape(res['name'])}: {res['lattice'].n_sites} sites, CV RMSE "
                f"{res['model'].cv['rmse_meV_per_halide']:.1f} meV = {res['model'].cv['rmse_kcal_mol_per_halide']:.3f} "
                f"kcal/mol per halide over {res['model'].cv['n_configurations']} relaxed configurations; "
                f"{_error_where(res['model'].cv)}</li>" for res in results)
            + "</ul>"]
    page += [f"<figure><img src='{p.name}'></figure>" for p in figs]
    page.append(f"<p>Settings: {html.escape(json.dumps(json_safe(meta), default=str))}</p></body></html>")
    with atomic_output(out / "report.html") as fh:
        fh.write("\n".join(page))
    return out / "report.html"


def _mixing_figure(check: dict[str, Any]):
    from halex.plotting.figures import new_figure

    fig, ax = new_figure(figsize=(6.5, 4.5))
    for which, marker, color in (("training", "o", "0.6"), ("held-out", "s", "C3")):
        rows = [r for r in check["rows"] if r["set"] == which]
        x = [r["x_I"] for r in rows]
        ax.plot(x, [r["direct_meV_per_fu"] for r in rows], marker, color=color, mfc="none", label=f"relaxed, {which}")
        ax.plot(x, [r["model_meV_per_fu"] for r in rows], marker, color=color, ms=4, label=f"lattice model, {which}")
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xlabel("I fraction x in CsPb(Cl$_{1-x}$I$_x$)$_3$")
    ax.set_ylabel("mixing energy (meV per formula unit)")
    n = "×".join(str(v) for v in check["supercell"])
    ax.set_title(f"{n} supercell: held-out RMSE {check['heldout_rmse_meV_per_halide']:.1f}, "
                 f"CV {check['cv_rmse_meV_per_halide']:.1f} meV/halide", fontsize=9)
    ax.legend(fontsize=8)
    return fig


def write_mixing_check(check: dict[str, Any], out: str | Path) -> Path:
    """``mixing_check.csv``/``.json`` (the rows and the verdict) and ``mixing_check.png``; returns the PNG."""
    from halex.plotting.figures import save_figure
    from halex.studies.output import _write_table

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _write_table(out / "mixing_check", check["rows"], {k: v for k, v in check.items() if k != "rows"})
    return save_figure(_mixing_figure(check), out / "mixing_check.png")
