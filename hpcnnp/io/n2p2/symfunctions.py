"""``symfunction_short`` lines (§5.1, §5.3), parsed with the SF type table
:mod:`hpcnnp.descriptors.sftypes`."""

from __future__ import annotations

from dataclasses import dataclass

from hpcnnp.descriptors import sftypes
from hpcnnp.errors import InputFileError
from hpcnnp.io.n2p2._common import _to_float, _to_int

__all__ = ["SymmetryFunction", "parse_symfunction"]


@dataclass(frozen=True)
class SymmetryFunction:
    """One ``symfunction_short`` line of an ``input.nn`` (§5.1).

    Attributes
    ----------
    central : str
        Element of the central atom.
    sftype : int
        n2p2 type number (see :mod:`hpcnnp.descriptors.sftypes`).
    e1, e2 : str or None
        Neighbour elements; ``e2`` is None for radial types, both None for the weighted
        types (12, 13, 23-25).  For angular types ``e1``/``e2`` are ordered so that
        ``index(e1) <= index(e2)`` (n2p2 swaps them).
    eta : float, 1/length²
        Gaussian width (0.0 for the compact types 20-25).
    rs : float, length
        Gaussian shift (default 0 for types 3/9; 0.0 for compact types).
    rc : float, length
        Cutoff radius (for compact types: the right end of the radial interval).
    lam, zeta : float or None
        Angular parameters lambda and zeta (types 3, 9, 13).
    line : int
        1-based line in ``input.nn``.
    rl, angle_left, angle_right : float or None
        Compact types only: left end of the radial interval (length), angle interval
        (degrees, angular types).
    subtype : str or None
        Compact types only: core function (``p1``...``p4``, ``p1a``...``p4a``, ``e``).
    """

    central: str
    sftype: int
    e1: str | None
    e2: str | None
    eta: float
    rs: float
    rc: float
    lam: float | None
    zeta: float | None
    line: int
    rl: float | None = None
    angle_left: float | None = None
    angle_right: float | None = None
    subtype: str | None = None

    @property
    def kind(self) -> sftypes.SFType:
        """The row of the SF type table."""
        return sftypes.TYPES[self.sftype]

    @property
    def is_angular(self) -> bool:
        return self.kind.angular

    def sort_key(self, element_index: dict, cutoff_type: int, cutoff_alpha: float) -> tuple:
        """n2p2's sort key (§5.3, :func:`hpcnnp.descriptors.sftypes.sort_key`).

        The sorted position is the network input index, the ``sf_index`` of
        ``scaling.data`` and the row order of the first weight layer.
        """
        return sftypes.sort_key(self, element_index, cutoff_type, cutoff_alpha)


def _check_compact(values, kind, path, line):
    """The checks of n2p2's setParameters for types 20-25."""
    rl, rc = values["rl"], values["rc"]
    if not rl < rc:
        raise InputFileError(path, line, f"symmetry function r_l = {rl} must be smaller "
                                         f"than r_c = {rc}")
    if not kind.angular:
        return
    left, right = values["angle_left"], values["angle_right"]
    centre = (left + right) / 2.0
    if not left < right:
        raise InputFileError(path, line, f"symmetry function angle interval [{left}, {right}]:"
                                         " the left angle must be smaller than the right one")
    if (left < 0.0 and centre != 0.0) or (right > 180.0 and centre != 180.0):
        raise InputFileError(path, line, f"symmetry function angle interval [{left}, {right}] "
                                         "reaches beyond [0, 180] degrees, so its centre must "
                                         "be 0 or 180")
    if right - left > 360.0:    # n2p2's check; unreachable after the centre rule
        raise InputFileError(path, line, f"symmetry function angle interval [{left}, {right}] "
                                         "is wider than 360 degrees")  # pragma: no cover


def parse_symfunction(argument_string, element_index, path, line) -> SymmetryFunction:
    """Parse the arguments of one ``symfunction_short`` line (§5.1).

    Parameters
    ----------
    argument_string : str
        Everything after the keyword, e.g. ``"Li 3 O Li 0.0139 -1 1.0 6.0"``.
    element_index : dict
        Element symbol -> n2p2 element index (atomic-number order).
    path, line : str, int
        Location, for error messages.

    Raises
    ------
    InputFileError
        Unknown type ("Unknown symmetry function type" in n2p2), wrong number of
        arguments, bad numbers, elements not listed in ``elements``, the parameter
        checks n2p2 makes (r_c > 0; compact types: r_l < r_c, angle interval).
    """
    tokens = argument_string.split()
    if len(tokens) < 2:
        raise InputFileError(path, line, "symfunction_short needs at least "
                                         "'<central element> <type> ...'")

    def element(token, role):
        if token not in element_index:
            raise InputFileError(path, line, f"symmetry function {role} element {token!r} "
                                             "is not listed in 'elements'")
        return token

    central = element(tokens[0], "central")
    kind = sftypes.get(_to_int(tokens[1], path, line, "symmetry function type"), path, line)
    args = tokens[2:]
    if not kind.n_required <= len(args) <= len(kind.fields):
        raise InputFileError(path, line, f"symmetry function type {kind.number} takes "
                                         f"'{kind.line_format}', got {len(args) + 2} fields")
    values = dict(kind.optional)
    for name, token in zip(kind.fields, args):
        if name in ("e1", "e2"):
            values[name] = element(token, "neighbour")
        elif name == "subtype":
            if token not in sftypes.SUBTYPES:
                raise InputFileError(path, line, f"unknown compact function subtype {token!r} "
                                                 f"(expected one of {' '.join(sftypes.SUBTYPES)})")
            values[name] = token
        else:
            values[name] = _to_float(token, path, line, f"symmetry function {name}")
    if values["rc"] <= 0.0:
        raise InputFileError(path, line, f"symmetry function cutoff radius r_c = "
                                         f"{values['rc']} must be positive")
    if kind.compact:
        _check_compact(values, kind, path, line)
    e1, e2 = values.get("e1"), values.get("e2")
    if e2 is not None and element_index[e1] > element_index[e2]:
        e1, e2 = e2, e1
    return SymmetryFunction(
        central=central, sftype=kind.number, e1=e1, e2=e2, eta=values.get("eta", 0.0),
        rs=values.get("rs", 0.0), rc=values["rc"], lam=values.get("lambda"),
        zeta=values.get("zeta"), line=line, rl=values.get("rl"),
        angle_left=values.get("angle_left"), angle_right=values.get("angle_right"),
        subtype=values.get("subtype"))
