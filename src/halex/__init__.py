"""halex: halide exchange at epitaxial interfaces in perovskite-chalcohalide nanocrystals.

The package follows the path the data takes::

    phases -> build -> engines -> store -> studies -> analysis -> report / cli

One structure object is used everywhere: an ASE :class:`~ase.Atoms` carrying the
per-atom arrays ``domain``, ``layer`` and ``role`` (see :mod:`halex.arrays`) and its
provenance in ``atoms.info``.
"""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

from halex.errors import HalexError

try:
    __version__ = _version("halex")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = ["HalexError", "__version__"]
