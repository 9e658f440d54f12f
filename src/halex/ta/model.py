"""Kinetic models for transient absorption: exponentials convolved with a Gaussian IRF.

The instrument response is a Gaussian of standard deviation σ (FWHM = 2√(2 ln 2) σ)
centred at the time zero t0. A decay ``exp(−t/τ)`` for t ≥ 0 convolved with it is

.. math::

    g(t; τ, σ) = ½ \\exp\\!\\left(\\frac{σ^2}{2τ^2} - \\frac{t}{τ}\\right)
                 \\operatorname{erfc}\\!\\left(\\frac{σ/τ - t/σ}{\\sqrt 2}\\right),

evaluated through the scaled complementary error function (``erfcx``) where the plain
form would overflow. A long-lived (``τ = ∞``) component is the step ``½ erfc(−t/(√2 σ))``.
Rises need no separate term: a rise with time τ_r into a state decaying with τ_d is
``A (g(τ_d) − g(τ_r))``, i.e. two components with opposite amplitudes, which the linear
amplitude solve finds by itself.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.special import erfc, erfcx

__all__ = ["FWHM_PER_SIGMA", "exp_conv_gauss", "step_conv_gauss", "artifact_columns", "basis", "sequential_matrix"]

FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))


def exp_conv_gauss(t: np.ndarray | float, tau: float, sigma: float) -> np.ndarray:
    """``exp(−t/τ)·H(t)`` convolved with a unit-area Gaussian of width σ (module docstring).

    Parameters
    ----------
    t : array_like
        Delays (any time unit, e.g. ps).
    tau : float
        Lifetime τ, same unit as ``t``.
    sigma : float
        IRF standard deviation σ (FWHM / 2.3548), same unit.

    Returns
    -------
    numpy.ndarray
        g(t; τ, σ), same shape as ``t``; for t ≫ σ it is exp(σ²/2τ² − t/τ) (the example).

    Examples
    --------
    >>> round(float(exp_conv_gauss(10.0, 5.0, 0.1)), 4), round(float(np.exp(-2)), 4)
    (0.1354, 0.1353)
    """
    t = np.asarray(t, float)
    z = (sigma / tau - t / sigma) / np.sqrt(2.0)
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        big = 0.5 * np.exp(-0.5 * (t / sigma) ** 2) * erfcx(np.maximum(z, 0.0))
        small = 0.5 * np.exp(np.minimum(0.5 * (sigma / tau) ** 2 - t / tau, 700.0)) * erfc(np.minimum(z, 0.0))
    return np.where(z > 0, big, small)


def step_conv_gauss(t: np.ndarray | float, sigma: float) -> np.ndarray:
    """Heaviside step convolved with a unit-area Gaussian of width σ: ``½ erfc(−t/(√2 σ))``.

    Parameters
    ----------
    t : array_like
        Delays (any time unit).
    sigma : float
        IRF standard deviation, same unit.

    Returns
    -------
    numpy.ndarray
        0 long before, ½ at and 1 long after time zero.

    Examples
    --------
    >>> step_conv_gauss([-1.0, 0.0, 1.0], 0.1).round(3).tolist()
    [0.0, 0.5, 1.0]
    """
    return 0.5 * erfc(-np.asarray(t, float) / (np.sqrt(2.0) * sigma))


def artifact_columns(t: np.ndarray, sigma: float, order: int) -> list[np.ndarray]:
    """Coherent-artifact shapes: the Gaussian IRF and its first ``order`` derivatives.

    The coherent artifact (cross-phase modulation, two-photon absorption and stimulated
    Raman of the solvent while pump and probe overlap) lives only within the pulse overlap;
    its shape is well described by the IRF and its first two time derivatives
    (Lorenc et al., Appl. Phys. B 74, 19 (2002); the same three terms as pyglotaran's
    coherent-artifact megacomplex). Each column is dimensionless, of order one at its
    extremum, so that its amplitude is in ΔA units:
    ``G0 = exp(−x²/2)``, ``G1 = −x G0``, ``G2 = (x² − 1) G0`` with ``x = t/σ``.

    Parameters
    ----------
    t : array_like
        Delays relative to time zero (ps), any shape.
    sigma : float
        IRF standard deviation (ps).
    order : int
        Highest derivative (0, 1 or 2).

    Returns
    -------
    list of numpy.ndarray
        ``order + 1`` arrays shaped like ``t``.

    Examples
    --------
    >>> [float(c) for c in artifact_columns(np.array(0.0), 0.1, 2)]
    [1.0, -0.0, -1.0]
    """
    x = np.asarray(t, float) / sigma
    g0 = np.exp(-0.5 * np.minimum(x * x, 1400.0))
    return [g0, -x * g0, (x * x - 1.0) * g0][: order + 1]


def basis(t: np.ndarray, t0: float | np.ndarray, lifetimes: Sequence[float], sigma: float, *,
          offset: bool = False, artifact: int | None = None) -> np.ndarray:
    """Columns ``g(t − t0; τ_k, σ)`` (plus a step if ``offset``); ``t0`` may vary per row.

    Parameters
    ----------
    t : (n_t,) array
        Delays (ps).
    t0 : float or (n_w,) array
        Time zero (per wavelength for a chirped map), ps.
    lifetimes : sequence of float
        τ_k, same unit as ``t``.
    sigma : float
        IRF standard deviation.
    offset
        Append a non-decaying column (the step).
    artifact
        Append the coherent-artifact columns of :func:`artifact_columns` up to this
        derivative order (None: none).

    Returns
    -------
    numpy.ndarray
        ``(n_t, n_c)`` for a scalar t0, ``(n_w, n_t, n_c)`` for an array; the columns are
        the decays, then the step, then the artifact terms.

    Examples
    --------
    >>> basis(np.linspace(-1, 5, 7), 0.0, [1.0, 10.0], 0.1, offset=True).shape
    (7, 3)
    """
    t0 = np.asarray(t0, float)
    tt = np.asarray(t, float)[None, :] - np.atleast_1d(t0)[:, None]
    cols = [exp_conv_gauss(tt, tau, sigma) for tau in lifetimes]
    if offset:
        cols.append(step_conv_gauss(tt, sigma))
    if artifact is not None:
        cols.extend(artifact_columns(tt, sigma, artifact))
    out = np.stack(cols, axis=-1)
    return out[0] if t0.ndim == 0 else out


def sequential_matrix(lifetimes: Sequence[float]) -> np.ndarray:
    """Matrix B with ``DAS = B @ EAS`` for the sequential scheme 1 → 2 → … → n.

    Lifetimes are those of the compartments in order (use ``np.inf`` for a final
    non-decaying one). ``c_j(t) = Σ_i B[i, j] exp(−k_i t)`` with
    ``B[i, j] = Π_{m<j} k_m / Π_{m≤j, m≠i} (k_m − k_i)`` for i ≤ j (the Bateman solution).

    Parameters
    ----------
    lifetimes : sequence of float
        τ of each compartment (ps), all different.

    Returns
    -------
    numpy.ndarray
        Upper-triangular (n, n) matrix.

    Examples
    --------
    >>> sequential_matrix([1.0, np.inf]).round(3).tolist()
    [[1.0, -1.0], [0.0, 1.0]]
    """
    k = np.array([0.0 if np.isinf(tau) else 1.0 / tau for tau in lifetimes])
    n = k.size
    b = np.zeros((n, n))
    for j in range(n):
        num = np.prod(k[:j])
        for i in range(j + 1):
            den = np.prod([k[m] - k[i] for m in range(j + 1) if m != i])
            b[i, j] = num / den
    return b
