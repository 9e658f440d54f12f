"""One STEM image in, every column and the structural quantities of SPEC §5 out.

:func:`analyze_image` chains the steps (fit → index → sublattices and domains → halide
labels → measurements → per-domain summary); :func:`score_against_truth` compares the
result with the true columns of a simulated image (positions, labels and the same
measurements applied to the true positions); :func:`halex.stem.output.write_analysis` writes
``columns.csv``, ``summary.json`` and the figures, all or nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from halex.errors import AnalysisError, InputError
from halex.stem.cell import ProjectedCell, projected_cell
from halex.stem.fit import ColumnFit, fit_columns, ragged_median, volumes_at_fixed_width
from halex.stem.io import StemImage
from halex.stem.lattice import LatticeIndex, classify_halides, index_columns, measure, missing_halide_sites
from halex.units import DEFAULT_SIGNIFICANCE

__all__ = ["StemAnalysis", "analyze_image", "analyze_positions", "score_against_truth", "detect_contrast", "lattice_only",
           "line_profile", "parse_profile", "COLUMN_FIELDS"]

log = logging.getLogger(__name__)

#: columns.csv fields and units
COLUMN_FIELDS = {
    "x_px": "px", "y_px": "px", "x_A": "Å", "y_A": "Å", "sigma_x_A": "Å", "sigma_y_A": "Å",
    "height": "image units", "width_A": "Å", "volume": "image units·px²", "sigma_volume": "image units·px²",
    "volume_free_width": "image units·px²", "detected": "",
    "background": "image units", "significance": "σ", "sublattice": "", "domain": "", "halide": "",
    "iodide_fraction": "", "i": "", "j": "", "a_x_A": "Å", "a_y_A": "Å", "tilt_deg": "°", "xxcs_deg": "°",
}


@dataclass
class StemAnalysis:
    """Result of :func:`analyze_image`: the per-column table and the per-domain summary."""

    image: StemImage | None
    zone: str
    columns: dict[str, np.ndarray]
    summary: dict[str, Any]
    index: LatticeIndex
    fit: ColumnFit | None = None
    profiles: list[dict[str, Any]] = field(default_factory=list)


def _gauss_fit(values: np.ndarray) -> dict[str, float]:
    """Mean, standard error and a Gaussian fit (centre, σ, with fit errors) of a histogram."""
    from scipy.optimize import curve_fit

    v = values[np.isfinite(values)]
    out = {"n": int(len(v))}
    if len(v) == 0:
        return out
    out["mean"] = float(v.mean())
    out["std"] = float(v.std(ddof=1)) if len(v) > 1 else 0.0
    out["sem"] = out["std"] / np.sqrt(len(v)) if len(v) > 1 else float("nan")
    if len(v) >= 8 and out["std"] > 1e-6 * max(abs(out["mean"]), 1e-12):
        import warnings

        from scipy.optimize import OptimizeWarning

        hist, edges = np.histogram(v, bins=max(8, int(np.sqrt(len(v)))))
        c = 0.5 * (edges[1:] + edges[:-1])
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", OptimizeWarning)
                p, cov = curve_fit(lambda x, a, m, s: a * np.exp(-0.5 * ((x - m) / s) ** 2), c, hist,
                                   p0=(hist.max(), out["mean"], out["std"]), maxfev=2000)
            err = np.sqrt(np.abs(np.diag(cov)))
            out.update(gauss_centre=float(p[1]), gauss_centre_err=float(err[1]), gauss_sigma=float(abs(p[2])),
                       gauss_sigma_err=float(err[2]))
        except (RuntimeError, ValueError):
            pass
    return out


def _perovskite_domains(columns: dict[str, np.ndarray], index: LatticeIndex) -> np.ndarray:
    """Split the perovskite into CsPbCl3 / CsPbI3 / CsPb(Cl,I)3 by the halide labels of nearby X columns."""
    from scipy.spatial import cKDTree

    dom = index.domain.astype(object).copy()
    isx = columns["halide"] != ""
    pv = index.domain == "perovskite"
    if not isx.any():
        dom[pv] = "perovskite"
        return dom.astype(str)
    xy = np.column_stack([columns["x_A"], columns["y_A"]])
    reach = 0.8 * max(np.linalg.norm(index.b1), np.linalg.norm(index.b2)) * 2
    tree = cKDTree(xy[isx])
    labs = columns["halide"][isx]
    name = {"Cl": "CsPbCl3", "I": "CsPbI3", "mixed": "CsPb(Cl,I)3"}
    for k in np.flatnonzero(pv):
        nb = tree.query_ball_point(xy[k], reach)
        if not nb:
            dom[k] = "perovskite"
            continue
        vals, counts = np.unique(labs[nb], return_counts=True)
        dom[k] = name[str(vals[counts.argmax()])]
    return dom.astype(str)


def _chalcohalide_period(columns: dict[str, np.ndarray], a_ref: float) -> tuple[float, float]:
    """In-plane (image x) repeat of the non-perovskite region: for every column, the distance to
    the nearest column of similar volume (±30 %) in the same row (|Δy| < 0.5 Å) at 0.7–1.4 × a_ref;
    returns (median, standard error)."""
    m = columns["domain"] == "chalcohalide"
    if m.sum() < 4:
        return float("nan"), float("nan")
    x, y, v = columns["x_A"][m], columns["y_A"][m], columns["volume"][m]
    d = []
    for k in range(len(x)):
        same = (np.abs(y - y[k]) < 0.5) & (x > x[k] + 0.7 * a_ref) & (x < x[k] + 1.4 * a_ref) & (np.abs(v / v[k] - 1) < 0.3)
        if same.any():
            d.append(float(np.min(x[same] - x[k])))
    if len(d) < 3:
        return float("nan"), float("nan")
    d = np.array(d)
    return float(np.median(d)), float(1.2533 * d.std(ddof=1) / np.sqrt(len(d)))


def _off_lattice_domain(cols: dict[str, np.ndarray], idx: LatticeIndex, domains: dict, a_ref: float,
                        notes: list[str]) -> None:
    """Report the columns off the perovskite lattice as a chalcohalide domain only if at least
    10 of them form one connected region (neighbours within 1.6 × the longer half-lattice
    step); scattered off-lattice columns (noise peaks, surface adatoms) are relabelled
    ``unassigned`` and a note says so (in place). The domain's in-plane repeat is compared
    with the perovskite's in :func:`_summarise` (``mismatch``, with its significance)."""
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    f = np.sqrt(2.0) if idx.zone == "101" else 1.0
    m = cols["domain"] == "chalcohalide"
    xy = np.column_stack([cols["x_A"][m], cols["y_A"][m]])
    reach = 1.6 * max(np.linalg.norm(idx.b1), np.linalg.norm(idx.b2))
    _, lab = connected_components(cKDTree(xy).sparse_distance_matrix(cKDTree(xy), reach).tocsr(), directed=False)
    big = np.bincount(lab).max() if len(lab) else 0
    if big >= 10:
        per, err = _chalcohalide_period(cols, a_ref / f)
        domains["chalcohalide"] = {"columns": int(m.sum()), "connected_columns": int(big),
                                   "a_x_A": {"mean": f * per, "sem": f * err, "n": None,
                                             "note": "in-plane repeat of same-volume columns along the interface, "
                                                     "pseudo-cubic units"}}
        return
    cols["domain"] = np.where(m, "unassigned", cols["domain"]).astype(str)
    notes.append(f"{int(m.sum())} columns lie off the perovskite lattice, but no 10 of them form one region (largest "
                 f"{big}): no second domain is reported")


