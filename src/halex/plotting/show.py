"""Pictures of atomistic models: side and top views coloured by element, domain or layer.

The side view looks along y with z (the stacking axis) up, so layers and the
interface are horizontal; the interface plane (between perovskite layer 0 and the
chalcohalide) is drawn as a dashed line when the model has both domains.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.data import covalent_radii
from ase.data.colors import jmol_colors

from halex.errors import InputError

__all__ = ["render_model", "color_table", "COLOR_MODES"]

COLOR_MODES = ("element", "domain", "layer")
_DOMAIN_COLORS = {"perovskite": "#3b75af", "chalcohalide": "#e08a2c"}


def color_table(atoms: Atoms, by: str) -> tuple[np.ndarray, list[tuple[str, tuple[float, ...]]]]:
    """RGBA colour per atom (N × 4) and the legend as (label, RGBA) pairs.

    ``by`` is ``"element"`` (Jmol colours), ``"domain"`` or ``"layer"`` (coolwarm, layer 0 white).
    The pictures and the report's 3D view share it, so both colour a model alike.
    """
    from matplotlib import colormaps
    from matplotlib.colors import to_rgba, to_rgba_array

    if by == "element":
        cols = to_rgba_array(jmol_colors[atoms.numbers])
        legend = [(s, to_rgba(jmol_colors[z]))
                  for z, s in sorted({(int(z), s) for z, s in zip(atoms.numbers, atoms.get_chemical_symbols())})]
        return cols, legend
    if by not in COLOR_MODES:
        raise InputError(f"unknown colouring {by!r}: choose one of {', '.join(COLOR_MODES)}")
    if by not in atoms.arrays:
        raise InputError(f"cannot colour by {by!r}: the model has no {by!r} array (use --color element)")
    if by == "domain":
        dom = atoms.arrays["domain"]
        cols = to_rgba_array([_DOMAIN_COLORS.get(d, "#888888") for d in dom])
        return cols, [(d, to_rgba(_DOMAIN_COLORS.get(d, "#888888"))) for d in sorted(set(dom))]
    layer = atoms.arrays["layer"].astype(float)
    span = max(abs(layer.min()), abs(layer.max()), 1.0)
    cmap = colormaps["coolwarm"]
    cols = cmap(0.5 + 0.5 * layer / span)
    return cols, [(f"layer {int(v)}", tuple(cmap(0.5 + 0.5 * v / span))) for v in sorted(set(layer))]


def _colors(atoms: Atoms, by: str) -> tuple[np.ndarray, list]:
    """RGBA colour per atom (N × 4) and matplotlib legend handles."""
    from matplotlib.patches import Patch

    cols, legend = color_table(atoms, by)
    return cols, [Patch(color=c, label=label) for label, c in legend]


def render_model(atoms: Atoms, *, color_by: str = "element", title: str = ""):
    """Figure with a side view (x–z) and a top view (x–y) of ``atoms``."""
    from halex.plotting.figures import new_figure

    if color_by not in COLOR_MODES:
        raise InputError(f"unknown colouring {color_by!r}: choose one of {', '.join(COLOR_MODES)}")
    cols, legend = _colors(atoms, color_by)
    pos = atoms.get_positions()
    size = (covalent_radii[atoms.numbers] * 12.0) ** 2 / max(1.0, len(atoms) / 400)
    fig, (side, top) = new_figure(1, 2, figsize=(11, 5.2))
    for ax, (i, j), depth, name in ((side, (0, 2), 1, "side view (along y)"), (top, (0, 1), 2, "top view (along z)")):
        order = np.argsort(pos[:, depth])  # far atoms first, near atoms drawn on top
        ax.scatter(pos[order, i], pos[order, j], s=size[order], c=cols[order], edgecolors="k", linewidths=0.3)
        ax.set_aspect("equal")
        ax.set_xlabel(f"{'xyz'[i]} (Å)")
        ax.set_ylabel(f"{'xyz'[j]} (Å)")
        ax.set_title(name, fontsize=9)
    if "domain" in atoms.arrays and {"perovskite", "chalcohalide"} <= set(atoms.arrays["domain"]):
        dom = atoms.arrays["domain"]
        z_if = 0.5 * (pos[dom == "perovskite", 2].min() + pos[dom == "chalcohalide", 2].max())
        side.axhline(z_if, ls="--", color="k", lw=1)
        side.text(pos[:, 0].max(), z_if, " interface", va="bottom", ha="right", fontsize=8)
    fig.legend(handles=legend, loc="lower center", ncol=min(len(legend), 8), frameon=False, fontsize=8)
    fig.suptitle(title or atoms.get_chemical_formula(mode="metal"))
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig
