"""Atomic columns: peak finding and batched 2D-Gaussian refinement at the precision limit.

Every column ``j`` is a round Gaussian on a local background,

    μ_j(x, y) = A_j · exp(−((x − x_j)² + (y − y_j)²) / (2 s_j²)) + b_j  [+ b_x (x − x_c) + b_y (y − y_c)]

fitted on a square window around it. Neighbours reaching into the window are part of the
model (their current Gaussians are added, not fitted), so overlapping columns are refined
jointly by block-Jacobi iterations: all columns take one damped Fisher-scoring
(Levenberg–Marquardt) step at once, then the neighbour contributions are updated.

The likelihood is Poisson for counting data (HAADF: negative log-likelihood
Σ μ − d ln μ) and Gaussian for phase images (Σ (d − μ)² / 2σ_n², σ_n the pixel noise,
``noise_sigma``). Both are minimised by Fisher scoring, whose Fisher matrix
``F = Jᵀ W J`` (``W = 1/μ`` or ``1/σ_n²``) gives the
Cramér–Rao lower bound ``sqrt(diag F⁻¹)`` at the estimate — the reported uncertainty —
and, evaluated at the true parameters, the bound itself (:func:`cramer_rao_bound`).

Names: ``s`` / ``width`` is a column's Gaussian standard deviation (px); ``noise_sigma``
and ``noise_var`` the pixel noise of a phase image and its variance; ``sigma_*`` fields
of :class:`ColumnFit` are standard errors (Cramér–Rao) of the fitted parameters.

Why our own fitter: all columns are refined together as arrays of shape
(columns, window, window) instead of one optimiser object per column (Atomap,
StatSTEM's per-column loops), which is what makes thousands of columns per second on a
CPU possible (``benchmarks/bench_stem.py``).
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from halex.errors import AnalysisError, InputError
from halex.stem.io import check_image
from halex.units import DEFAULT_SIGNIFICANCE

__all__ = ["ColumnFit", "find_columns", "refine_columns", "fit_columns", "cramer_rao_bound", "estimate_noise",
           "volumes_at_fixed_width"]

log = logging.getLogger(__name__)
NOISE_MODELS = ("poisson", "gaussian")
#: a column's Gaussian width may range over these multiples of the image's column width
WIDTH_BOUNDS = (0.5, 2.0)
#: Jacobi sweeps with positions held at the start before positions are freed
SETTLE_SWEEPS = 3


def ragged_median(values: np.ndarray, groups: list) -> np.ndarray:
    """``np.median(values[g], axis=0)`` for every index list ``g`` of ``groups``, in one sort
    (NaN for an empty list). The per-list loop of NumPy medians was a tenth of an analysis.

    Examples
    --------
    >>> ragged_median(np.array([1.0, 5.0, 2.0, 8.0]), [[0, 1, 2], [3], [], [1, 3]])
    array([2. , 8. , nan, 6.5])
    """
    values = np.asarray(values, float)
    cnt = np.array([len(g) for g in groups], int)
    m = len(groups)
    kmax = max(int(cnt.max()) if m else 0, 1)
    idx = np.zeros((m, kmax), int)
    filled = np.arange(kmax)[None, :] < cnt[:, None]
    if filled.any():
        idx[filled] = np.concatenate([np.asarray(g, int) for g in groups if len(g)])
    v = values[idx]  # (m, kmax, ...)
    shape = (m, kmax) + (1,) * (v.ndim - 2)
    v = np.sort(np.where(filled.reshape(shape), v, np.nan), axis=1)  # NaN sorts last
    one = (m, 1) + (1,) * (v.ndim - 2)
    lo = np.maximum((cnt - 1) // 2, 0).reshape(one)
    hi = np.maximum(cnt // 2 - (cnt == 0), 0).reshape(one)
    med = 0.5 * (np.take_along_axis(v, lo, axis=1) + np.take_along_axis(v, hi, axis=1))[:, 0]
    med[cnt == 0] = np.nan
    return med


def robust_sd(values: np.ndarray, axis: int | None = None) -> np.ndarray | float:
    """1.4826 × the median absolute deviation (the normal-consistent scale), in NumPy alone:
    the same number as ``scipy.stats.median_abs_deviation(..., scale="normal")`` without
    importing scipy.stats (half a second at start-up)."""
    v = np.asarray(values, float)
    med = np.median(v, axis=axis, keepdims=True)
    out = 1.482602218505602 * np.median(np.abs(v - med), axis=axis)
    return float(out) if np.ndim(out) == 0 else out


def estimate_noise(data: np.ndarray) -> float:
    """Standard deviation of white noise in ``data`` from the median absolute deviation of
    the difference of diagonal neighbours (robust to structure at the column scale)."""
    d = ((data[1:, 1:] - data[:-1, :-1]) / np.sqrt(2.0)).ravel()
    # 1.4826 × MAD (the normal-consistent scale); np.partition finds the medians in linear time
    med = float(np.partition(d, d.size // 2)[d.size // 2])
    a = np.abs(d - med)
    return float(1.482602218505602 * np.partition(a, a.size // 2)[a.size // 2])


def find_columns(data: np.ndarray, *, pixel_size: float, min_separation: float = 1.5, smoothing: float = 0.3,
                 threshold: float = 4.0, mask: np.ndarray | None = None, noise: str = "gaussian") -> np.ndarray:
    """Candidate column positions ``(x_px, y_px)`` as local maxima of the smoothed image.

    Parameters
    ----------
    data
        2D image.
    pixel_size
        Å per pixel.
    min_separation
        Smallest distance between two columns in Å (peaks closer than about 0.7 of it are merged).
    smoothing
        Gaussian smoothing width in Å before peak finding.
    threshold
        A peak must rise this many noise standard deviations (of the smoothed image) above
        the image's background level (its 10th percentile).
    mask
        Optional boolean image; peaks only where it is True.
    noise
        ``"poisson"``: the background noise is √(background counts) (the robust
        difference estimate is zero for sparse counts); ``"gaussian"``: estimated from the image.

    Returns
    -------
    numpy.ndarray
        Candidate positions, shape (n, 2), columns ``(x_px, y_px)``.
    """
    from scipy import ndimage
    from skimage.feature import peak_local_max

    data = check_image(data)
    if min_separation <= 0 or smoothing < 0 or pixel_size <= 0:
        raise InputError("min_separation, smoothing and pixel_size must be positive")
    s_px = smoothing / pixel_size
    sm = ndimage.gaussian_filter(data, s_px) if smoothing > 0 else data
    # white noise of the raw image, reduced by the smoothing kernel (Σ k² = 1 / (4π s²))
    raw = np.sqrt(max(float(np.percentile(sm, 10)), 1e-12)) if noise == "poisson" else estimate_noise(data)
    noise = raw / (max(1.0, 2.0 * np.sqrt(np.pi) * s_px))
    noise = noise or float(np.std(sm)) * 1e-3
    level = float(np.percentile(sm, 10)) + threshold * noise
    dist = max(1, int(round(0.7 * min_separation / pixel_size)))
    peaks = peak_local_max(sm, min_distance=dist, threshold_abs=level, exclude_border=1,
                           labels=None if mask is None else np.asarray(mask, bool).astype(np.uint8))
    if len(peaks) == 0:
        raise AnalysisError("no atomic columns found: the image has no peaks above the noise "
                            f"(threshold {threshold} σ); check the pixel size and the image kind, or lower --threshold")
    # parabolic sub-pixel start
    y, x = peaks[:, 0], peaks[:, 1]
    ny, nx = sm.shape
    xm, xp = np.clip(x - 1, 0, nx - 1), np.clip(x + 1, 0, nx - 1)
    ym, yp = np.clip(y - 1, 0, ny - 1), np.clip(y + 1, 0, ny - 1)
    c = sm[y, x]
    dx = (sm[y, xm] - sm[y, xp]) / (2 * (sm[y, xm] - 2 * c + sm[y, xp]) - 1e-300)
    dy = (sm[ym, x] - sm[yp, x]) / (2 * (sm[ym, x] - 2 * c + sm[yp, x]) - 1e-300)
    return np.column_stack([x + np.clip(dx, -0.5, 0.5), y + np.clip(dy, -0.5, 0.5)])


@dataclass(frozen=True)
class ColumnFit:
    """Refined columns; lengths in pixels unless the name says Å.

    Attributes
    ----------
    x, y
        Column positions (px; x right, y down, pixel centres at integers).
    amplitude, width, background
        Peak height (image units), Gaussian width s (standard deviation, px) and local
        background of each column.
    sigma_x, sigma_y, sigma_amplitude, sigma_width
        Cramér–Rao standard errors of those parameters at the estimate.
    volume, sigma_volume
        Integrated intensity 2π A s² (image units × px²) and its standard error.
    converged
        The column converged inside its trust region.
    significance
        A / σ_A with the width held at its fitted value (the detection statistic: a noise
        bump has a poorly determined width, which would hide a real but faint column).
    iterations
        Jacobi sweeps used.
    noise_model, noise_sigma
        ``"poisson"`` or ``"gaussian"``; the pixel noise of the Gaussian model.
    """

    x: np.ndarray
    y: np.ndarray
    amplitude: np.ndarray
    width: np.ndarray
    background: np.ndarray
    sigma_x: np.ndarray
    sigma_y: np.ndarray
    sigma_amplitude: np.ndarray
    sigma_width: np.ndarray
    volume: np.ndarray
    sigma_volume: np.ndarray
    converged: np.ndarray
    significance: np.ndarray
    iterations: int
    noise_model: str
    noise_sigma: float | None
    params: np.ndarray | None = None  # raw parameters per column (x, y, A, s, b[, slopes]), for a warm refit
    start_width: float | None = None  # start width (px) that set the fit windows

    def __len__(self) -> int:
        return len(self.x)


class _Windows:
    """Square windows around fixed centres, with their flat image indices."""

    def __init__(self, shape: tuple[int, int], centres: np.ndarray, r: int):
        ny, nx = shape
        off = np.arange(-r, r + 1)
        self.cx = np.clip(np.rint(centres[:, 0]).astype(int), 0, nx - 1)
        self.cy = np.clip(np.rint(centres[:, 1]).astype(int), 0, ny - 1)
        X = self.cx[:, None, None] + off[None, None, :]
        Y = self.cy[:, None, None] + off[None, :, None]
        self.inside = (X >= 0) & (X < nx) & (Y >= 0) & (Y < ny)
        self.X = X.astype(float) + np.zeros_like(Y)  # (n, w, w)
        self.Y = Y.astype(float) + np.zeros_like(X)
        self.flat = (np.clip(Y, 0, ny - 1) * nx + np.clip(X, 0, nx - 1))
        self.size = ny * nx
        self.r = r
        self.shape = shape

        self.flat_inside = self.flat[self.inside]

    def scatter(self, values: np.ndarray) -> np.ndarray:
        """Sum per-window values into a flat image."""
        return np.bincount(self.flat_inside, values[self.inside], self.size)


class _View:
    """The window arrays of a subset of columns (a slice gives views, an index array copies)."""

    def __init__(self, W, sel):
        self.X, self.Y, self.cx, self.cy, self.inside = W.X[sel], W.Y[sel], W.cx[sel], W.cy[sel], W.inside[sel]


def _unit_gaussian(W, p: np.ndarray, rows=slice(None)) -> np.ndarray:
    """Each column's unit-height Gaussian on its window, shape (n, w, w) (``rows``: of those columns).

    The window axes are the image axes, so the 2D Gaussian is the outer product of two 1D
    ones: 2w exponentials per column instead of w² (the exponentials were most of the time
    of a refinement).
    """
    k = 1.0 / (2.0 * p[:, 3, None] ** 2)
    ex = np.exp(-((W.X[rows, 0, :] - p[:, 0, None]) ** 2) * k)
    ey = np.exp(-((W.Y[rows, :, 0] - p[:, 1, None]) ** 2) * k)
    return ey[:, :, None] * ex[:, None, :]


def _gauss(W: _Windows, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    x, y = p[:, 0, None, None], p[:, 1, None, None]
    dx, dy = W.X - x, W.Y - y
    return _unit_gaussian(W, p), dx, dy, dx * dx + dy * dy


def _model_and_jac(W: _Windows, p: np.ndarray, others: np.ndarray, plane: bool, want_jac: bool = True, e=None):
    if not want_jac:  # the model only: no coordinate differences needed
        e = _unit_gaussian(W, p) if e is None else e
        dx = dy = r2 = None
    elif e is None:
        e, dx, dy, r2 = _gauss(W, p)
    else:  # the Gaussian at p was already evaluated (e.g. by _others): only the cheap parts
        dx, dy = W.X - p[:, 0, None, None], W.Y - p[:, 1, None, None]
        r2 = dx * dx + dy * dy
    a, s = p[:, 2, None, None], p[:, 3, None, None]
    g = a * e
    mu = others + g + p[:, 4, None, None]
    if plane:
        mu = mu + p[:, 5, None, None] * (W.X - W.cx[:, None, None]) + p[:, 6, None, None] * (W.Y - W.cy[:, None, None])
    if not want_jac:
        return mu, g, None
    s2 = s * s
    cols = [g * dx / s2, g * dy / s2, e, g * r2 / (s2 * s), np.ones_like(e)]
    if plane:
        cols += [W.X - W.cx[:, None, None], W.Y - W.cy[:, None, None]]
    J = np.stack(cols, axis=-1)  # (n, w, w, k)
    return mu, g, J


def _nll(d: np.ndarray, mu: np.ndarray, inside: np.ndarray, noise: str) -> np.ndarray:
    if noise == "poisson":
        m = np.maximum(mu, 1e-12)
        val = m - d * np.log(m)
    else:
        val = 0.5 * (d - mu) ** 2
    return np.where(inside, val, 0.0).sum(axis=(1, 2))


def _weights(mu: np.ndarray, inside: np.ndarray, noise: str, noise_var: float = 1.0) -> np.ndarray:
    """Per-pixel Fisher weights: 1/μ (Poisson) or 1/σ² (Gaussian), zero outside the image."""
    w = (1.0 / np.maximum(mu, 1e-12)) if noise == "poisson" else np.full_like(mu, 1.0 / noise_var)
    return np.where(inside, w, 0.0)


def _fisher(J: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Fisher matrix Jᵀ W J of every window, shape (n, k, k)."""
    n, k = J.shape[0], J.shape[-1]
    Jf = J.reshape(n, -1, k)
    return np.matmul((Jf * w.reshape(n, -1, 1)).transpose(0, 2, 1), Jf)