def analyze_positions(x_A: np.ndarray, y_A: np.ndarray, volume: np.ndarray, *, zone: str, kind: str,
                      extra: dict[str, np.ndarray] | None = None, detected: np.ndarray | None = None,
                      label_halides: str | None = None) -> tuple[dict[str, np.ndarray], LatticeIndex, dict]:
    """Index, label and measure columns given their positions (Å) and volumes.

    Shared by :func:`analyze_image` and the truth scoring, so a model's "true" tilt or
    lattice parameter is computed by exactly the same definitions as the measured one.
    ``label_halides`` is None to label the halide columns, or the reason they are not
    labelled (e.g. a dark-contrast image), which the summary then records.
    """
    xy = np.column_stack([x_A, y_A])
    idx = index_columns(x_A, y_A, volume, zone)
    cols: dict[str, np.ndarray] = {"x_A": np.asarray(x_A, float), "y_A": np.asarray(y_A, float),
                                   "volume": np.asarray(volume, float)}
    cols.update(extra or {})
    cols["sublattice"] = idx.sublattice
    if label_halides is None:
        frac, lab, pops = classify_halides(cols["volume"], idx.sublattice, xy, zone=zone, kind=kind,
                                           sigma_volume=cols.get("sigma_volume"))
    else:
        frac, lab = np.full(len(xy), np.nan), np.full(len(xy), "", dtype=object).astype(str)
        pops = {"verdict": "not measurable", "reason": label_halides}
    cols["halide"], cols["iodide_fraction"] = lab, frac
    cols["domain"] = _perovskite_domains(cols, idx)
    cols["i"] = np.where(idx.indexed, idx.ij[:, 0], -1)
    cols["j"] = np.where(idx.indexed, idx.ij[:, 1], -1)
    det = np.ones(len(xy), bool) if detected is None else np.asarray(detected, bool)
    cols["detected"] = det
    cols.update(measure(xy, idx, use=det))
    summary = _summarise(cols, idx)
    summary["halide_populations"] = pops
    return cols, idx, summary


