"""The symmetry-function (SF) types of n2p2, in one table.

Every part of hpcnnp that needs to know an SF type asks this table:

* :mod:`hpcnnp.io.n2p2` parses ``symfunction_short`` lines with :attr:`SFType.fields`
  and sorts them (the network input order) with :func:`sort_key`;
* :class:`hpcnnp.potential.Potential` refuses types the engine does not evaluate
  (:func:`check_evaluated`) and converts parameters for the C core;
* :mod:`hpcnnp.descriptors.sfgen` writes only types marked :attr:`SFType.evaluated`;
* the C core keeps its own two lists (``HDNNP_SF_TYPE_LIST`` in ``hdnnp_core.h`` and the
  line layouts of ``hdnnp_n2p2.c``); ``tests/descriptors/test_sftypes.py`` checks that
  they equal this table.

How to add a type: ``docs/extending.md`` (section "A symmetry-function type").

The definitions (n2p2 commit 61daa0d, ``SymFnc*.cpp``; lengths L, energies E)
-----------------------------------------------------------------------------
Sums run over all neighbours within the cutoff, periodic images included;
``f_c`` is the potential's cutoff function (``cutoff_type``), ``Z`` the atomic number,
``C(x; a, b)`` n2p2's compact function: ``core(|x - c|/w)`` on the open interval
(a, b) with centre c = (a + b)/2 and half width w = (b - a)/2, 0 outside; the core is
a polynomial ``p1``...``p4`` (the cutoff polynomials of ``cutoff_type`` 5-8) or ``e``
(exp(1 - 1/(1 - x²))); ``pNa`` evaluates ``core((2 - x) x)`` in the radial parts.
Angles of the compact types are in degrees in ``input.nn``; their angular part uses
the radial core (never the asymmetric variant).

====  ================================  ===============================================
type  name                              G_i
====  ================================  ===============================================
2     radial                            Σ_{j∈E1} exp(−η(r_ij−r_s)²) f_c(r_ij)
3     angular_narrow                    2^{1−ζ} Σ_{j<k} (1+λcosθ)^ζ exp(−η Σ(r−r_s)²) Π f_c
9     angular_wide                      as 3 without the r_jk terms
12    weighted_radial                   Σ_j Z_j exp(−η(r_ij−r_s)²) f_c(r_ij)
13    weighted_angular                  as 3 over all pairs, times Z_j Z_k
20    compact_radial                    Σ_{j∈E1} C(r_ij; r_l, r_c)
21    compact_angular_narrow            Σ_{j<k} C(r_ij) C(r_ik) C(r_jk) C(θ_ijk; θ_l, θ_r)
22    compact_angular_wide              Σ_{j<k} C(r_ij) C(r_ik) C(θ_ijk; θ_l, θ_r)
23    weighted_compact_radial           Σ_j Z_j C(r_ij)
24    weighted_compact_angular_narrow   as 21 over all pairs, times Z_j Z_k
25    weighted_compact_angular_wide     as 22 over all pairs, times Z_j Z_k
====  ================================  ===============================================

References: Behler, J. Chem. Phys. 134, 074106 (2011), doi:10.1063/1.3553717 (2, 3, 9);
Gastegger et al., J. Chem. Phys. 148, 241709 (2018), doi:10.1063/1.5019667 (12, 13);
Bircher, Singraber, Dellago, Mach. Learn.: Sci. Technol. 2, 035026 (2021),
doi:10.1088/2632-2153/abf817 (20-25).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hpcnnp.errors import InputFileError, PotentialError

__all__ = ["SFType", "TYPES", "SUBTYPES", "get", "by_name", "layout", "sort_key",
           "core_function", "evaluated_types", "check_evaluated", "parameter_info"]

#: Subtypes (compact-function cores) of types 20-25: polynomials p1..p4 (the cutoff
#: polynomials of cutoff_type 5-8), their asymmetric variants p1a..p4a, and the bump e.
SUBTYPES = ("p1", "p2", "p3", "p4", "p1a", "p2a", "p3a", "p4a", "e")


@dataclass(frozen=True)
class SFType:
    """One n2p2 symmetry-function type.

    Attributes
    ----------
    number : int
        n2p2's type number (the second field of ``symfunction_short``).
    name : str
        hpcnnp's name (also the ``sfgen`` kind where the generator has rules).
    title : str
        Human-readable name.
    fields : tuple of str
        Parameters after ``Ec type`` in input.nn order.  Names: ``e1``, ``e2``
        (neighbour elements), ``eta`` (1/L²), ``rs``, ``rc``, ``rl`` (L), ``lambda``,
        ``zeta``, ``angle_left``, ``angle_right`` (degrees), ``subtype``.
    optional : dict
        Trailing fields that may be omitted, with their default.
    order : tuple of str
        n2p2's sort key after the type number (``operator<`` of its SymFnc class);
        for the Gaussian types the cutoff type and alpha come first.
    neighbours : int
        Number of explicit neighbour elements (0: all neighbours, weighted with Z).
    angular, narrow, weighted, compact : bool
        Triples (j, k)?  With r_jk terms?  Weighted with atomic numbers?  Compact
        support (types 20-25)?
    evaluated : bool
        The C core evaluates it (``hdnnp_sf_type_supported``).
    formula : str
        One-line definition.
    info : tuple of str
        n2p2's parameter description (``parameterInfo``, the ``#SFINFO`` lines) after
        lineNumber, index, type, ec, rc and the family's subtype/alpha (Gaussian types)
        or subtype/rl (compact types).
    """

    number: int
    name: str
    title: str
    fields: tuple
    order: tuple
    neighbours: int
    angular: bool
    narrow: bool
    weighted: bool
    compact: bool
    formula: str
    info: tuple = ()
    optional: dict = field(default_factory=dict)
    evaluated: bool = True

    @property
    def n_required(self) -> int:
        """Number of fields that must be given."""
        return len(self.fields) - len(self.optional)

    @property
    def layout(self) -> str:
        """The fields as the C loader lists them: ``"e1 e2 eta lambda zeta rc [rs]"``."""
        return " ".join(f"[{f}]" if f in self.optional else f for f in self.fields)

    @property
    def line_format(self) -> str:
        """``Ec <type> <fields>`` with the element fields as ``E1``, ``E2``, for messages:
        ``"Ec 3 E1 E2 eta lambda zeta rc [rs]"``."""
        names = [f.upper() if f in ("e1", "e2") else f for f in self.fields]
        return f"Ec {self.number} " + " ".join(
            f"[{n}]" if f in self.optional else n for f, n in zip(self.fields, names))


_GAUSS_ORDER_RADIAL = ("rc", "eta", "rs")
_GAUSS_ORDER_ANGULAR = ("rc", "eta", "rs", "zeta", "lambda")
_ANGLES = ("angle_left", "angle_right")

_E12 = ("e1", "e2")
_ANGULAR_INFO = ("eta", "lambda", "zeta", "rs")

TYPES: dict[int, SFType] = {t.number: t for t in (
    SFType(2, "radial", "Radial", ("e1", "eta", "rs", "rc"),
           _GAUSS_ORDER_RADIAL + ("e1",), 1, False, False, False, False,
           "sum_{j in E1} exp(-eta (r_ij - rs)^2) f_c(r_ij)", info=("e1", "eta", "rs")),
    SFType(3, "angular_narrow", "Narrow angular",
           _E12 + ("eta", "lambda", "zeta", "rc", "rs"), _GAUSS_ORDER_ANGULAR + _E12,
           2, True, True, False, False,
           "2^(1-zeta) sum_{j<k} (1 + lambda cos)^zeta exp(-eta sum (r - rs)^2) f_c f_c f_c",
           info=_E12 + _ANGULAR_INFO, optional={"rs": 0.0}),
    SFType(9, "angular_wide", "Wide angular",
           _E12 + ("eta", "lambda", "zeta", "rc", "rs"), _GAUSS_ORDER_ANGULAR + _E12,
           2, True, False, False, False,
           "2^(1-zeta) sum_{j<k} (1 + lambda cos)^zeta exp(-eta [(r_ij-rs)^2 + "
           "(r_ik-rs)^2]) f_c f_c", info=_E12 + _ANGULAR_INFO, optional={"rs": 0.0}),
    SFType(12, "weighted_radial", "Weighted radial", ("eta", "rs", "rc"),
           _GAUSS_ORDER_RADIAL, 0, False, False, True, False,
           "sum_j Z_j exp(-eta (r_ij - rs)^2) f_c(r_ij)", info=("eta", "rs")),
    SFType(13, "weighted_angular", "Weighted angular", ("eta", "rs", "lambda", "zeta", "rc"),
           _GAUSS_ORDER_ANGULAR, 0, True, True, True, False,
           "type 3 over all pairs, times Z_j Z_k", info=_ANGULAR_INFO),
    SFType(20, "compact_radial", "Compact radial", ("e1", "rl", "rc", "subtype"),
           ("subtype", "e1", "rc", "rl"), 1, False, False, False, True,
           "sum_{j in E1} C(r_ij; rl, rc)", info=("e1",)),
    SFType(21, "compact_angular_narrow", "Compact narrow angular",
           _E12 + ("rl", "rc") + _ANGLES + ("subtype",),
           ("subtype",) + _E12 + ("rc", "rl") + _ANGLES, 2, True, True, False, True,
           "sum_{j<k} C(r_ij) C(r_ik) C(r_jk) C(theta_ijk; angle_left, angle_right)",
           info=_E12 + _ANGLES),
    SFType(22, "compact_angular_wide", "Compact wide angular",
           _E12 + ("rl", "rc") + _ANGLES + ("subtype",),
           ("subtype",) + _E12 + ("rc", "rl") + _ANGLES, 2, True, False, False, True,
           "sum_{j<k} C(r_ij) C(r_ik) C(theta_ijk; angle_left, angle_right)",
           info=_E12 + _ANGLES),
    SFType(23, "weighted_compact_radial", "Weighted compact radial", ("rl", "rc", "subtype"),
           ("subtype", "rc", "rl"), 0, False, False, True, True,
           "sum_j Z_j C(r_ij; rl, rc)"),
    SFType(24, "weighted_compact_angular_narrow", "Weighted compact narrow angular",
           ("rl", "rc") + _ANGLES + ("subtype",), ("subtype", "rc", "rl") + _ANGLES,
           0, True, True, True, True, "type 21 over all pairs, times Z_j Z_k", info=_ANGLES),
    SFType(25, "weighted_compact_angular_wide", "Weighted compact wide angular",
           ("rl", "rc") + _ANGLES + ("subtype",), ("subtype", "rc", "rl") + _ANGLES,
           0, True, False, True, True, "type 22 over all pairs, times Z_j Z_k", info=_ANGLES),
)}

_BY_NAME = {t.name: t for t in TYPES.values()}

#: SymmetryFunction attribute of a field name (where they differ)
ATTRIBUTE = {"lambda": "lam"}


def get(number, path=None, line=None) -> SFType:
    """The :class:`SFType` of an n2p2 type number.

    Raises
    ------
    InputFileError
        n2p2 has no such type (its "Unknown symmetry function type"), naming
        *path* and *line*.
    """
    try:
        return TYPES[number]
    except KeyError:
        raise InputFileError(path or "<input.nn>", line,
                             f"unknown symmetry function type {number} (n2p2 has "
                             f"{', '.join(map(str, TYPES))})") from None


def by_name(name) -> SFType:
    """The :class:`SFType` called *name* (e.g. ``"weighted_radial"``)."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown symmetry-function type name {name!r} "
                       f"(known: {', '.join(_BY_NAME)})") from None


