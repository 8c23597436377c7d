"""Value types of the configuration files: numbers with their units and ranges.

Each type is an ``Annotated`` pydantic type whose validator gives the message a
user can act on (``must be > 0 K``) and whose JSON Schema carries the range and
the unit.  YAML's own numbers are taken as they are; a bool is never a number
(``yes`` is ``true`` in YAML 1.1); a string such as ``1e-4`` (which YAML 1.1
reads as text) is accepted as a float.

>>> from pydantic import TypeAdapter
>>> TypeAdapter(Temperature).validate_python(1500)
1500.0
"""

from __future__ import annotations

import math
import re
from typing import Annotated

from ase.data import chemical_symbols
from pydantic import BeforeValidator, WithJsonSchema

from hpcnnp.errors import HpcnnpError

__all__ = ["number", "Temperature", "Timestep", "Length", "Count", "PositiveInt",
           "NonNegativeInt", "PositiveFloat", "NonNegativeFloat", "Fraction", "Seed",
           "Duration", "Walltime", "Element", "Elements", "parse_duration", "parse_walltime",
           "FiniteFloat"]


def _as_number(value, integer, unit):
    what = "a whole number" if integer else "a number"
    if isinstance(value, bool) or value is None:
        raise ValueError(f"must be {what}{f' ({unit})' if unit else ''}")
    if isinstance(value, str):
        try:
            value = float(value.strip()) if not integer else int(value.strip())
        except ValueError:
            raise ValueError(f"must be {what}{f' ({unit})' if unit else ''}") from None
    if not isinstance(value, (int, float)):
        raise ValueError(f"must be {what}{f' ({unit})' if unit else ''}")
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    if integer and value != int(value):
        raise ValueError("must be a whole number")
    return int(value) if integer else float(value)


def number(integer=False, *, gt=None, ge=None, lt=None, le=None, unit="", description=None):
    """A number type with a range and a unit (shown in messages and the schema).

    Parameters
    ----------
    integer : bool
        Whole numbers only (``int``); else ``float``.
    gt, ge, lt, le : float, optional
        Bounds (exclusive, inclusive).
    unit : str
        Unit for messages and the schema (``"K"``, ``"fs"``, ``"Å"``).
    """
    sep = f" {unit}" if unit else ""

    def check(value):
        value = _as_number(value, integer, unit)
        for bound, ok, word in ((gt, lambda v, b: v > b, ">"), (ge, lambda v, b: v >= b, ">="),
                                (lt, lambda v, b: v < b, "<"), (le, lambda v, b: v <= b, "<=")):
            if bound is not None and not ok(value, bound):
                raise ValueError(f"must be {word} {bound:g}{sep}")
        return value

    schema = {"type": "integer" if integer else "number"}
    for key, bound in (("exclusiveMinimum", gt), ("minimum", ge), ("exclusiveMaximum", lt),
                       ("maximum", le)):
        if bound is not None:
            schema[key] = bound
    if unit:
        schema["unit"] = unit
    if description:
        schema["description"] = description
    return Annotated[int if integer else float, BeforeValidator(check), WithJsonSchema(schema)]


Temperature = number(gt=0, unit="K")
Timestep = number(gt=0, unit="fs")
Length = number(gt=0, unit="Å")
PositiveFloat = number(gt=0)
NonNegativeFloat = number(ge=0)
FiniteFloat = number()
Fraction = number(ge=0, le=1)
Count = number(integer=True, ge=1)
PositiveInt = Count
NonNegativeInt = number(integer=True, ge=0)
Seed = number(integer=True, ge=0)


# ---------------------------------------------------------------------------------------
# Durations: a number in ps or "N fs|ps|ns|steps"
# ---------------------------------------------------------------------------------------

_DURATION = re.compile(r"^\s*([-+0-9.eE]+)\s*(fs|ps|ns|steps?)?\s*$")
_FS = {"fs": 1.0, "ps": 1e3, "ns": 1e6}


def parse_duration(value, dt_fs, what="duration"):
    """Number of MD steps of a duration at time step *dt_fs* (fs).

    A duration is a number in ps, or a string ``"N fs|ps|ns|steps"``.

    Raises
    ------
    ValueError
        Not a duration, negative, or a fractional number of steps.
    """
    if isinstance(value, bool):
        raise ValueError(f"{what} must be a duration, got {value!r}")
    if isinstance(value, (int, float)):
        number_, unit = float(value), "ps"
    else:
        m = _DURATION.match(str(value))
        if not m:
            raise ValueError(f"{what} must be a number (ps) or 'N fs|ps|ns|steps', got "
                             f"{value!r}")
        try:
            number_ = float(m.group(1))
        except ValueError:
            raise ValueError(f"{what} must be a number (ps) or 'N fs|ps|ns|steps', got "
                             f"{value!r}") from None
        unit = m.group(2) or "ps"
    if not math.isfinite(number_) or number_ < 0:
        raise ValueError(f"{what} must be a non-negative finite duration, got {value!r}")
    if unit.startswith("step"):
        if number_ != int(number_):
            raise ValueError(f"{what}: a number of steps must be an integer, got {value!r}")
        return int(number_)
    return int(round(number_ * _FS[unit] / dt_fs))


def _duration(value):
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError("must be a duration: a number (ps) or 'N fs|ps|ns|steps'")
    try:
        parse_duration(value, 1.0)
    except ValueError as exc:
        raise ValueError(str(exc).replace("duration must be", "must be")) from None
    return value


#: a duration as written (number in ps or "N fs|ps|ns|steps"); converted to steps
#: with the time step by :func:`parse_duration`
Duration = Annotated[float | str, BeforeValidator(_duration), WithJsonSchema({
    "anyOf": [{"type": "number", "minimum": 0, "unit": "ps"},
              {"type": "string", "pattern": r"^\s*[0-9.eE+]+\s*(fs|ps|ns|steps?)?\s*$"}],
    "description": "a number in ps, or 'N fs', 'N ps', 'N ns', 'N steps'"})]


_WALLTIME = re.compile(r"(?:(\d+)-)?(\d+):([0-5]\d):([0-5]\d)")


def parse_walltime(text, what="walltime"):
    """Seconds of a walltime ``HH:MM:SS`` (hours may exceed 24) or ``D-HH:MM:SS``.

    Raises
    ------
    HpcnnpError
        Malformed or zero walltime (the message names *what*).
    """
    if isinstance(text, bool) or not isinstance(text, str):
        raise HpcnnpError(f"{what} must be a string HH:MM:SS, got {text!r}")
    m = _WALLTIME.fullmatch(text.strip())
    if not m:
        raise HpcnnpError(f"{what} {text!r} is not HH:MM:SS (or D-HH:MM:SS), "
                          "e.g. 02:00:00; minutes and seconds must be 00-59")
    days, hours, minutes, seconds = (int(g) if g else 0 for g in m.groups())
    total = ((days * 24 + hours) * 60 + minutes) * 60 + seconds
    if total <= 0:
        raise HpcnnpError(f"{what} {text!r} must be longer than zero")
    return total


def _walltime(value):
    try:
        parse_walltime(value)
    except HpcnnpError as exc:
        raise ValueError(str(exc)) from None
    return value


#: a walltime ``HH:MM:SS`` (hours may exceed 24) or ``D-HH:MM:SS``
Walltime = Annotated[str, BeforeValidator(_walltime), WithJsonSchema({
    "type": "string", "pattern": r"^(\d+-)?\d+:[0-5]\d:[0-5]\d$",
    "description": "HH:MM:SS or D-HH:MM:SS"})]


def _element(value):
    if not isinstance(value, str) or value not in chemical_symbols[1:]:
        raise ValueError("must be a chemical element symbol (Li, La, Zr, O, Co, ...)")
    return value


#: a chemical element symbol
Element = Annotated[str, BeforeValidator(_element), WithJsonSchema({
    "type": "string", "enum": chemical_symbols[1:], "description": "element symbol"})]


def _elements(value):
    if isinstance(value, str):
        value = value.split()
    if not isinstance(value, list) or not value:
        raise ValueError("must be a list of element symbols")
    for v in value:
        _element(v)
    dup = sorted({v for v in value if value.count(v) > 1})
    if dup:
        raise ValueError(f"lists {dup[0]} twice")
    return value


#: a non-empty list of distinct element symbols (or a string "Li La Zr O Co")
Elements = Annotated[list[str], BeforeValidator(_elements), WithJsonSchema({
    "type": "array", "items": {"type": "string", "enum": chemical_symbols[1:]},
    "minItems": 1, "uniqueItems": True})]