def _summarise(cols: dict[str, np.ndarray], idx: LatticeIndex) -> dict[str, Any]:
    domains: dict[str, Any] = {}
    for d in sorted(set(cols["domain"]) - {"unassigned", "chalcohalide"}):
        m = cols["domain"] == d
        domains[d] = {"columns": int(m.sum()), "a_x_A": _gauss_fit(cols["a_x_A"][m]), "a_y_A": _gauss_fit(cols["a_y_A"][m]),
                      "tilt_deg": _gauss_fit(cols["tilt_deg"][m])}
        if idx.zone == "101":
            domains[d]["xxcs_deg"] = _gauss_fit(cols["xxcs_deg"][m])
    pv = np.isin(cols["domain"], [d for d in domains])
    a_ref = float(np.nanmedian(cols["a_x_A"][pv])) if np.isfinite(cols["a_x_A"][pv]).any() else float("nan")
    notes: list[str] = []
    if (cols["domain"] == "chalcohalide").sum():
        _off_lattice_domain(cols, idx, domains, a_ref, notes)
    mism = {}
    names = [d for d in domains if np.isfinite(domains[d]["a_x_A"].get("mean", np.nan))]
    for i, d1 in enumerate(names):
        for d2 in names[i + 1:]:
            a1, a2 = domains[d1]["a_x_A"]["mean"], domains[d2]["a_x_A"]["mean"]
            e1, e2 = domains[d1]["a_x_A"].get("sem", np.nan), domains[d2]["a_x_A"].get("sem", np.nan)
            pct, err = 100 * (a1 - a2) / a2, 100 * abs(a1 / a2) * np.hypot(e1 / a1, e2 / a2)
            mism[f"{d1} vs {d2}"] = {"percent": pct, "err_percent": err,
                                     "columns": [domains[d1]["columns"], domains[d2]["columns"]],
                                     "significant": bool(abs(pct) > 3.0 * err)}
    # row-by-row in-plane spacing (rows of Pb columns, j index), distance along y from the top
    rows = []
    pb = np.isfinite(cols["a_x_A"])
    for jj in np.unique(cols["j"][pb]):
        m = pb & (cols["j"] == jj)
        v = cols["a_x_A"][m]
        rows.append({"j": int(jj), "y_A": float(np.mean(cols["y_A"][m])), "n": int(m.sum()), "a_x_A": float(v.mean()),
                     "sem_A": float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else float("nan")})
    return {"zone": idx.zone, "basis_A": [np.linalg.norm(idx.b1).item(), np.linalg.norm(idx.b2).item()],
            "n_columns": int(len(cols["x_A"])), "n_indexed": int(idx.indexed.sum()),
            "sublattices": {str(s): int((cols["sublattice"] == s).sum()) for s in sorted(set(cols["sublattice"].tolist()))},
            "halides": {h: int((cols["halide"] == h).sum()) for h in ("Cl", "I", "mixed")},
            "domains": domains, "mismatch": mism, "rows": rows, "warnings": notes}


def precision_check(cols: dict[str, np.ndarray], zone: str = "001") -> tuple[dict[str, Any], list[str]]:
    """The quoted position errors against the scatter of the fitted lattice.

    A Pb–Pb spacing is the difference of two fitted positions, so if the positions' errors
    (σ_x per column, Cramér–Rao from the fit) were the whole story, the spacings along x of a
    uniform lattice would scatter by √2·σ_x (times √2 more for [101], whose pseudo-cubic
    spacing is scaled by √2). The observed standard deviation (robust: 1.4826 · MAD) is
    compared with that; scan distortion, drift, real strain or a wrong noise model make it
    larger, and more than 2× either way is flagged.

    Parameters
    ----------
    cols
        Column table with ``a_x_A``, ``sigma_x_A`` and ``domain``.
    zone
        ``"001"`` or ``"101"``.

    Returns
    -------
    tuple
        ``({position_sigma_A, expected_spacing_sd_A, observed_spacing_sd_A, ratio, n}, flags)``.
    """
    from halex.stem.fit import robust_sd

    ok = np.isfinite(cols["a_x_A"]) & np.isfinite(cols.get("sigma_x_A", np.full(len(cols["a_x_A"]), np.nan)))
    ok &= ~np.isin(cols["domain"], ["unassigned", "chalcohalide"])
    if ok.sum() < 8:
        return {"n": int(ok.sum())}, []
    sig = float(np.median(cols["sigma_x_A"][ok]))
    expected = np.sqrt(2.0) * sig * (np.sqrt(2.0) if zone == "101" else 1.0)
    a = cols["a_x_A"][ok]
    observed = float(robust_sd(a))
    ratio = observed / max(expected, 1e-300)
    out = {"position_sigma_A": sig, "expected_spacing_sd_A": float(expected), "observed_spacing_sd_A": observed,
           "ratio": float(ratio), "n": int(ok.sum())}
    flags = []
    if not 0.5 <= ratio <= 2.0:
        flags.append(f"the fitted lattice spacings (Pb–Pb, or between equivalent columns) scatter by {observed:.4f} Å, "
                     f"{ratio:.1f}× what the quoted position "
                     f"errors ({sig:.4f} Å) imply: the errors do not describe this image (scan distortion, drift, "
                     f"strain or the noise model); take {observed:.4f} Å, not the quoted errors, as the precision")
    return out, flags