def layout(number) -> str:
    """Fields of a type as the C loader lists them (see :attr:`SFType.layout`)."""
    return get(number).layout


def evaluated_types() -> tuple:
    """Type numbers the engine evaluates, ascending."""
    return tuple(n for n, t in TYPES.items() if t.evaluated)


def core_function(subtype) -> tuple[str, bool]:
    """``(core, asymmetric)`` of a compact subtype: ``"p2a"`` -> ``("p2", True)``."""
    if subtype not in SUBTYPES:
        raise ValueError(f"unknown compact function subtype {subtype!r} "
                         f"(one of {' '.join(SUBTYPES)})")
    return subtype.rstrip("a") if subtype != "e" else "e", subtype.endswith("a")


def sort_key(sf, element_index, cutoff_type, cutoff_alpha) -> tuple:
    """n2p2's sort key of a parsed SF (``hpcnnp.io.n2p2.SymmetryFunction``).

    The sorted position is the network input index, the ``sf_index`` of
    ``scaling.data`` and the row of the first weight layer.  Key: type number, then
    (Gaussian types) cutoff type and alpha, then :attr:`SFType.order` with element
    symbols replaced by their index.
    """
    kind = TYPES[sf.sftype]
    key = [sf.sftype]
    if not kind.compact:
        key += [cutoff_type, cutoff_alpha]
    for name in kind.order:
        value = getattr(sf, ATTRIBUTE.get(name, name))
        key.append(element_index[value] if name in ("e1", "e2") else value)
    return tuple(key)