def _initial_width(data, pos, r, noise, plane) -> float:
    """Median Gaussian width (px) of the brightest, best isolated columns."""
    from scipy.spatial import cKDTree

    d, _ = cKDTree(pos).query(pos, k=2)
    nn = d[:, 1]
    ny, nx = data.shape
    peak = data[np.clip(np.rint(pos[:, 1]).astype(int), 0, ny - 1), np.clip(np.rint(pos[:, 0]).astype(int), 0, nx - 1)]
    order = np.argsort(-peak)[: max(10, len(pos) // 10)]
    sel = order[nn[order] >= np.median(nn)] if len(order) > 20 else order
    sub = _refine(data, pos[sel], width0=max(1.0, 0.2 * float(np.median(nn))), r=r, noise=noise, plane=plane,
                  max_iter=30, tol=1e-3, fixed_others=False, width_bounds=(0.05, 10.0))
    ok = sub["converged"] & (sub["p"][:, 3] > 0.3) & (sub["p"][:, 3] < r)
    if not ok.any():
        raise AnalysisError("column refinement failed on the brightest columns; check the pixel size "
                            "(columns should be several pixels wide) and the image kind")
    return float(np.median(sub["p"][ok, 3]))


def _others(W: _Windows, W2: _Windows, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sum of all other columns' Gaussians on each fit window (model image built on the wider
    W2), and each column's own unit Gaussian on its fit window (a slice of the W2 one: both
    windows share their centres)."""
    e2 = _unit_gaussian(W2, p)
    S = W2.scatter(p[:, 2, None, None] * e2)
    o = W2.r - W.r
    e = e2[:, o:o + 2 * W.r + 1, o:o + 2 * W.r + 1]
    return np.where(W.inside, S[W.flat] - p[:, 2, None, None] * e, 0.0), e


class _ModelImage:
    """The model image of all columns, kept up to date incrementally between sweeps.

    A sweep moves only the active columns; recomputing every column's Gaussian each sweep
    (:func:`_others`) cost most of a refinement. Here only the columns whose position,
    amplitude or width changed are re-evaluated and their difference scattered into the image.
    """

    def __init__(self, W: _Windows, W2: _Windows, p: np.ndarray):
        self.W, self.W2 = W, W2
        self.p = p[:, :4].copy()
        self.e2 = _unit_gaussian(W2, p)
        self.S = W2.scatter(p[:, 2, None, None] * self.e2)
        self.o = W2.r - W.r

    def update(self, p: np.ndarray) -> None:
        """Bring the image to parameters ``p`` (only changed columns are recomputed)."""
        changed = np.flatnonzero((p[:, :4] != self.p).any(axis=1))
        if not changed.size:
            return
        e2 = _unit_gaussian(self.W2, p[changed], changed)
        delta = p[changed, 2, None, None] * e2 - self.p[changed, 2, None, None] * self.e2[changed]
        inside = self.W2.inside[changed]
        self.S += np.bincount(self.W2.flat[changed][inside], delta[inside], self.W2.size)
        self.e2[changed] = e2
        self.p[changed] = p[changed, :4]

    def others(self, rows) -> tuple[np.ndarray, np.ndarray]:
        """:func:`_others` for the columns ``rows`` (a slice or an index array)."""
        w = 2 * self.W.r + 1
        e = self.e2[rows, self.o:self.o + w, self.o:self.o + w]
        a = self.p[rows, 2, None, None]
        return np.where(self.W.inside[rows], self.S[self.W.flat[rows]] - a * e, 0.0), e


def _start_parameters(d: np.ndarray, W: _Windows, pos: np.ndarray, width0: float, noise: str, plane: bool) -> np.ndarray:
    """Start parameters (x, y, amplitude, width, background[, plane slopes]) of every column.

    The start amplitude is the Gaussian-weighted mean of the window (weights of width
    width0/2) over the peak value of that kernel, not one noisy pixel: a high single-pixel
    start makes the neighbours over-explain a weak column, whose amplitude then collapses.
    """
    n = len(pos)
    p = np.zeros((n, 7 if plane else 5))
    p[:, 0], p[:, 1] = pos[:, 0], pos[:, 1]
    bg0 = np.percentile(np.where(W.inside, d, np.nan).reshape(n, -1), 10, axis=1) if n else np.zeros(0)
    bg0 = np.nan_to_num(bg0)
    r2 = (W.X - pos[:, 0, None, None]) ** 2 + (W.Y - pos[:, 1, None, None]) ** 2
    e0 = np.where(W.inside, np.exp(-r2 / (2 * (0.5 * width0) ** 2)), 0.0)
    ew = e0 * np.exp(-r2 / (2 * width0**2))
    peak = (e0 * d).sum(axis=(1, 2)) / np.maximum(e0.sum(axis=(1, 2)), 1e-12)
    gain = ew.sum(axis=(1, 2)) / np.maximum(e0.sum(axis=(1, 2)), 1e-12)  # mean of the unit Gaussian under e0
    p[:, 2] = np.maximum((peak - bg0) / np.maximum(gain, 1e-3), 1e-3 * (np.abs(peak).max() + 1e-12))
    p[:, 3] = width0
    p[:, 4] = bg0 if noise == "gaussian" else np.maximum(bg0, 1e-3 * np.maximum(p[:, 2], 1e-12))
    return p


@dataclass
class _Sweeper:
    """State of the Jacobi/LM sweeps of :func:`_refine`: parameters, damping and convergence per column."""

    W: _Windows
    d: np.ndarray
    p: np.ndarray
    start: np.ndarray
    noise: str
    plane: bool
    width0: float
    reach: float
    width_bounds: tuple[float, float]
    tol: float
    tol_rel: float
    noise_var: float
    settle: int

    def __post_init__(self) -> None:
        n, k = self.p.shape
        self.lam = np.full(n, 1e-3)
        self.converged = np.zeros(n, bool)
        self.eye = np.eye(k)

    def _thresholds(self, F: np.ndarray, diag: np.ndarray) -> np.ndarray:
        """Position-step thresholds (px): ``tol`` or ``tol_rel`` × the column's own standard error."""
        thr = np.full((len(F), 2), float(self.tol))
        if self.tol_rel > 0:
            try:
                var = np.einsum("nkk->nk", np.linalg.inv(F + 1e-12 * (diag[:, :, None] + 1e-300) * self.eye))[:, :2]
            except np.linalg.LinAlgError:
                var = np.einsum("nkk->nk", np.linalg.pinv(F))[:, :2]
            thr = np.maximum(thr, self.tol_rel * np.sqrt(np.clip(var * self.noise_var, 0, None)))
        return thr

    def _trial(self, ps: np.ndarray, step: np.ndarray, start: np.ndarray) -> np.ndarray:
        """The stepped parameters inside the trust region.

        A column stays within ``reach`` px of its start and its width within
        ``width_bounds`` × the image's column width, so that at low counts a column cannot
        collapse onto one noisy pixel or slide onto a neighbour.
        """
        wlo, whi = self.width_bounds
        trial = ps + step
        trial[:, 0] = np.clip(trial[:, 0], start[:, 0] - self.reach, start[:, 0] + self.reach)
        trial[:, 1] = np.clip(trial[:, 1], start[:, 1] - self.reach, start[:, 1] + self.reach)
        trial[:, 3] = np.clip(trial[:, 3], max(wlo * self.width0, 0.25), whi * self.width0)
        trial[:, 2] = np.maximum(trial[:, 2], 1e-9 * np.maximum(np.abs(ps[:, 2]), 1e-12))
        if self.noise == "poisson" and not self.plane:  # expected counts stay positive
            trial[:, 4] = np.maximum(trial[:, 4], 1e-6 * trial[:, 2])
        return trial

    def _system(self, F: np.ndarray, diag: np.ndarray, lam: np.ndarray, it: int) -> np.ndarray:
        """Damped Fisher matrices; while settling, the position rows and columns are held."""
        A = F + (lam[:, None, None] * self.eye[None]) * (diag[:, :, None] + 1e-12)
        if it <= self.settle:
            A[:, :2, :] = 0.0
            A[:, :, :2] = 0.0
            A[:, 0, 0] = A[:, 1, 1] = 1.0
        return A

    def sweep(self, sl, others: np.ndarray, e_own, it: int) -> None:
        """One damped Fisher-scoring step of the columns in ``sl`` (in place on p, lam, converged).

        ``others`` and ``e_own`` are the rows of those columns (the other columns' model and
        the column's own unit Gaussian on its window; ``e_own`` None: evaluate it). Every
        column steps every sweep (a neighbour's move changes its optimum); it counts as
        converged when its accepted step is small in the same sweep as all others.
        """
        Wv = _View(self.W, sl)
        ps, ds = self.p[sl], self.d[sl]
        lam_s, conv_s, start = self.lam[sl], self.converged[sl], self.start[sl]
        self._step(Wv, ps, ds, others, lam_s, conv_s, start, e_own, it)
        if not isinstance(sl, slice):  # an index array gave copies: write them back
            self.p[sl], self.lam[sl], self.converged[sl] = ps, lam_s, conv_s

    def _step(self, Wv, ps: np.ndarray, ds: np.ndarray, os_: np.ndarray, lam_s: np.ndarray, conv_s: np.ndarray,
              start: np.ndarray, e_own, it: int) -> None:
        """:meth:`sweep` on the arrays of its columns (``ps``, ``lam_s``, ``conv_s`` updated in place)."""
        m, k = ps.shape
        mu, _, J = _model_and_jac(Wv, ps, os_, self.plane, e=e_own)
        f0 = _nll(ds, mu, Wv.inside, self.noise)
        wgt = _weights(mu, Wv.inside, self.noise)
        grad = np.matmul(J.reshape(m, -1, k).transpose(0, 2, 1), ((ds - mu) * wgt).reshape(m, -1, 1))[..., 0]
        F = _fisher(J, wgt)
        diag = np.einsum("nkk->nk", F)
        thr = self._thresholds(F, diag)
        if it <= self.settle:  # first sweeps: positions held, amplitudes/widths/backgrounds settle
            grad[:, :2] = 0.0
        conv_s[:] = False
        act = np.arange(m)
        for _ in range(6):  # Levenberg–Marquardt: shrink the step until the window likelihood improves
            A = self._system(F[act], diag[act], lam_s[act], it)
            try:
                step = np.linalg.solve(A, grad[act, :, None])[..., 0]
            except np.linalg.LinAlgError:  # a degenerate window: pseudo-inverse for the batch
                step = (np.linalg.pinv(A) @ grad[act, :, None])[..., 0]
            trial = self._trial(ps[act], step, start[act])
            Wa = _View(Wv, act)
            mu_t, *_ = _model_and_jac(Wa, trial, os_[act], self.plane, want_jac=False)
            bad_mu = ((np.where(Wa.inside, mu_t, 1.0) <= 0).any(axis=(1, 2)) if self.noise == "poisson"
                      else np.zeros(act.size, bool))
            better = (_nll(ds[act], mu_t, Wa.inside, self.noise) <= f0[act] + 1e-12 * np.abs(f0[act])) & ~bad_mu
            upd = act[better]
            ps[upd] = trial[better]
            lam_s[upd] = np.maximum(lam_s[upd] * 0.3, 1e-7)
            if it > self.settle:
                small = (np.abs(step[:, 0]) < thr[act, 0]) & (np.abs(step[:, 1]) < thr[act, 1])
                conv_s[act[better & small]] = True
            act = act[~better]
            lam_s[act] *= 10.0
            if act.size == 0:
                break
        conv_s[act[lam_s[act] > 1e6]] = True  # no further progress possible


def _neighbour_lists(pos: np.ndarray, reach: float) -> list[np.ndarray]:
    """Indices of the columns within ``reach`` px of each column."""
    from scipy.spatial import cKDTree

    return [np.asarray(v, int) for v in cKDTree(pos).query_ball_point(pos, reach)]


def _refine(data, pos, *, width0, r, noise, plane, max_iter, tol, fixed_others=False, reach=None,
            width_bounds=None, tol_rel=0.0, noise_var=1.0, warm=None):
    """Jacobi/LM sweeps (module docstring); the returned Fisher matrix has unit Gaussian noise.

    ``noise_var`` is the variance of Gaussian pixel noise (image units²), used only to
    turn ``tol_rel`` into pixels; the column blocks run in parallel threads (NumPy
    releases the GIL in its array kernels).
    """
    n = len(pos)
    W = _Windows(data.shape, pos, r)
    # neighbours' tails reach further than the fit window: model image from 4-width windows
    W2 = _Windows(data.shape, pos, max(r, int(np.ceil(4.0 * width0))))
    d = np.where(W.inside, data.ravel()[W.flat], 0.0)
    p0 = _start_parameters(d, W, pos, width0, noise, plane) if warm is None else np.array(warm[0], float)
    sw = _Sweeper(W, d, p0, pos, noise, plane, width0,
                  float(r) if reach is None else float(reach), WIDTH_BOUNDS if width_bounds is None else width_bounds,
                  tol, tol_rel, noise_var, 0 if fixed_others or warm is not None else SETTLE_SWEEPS)
    threads = min(os.cpu_count() or 1, 8) if n >= 400 else 1
    pool = ThreadPoolExecutor(threads) if threads > 1 else None
    near = _neighbour_lists(pos, 2.0 * max(r, width0 * 4.0)) if not fixed_others else None
    try:
        it = 0
        sel = np.arange(n)
        if warm is not None:  # a warm refit: converged columns far from the changes stay as they are
            sw.converged[:] = warm[1]
            act = np.flatnonzero(warm[2])
            sel = np.unique(np.concatenate([act, *[near[k] for k in act]])) if len(act) and near is not None else sel
            if not len(sel):
                sel = np.arange(n)
        model = None if fixed_others else _ModelImage(W, W2, sw.p)
        for it in range(1, max_iter + 1):
            m = len(sel)
            whole = m == n
            rows = slice(None) if whole else sel
            if fixed_others:
                others, e_own = np.zeros_like(d[rows]), None
            else:
                model.update(sw.p)
                others, e_own = model.others(rows)
            size = -(-m // threads) if m else 1
            # chunks: (columns, rows of others / e_own); slices give views, index arrays copies
            chunks = ([(slice(a, min(a + size, n)), slice(a, min(a + size, n))) for a in range(0, n, size)] if whole
                      else [(sel[a:a + size], slice(a, min(a + size, m))) for a in range(0, m, size)])

            def run(chunk, others=others, e_own=e_own, it=it):
                cols, loc = chunk
                sw.sweep(cols, others[loc], None if e_own is None else e_own[loc], it)

            if pool is None or len(chunks) == 1:
                for c in chunks:
                    run(c)
            else:
                list(pool.map(run, chunks))
            if it > sw.settle and sw.converged.all():
                break
            if (it > sw.settle + 2 or warm is not None) and near is not None:
                # active set: the columns still moving and their neighbours (whose optimum a
                # moving neighbour shifts); a converged column far from any stays as it is
                moving = np.flatnonzero(~sw.converged)
                sel = np.unique(np.concatenate([moving, *[near[k] for k in moving]])) if len(moving) else moving
    finally:
        if pool is not None:
            pool.shutdown()
    # Fisher matrix at the estimate (with final neighbours) -> Cramér–Rao standard errors
    if fixed_others:
        others, e_own = np.zeros_like(d), None
    else:
        model.update(sw.p)
        others, e_own = model.others(slice(None))
    mu, _, J = _model_and_jac(W, sw.p, others, plane, e=e_own)
    F = _fisher(J, _weights(mu, W.inside, noise))
    return {"p": sw.p, "F": F, "converged": sw.converged, "iterations": it, "mu": mu, "d": d, "W": W, "width0": width0}


def refine_columns(data: np.ndarray, positions: np.ndarray, *, noise: str = "poisson", width: float | None = None,
                   window: int | None = None, background: str = "constant", max_iter: int = 50,
                   tol: float = 1e-4, tol_rel: float = 0.02, noise_sigma: float | None = None,
                   warm: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> ColumnFit:
    """Refine all columns of ``data`` by maximum likelihood (see module docstring).

    Parameters
    ----------
    data
        2D image (counts for ``noise="poisson"``; any units for ``"gaussian"``).
    positions
        Start positions ``(x_px, y_px)``, e.g. from :func:`find_columns`.
    noise
        ``"poisson"`` (counting data, HAADF) or ``"gaussian"`` (phase images).
    width
        Start Gaussian width in pixels (the standard deviation ``s`` of each column's
        Gaussian); default: estimated from the brightest isolated columns.
    window
        Half-width of the fit windows in pixels; default ``ceil(2.5 s)``.
    background
        ``"constant"`` or ``"plane"`` (a tilted plane per window: a smooth background).
    max_iter, tol, tol_rel
        At most ``max_iter`` Jacobi sweeps; a column is converged when its position step is
        below ``tol`` px or below ``tol_rel`` times its own position standard error (default
        2 %: further steps could not change any result beyond its error bar).
    noise_sigma
        Noise standard deviation for the Gaussian model; default :func:`estimate_noise` of the image.
    warm
        ``(params, converged, active)`` of a previous fit of the same columns
        (:attr:`ColumnFit.params`): start from those parameters and step only the
        ``active`` columns and their neighbours (e.g. those next to dropped columns).

    Returns
    -------
    ColumnFit
        Positions, amplitudes, widths and backgrounds with Cramér–Rao standard errors.
    """
    data, pos, plane = _check_refine_input(data, positions, noise, background)
    from scipy.spatial import cKDTree

    # median nearest-neighbour distance (px): sets the start window and the trust region
    nn_med = float(np.median(cKDTree(pos).query(pos, k=2)[0][:, 1])) if len(pos) > 1 else None
    if width is None:
        width = _initial_width(data, pos, max(3, int(np.ceil(0.5 * nn_med))), noise, plane) if nn_med else 2.0
    if width <= 0:
        raise InputError(f"width must be positive, got {width}")
    r = int(window) if window is not None else max(3, int(np.ceil(2.5 * width)))
    if nn_med is None:
        nn_med = 4.0 * r
    reach = min(float(r), max(1.5 * width, 0.2 * nn_med))
    if noise == "gaussian" and noise_sigma is None:
        # robust white-noise estimate from the image itself: residuals would also carry any
        # model misfit (unresolved columns) and inflate every uncertainty
        noise_sigma = estimate_noise(data) or None
    noise_var = 1.0 if noise == "poisson" or noise_sigma is None else noise_sigma**2
    res = _refine(data, pos, width0=width, r=r, noise=noise, plane=plane, max_iter=max_iter, tol=tol, reach=reach,
                  tol_rel=tol_rel, noise_var=noise_var, warm=warm)
    p = res["p"]
    moved = (np.abs(p[:, 0] - pos[:, 0]) >= reach - 1e-9) | (np.abs(p[:, 1] - pos[:, 1]) >= reach - 1e-9)
    conv = res["converged"] & ~moved
    if (~conv).any():
        log.info("%d of %d columns did not converge or left their window", int((~conv).sum()), len(p))
    return _column_fit(res, conv, noise, noise_sigma)


def _check_refine_input(data: np.ndarray, positions: np.ndarray, noise: str,
                        background: str) -> tuple[np.ndarray, np.ndarray, bool]:
    """The checked image, start positions (n, 2) and whether the background is a plane."""
    data = check_image(data)
    pos = np.asarray(positions, float)
    if pos.ndim != 2 or pos.shape[1] != 2 or len(pos) == 0:
        raise InputError(f"positions must be an (n, 2) array of (x_px, y_px) with n ≥ 1, got shape {pos.shape}")
    if noise not in NOISE_MODELS:
        raise InputError(f"unknown noise model {noise!r}; choose one of {', '.join(NOISE_MODELS)}")
    if background not in ("constant", "plane"):
        raise InputError(f"background must be 'constant' or 'plane', got {background!r}")
    if noise == "poisson" and (data < 0).any():
        raise InputError("the Poisson noise model needs non-negative counts; use noise='gaussian' for this image")
    return data, pos, background == "plane"


def _column_fit(res: dict, converged: np.ndarray, noise: str, noise_sigma: float | None) -> ColumnFit:
    """Cramér–Rao standard errors, volumes and significances of the refined columns.

    For Gaussian noise the Fisher matrix (unit noise) is divided by the noise variance:
    ``noise_sigma`` if known, else the residual variance of the fit windows.
    """
    p, F = res["p"], res["F"]
    noise_var = 1.0
    if noise == "gaussian":
        W = res["W"]
        if noise_sigma is None:  # estimate_noise gave 0 (a noiseless image): use the residuals
            resid = np.where(W.inside, res["d"] - res["mu"], 0.0)
            dof = max(1, int(W.inside.sum()) - p.size)
            noise_sigma = float(np.sqrt((resid**2).sum() / dof))
        noise_var = noise_sigma**2
        F = F / noise_var
    cov = np.linalg.pinv(F)
    var = np.einsum("nkk->nk", cov).clip(min=0)
    keep = [i for i in range(F.shape[1]) if i != 3]
    cov_fixed_width = np.linalg.pinv(F[:, keep][:, :, keep])
    a, w = p[:, 2], p[:, 3]
    signif = a / np.sqrt(np.maximum(cov_fixed_width[:, 2, 2], 1e-300))
    vol = 2 * np.pi * a * w * w
    # volume error by the delta method from the (A, w) block
    gvol = np.stack([2 * np.pi * w * w, 4 * np.pi * a * w], axis=1)
    var_vol = np.einsum("nk,nkl,nl->n", gvol, cov[:, 2:4, 2:4], gvol).clip(min=0)
    return ColumnFit(p[:, 0], p[:, 1], a, w, p[:, 4], np.sqrt(var[:, 0]), np.sqrt(var[:, 1]), np.sqrt(var[:, 2]),
                     np.sqrt(var[:, 3]), vol, np.sqrt(var_vol), converged, signif, res["iterations"], noise,
                     None if noise == "poisson" else float(np.sqrt(noise_var)), p.copy(), float(res["width0"]))


def cramer_rao_bound(shape: tuple[int, int], x: np.ndarray, y: np.ndarray, amplitude: np.ndarray, width: np.ndarray,
                     background: np.ndarray | float, *, noise: str = "poisson", noise_sigma: float | None = None,
                     window: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Cramér–Rao lower bound of the x and y position (px) of every column.

    The bound is computed for the actual image model: all columns present (their
    overlap enters the expected image μ), and per column the five unknowns position
    (x, y), amplitude, width and background, on the same window the fit uses
    (``ceil(2.5 s)`` unless given). ``F = Σ_pixels (∂μ/∂θ)(∂μ/∂θ)ᵀ / μ`` for Poisson data,
    ``/ σ_n²`` for Gaussian noise; the bound is ``sqrt(diag F⁻¹)``.

    Parameters
    ----------
    shape
        Image shape (rows, columns).
    x, y, amplitude, width, background
        True column parameters (px, image units).
    noise
        ``"poisson"`` or ``"gaussian"``.
    noise_sigma
        Pixel noise of the Gaussian model (required for it).
    window
        Half-width of the windows (px).

    Returns
    -------
    tuple of numpy.ndarray
        Bounds on x and y (px).

    Examples
    --------
    >>> bx, by = cramer_rao_bound((41, 41), [20.0], [20.0], [1000.0], [2.0], 10.0)
    >>> bool(0 < bx[0] < 0.1 and abs(bx[0] - by[0]) < 1e-9)
    True
    """
    x, y, a, s = (np.asarray(v, float) for v in (x, y, amplitude, width))
    b = np.broadcast_to(np.asarray(background, float), x.shape)
    if noise == "gaussian" and not noise_sigma:
        raise InputError("the Gaussian bound needs noise_sigma")
    r = int(window) if window is not None else max(3, int(np.ceil(2.5 * float(np.median(s)))))
    W = _Windows(shape, np.column_stack([x, y]), r)
    W2 = _Windows(shape, np.column_stack([x, y]), max(r, int(np.ceil(4.0 * float(np.max(s))))))
    p = np.column_stack([x, y, a, s, b])
    others, e_own = _others(W, W2, p)
    mu, g, J = _model_and_jac(W, p, others, plane=False, e=e_own)
    F = _fisher(J, _weights(mu, W.inside, noise, (noise_sigma or 1.0) ** 2))
    cov = np.linalg.pinv(F)
    return np.sqrt(cov[:, 0, 0]), np.sqrt(cov[:, 1, 1])


def fit_columns(data: np.ndarray, *, pixel_size: float, noise: str = "poisson", min_separation: float = 1.5,
                threshold: float = 4.0, significance: float = DEFAULT_SIGNIFICANCE, background: str = "constant",
                width: float | None = None, max_iter: int = 50) -> ColumnFit:
    """Find and refine the atomic columns of an image.

    Candidates from :func:`find_columns` are refined with :func:`refine_columns`; a
    candidate is kept only if its amplitude is at least ``significance`` times its
    Cramér–Rao standard error and it converged inside its window (noise peaks in vacuum
    fail this test), and the kept columns are refined again without the rejected ones.

    Parameters
    ----------
    data
        2D image (counts for ``noise="poisson"``).
    pixel_size
        Å per pixel.
    noise
        ``"poisson"`` (HAADF counts) or ``"gaussian"`` (phase images).
    min_separation, threshold
        Peak finding (:func:`find_columns`): closest columns (Å) and candidate height in
        noise standard deviations.
    significance
        A/σ_A a column must reach to be kept (default :data:`halex.units.DEFAULT_SIGNIFICANCE`,
        3). At 3 the weak pure-halide columns next to Pb survive; an occasional noise peak
        in the vacuum does too, and :func:`halex.stem.analysis.analyze_image` drops it
        because it sits on no lattice site. At 5 no noise peak survives on the images of
        the example, but one of its weak X columns is lost as well.
    background
        ``"constant"`` or ``"plane"``.
    width
        Start width (px); estimated when None.
    max_iter
        Jacobi sweeps per refinement.

    Returns
    -------
    ColumnFit

    Raises
    ------
    AnalysisError
        No column is significant.

    Examples
    --------
    >>> from halex.models import perovskite_nanocrystal
    >>> from halex.stem import simulate_image
    >>> image, truth = simulate_image(perovskite_nanocrystal((3, 3, 2)), pixel_size=0.15, dose=1e5, seed=0)
    >>> fit = fit_columns(image.data, pixel_size=image.pixel_size)
    >>> from scipy.spatial import cKDTree
    >>> d, _ = cKDTree(np.c_[fit.x, fit.y]).query(np.c_[truth["x_px"], truth["y_px"]])
    >>> bool(d.max() < 1.0)   # every column of the model is found, to within a pixel
    True
    """
    pos = find_columns(data, pixel_size=pixel_size, min_separation=min_separation, threshold=threshold, noise=noise)
    fit = refine_columns(data, pos, noise=noise, background=background, width=width, max_iter=max_iter)
    for _ in range(3):
        keep = fit.converged & (fit.significance >= significance) & (fit.amplitude > 0)
        if keep.all():
            break
        if not keep.any():
            raise AnalysisError(f"no column is significant at {significance} σ; the image may be too noisy or the pixel "
                                "size wrong")
        log.info("dropping %d of %d candidate columns (not significant at %.1f σ or not converged)",
                 int((~keep).sum()), len(keep), significance)
        pos = np.column_stack([fit.x[keep], fit.y[keep]])
        # warm refit: only the columns next to the dropped ones can move
        from scipy.spatial import cKDTree

        dropped = np.column_stack([fit.x[~keep], fit.y[~keep]])
        reach = 2.0 * max(int(np.ceil(2.5 * fit.start_width)), 3, 4.0 * fit.start_width)
        active = cKDTree(dropped).query(pos, distance_upper_bound=reach)[0] < np.inf
        refit = refine_columns(data, pos, noise=noise, background=background, width=fit.start_width, max_iter=max_iter,
                               warm=(fit.params[keep], fit.converged[keep], active))
        shift = np.hypot(refit.x - pos[:, 0], refit.y - pos[:, 1])
        wander = float(np.percentile(shift, 90)) > max(0.25, 2.0 * float(np.median(fit.sigma_x[keep])))
        if refit.converged.mean() < 0.9 or wander:
            # the likelihood is flat where the column model misfits the image (broad, overlapping
            # columns of an inverted bright-field image): dropping a few columns should move
            # only their neighbours, and a refit that moves most columns (or does not converge)
            # is wandering from a converged solution, so the kept columns of that pass are returned
            log.info("refit converged for %d of %d columns, 90 %% of them moved < %.2f px; keeping the previous pass",
                     int(refit.converged.sum()), len(pos), float(np.percentile(shift, 90)))
            return _subset(fit, keep)
        fit = refit
    return fit


def _subset(fit: ColumnFit, keep: np.ndarray) -> ColumnFit:
    """The columns ``keep`` of ``fit`` (per-column arrays sliced, scalars kept)."""
    import dataclasses

    n = len(fit.x)
    return dataclasses.replace(fit, **{f.name: getattr(fit, f.name)[keep] for f in dataclasses.fields(fit)
                                       if isinstance(getattr(fit, f.name), np.ndarray) and getattr(fit, f.name).shape[:1] == (n,)})


def volumes_at_fixed_width(data: np.ndarray, x: np.ndarray, y: np.ndarray, amplitude: np.ndarray, width: np.ndarray,
                           background: np.ndarray, fixed_width: np.ndarray, *, noise: str = "poisson",
                           noise_sigma: float | None = None, fixed_background: np.ndarray | None = None,
                           ) -> tuple[np.ndarray, np.ndarray]:
    """Column volumes ``2π A s²`` with each column's width fixed at ``fixed_width`` px (e.g.
    the median width of its sublattice) and only amplitude and background re-estimated at
    the given positions.

    Amplitude and width of one Gaussian are strongly anti-correlated, so the volume of a
    free-width fit carries the noise of both; with the width fixed the amplitude is a
    linear least-squares estimate per window (the other columns held at ``amplitude``,
    ``width``), several times less noisy at low dose. Positions may include sites where no
    column was detected (amplitude 0): their volume is measured all the same. With
    ``fixed_background`` (per column, e.g. the local median of the fitted backgrounds) only
    the amplitude is estimated, which removes the amplitude–background correlation of a
    small window. Used for telling Cl from I columns by their intensity. Returns
    ``(volume, sigma_volume)``.
    """
    data = check_image(data)
    x, y = np.asarray(x, float), np.asarray(y, float)
    w = np.broadcast_to(np.asarray(fixed_width, float), x.shape).copy()
    if np.any(~np.isfinite(w)) or np.any(w <= 0):
        raise InputError("fixed widths must be positive and finite (px)")
    if noise not in NOISE_MODELS:
        raise InputError(f"unknown noise model {noise!r}")
    amp = np.nan_to_num(np.asarray(amplitude, float))
    wid = np.where(np.isfinite(width), width, w)
    bg = np.asarray(background, float)
    pos = np.column_stack([x, y])
    r = max(3, int(np.ceil(2.5 * float(np.max(w)))))
    W = _Windows(data.shape, pos, r)
    W2 = _Windows(data.shape, pos, max(r, int(np.ceil(4.0 * float(np.max(wid))))))
    p = np.column_stack([x, y, amp, wid, np.nan_to_num(bg)])
    others, e_fit = _others(W, W2, p)
    d = np.where(W.inside, data.ravel()[W.flat], 0.0)
    e = _unit_gaussian(W, np.column_stack([x, y, np.ones_like(x), w]))
    n = len(x)
    if noise == "poisson":  # one weighted (IRLS) step at the current model's variance
        b = bg.copy()
        nob = ~np.isfinite(b)  # no fitted background (e.g. a predicted site): the window's median residual
        if nob.any():
            b[nob] = np.nanmedian(np.where(W.inside[nob], d[nob] - others[nob], np.nan).reshape(int(nob.sum()), -1), axis=1)
        mu = others + amp[:, None, None] * e_fit + b[:, None, None]
        wgt = _weights(np.maximum(mu, 1e-3), W.inside, "poisson")
        s2 = 1.0
    else:
        wgt = np.where(W.inside, 1.0, 0.0)
        s2 = (noise_sigma if noise_sigma is not None else estimate_noise(data)) ** 2
    target = d - others
    if fixed_background is not None:
        target = target - np.asarray(fixed_background, float)[:, None, None]
        J = e.reshape(n, -1, 1)
    else:
        J = np.stack([e, np.ones_like(e)], axis=-1).reshape(n, -1, 2)
    k = J.shape[-1]
    Jw = J * wgt.reshape(n, -1, 1)
    G = np.matmul(Jw.transpose(0, 2, 1), J)
    rhs = np.matmul(Jw.transpose(0, 2, 1), target.reshape(n, -1, 1))[..., 0]
    G = G + 1e-12 * np.trace(G, axis1=1, axis2=2)[:, None, None] * np.eye(k)
    sol = np.linalg.solve(G, rhs[..., None])[..., 0]
    cov = np.linalg.inv(G) * s2
    a, sa = sol[:, 0], np.sqrt(np.clip(cov[:, 0, 0], 0, None))
    return 2 * np.pi * a * w**2, 2 * np.pi * sa * w**2