def detector_counts(data: np.ndarray, *, gain: float | None = None, offset: float | None = None,
                    noise: str | None = None, kind: str = "haadf") -> tuple[np.ndarray, str, list[str]]:
    """Detector values → electron counts and the noise model the fit can trust.

    ``(data − offset) / gain`` when the detector's gain (values per electron) and offset are
    given; then, and for a HAADF image without them, Poisson statistics are used only if the
    image behaves like counts: its pixel variance (from neighbour differences, where the
    structure cancels) matches its mean level within a factor 2 (Var = mean for counts). An
    image that does not (a raw detector with an offset near 10⁴, an integrating detector
    with an arbitrary scale) is fitted with Gaussian noise, and a flag says so.

    Parameters
    ----------
    data
        The image as read.
    gain, offset
        Detector values per electron and the value of zero electrons (``--gain/--offset``).
    noise
        ``"poisson"`` or ``"gaussian"`` to force one; None: decided as above.
    kind
        ``"haadf"`` or ``"phase"`` (phase images are never counts).

    Returns
    -------
    tuple
        ``(data_for_the_fit, noise_model, flags)``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> counts = rng.poisson(50.0, (64, 64)).astype(float)
    >>> detector_counts(1.0e4 + 3.0 * counts)[1], detector_counts(1.0e4 + 3.0 * counts, gain=3.0, offset=1.0e4)[1]
    ('gaussian', 'poisson')
    """
    from halex.errors import InputError
    from halex.stem.fit import estimate_noise

    if noise is not None and noise not in ("poisson", "gaussian"):
        raise InputError(f"noise model must be 'poisson' or 'gaussian', got {noise!r}")
    if gain is not None and not gain > 0:
        raise InputError(f"--gain must be positive (detector values per electron), got {gain}")
    out = (data - (offset or 0.0)) / (gain or 1.0) if (gain is not None or offset is not None) else data
    if noise is not None or kind != "haadf":
        return out, noise or "gaussian", []
    flags: list[str] = []
    mean, var = float(np.median(out)), estimate_noise(out) ** 2
    if not (out < 0).any() and var < 1e-4 * max(mean, 1e-300):
        return out, "poisson", []  # no measurable noise (a noiseless simulation): any likelihood fits it
    if (out < 0).any() or not 0.5 < var / max(mean, 1e-300) < 2.0:
        flags.append(f"the image does not behave like electron counts (pixel variance {var:.3g} against a mean level "
                     f"{mean:.3g}; counts have them equal): fitted with Gaussian noise. Give --gain and --offset "
                     "(detector values per electron, value at zero electrons) to fit counts, or --noise gaussian "
                     "to silence this")
        return out, "gaussian", flags
    return out, "poisson", flags


def detect_contrast(data: np.ndarray, pixel_size: float) -> tuple[str, float]:
    """Whether the columns are bright (HAADF, phase) or dark (annular bright field).

    The image is smoothed at 0.3 Å and its background (an 8 Å box mean) subtracted;
    columns are small compared with the space between them, so their sign sets the sign
    of the skewness of what is left: positive for bright columns, negative for dark ones.

    Returns
    -------
    tuple
        ``("bright" | "dark" | "unclear", skewness)``; "unclear" when |skewness| < 0.2.
    """
    from scipy import ndimage

    d = np.asarray(data, float)
    hp = ndimage.gaussian_filter(d, 0.3 / pixel_size) - ndimage.uniform_filter(d, max(3, int(round(8.0 / pixel_size))))
    hp = hp - hp.mean()
    g = float((hp**3).mean() / max(float((hp**2).mean()), 1e-300) ** 1.5)
    return ("bright" if g >= 0.2 else "dark" if g <= -0.2 else "unclear"), g


def _contrast(image: StemImage, contrast: str) -> tuple[np.ndarray, str, dict, list[str]]:
    """The image with bright columns (a dark-contrast image inverted), its contrast, record and flags."""
    if contrast not in ("auto", "bright", "dark"):
        raise InputError(f"contrast must be 'auto', 'bright' or 'dark', got {contrast!r}")
    found, g = detect_contrast(image.data, image.pixel_size)
    rec: dict[str, Any] = {"given": contrast, "detected": found, "skewness": g}
    flags = []
    use = found if contrast == "auto" else contrast
    if use == "unclear":
        use = "bright"
        flags.append(f"the column contrast is unclear (skewness {g:.2f}): read as bright columns; give --contrast")
    elif contrast != "auto" and found != "unclear" and found != contrast:
        flags.append(f"--contrast {contrast} given, but the image looks {found} (skewness {g:.2f})")
    rec["used"] = use
    data = image.data if use == "bright" else float(np.max(image.data)) - image.data
    return data, use, rec, flags


