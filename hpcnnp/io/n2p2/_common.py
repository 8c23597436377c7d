"""Shared pieces of the n2p2 readers and writers: the element table (§3), strict number
parsing like C's ``strtod``, line splitting like n2p2's ``getline`` and atomic writes."""

from __future__ import annotations

import math
import re

from hpcnnp.errors import InputFileError
from hpcnnp.fileio import atomic_open
from hpcnnp.units import CHEMICAL_SYMBOLS

__all__ = ["N2P2_ELEMENTS", "element_order", "weights_filename"]

# ---------------------------------------------------------------------------------------
# Elements (§3)
# ---------------------------------------------------------------------------------------

#: Element symbols n2p2 recognises, H (Z=1) ... No (Z=102); index + 1 = atomic number.
N2P2_ELEMENTS = CHEMICAL_SYMBOLS[1:103]

_Z = {symbol: z for z, symbol in enumerate(N2P2_ELEMENTS, start=1)}


def element_order(symbols, path=None, line=None) -> list[str]:
    """Element symbols sorted by atomic number (n2p2's element index order, §2.1).

    Parameters
    ----------
    symbols : iterable of str
        Element symbols in any order, e.g. ``["Li", "La", "Zr", "O", "Co"]``.
    path, line : str, int, optional
        Where the symbols come from, for the error message.

    Returns
    -------
    list of str
        E.g. ``["Li", "O", "Co", "Zr", "La"]``.

    Raises
    ------
    InputFileError
        A symbol n2p2 does not know (outside H...No, case-sensitive) or a duplicate.
    """
    symbols = list(symbols)
    seen = set()
    for symbol in symbols:
        if symbol not in _Z:
            raise InputFileError(path or "<elements>", line,
                                 f"unknown element symbol {symbol!r} "
                                 "(n2p2 knows H ... No, case-sensitive)")
        if symbol in seen:
            raise InputFileError(path or "<elements>", line,
                                 f"element {symbol!r} listed twice")
        seen.add(symbol)
    return sorted(symbols, key=_Z.__getitem__)


def weights_filename(element) -> str:
    """n2p2's weight file name of an element: ``weights.%03d.data`` % Z (§3)."""
    return "weights.%03d.data" % _Z[element]



# ---------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------

# A decimal floating-point literal as C's strtod reads it (no nan/inf, no hex, no "_").
_FLOAT_RE = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\Z", re.ASCII)
_INT_RE = re.compile(r"[+-]?\d+\Z", re.ASCII)


def _to_float(token, path, line, what):
    """Strictly parse one number like C's strtod would read a plain decimal literal;
    NaN, inf, hex, "_" separators, non-ASCII digits and garbage are errors."""
    try:
        value = float(token)
    except ValueError:
        value = None
    if value is not None and math.isfinite(value) and token.isascii() and "_" not in token:
        return value
    if _FLOAT_RE.match(token):
        raise InputFileError(path, line, f"{what}: {token!r} overflows a double")
    raise InputFileError(path, line, f"{what}: {token!r} is not a finite number")


def _to_int(token, path, line, what):
    if _INT_RE.match(token):
        return int(token)
    raise InputFileError(path, line, f"{what}: {token!r} is not an integer")


def _read_lines(path):
    """Lines of a text file split as n2p2's getline does (on '\\n' only)."""
    try:
        with open(path, "r", encoding="utf-8", errors="surrogateescape", newline="") as f:
            text = f.read()
    except FileNotFoundError:
        raise InputFileError(path, None, "file not found") from None
    except IsADirectoryError:
        raise InputFileError(path, None, "is a directory, not a file") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def _atomic_write(path, write):
    """Write a file atomically with :func:`hpcnnp.fileio.atomic_open`: ``write(fileobj)``
    fills a temporary file beside *path*, which then replaces it (a killed run never
    leaves half a file).  Text is UTF-8 with ``surrogateescape``, so that the bytes of
    an input file read with :func:`_read_lines` are written back unchanged."""
    with atomic_open(path, errors="surrogateescape") as f:
        write(f)
