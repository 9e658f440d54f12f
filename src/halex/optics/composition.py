"""Halide composition X_Cl = [Cl] / ([Cl] + [I]) × 100 (SPEC §6).

From EDX: the Cliff–Lorimer ratio method, ``C_A / C_B = k_AB · I_A / I_B`` (G. Cliff,
G. W. Lorimer, J. Microsc. 103, 203 (1975)). Without calibrated k-factors (the default,
k = 1) the result is an uncalibrated atomic ratio of the line counts: give
``k_factors`` from a standard of known composition (e.g. a pristine CsPbCl3 /
CsPbI3 sample) for quantitative work. The error bar is counting statistics only
(√N per line, background already subtracted by the acquisition software).

From a model: count the Cl and I atoms, optionally in one domain (``perovskite``,
``chalcohalide``) of the per-atom ``domain`` array.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols

from halex.errors import InputError

__all__ = ["x_cl_from_counts", "x_cl_from_model", "parse_counts"]


def parse_counts(text: str) -> dict[str, float]:
    """``"Cl=1200,I=800"`` → ``{"Cl": 1200.0, "I": 800.0}`` with checks.

    Parameters
    ----------
    text
        Comma-separated ``ELEMENT=NUMBER`` pairs (the CLI's ``--edx-counts``).

    Returns
    -------
    dict
        Element → number.

    Examples
    --------
    >>> parse_counts("Cl=1200, I=800")
    {'Cl': 1200.0, 'I': 800.0}
    """
    out: dict[str, float] = {}
    for item in text.replace(";", ",").split(","):
        item = item.strip()
        if not item:
            continue
        if "=" not in item:
            raise InputError(f"EDX entry {item!r} must look like Element=counts, e.g. Cl=1200")
        el, val = (s.strip() for s in item.split("=", 1))
        try:
            out[el] = float(val)
        except ValueError:
            raise InputError(f"EDX counts for {el} must be a number, got {val!r}") from None
    return out


def x_cl_from_counts(counts: dict[str, float], *, k_factors: dict[str, float] | None = None) -> dict:
    """X_Cl (%) and its counting-statistics error from Cl and I line counts.

    ``X_Cl = k_Cl N_Cl / (k_Cl N_Cl + k_I N_I) × 100`` (SPEC §6), with Cliff–Lorimer
    k-factors (1 when not calibrated) and Poisson errors on the counts propagated.

    Parameters
    ----------
    counts
        ``{"Cl": N_Cl, "I": N_I}`` (other elements are refused).
    k_factors
        Cliff–Lorimer factors for Cl and I.

    Returns
    -------
    dict
        ``x_cl_percent``, ``x_cl_err_percent``, the k-factors, whether they were calibrated,
        and the counts.

    Examples
    --------
    >>> r = x_cl_from_counts({"Cl": 1200, "I": 800})
    >>> round(r["x_cl_percent"], 1), round(r["x_cl_err_percent"], 1)
    (60.0, 1.1)
    """
    for el, n in counts.items():
        if el not in chemical_symbols[1:]:
            raise InputError(f"unknown element {el!r} in the EDX counts")
        if not np.isfinite(n) or n < 0:
            raise InputError(f"EDX counts must be non-negative, got {el}={n}")
    if "Cl" not in counts or "I" not in counts:
        raise InputError("EDX counts must include both Cl and I (e.g. Cl=1200,I=800)")
    k = {"Cl": 1.0, "I": 1.0, **(k_factors or {})}
    for el in ("Cl", "I"):
        if not k[el] > 0:
            raise InputError(f"k-factor of {el} must be positive, got {k[el]}")
    ncl, ni = counts["Cl"], counts["I"]
    if ncl + ni <= 0:
        raise InputError("Cl and I counts are both zero: nothing to quantify")
    a, b = k["Cl"] * ncl, k["I"] * ni
    x = a / (a + b)
    # d x / d N_Cl = k_Cl b / (a+b)^2, d x / d N_I = -k_I a / (a+b)^2; var N = N
    err = np.sqrt((k["Cl"] * b) ** 2 * ncl + (k["I"] * a) ** 2 * ni) / (a + b) ** 2
    return {"x_cl_percent": float(100 * x), "x_cl_err_percent": float(100 * err), "k_factors": {"Cl": k["Cl"], "I": k["I"]},
            "calibrated": k_factors is not None, "counts": {"Cl": ncl, "I": ni}}


def x_cl_from_model(atoms: Atoms, *, domain: str | None = None) -> dict:
    """X_Cl (%) of a model, whole or one ``domain``.

    Parameters
    ----------
    atoms
        A model; ``domain`` needs the per-atom ``domain`` array.
    domain
        ``"perovskite"`` or ``"chalcohalide"``; the whole model when None.

    Returns
    -------
    dict
        ``x_cl_percent``, ``n_cl``, ``n_i``, ``domain``.

    Examples
    --------
    >>> from halex.models import exchange_layers, perovskite_nanocrystal
    >>> nc = exchange_layers(perovskite_nanocrystal((2, 2, 2)), 1, start="bottom")
    >>> r = x_cl_from_model(nc)
    >>> r["n_cl"] + r["n_i"] == 36
    True
    """
    sym = np.array(atoms.get_chemical_symbols())
    mask = np.ones(len(atoms), bool)
    if domain is not None:
        if "domain" not in atoms.arrays:
            raise InputError("the model has no per-atom 'domain' array; omit the domain or build it with halex")
        mask = atoms.arrays["domain"] == domain
        if not mask.any():
            raise InputError(f"no atoms in domain {domain!r}; domains present: {sorted(set(atoms.arrays['domain']))}")
    ncl, ni = int(np.sum(sym[mask] == "Cl")), int(np.sum(sym[mask] == "I"))
    if ncl + ni == 0:
        raise InputError("the model (or domain) holds no Cl or I")
    return {"x_cl_percent": 100 * ncl / (ncl + ni), "n_cl": ncl, "n_i": ni, "domain": domain}