def analyze_image(image: StemImage, *, zone: str = "auto", min_separation: float = 1.5, threshold: float = 4.0,
                  significance: float = DEFAULT_SIGNIFICANCE, background: str = "constant", gain: float | None = None,
                  offset: float | None = None, noise: str | None = None, contrast: str = "auto") -> StemAnalysis:
    """Fit every column of ``image`` and measure it (see module docstring).

    ``min_separation`` (Å), ``threshold`` (σ above background for candidates) and
    ``significance`` (A/σ_A to keep a column) go to :func:`~halex.stem.fit.fit_columns`.
    The noise model and the counts come from :func:`detector_counts` (``gain``, ``offset``,
    ``noise``); its flags are in ``summary["warnings"]``. ``contrast`` is ``"auto"``
    (:func:`detect_contrast`), ``"bright"`` or ``"dark"`` (inverted before the fit, fitted
    with Gaussian noise, and never given halide labels). The projected cell comes from the
    fitted columns (:func:`halex.stem.cell.projected_cell`); ``zone`` ``"auto"`` takes its
    zone, a given zone must agree with it. An image that shows no CsPbX3 projection with
    its halide columns is measured in lattice-only mode (:func:`lattice_only`).
    """
    raw, use, crec, cflags = _contrast(image, contrast)
    data, noise, flags = detector_counts(raw, gain=gain, offset=offset, noise=noise if use == "bright" else "gaussian",
                                         kind=image.kind)
    flags = cflags + flags
    for text in flags:
        log.warning("halex: warning: %s", text)
    px = image.pixel_size
    fit = fit_columns(data, pixel_size=px, noise=noise, min_separation=min_separation, threshold=threshold,
                      significance=significance, background=background)
    cell = projected_cell(np.column_stack([fit.x * px, fit.y * px]), np.column_stack([fit.volume, fit.amplitude]))
    zone, label_reason, zflags = _choose_zone(cell, zone, use)
    for text in zflags:
        log.warning("halex: warning: %s", text)
    flags += zflags
    if zone is None:
        out = lattice_only(image, fit, cell)
        out.summary["warnings"] = flags + out.summary["warnings"]
        out.summary.update(contrast=crec, detector={"gain": gain, "offset": offset})
        return out
    # sublattices from the fitted columns (free-width volumes), then halide identity:
    # (1) pure-X sites of the indexed lattice where no column was
    # significant (weak Cl columns at low dose) are added at their predicted positions, so
    # that every X site gets a label; (2) all volumes are re-measured at a fixed width per
    # sublattice (much less noisy than free-width volumes); (3) index, label and measure
    # again, with the added sites excluded from every geometric measurement.
    idx = index_columns(fit.x * px, fit.y * px, fit.volume, zone)
    sub = idx.sublattice
    add_xy, _ = missing_halide_sites(np.column_stack([fit.x * px, fit.y * px]), idx)
    nadd = len(add_xy)
    x = np.r_[fit.x, add_xy[:, 0] / px]
    y = np.r_[fit.y, add_xy[:, 1] / px]
    sub_all = np.r_[sub, np.full(nadd, "X")]
    wfix = np.full(len(x), float(np.median(fit.width)))
    for name in set(sub_all) - {"unassigned"}:
        m = sub_all == name
        src = m[: len(fit.x)]
        if src.sum() >= 3:
            wfix[m] = float(np.median(fit.width[src]))
    amp = np.r_[fit.amplitude, np.zeros(nadd)]
    bg = np.r_[fit.background, np.full(nadd, np.nan)]
    wid = np.r_[fit.width, np.full(nadd, np.nan)]
    # background held at the local median of the detected columns' fitted backgrounds
    from scipy.spatial import cKDTree

    tree = cKDTree(np.column_stack([fit.x, fit.y]))
    near = tree.query_ball_point(np.column_stack([x, y]), 10.0 / px)
    bfix = ragged_median(fit.background, near)
    bfix[~np.isfinite(bfix)] = np.median(fit.background)
    for _ in range(2 if nadd else 1):  # second pass: added sites' own amplitudes seen by their neighbours
        vol_fw, svol_fw = volumes_at_fixed_width(data, x, y, amp, wid, bg, wfix, noise=noise, noise_sigma=fit.noise_sigma,
                                                 fixed_background=bfix)
        amp = np.where(np.arange(len(x)) >= len(fit.x), np.clip(vol_fw / (2 * np.pi * wfix**2), 0, None), amp)
    det = np.r_[np.ones(len(fit.x), bool), np.zeros(nadd, bool)]
    nan = np.full(nadd, np.nan)
    extra = {"x_px": x, "y_px": y, "sigma_x_A": np.r_[fit.sigma_x * px, nan], "sigma_y_A": np.r_[fit.sigma_y * px, nan],
             "height": np.r_[fit.amplitude, amp[len(fit.x):]], "width_A": wfix * px,
             "sigma_volume": svol_fw, "volume_free_width": np.r_[fit.volume, nan],
             "background": np.r_[fit.background, nan],
             "significance": np.r_[fit.significance, vol_fw[len(fit.x):] / np.maximum(svol_fw[len(fit.x):], 1e-300)]}
    cols, idx, summary = analyze_positions(x * px, y * px, vol_fw, zone=zone, kind=image.kind, extra=extra, detected=det,
                                           label_halides=label_reason)
    summary["predicted_halide_sites"] = int(nadd)
    summary["cell"] = cell.as_dict()
    summary["contrast"] = crec
    precision, pflags = precision_check(cols, zone)
    summary["precision"] = precision
    for text in pflags:
        log.warning("halex: warning: %s", text)
    summary["warnings"] = list(summary.get("warnings", [])) + flags + pflags
    summary["detector"] = {"gain": gain, "offset": offset}
    summary.update(image={"source": image.source, "shape": list(image.shape), "pixel_size_A": px, "kind": image.kind},
                   fit={"noise_model": fit.noise_model, "noise_sigma": fit.noise_sigma, "iterations": fit.iterations,
                        "median_sigma_x_A": float(np.median(fit.sigma_x) * px), "median_width_A": float(np.median(fit.width) * px)})
    return StemAnalysis(image, zone, cols, summary, idx, fit)


