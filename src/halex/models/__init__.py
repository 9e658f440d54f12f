"""Atomistic models: nanocrystals, heterostructures and exchange operations (pure functions)."""

from halex.models.exchange import (
    ALLOY_PATTERNS,
    alloy_perovskite,
    chalcohalide_exchange_series,
    exchange_chalcohalide_layers,
    exchange_interface_monolayer,
    exchange_layers,
    exchange_log,
)
from halex.models.heterostructure import epitaxy_report, heterostructure
from halex.models.nanocrystal import formal_charge, perovskite_nanocrystal

__all__ = [
    "perovskite_nanocrystal",
    "heterostructure",
    "epitaxy_report",
    "formal_charge",
    "exchange_layers",
    "exchange_interface_monolayer",
    "exchange_chalcohalide_layers",
    "alloy_perovskite",
    "chalcohalide_exchange_series",
    "exchange_log",
    "ALLOY_PATTERNS",
]
