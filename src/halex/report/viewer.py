"""An offline, interactive 3D view of relaxed models inside ``report.html``.

The page embeds `3Dmol.js <https://3dmol.org>`_ (BSD-3-Clause, version 2.5.5, the minified
build of its npm package, shipped in ``halex/report/static`` with its licence) and the models
as JSON, so the view works from a file, offline, with no CDN. halex writes no WebGL code of
its own: it only turns each model into an XYZ block and per-atom colours. The colours come
from :func:`halex.plotting.show.color_table`, so the 3D view and the pictures agree
(element: Jmol; domain; layer: coolwarm, the interfacial monolayer white).

Each model's state is written into the page (``data-state`` of ``#halex-viewer``:
``drawn``, ``no-webgl`` or ``error``) and shown in words, so a browser without WebGL says so
instead of showing an empty box.
"""

from __future__ import annotations

import html
import json
from functools import lru_cache
from importlib.resources import files

import numpy as np
from ase import Atoms

__all__ = ["viewer_payload", "viewer_section", "VIEWER_LIBRARY"]

#: the bundled library and its version
VIEWER_LIBRARY = ("3Dmol.js", "2.5.5")


@lru_cache(maxsize=1)
def _library() -> str:
    return (files("halex.report") / "static" / "3Dmol-min.js").read_text(encoding="utf-8")


def _hex(rgba) -> str:
    r, g, b = (int(round(255 * float(c))) for c in rgba[:3])
    return f"#{r:02x}{g:02x}{b:02x}"


def _colouring(atoms: Atoms, by: str) -> dict:
    """Palette, per-atom palette index and legend of one colouring."""
    from halex.plotting.show import color_table

    cols, legend = color_table(atoms, by)
    hexes = [_hex(c) for c in cols]
    palette = sorted(set(hexes))
    where = {h: i for i, h in enumerate(palette)}
    return {"palette": palette, "index": [where[h] for h in hexes],
            "legend": [[label, _hex(c)] for label, c in legend]}


def viewer_payload(models: dict[str, Atoms]) -> dict[str, dict]:
    """What the page needs of each model: an XYZ block (Å) and its colourings.

    Parameters
    ----------
    models
        Name → relaxed model. Colourings by ``domain`` and ``layer`` are added where the
        model carries those arrays.

    Returns
    -------
    dict
        Name → ``{"xyz": str, "n_atoms": int, "colors": {mode: {"palette", "index", "legend"}}}``.

    Examples
    --------
    >>> from ase import Atoms
    >>> p = viewer_payload({"PbCl2": Atoms("PbCl2", positions=[[0, 0, 0], [2.5, 0, 0], [-2.5, 0, 0]])})
    >>> p["PbCl2"]["n_atoms"], sorted(p["PbCl2"]["colors"]), p["PbCl2"]["colors"]["element"]["index"]
    (3, ['element'], [1, 0, 0])
    """
    out = {}
    for name, atoms in models.items():
        pos = np.asarray(atoms.get_positions(), float)
        lines = [str(len(atoms)), name.replace("\n", " ")]
        lines += [f"{s} {x:.3f} {y:.3f} {z:.3f}" for s, (x, y, z) in zip(atoms.get_chemical_symbols(), pos)]
        modes = ["element"] + [m for m in ("domain", "layer") if m in atoms.arrays]
        out[name] = {"xyz": "\n".join(lines) + "\n", "n_atoms": len(atoms),
                     "colors": {m: _colouring(atoms, m) for m in modes}}
    return out


_SCRIPT = """
(function () {
  var box = document.getElementById('halex-viewer'), note = document.getElementById('halex-viewer-note');
  var pick = document.getElementById('halex-model'), mode = document.getElementById('halex-colour');
  var legend = document.getElementById('halex-legend');
  var data = JSON.parse(document.getElementById('halex-models').textContent);
  function fail(state, text) { box.dataset.state = state; note.textContent = text; }
  if (typeof $3Dmol === 'undefined') { fail('error', 'the 3D viewer library did not load'); return; }
  var viewer = null;
  try { viewer = $3Dmol.createViewer(box, {backgroundColor: 'white', antialias: true}); } catch (e) { viewer = null; }
  if (!viewer || !viewer.getCanvas || !viewer.getCanvas().getContext) {
    fail('no-webgl', 'This browser has no WebGL, so the 3D view cannot be drawn; the pictures above show every model.');
    return;
  }
  window.halexViewer = viewer;
  function draw() {
    var m = data[pick.value], by = m.colors[mode.value] ? mode.value : 'element', c = m.colors[by];
    viewer.clear();
    viewer.addModel(m.xyz, 'xyz');
    viewer.setStyle({}, {sphere: {scale: 0.4, colorfunc: function (a) { return c.palette[c.index[a.index]]; }}});
    viewer.zoomTo();
    viewer.rotate(-90, 'x');  // side view as in the pictures: stacking axis z up
    viewer.render();
    legend.innerHTML = '';
    c.legend.forEach(function (l) {
      var s = document.createElement('span');
      s.innerHTML = '<i style="background:' + l[1] + '"></i>';
      s.appendChild(document.createTextNode(l[0]));
      legend.appendChild(s);
    });
    box.dataset.state = 'drawn';
    box.dataset.model = pick.value;
    box.dataset.atoms = String(viewer.getModel().selectedAtoms({}).length);
    note.textContent = pick.value + ': ' + m.n_atoms + ' atoms, coloured by ' + by + ' (drag to rotate, scroll to zoom)';
  }
  pick.addEventListener('change', draw);
  mode.addEventListener('change', draw);
  try { draw(); } catch (e) { fail('error', 'the 3D view failed: ' + e); throw e; }
})();
"""

_STYLE = ("#halex-viewer{width:100%;height:520px;position:relative;border:1px solid #bbb}"
          "#halex-legend span{margin-right:10px;font-size:12px}"
          "#halex-legend i{display:inline-block;width:10px;height:10px;margin-right:3px;border:1px solid #555}")


def viewer_section(models: dict[str, Atoms]) -> list[str]:
    """HTML of the 3D view: model and colouring pickers, the viewer, its library and data.

    Parameters
    ----------
    models
        Name → relaxed model (e.g. ``"layers/interface-1"``).

    Returns
    -------
    list of str
        HTML fragments (empty when there are no models).
    """
    if not models:
        return []
    payload = json.dumps(viewer_payload(models), separators=(",", ":")).replace("</", "<\\/")
    options = "".join(f"<option value='{html.escape(n, quote=True)}'>{html.escape(n)}</option>" for n in models)
    colours = "".join(f"<option value='{m}'>{m}</option>" for m in ("element", "domain", "layer"))
    name, version = VIEWER_LIBRARY
    return [f"<h2 id='view3d'>Relaxed models in 3D</h2><style>{_STYLE}</style>",
            f"<p>model <select id='halex-model'>{options}</select> colour by <select id='halex-colour'>{colours}"
            f"</select> <span id='halex-viewer-note'>loading the 3D view…</span></p><div id='halex-legend'></div>",
            "<div id='halex-viewer' data-state='loading'></div>",
            f"<p style='font-size:12px'>Drawn with {name} {version} (BSD-3-Clause), embedded in this page: it works "
            "offline.</p>",
            f"<script>{_library()}</script>",
            f"<script type='application/json' id='halex-models'>{payload}</script>",
            f"<script>{_SCRIPT}</script>"]