def _choose_zone(cell: ProjectedCell, zone: str, contrast: str) -> tuple[str | None, str | None, list[str]]:
    """The zone to analyse (None: lattice-only mode), why halides are not labelled (None: they
    are), and flags; a given zone that the image contradicts is an error."""
    from halex.stem.cell import PROJECTIONS

    if zone not in ("auto", "001", "101"):
        raise InputError(f"unknown zone axis {zone!r}; choose auto, 001 or 101")
    desc = PROJECTIONS[cell.projection][0]
    shape = f"column lattice {np.linalg.norm(cell.b1):.3f} × {np.linalg.norm(cell.b2):.3f} Å"
    if cell.zone is None:
        flags = [f"the image shows {desc} ({shape}); no CsPbX3 projection with its halide columns: lattice-only mode"]
        if zone != "auto":
            flags[0] += f" (--zone {zone} not applied)"
        return None, None, flags
    if zone != "auto" and zone != cell.zone:
        raise AnalysisError(f"--zone {zone} given, but the image shows the perovskite [{cell.zone}] projection ({shape}, "
                            f"class counts {cell.class_counts}): pass --zone {cell.zone} or --zone auto")
    reason = None
    if contrast == "dark":
        reason = "dark-contrast (bright-field) image: column darkness is not a calibrated Z contrast"
    elif not cell.halide_columns_visible:
        reason = "; ".join(cell.notes)
    return cell.zone, reason, ([f"no halide labels: {reason}"] if reason else [])


def _class_names(cell: ProjectedCell) -> np.ndarray:
    """Sublattice name of every column in lattice-only mode: classes of equal brightness merged,
    then named by rank ("bright", "dim"; "column" if one class; "unassigned" off the lattice)."""
    groups: list[list[int]] = []
    for c in (c for c in range(4) if cell.class_counts[c]):
        for g in groups:
            if all(cell.same[c][m] for m in g):
                g.append(c)
                break
        else:
            groups.append([c])
    groups.sort(key=lambda g: -float(np.nanmedian([cell.class_volume[c] for c in g])))
    names = ["column"] if len(groups) == 1 else ["bright", "dim"] if len(groups) == 2 else \
        [f"class {k + 1}" for k in range(len(groups))]
    out = np.full(len(cell.ij), "unassigned", dtype=object)
    for g, name in zip(groups, names):
        out[np.isin(cell.parity_class, g)] = name
    return out.astype(str)


