"""Deprecated alias of :mod:`halex.models`, kept for one release.

``halex.build`` was renamed because tools skip folders called ``build`` by default
(ruff's and black's exclude lists, the common Python ``.gitignore``). Import from
:mod:`halex.models` instead; ``import halex.build`` warns and forwards there, and so do
its submodules (``halex.build.exchange`` is :mod:`halex.models.exchange`).
"""

from __future__ import annotations

import sys
import warnings

import halex.models as _models
from halex.models import *  # noqa: F403
from halex.models import __all__  # noqa: F401
from halex.models import exchange as _exchange
from halex.models import heterostructure as _heterostructure
from halex.models import nanocrystal as _nanocrystal

warnings.warn("halex.build is deprecated: import halex.models instead", DeprecationWarning, stacklevel=2)

for _name, _module in (("exchange", _exchange), ("heterostructure", _heterostructure), ("nanocrystal", _nanocrystal)):
    sys.modules[f"{__name__}.{_name}"] = _module
exchange = _exchange  # as in halex.models: the exchange module (heterostructure is the builder function)
nanocrystal = _nanocrystal
del _name, _module, _models
