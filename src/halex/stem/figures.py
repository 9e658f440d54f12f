"""Figures of a STEM analysis (matplotlib, Agg): column overlay, domain map, lattice-parameter
map, spacing histograms with Gaussian fits, row profile, tilt map, X–X–Cs map, line profiles."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from halex.io import format_uncertain
from halex.plotting.figures import save_figure

if TYPE_CHECKING:
    from halex.stem.analysis import StemAnalysis

__all__ = ["analysis_figures", "display_image", "FIGURE_SETS"]

_SUB = {"Pb+X": "#1f77b4", "Pb": "#1f77b4", "Cs": "#ff7f0e", "Cs+X": "#ff7f0e", "X": "#2ca02c", "unassigned": "#7f7f7f"}
_HAL = {"Cl": "#2ca02c", "I": "#9467bd", "mixed": "#d62728"}
_DOM = {"CsPbCl3": "#2ca02c", "CsPbI3": "#9467bd", "CsPb(Cl,I)3": "#d62728", "perovskite": "#1f77b4",
        "chalcohalide": "#8c564b", "unassigned": "#7f7f7f"}


#: margins of the line plots (saved with ``save_figure(fast=True)``: no tight bounding box)
_MARGINS = {"left": 0.12, "right": 0.97, "bottom": 0.14, "top": 0.92}

#: longest side (pixels) of the background image in the figures: a 6.5-inch panel at 150 dpi
#: shows about 900 pixels, so larger images are block-averaged to this before drawing
DISPLAY_PIXELS = 512


def display_image(data: np.ndarray) -> tuple[np.ndarray, float, float]:
    """The background image of every map, rendered once: block-averaged to at most
    :data:`DISPLAY_PIXELS` per side, with its 1st and 99.5th percentiles as the grey scale."""
    f = max(1, int(np.ceil(max(data.shape) / DISPLAY_PIXELS)))
    ny, nx = (data.shape[0] // f) * f, (data.shape[1] // f) * f
    small = data[:ny, :nx].reshape(ny // f, f, nx // f, f).mean(axis=(1, 3)) if f > 1 else data
    lo, hi = np.percentile(small, [1, 99.5])
    return small, float(lo), float(hi)


def _base(a: StemAnalysis, title: str, shown: tuple[np.ndarray, float, float] | None = None):
    import matplotlib

    matplotlib.use("Agg")
    from halex.plotting.figures import new_figure

    fig, ax = new_figure(figsize=(6.5, 6.5))
    fig.subplots_adjust(left=0.12, right=0.97, bottom=0.08, top=0.95)  # fixed margins: saved without a tight bbox
    img, lo, hi = shown if shown is not None else display_image(a.image.data)
    px = a.image.pixel_size
    # pixel centres sit at integer pixel coordinates: the image spans −½ … n − ½ pixels, in Å
    ny, nx = a.image.shape
    ax.imshow(img, cmap="gray", vmin=lo, vmax=hi, extent=(-0.5 * px, (nx - 0.5) * px, (ny - 0.5) * px, -0.5 * px),
              interpolation="nearest")
    ax.set_title(title)
    ax.set_xlabel("x (Å)")
    ax.set_ylabel("y (Å)")
    _scale_bar(ax, nx * px)
    return fig, ax


def _scale_bar(ax, width_A: float) -> None:
    """A white scale bar of a round length (1, 2 or 5 × 10^k Å, about a fifth of the image)."""
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

    target = width_A / 5
    k = np.floor(np.log10(target))
    length = min((m * 10**k for m in (1, 2, 5, 10)), key=lambda v: abs(v - target))
    label = f"{length / 10:g} nm" if length >= 10 else f"{length:g} Å"
    ax.add_artist(AnchoredSizeBar(ax.transData, length, label, "lower right", pad=0.4, color="white", frameon=False,
                                  size_vertical=width_A / 150))


def _scatter_map(a: StemAnalysis, values: np.ndarray, title: str, label: str, path: Path, cmap: str = "viridis",
                 shown=None) -> bool:
    """A map of ``values`` at the columns (rasterised markers); False, and nothing drawn, if all are NaN."""
    c = a.columns
    m = np.isfinite(values)
    if not m.any():
        return False
    fig, ax = _base(a, title, shown)
    lo, hi = np.percentile(values[m], [2, 98])
    sc = ax.scatter(c["x_A"][m], c["y_A"][m], c=values[m], s=30 * _marker_scale(a), cmap=cmap, vmin=lo,
                    vmax=hi if hi > lo else lo + 1e-9, edgecolors="k", linewidths=0.3, rasterized=True)
    fig.colorbar(sc, ax=ax, shrink=0.8, label=label)
    save_figure(fig, path, fast=True)
    return True


def _marker_scale(a: StemAnalysis) -> float:
    """Marker area factor: 1 up to 400 columns, smaller for more so that markers do not overlap."""
    return float(min(1.0, 400.0 / max(len(a.columns["x_A"]), 1)) ** 0.5)


def _spacing_histograms(a: StemAnalysis):
    """In-plane lattice parameter per perovskite domain: histogram, mean ± SEM and Gaussian fit."""
    from halex.plotting.figures import new_figure

    c = a.columns
    doms = [d for d in a.summary["domains"] if d != "chalcohalide"]
    fig, ax = new_figure(figsize=(6, 4))
    fig.subplots_adjust(**_MARGINS)
    for d in doms:
        v = c["a_x_A"][(c["domain"] == d) & np.isfinite(c["a_x_A"])]
        if len(v) == 0:
            continue
        col = _DOM.get(d, None)
        g = a.summary["domains"][d]["a_x_A"]
        # the same numbers, rounded the same way, as halex stem analyze prints
        hist, edges, _ = ax.hist(v, bins=max(8, int(np.sqrt(len(v)))), alpha=0.5, color=col,
                                 label=f"{d} (n={len(v)}): mean {format_uncertain(g['mean'], g.get('sem'), 'Å')}")
        if "gauss_centre" in g:
            xs = np.linspace(edges[0], edges[-1], 200)
            width = edges[1] - edges[0]
            amp = len(v) * width / (np.sqrt(2 * np.pi) * g["gauss_sigma"])
            ax.plot(xs, amp * np.exp(-0.5 * ((xs - g["gauss_centre"]) / g["gauss_sigma"]) ** 2), color=col or "k",
                    label=f"Gaussian fit: centre {format_uncertain(g['gauss_centre'], g['gauss_centre_err'], 'Å')}")
    ch = a.summary["domains"].get("chalcohalide", {}).get("a_x_A", {})
    if ch.get("mean") is not None and np.isfinite(ch.get("mean", np.nan)):
        ax.axvline(ch["mean"], color=_DOM["chalcohalide"], ls="--", label=f"chalcohalide {ch['mean']:.3f} Å")
    ax.set_xlabel("in-plane lattice parameter a (Å)")
    ax.set_ylabel("unit cells")
    ax.legend(fontsize=7)
    return fig


#: figure sets of ``halex stem analyze --figures``
FIGURE_SETS = ("none", "basic", "all")


def analysis_figures(a: StemAnalysis, out: Path, which: str = "all", workers=None) -> list[Path]:
    """Write the analysis figures (PNG) into ``out``; returns their paths.

    ``which``: ``"basic"`` draws the column overlay, the domain map, the spacing
    histograms and the line profiles; ``"all"`` adds the lattice-parameter, row-spacing,
    tilt and X–X–Cs maps; ``"none"`` draws nothing. The background image is rendered
    once (:func:`display_image`) and the markers are rasterised, so a map of thousands of
    columns costs about as much as one of a hundred. ``workers``: a
    :class:`halex.plotting.workers.FigureWorkers` that draws the basic figures and the
    detail maps in parallel processes; None draws them here.
    """
    if which not in FIGURE_SETS:
        from halex.errors import InputError

        raise InputError(f"figures must be one of {', '.join(FIGURE_SETS)}, got {which!r}")
    if which == "none":
        return []
    shown = display_image(a.image.data)
    jobs = [(a, Path(out), "basic", shown)] + ([(a, Path(out), "detail", shown)] if which == "all" else [])
    if workers is None:
        return [p for job in jobs for p in _draw_part(*job)]
    return [p for paths in workers.map(_draw_part, jobs) for p in paths]


def _draw_part(a: StemAnalysis, out: Path, part: str, shown) -> list[Path]:
    """One share of :func:`analysis_figures`: ``"basic"`` or ``"detail"`` (the maps of ``"all"``)."""
    return _basic_figures(a, out, shown) if part == "basic" else _detail_maps(a, out, shown)


def _basic_figures(a: StemAnalysis, out: Path, shown) -> list[Path]:
    """Column overlay, domain map, spacing histograms and line profiles."""
    from halex.plotting.figures import new_figure

    c = a.columns
    paths: list[Path] = []
    ms = 4 * _marker_scale(a) ** 0.5
    # 1 column overlay by sublattice (X columns by halide label)
    fig, ax = _base(a, f"columns ({len(c['x_A'])}) — [{a.zone}]", shown)
    for s in sorted(set(c["sublattice"])):
        m = (c["sublattice"] == s) & (c["halide"] == "")
        if m.any():
            ax.plot(c["x_A"][m], c["y_A"][m], "o", ms=ms, mfc="none", mec=_SUB.get(s, "#7f7f7f"), label=s, rasterized=True)
    for h, col in _HAL.items():
        m = c["halide"] == h
        if m.any():
            ax.plot(c["x_A"][m], c["y_A"][m], "s", ms=ms, mfc="none", mec=col, label=f"X = {h}", rasterized=True)
    ax.legend(loc="upper right", fontsize=7, framealpha=0.8)
    paths.append(save_figure(fig, out / "columns_overlay.png", fast=True))
    # 2 domain map
    fig, ax = _base(a, "domains", shown)
    for d in sorted(set(c["domain"])):
        m = c["domain"] == d
        ax.plot(c["x_A"][m], c["y_A"][m], "o", ms=ms + 1, color=_DOM.get(d, "#17becf"), label=d, rasterized=True)
    ax.legend(loc="upper right", fontsize=7)
    paths.append(save_figure(fig, out / "domain_map.png", fast=True))
    # 3 histograms per domain with Gaussian fits
    paths.append(save_figure(_spacing_histograms(a), out / "spacing_histograms.png", fast=True))
    # 4 line profiles
    for k, p in enumerate(a.profiles):
        fig, ax = new_figure(figsize=(7, 3.5))
        fig.subplots_adjust(**_MARGINS)
        ax.plot(p["distance_A"], p["intensity"], "-k", lw=1)
        ymax = max(p["intensity"])
        for pk in p["peaks"]:
            lab = pk["halide"] or pk["sublattice"]
            ax.axvline(pk["distance_A"], color=_HAL.get(pk["halide"], _SUB.get(pk["sublattice"], "#7f7f7f")), lw=0.8, alpha=0.6)
            ax.text(pk["distance_A"], ymax, lab, rotation=90, va="top", ha="right", fontsize=7)
        ax.set_xlabel("distance along the profile (Å)")
        ax.set_ylabel("intensity")
        paths.append(save_figure(fig, out / f"profile_{k + 1}.png", fast=True))
    return paths


def _detail_maps(a: StemAnalysis, out: Path, shown) -> list[Path]:
    """Lattice-parameter maps, row-by-row spacing, tilt and ([101]) X–X–Cs maps."""
    from halex.plotting.figures import new_figure

    c, paths = a.columns, []
    for q, name in (("a_x_A", "a along x (in-plane)"), ("a_y_A", "a along y (stacking)")):
        if _scatter_map(a, c[q], f"lattice parameter, {name}", "a (Å)", out / f"lattice_map_{q[2]}.png", "coolwarm", shown):
            paths.append(out / f"lattice_map_{q[2]}.png")
    rows = a.summary["rows"]
    if rows:
        fig, ax = new_figure(figsize=(6, 4))
        fig.subplots_adjust(**_MARGINS)
        ax.errorbar([r["y_A"] for r in rows], [r["a_x_A"] for r in rows], yerr=[r["sem_A"] for r in rows], fmt="o-")
        ax.set_xlabel("row position y (Å, down = towards the interface)")
        ax.set_ylabel("mean in-plane Pb–Pb spacing (Å)")
        ax.set_title("row-by-row spacing parallel to the interface")
        paths.append(save_figure(fig, out / "row_spacing.png", fast=True))
    if _scatter_map(a, c["tilt_deg"], "octahedral tilt in projection (Pb–Pb–X angle)", "tilt (°)", out / "tilt_map.png",
                    "magma", shown):
        paths.append(out / "tilt_map.png")
    if a.zone == "101" and _scatter_map(a, c["xxcs_deg"], "X–X–Cs angle (ideal 54.7°)", "angle (°)",
                                        out / "xxcs_map.png", "coolwarm", shown):
        paths.append(out / "xxcs_map.png")
    return paths