def lattice_only(image: StemImage, fit: ColumnFit, cell: ProjectedCell) -> StemAnalysis:
    """Measure what an image without the CsPbX3 column classes allows: the lattice of the
    visible columns and their brightness classes, with no halide labels.

    ``a_x_A`` / ``a_y_A`` of a column are the pseudo-cubic lattice parameters from the
    steps that join it to its equivalent neighbours along the first / second direction of
    the projection (:mod:`halex.stem.cell`), e.g. A–A along [001] and, ×√2, along [1-10]
    of an ABO3 [110] image.
    """
    from halex.stem.lattice import _pairs

    px = image.pixel_size
    xy = np.column_stack([fit.x * px, fit.y * px])
    n, nan = len(xy), np.full(len(xy), np.nan)
    ok, ij = cell.indexed, cell.ij
    steps = {"abo3-001": [((1, 1), 1.0), ((1, -1), 1.0)], "abo3-110": [((2, 0), 1.0), ((0, 1), np.sqrt(2.0))]}
    a_dir = [nan.copy(), nan.copy()]
    for k, (st, f) in enumerate(steps.get(cell.projection, [])):
        i, j = _pairs(ij, ok, st)
        a_dir[k][i] = f * np.linalg.norm(xy[j] - xy[i], axis=1)
    sub = _class_names(cell)
    cols = {"x_px": fit.x, "y_px": fit.y, "x_A": xy[:, 0], "y_A": xy[:, 1], "sigma_x_A": fit.sigma_x * px,
            "sigma_y_A": fit.sigma_y * px, "height": fit.amplitude, "width_A": fit.width * px, "volume": fit.volume,
            "sigma_volume": fit.sigma_volume, "volume_free_width": fit.volume, "detected": np.ones(n, bool),
            "background": fit.background, "significance": fit.significance, "sublattice": sub,
            "domain": np.where(ok, "lattice", "unassigned").astype(str), "halide": np.full(n, "", dtype=object).astype(str),
            "iodide_fraction": nan.copy(), "i": np.where(ok, ij[:, 0], -1), "j": np.where(ok, ij[:, 1], -1),
            "a_x_A": a_dir[0], "a_y_A": a_dir[1], "tilt_deg": nan.copy(), "xxcs_deg": nan.copy()}
    idx = LatticeIndex(cell.b1, cell.b2, np.where(ok[:, None], ij, -999999), ok, sub, cell.projection, cols["domain"])
    summary = _summarise(cols, idx)
    precision, pflags = precision_check(cols, "001")
    for text in pflags:
        log.warning("halex: warning: %s", text)
    summary.update(cell=cell.as_dict(), precision=precision, predicted_halide_sites=0,
                   halide_populations={"verdict": "not measurable", "reason": "; ".join(cell.notes)},
                   warnings=list(summary["warnings"]) + list(cell.notes) + pflags,
                   image={"source": image.source, "shape": list(image.shape), "pixel_size_A": px, "kind": image.kind},
                   fit={"noise_model": fit.noise_model, "noise_sigma": fit.noise_sigma, "iterations": fit.iterations,
                        "median_sigma_x_A": float(np.median(fit.sigma_x) * px),
                        "median_width_A": float(np.median(fit.width) * px)})
    return StemAnalysis(image, cell.projection, cols, summary, idx, fit)


def parse_profile(text: str) -> tuple[float, float, float, float]:
    """``"x0,y0,x1,y1"`` (pixels) -> tuple."""
    try:
        v = tuple(float(t) for t in text.split(","))
    except ValueError:
        v = ()
    if len(v) != 4 or not all(np.isfinite(v)):
        raise InputError(f"--profile must be four numbers x0,y0,x1,y1 in pixels, got {text!r}")
    return v  # type: ignore[return-value]


def line_profile(analysis: StemAnalysis, segment: tuple[float, float, float, float], *, width_px: int = 5,
                 near_A: float = 0.6) -> dict[str, Any]:
    """Intensity along a segment (pixels), averaged over ``width_px`` across it, with the columns
    within ``near_A`` of the line as labelled peaks (distance along the line in Å)."""
    from scipy.ndimage import map_coordinates

    if analysis.image is None:
        raise InputError("a line profile needs the image")
    x0, y0, x1, y1 = segment
    ny, nx = analysis.image.shape
    for x, y in ((x0, y0), (x1, y1)):
        if not (0 <= x <= nx - 1 and 0 <= y <= ny - 1):
            raise InputError(f"profile end ({x:g}, {y:g}) px lies outside the {nx}×{ny} image")
    length = float(np.hypot(x1 - x0, y1 - y0))
    if length < 2:
        raise InputError("the profile segment is shorter than 2 pixels")
    t = np.linspace(0, 1, int(np.ceil(length)) + 1)
    u = np.array([x1 - x0, y1 - y0]) / length
    nrm = np.array([-u[1], u[0]])
    offs = np.arange(width_px) - (width_px - 1) / 2
    xs = x0 + t[None, :] * (x1 - x0) + offs[:, None] * nrm[0]
    ys = y0 + t[None, :] * (y1 - y0) + offs[:, None] * nrm[1]
    vals = map_coordinates(analysis.image.data, [ys.ravel(), xs.ravel()], order=1, mode="nearest").reshape(xs.shape).mean(0)
    px = analysis.image.pixel_size
    c = analysis.columns
    rel = np.column_stack([c["x_px"] - x0, c["y_px"] - y0])
    along, across = rel @ u, np.abs(rel @ nrm)
    on = (across * px < near_A) & (along >= 0) & (along <= length)
    peaks = [{"distance_A": float(along[k] * px), "sublattice": str(c["sublattice"][k]), "halide": str(c["halide"][k]),
              "domain": str(c["domain"][k])} for k in np.flatnonzero(on)[np.argsort(along[on])]]
    return {"segment_px": list(segment), "distance_A": (t * length * px).tolist(), "intensity": vals.tolist(), "peaks": peaks}


