"""The one exception family of halex.

Every error a user can cause (bad input, missing programs, unreadable files) is a
:class:`HalexError` subclass whose message says what to fix. The command-line
interface prints the message and exits non-zero without a traceback.
"""

from __future__ import annotations

__all__ = [
    "HalexError",
    "InputError",
    "StructureError",
    "UnsupportedElementError",
    "FileFormatError",
    "EngineNotFoundError",
    "EngineUnavailableError",
    "EngineRunError",
    "StoreError",
    "CalibrationError",
    "AnalysisError",
]


class HalexError(Exception):
    """Base class of every error halex raises on purpose."""


class InputError(HalexError, ValueError):
    """A parameter value is invalid (out of range, wrong size, wrong type)."""


class StructureError(HalexError, ValueError):
    """A structure is unphysical or malformed (non-finite coordinates, overlaps, ...)."""


class UnsupportedElementError(StructureError):
    """A structure holds an element the chosen engine cannot describe."""


class FileFormatError(HalexError, OSError):
    """A file is missing, unreadable or not in the expected format."""


class EngineNotFoundError(HalexError, KeyError):
    """No engine is registered under the requested name."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class EngineUnavailableError(HalexError, RuntimeError):
    """An engine is registered but cannot run here (package or executable missing)."""


class EngineRunError(HalexError, RuntimeError):
    """An engine ran but failed (non-zero exit, unconverged SCF, unparsable output)."""


class StoreError(HalexError, RuntimeError):
    """The result store cannot be opened, read or written."""


class CalibrationError(InputError):
    """An image's pixel size is missing, inconsistent or in a unit halex cannot convert."""


class AnalysisError(HalexError, ValueError):
    """Data cannot be analysed as asked (no columns found, zone axis does not match, ...)."""