def check_evaluated(symmetry_functions, path=None):
    """Raise if a symmetry function has a type the engine does not evaluate.

    Parameters
    ----------
    symmetry_functions : dict element -> list of SymmetryFunction
    path : str, optional
        The input.nn, for the message.

    Raises
    ------
    PotentialError
        Naming the file, the line and the type.
    """
    for sfs in symmetry_functions.values():
        for sf in sfs:
            kind = TYPES.get(sf.sftype)
            if kind is None or not kind.evaluated:
                where = f"{path}:{sf.line}" if path else f"line {sf.line}"
                raise PotentialError(
                    f"{where}: symmetry function type {sf.sftype} is not evaluated by "
                    f"hpcnnp (evaluated: {', '.join(map(str, evaluated_types()))})")


_INFO_NAME = {"angle_left": "angleLeft", "angle_right": "angleRight"}


def parameter_info(sf, index, cutoff_type, cutoff_alpha) -> list[tuple[str, str]]:
    """n2p2's parameter description of one SF (``SymFnc*::parameterInfo``): a list of
    ``(name, value text)`` in n2p2's order, e.g. ``("rc", "6.00000000E+00")``.

    Parameters
    ----------
    sf : hpcnnp.io.n2p2.SymmetryFunction
    index : int
        1-based sorted SF index.
    cutoff_type, cutoff_alpha : int, float
        The potential's cutoff function (shown for the Gaussian types).
    """
    kind = TYPES[sf.sftype]
    out = [("lineNumber", "%d" % sf.line), ("index", "%d" % index), ("type", "%d" % sf.sftype),
           ("ec", sf.central), ("rc", "%14.8E" % sf.rc)]
    if kind.compact:
        out += [("subtype", sf.subtype), ("rl", "%14.8E" % sf.rl)]
    else:
        out += [("subtype", "ct%d" % cutoff_type), ("alpha", "%14.8E" % cutoff_alpha)]
    for name in kind.info:
        value = getattr(sf, ATTRIBUTE.get(name, name))
        out.append((_INFO_NAME.get(name, name),
                    value if name in ("e1", "e2") else "%14.8E" % value))
    return out