def score_against_truth(analysis: StemAnalysis, truth: dict[str, np.ndarray], *, match_A: float = 0.7) -> dict[str, Any]:
    """Compare an analysis with the true columns of a simulated image.

    Returns detection counts, position errors (RMS and max, Å and px) per true column
    kind, halide-label accuracy on pure X columns (truth: I fraction > 2/3 → I,
    < 1/3 → Cl, else mixed) and, for every measured quantity, the value obtained from
    the true positions and volumes by the same :func:`analyze_positions`.
    """
    from scipy.spatial import cKDTree

    c = analysis.columns
    px = analysis.image.pixel_size if analysis.image is not None else 1.0
    txy = np.column_stack([truth["x_A"], truth["y_A"]])
    fxy = np.column_stack([c["x_A"], c["y_A"]])
    lo, hi = fxy.min(0) - 2, fxy.max(0) + 2
    inside = np.all((txy >= lo) & (txy <= hi), axis=1)
    if not inside.any():
        raise AnalysisError("the truth model's columns do not overlap the analysed image; was the image simulated "
                            "from this model (same zone axis)?")
    d, j = cKDTree(txy).query(fxy)
    ok = d < match_A
    det = np.asarray(c.get("detected", np.ones(len(fxy), bool)), bool)
    res: dict[str, Any] = {"true_columns": int(len(txy)), "found": int(det.sum()), "matched": int((ok & det).sum()),
                           "false_columns": int((~ok & det).sum()), "predicted_sites": int((~det).sum()),
                           "predicted_sites_matched": int((ok & ~det).sum()), "positions": {}}
    for k in sorted(set(truth["kind"][j[ok & det]])):
        m = ok & det & (truth["kind"][j] == k)
        err = fxy[m] - txy[j[m]]
        res["positions"][k] = {"n": int(m.sum()), "of": int((truth["kind"] == k).sum()),
                               "rms_A": float(np.sqrt((err**2).sum(1).mean())), "max_px": float(np.abs(err).max() / px),
                               "rms_x_px": float(np.sqrt((err[:, 0] ** 2).mean()) / px)}
    isx = ok & (c["halide"] != "") & np.isfinite(truth["iodide_fraction"][j])
    if isx.any():
        tf = truth["iodide_fraction"][j[isx]]
        tl = np.where(tf < 1 / 3, "Cl", np.where(tf > 2 / 3, "I", "mixed"))
        res["halide_accuracy"] = float((tl == c["halide"][isx]).mean())
        res["halide_columns"] = int(isx.sum())
    # the same measurements on the true positions (columns on the image only)
    tm = inside
    tcols, tidx, tsum = analyze_positions(truth["x_A"][tm], truth["y_A"][tm], truth["weight"][tm], zone=analysis.zone,
                                          kind=analysis.image.kind if analysis.image is not None else "haadf")
    res["truth_summary"] = tsum
    dmeas = {}
    tj = np.flatnonzero(tm)
    back = {int(g): n for n, g in enumerate(tj)}
    for q in ("tilt_deg", "xxcs_deg", "a_x_A", "a_y_A"):
        pairs = [(k, back[int(j[k])]) for k in np.flatnonzero(ok) if int(j[k]) in back]
        if not pairs:
            continue
        a = np.array([c[q][p] for p, _ in pairs])
        b = np.array([tcols[q][t] for _, t in pairs])
        both = np.isfinite(a) & np.isfinite(b)
        if both.any():
            dmeas[q] = {"n": int(both.sum()), "mean_measured": float(a[both].mean()), "mean_true": float(b[both].mean()),
                        "mean_abs_diff": float(np.abs(a[both] - b[both]).mean())}
    res["measurements"] = dmeas
    dom = {}
    for name, v in analysis.summary["domains"].items():
        tv = tsum["domains"].get(name)
        if tv is not None and "mean" in v["a_x_A"] and "mean" in tv["a_x_A"]:
            dom[name] = {"a_x_measured_A": v["a_x_A"]["mean"], "a_x_true_A": tv["a_x_A"]["mean"],
                         "diff_A": v["a_x_A"]["mean"] - tv["a_x_A"]["mean"]}
    res["domains"] = dom
    mm = {}
    for name, v in analysis.summary["mismatch"].items():
        if name in tsum["mismatch"]:
            mm[name] = {"measured_percent": v["percent"], "true_percent": tsum["mismatch"][name]["percent"],
                        "diff_pp": v["percent"] - tsum["mismatch"][name]["percent"]}
    res["mismatch"] = mm
    return res
