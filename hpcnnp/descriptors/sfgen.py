"""Symmetry-function parameter sets from published rules (n2p2 ``sfparamgen``).

This module is an independent implementation of the behaviour described in
``n2p2-formats.md`` §14: it turns a *rule* (how to place the radial
parameters r_s and η) into ``symfunction_short`` lines for ``input.nn``.

Rules
-----
``imbalzano2018``
    G. Imbalzano, A. Anelli, D. Giofré, S. Klees, J. Behler and M. Ceriotti,
    "Automatic selection of atomic fingerprints and reference configurations
    for machine-learning potentials", J. Chem. Phys. 148, 241730 (2018),
    doi:10.1063/1.5024611.  The grid depends only on r_c and N.
``gastegger2018``
    M. Gastegger, L. Schwiedrzik, M. Bittermann, F. Berzsenyi and
    P. Marquetand, "wACSF -- Weighted atom-centered symmetry functions as
    descriptors in machine learning potentials", J. Chem. Phys. 148, 241709
    (2018), doi:10.1063/1.5019667.  Equidistant grid on [r_lower, r_upper].

Each rule has a ``center`` mode (r_s = 0, the η values vary) and a ``shift``
mode (r_s varies, η follows from the spacing).  Lengths are in the length
unit of the data (Å for hpcnnp); η is in 1/length².

The written lines carry 4 significant digits (``{:9.3E}``), so a potential
built from them uses the *rounded* values (η = 29.43, not 29.4263).

Examples
--------
>>> from hpcnnp.descriptors.sfgen import LLZO_LCO_DEFAULT
>>> LLZO_LCO_DEFAULT.n_per_element()
225
>>> text = LLZO_LCO_DEFAULT.generate()      # what ``hpcnnp sfgen`` writes
"""

from __future__ import annotations

import itertools
import math
import operator
import re
import warnings
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

import numpy as np

from hpcnnp.descriptors import sftypes
from hpcnnp.errors import HpcnnpError

__all__ = [
    "SymFuncParamError", "SymFuncParamWarning", "radial_parameters",
    "SymFuncSet", "SymFuncConfig", "generate", "RULES", "MODES", "KINDS",
    "LAMBDAS", "LLZO_LCO_DEFAULT", "LLZO_LCO_WIDE", "PRESETS",
]


class SymFuncParamError(HpcnnpError, ValueError):
    """Invalid symmetry-function generation settings (rule, N, radii, ...)."""


class SymFuncParamWarning(UserWarning):
    """Settings that are accepted but probably not what the user wants."""


#: λ values of all angular sets (fixed, as in n2p2's sfparamgen).
LAMBDAS = (-1.0, 1.0)

#: Width of the ``#`` rulers of the settings overview.
_RULER = "#" * 73


# ---------------------------------------------------------------------------
# Radial grids: one function per (rule, mode), selected through a table.
# Every grid function takes (n, r_c, r_lower, r_upper) and returns
# (r_shift, eta) as float arrays of length n.
# ---------------------------------------------------------------------------

def _imbalzano_center(n, r_c, r_lower, r_upper):
    """η_i = (m^(i/m) / r_c)², m = n − 1, r_s = 0 (doi:10.1063/1.5024611)."""
    m = n - 1
    i = np.arange(n, dtype=float)
    eta = m ** (2.0 * i / m) / r_c**2
    return np.zeros(n), eta


def _imbalzano_shift(n, r_c, r_lower, r_upper):
    """ρ_i = r_c / n^(i/n) (i = 0..n); r_s = ρ_{i+1}, η = 1/(ρ_i − ρ_{i+1})².

    Returned in ascending r_s (doi:10.1063/1.5024611).
    """
    rho = r_c / n ** (np.arange(n + 1, dtype=float) / n)
    r_shift = rho[1:]
    eta = 1.0 / (rho[:-1] - rho[1:]) ** 2
    return r_shift[::-1].copy(), eta[::-1].copy()


def _gastegger_center(n, r_c, r_lower, r_upper):
    """r_s = 0, η_i = 1/(2 g_i²) on g = linspace(r_lower, r_upper, n)."""
    _check_bounds(r_lower, r_upper, r_c, lower_may_be_zero=False)
    grid = np.linspace(r_lower, r_upper, n)
    return np.zeros(n), 1.0 / (2.0 * grid**2)


def _gastegger_shift(n, r_c, r_lower, r_upper):
    """r_s = linspace(r_lower, r_upper, n), η = 1/(2 Δr²) for all i."""
    _check_bounds(r_lower, r_upper, r_c, lower_may_be_zero=True)
    grid = np.linspace(r_lower, r_upper, n)
    delta = (r_upper - r_lower) / (n - 1)
    return grid, np.full(n, 1.0 / (2.0 * delta**2))


class _Rule(NamedTuple):
    grid: Callable  # (n, r_c, r_lower, r_upper) -> (r_shift, eta)
    uses_bounds: bool  # False: r_lower/r_upper are ignored (with a warning)


#: (rule, mode) -> grid function; the one place a new rule is added.
_RULE_TABLE = {
    ("imbalzano2018", "center"): _Rule(_imbalzano_center, False),
    ("imbalzano2018", "shift"): _Rule(_imbalzano_shift, False),
    ("gastegger2018", "center"): _Rule(_gastegger_center, True),
    ("gastegger2018", "shift"): _Rule(_gastegger_shift, True),
}

#: Known rule names, in table order.
RULES = tuple(dict.fromkeys(rule for rule, _ in _RULE_TABLE))
#: Known mode names, in table order.
MODES = tuple(dict.fromkeys(mode for _, mode in _RULE_TABLE))


def _check_bounds(r_lower, r_upper, r_c, lower_may_be_zero):
    """Require (0 ≤|<) r_lower < r_upper ≤ r_c (all finite)."""
    if r_lower is None:
        raise SymFuncParamError("rule gastegger2018 needs r_lower "
                                "(give RULE:MODE:N:R_LOWER[:R_UPPER])")
    for name, value in (("r_lower", r_lower), ("r_upper", r_upper)):
        if not math.isfinite(value):
            raise SymFuncParamError(f"{name} must be a finite number, got {value}")
    if lower_may_be_zero and r_lower < 0:
        raise SymFuncParamError(f"r_lower must be >= 0 in shift mode, got {r_lower}")
    if not lower_may_be_zero and r_lower <= 0:
        raise SymFuncParamError(f"r_lower must be > 0 in center mode, got {r_lower}")
    if not r_lower < r_upper:
        raise SymFuncParamError(
            f"r_lower must be smaller than r_upper, got r_lower={r_lower}, "
            f"r_upper={r_upper}")
    if r_upper > r_c:
        raise SymFuncParamError(
            f"r_upper must not exceed the cutoff, got r_upper={r_upper} > r_c={r_c}")


def _lookup_rule(rule, mode):
    if rule not in RULES:
        raise SymFuncParamError(f"unknown rule {rule!r} (known: {', '.join(RULES)})")
    if (rule, mode) not in _RULE_TABLE:
        raise SymFuncParamError(f"unknown mode {mode!r} for rule {rule} "
                                f"(known: {', '.join(MODES)})")
    return _RULE_TABLE[rule, mode]


def _check_n_pairs(n_pairs):
    if isinstance(n_pairs, bool):
        raise SymFuncParamError(f"number of parameter pairs must be an integer, "
                                f"got {n_pairs!r}")
    try:
        n = operator.index(n_pairs)
    except TypeError:
        raise SymFuncParamError(f"number of parameter pairs must be an integer, "
                                f"got {n_pairs!r}") from None
    if n < 2:
        raise SymFuncParamError(f"number of parameter pairs must be >= 2, got {n}")
    return n


def _as_length(name, value):
    """``None`` or a finite float (the length unit of the data, e.g. Å)."""
    if value is None:
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise SymFuncParamError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(value):
        raise SymFuncParamError(f"{name} must be a finite number, got {value}")
    return value


def _check_cutoff(r_cutoff):
    r_c = _as_length("r_cutoff", r_cutoff)
    if r_c is None or r_c <= 0:
        raise SymFuncParamError(f"r_cutoff must be > 0, got {r_cutoff!r}")
    return r_c


def radial_parameters(rule, mode, n_pairs, r_cutoff, r_lower=None, r_upper=None):
    """Radial parameters (r_s, η) of one symmetry-function set.

    Parameters
    ----------
    rule : {'imbalzano2018', 'gastegger2018'}
        ``imbalzano2018``: Imbalzano et al., J. Chem. Phys. 148, 241730
        (2018), doi:10.1063/1.5024611.  ``gastegger2018``: Gastegger et al.,
        J. Chem. Phys. 148, 241709 (2018), doi:10.1063/1.5019667.
    mode : {'center', 'shift'}
        ``center``: all r_s = 0, η varies.  ``shift``: r_s varies, η follows
        from the spacing of the r_s grid.
    n_pairs : int
        Number N of (r_s, η) pairs, N ≥ 2.
    r_cutoff : float
        Cutoff radius r_c (length, e.g. Å), > 0.
    r_lower, r_upper : float, optional
        Grid bounds (length).  Used by ``gastegger2018`` only: r_lower is
        required, r_upper defaults to r_c; ``center`` needs
        0 < r_lower < r_upper ≤ r_c, ``shift`` 0 ≤ r_lower < r_upper ≤ r_c.
        ``imbalzano2018`` ignores them (with a :class:`SymFuncParamWarning`).

    Returns
    -------
    r_shift : numpy.ndarray, shape (N,)
        Shifts r_s (length).
    eta : numpy.ndarray, shape (N,)
        Widths η (1/length²).

    Raises
    ------
    SymFuncParamError
        Unknown rule/mode, N < 2, or radii out of range.

    Warns
    -----
    SymFuncParamWarning
        ``imbalzano2018`` with r_lower/r_upper given (ignored), and
        ``imbalzano2018`` center with N = 2, whose two η are both 1/r_c²
        (the formula gives (N−1)^… = 1), i.e. duplicated symmetry functions.

    Examples
    --------
    >>> r_s, eta = radial_parameters("gastegger2018", "center", 3, 6.0, 1.5, 6.0)
    >>> eta.round(4).tolist()
    [0.2222, 0.0356, 0.0139]
    """
    entry = _lookup_rule(rule, mode)
    n = _check_n_pairs(n_pairs)
    r_c = _check_cutoff(r_cutoff)
    r_lower = _as_length("r_lower", r_lower)
    r_upper = _as_length("r_upper", r_upper)
    if not entry.uses_bounds:
        if r_lower is not None or r_upper is not None:
            warnings.warn(f"rule {rule} ignores r_lower/r_upper (its grid depends "
                          "only on r_cutoff and N)", SymFuncParamWarning, stacklevel=2)
        r_lower = r_upper = None
    elif r_upper is None:
        r_upper = r_c
    if (rule, mode) == ("imbalzano2018", "center") and n == 2:
        warnings.warn("imbalzano2018 center with N=2 gives two identical eta = "
                      "1/r_c^2 (duplicated symmetry functions); use N >= 3",
                      SymFuncParamWarning, stacklevel=2)
    r_shift, eta = entry.grid(n, r_c, r_lower, r_upper)
    return np.asarray(r_shift, dtype=float), np.asarray(eta, dtype=float)


# ---------------------------------------------------------------------------
# Kinds of symmetry functions: n2p2 type, title, element combinations, line.
# ---------------------------------------------------------------------------

def _pairs(elements):
    """Radial: every ordered (central, neighbour) pair, in the given order."""
    return [(ec, e1) for ec in elements for e1 in elements]


def _triples(elements):
    """Angular: per central element all unordered neighbour pairs."""
    combos = list(itertools.combinations_with_replacement(elements, 2))
    return [(ec, e1, e2) for ec in elements for e1, e2 in combos]


def _singles(elements):
    """Weighted: one block per central element."""
    return [(ec,) for ec in elements]


def _line_radial(sf_type, combo, eta, r_s, r_c, zeta=None, lam=None):
    ec, e1 = combo
    return f"symfunction_short {ec:2s} {sf_type} {e1:2s} {eta:9.3E} {r_s:9.3E} {r_c:9.3E}"


def _line_angular(sf_type, combo, eta, r_s, r_c, zeta, lam):
    ec, e1, e2 = combo
    return (f"symfunction_short {ec:2s} {sf_type} {e1:2s} {e2:2s} {eta:9.3E} "
            f"{lam:2.0f} {zeta:9.3E} {r_c:9.3E} {r_s:9.3E}")


def _line_weighted_radial(sf_type, combo, eta, r_s, r_c, zeta=None, lam=None):
    (ec,) = combo
    return f"symfunction_short {ec:2s} {sf_type} {eta:9.3E} {r_s:9.3E} {r_c:9.3E}"


def _line_weighted_angular(sf_type, combo, eta, r_s, r_c, zeta, lam):
    (ec,) = combo
    # The trailing space is part of the sfparamgen format (§14).
    return (f"symfunction_short {ec:2s} {sf_type} {eta:9.3E} {r_s:9.3E} "
            f"{lam:2.0f} {zeta:9.3E} {r_c:9.3E} ")


class _Kind(NamedTuple):
    sf_type: int  # n2p2 symmetry-function type number
    title: str  # first words of the overview header
    angular: bool  # has ζ and λ loops
    combos: Callable  # elements -> list of element tuples (one block each)
    line: Callable  # formats one line


def _kind(name, combos, line):
    """A generator kind for the SF type *name* of the type table
    (:mod:`hpcnnp.descriptors.sftypes`); refuses types the engine does not evaluate."""
    row = sftypes.by_name(name)
    if not row.evaluated:
        raise SymFuncParamError(f"symmetry-function type {row.number} ({name}) is not "
                                "evaluated by hpcnnp's engine; sfgen does not write it")
    return _Kind(row.number, row.title, row.angular, combos, line)


#: kind -> n2p2 type and formatting: the types n2p2's sfparamgen has rules for
#: (2, 3, 9, 12, 13); the polynomial types 20-25 have no published generator rules.
KINDS = {
    "radial": _kind("radial", _pairs, _line_radial),
    "angular_narrow": _kind("angular_narrow", _triples, _line_angular),
    "angular_wide": _kind("angular_wide", _triples, _line_angular),
    "weighted_radial": _kind("weighted_radial", _singles, _line_weighted_radial),
    "weighted_angular": _kind("weighted_angular", _singles, _line_weighted_angular),
}

_ELEMENT_RE = re.compile(r"^[A-Z][a-z]?$")


def _check_elements(elements):
    """Element symbols as a tuple of plain ``str`` (unique, 'X' or 'Xy')."""
    if isinstance(elements, str):
        raise SymFuncParamError("elements must be a sequence of symbols, "
                                f"not the string {elements!r}")
    elements = tuple(str(e) for e in elements)
    if not elements:
        raise SymFuncParamError("no elements given")
    for e in elements:
        if not _ELEMENT_RE.match(e):
            raise SymFuncParamError(f"{e!r} is not an element symbol "
                                    "(expected e.g. Li, O, Zr)")
    duplicates = sorted({e for e in elements if elements.count(e) > 1})
    if duplicates:
        raise SymFuncParamError(f"element(s) given twice: {' '.join(duplicates)}")
    return elements


def _check_zetas(zetas):
    try:
        zetas = tuple(zetas)
    except TypeError:
        raise SymFuncParamError(f"zetas must be a sequence, got {zetas!r}") from None
    if not zetas:
        raise SymFuncParamError("angular sets need at least one zeta")
    for z in zetas:
        if isinstance(z, bool) or not isinstance(z, (int, float, np.number)) \
                or not math.isfinite(z) or z <= 0:
            raise SymFuncParamError(f"zeta must be a finite number > 0, got {z!r}")
    if len(set(zetas)) != len(zetas):
        raise SymFuncParamError(f"zetas contain duplicates: {list(zetas)}")
    return zetas


def _array_text(values):
    """``str(numpy array)`` with precision 4, independent of global options.

    The line width is unlimited so that every grid stays on one ``#`` line
    (numpy would wrap at 75 characters; none of the reference grids does).
    """
    with np.printoptions(precision=4, floatmode="maxprec", suppress=False,
                         sign="-", threshold=1_000_000, linewidth=1_000_000,
                         legacy=False):
        return str(np.asarray(values))


# ---------------------------------------------------------------------------
# Data model
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class SymFuncSet:
    """One set of symmetry functions: a kind plus a radial-parameter rule.

    Parameters
    ----------
    kind : {'radial', 'angular_narrow', 'angular_wide', 'weighted_radial', \
'weighted_angular'}
        n2p2 types 2, 3, 9, 12 and 13.
    rule : {'imbalzano2018', 'gastegger2018'}
        See :func:`radial_parameters` (doi:10.1063/1.5024611 and
        doi:10.1063/1.5019667).
    mode : {'center', 'shift'}
        See :func:`radial_parameters`.
    n_pairs : int
        Number of (r_s, η) pairs, ≥ 2.
    r_cutoff : float
        Cutoff radius r_c (length, e.g. Å).
    r_lower, r_upper : float, optional
        Grid bounds (length) for ``gastegger2018``; r_upper defaults to
        r_cutoff.  Ignored (with a warning, stored as ``None``) for
        ``imbalzano2018``.
    zetas : tuple of float, default (1,)
        Exponents ζ of the angular kinds (> 0, no duplicates).  Radial kinds
        store ``()`` (as in sfparamgen, a radial type has no ζ).

    Notes
    -----
    λ is fixed to (−1, +1).  Settings are checked when the set is created;
    invalid ones raise :class:`SymFuncParamError`.
    """

    kind: str
    rule: str
    mode: str
    n_pairs: int
    r_cutoff: float
    r_lower: float | None = None
    r_upper: float | None = None
    zetas: tuple = (1,)
    _grid: tuple = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise SymFuncParamError(f"unknown symmetry-function kind {self.kind!r} "
                                    f"(known: {', '.join(KINDS)})")
        if not sftypes.TYPES[KINDS[self.kind].sf_type].evaluated:
            raise SymFuncParamError(f"symmetry-function kind {self.kind!r} (n2p2 type "
                                    f"{KINDS[self.kind].sf_type}) is not evaluated by "
                                    "hpcnnp's engine")
        uses_bounds = _lookup_rule(self.rule, self.mode).uses_bounds
        r_shift, eta = radial_parameters(self.rule, self.mode, self.n_pairs,
                                         self.r_cutoff, self.r_lower, self.r_upper)
        r_c = _check_cutoff(self.r_cutoff)
        if uses_bounds:
            r_lower = _as_length("r_lower", self.r_lower)
            r_upper = _as_length("r_upper", self.r_upper)
            bounds = (r_lower, r_c if r_upper is None else r_upper)
        else:
            bounds = (None, None)
        zetas = _check_zetas(self.zetas) if self._kind.angular else ()
        object.__setattr__(self, "n_pairs", operator.index(self.n_pairs))
        object.__setattr__(self, "r_cutoff", r_c)
        object.__setattr__(self, "r_lower", bounds[0])
        object.__setattr__(self, "r_upper", bounds[1])
        object.__setattr__(self, "zetas", zetas)
        r_shift.flags.writeable = False
        eta.flags.writeable = False
        object.__setattr__(self, "_grid", (r_shift, eta))

    @property
    def _kind(self):
        return KINDS[self.kind]

    @property
    def sf_type(self):
        """n2p2 symmetry-function type number (2, 3, 9, 12 or 13)."""
        return self._kind.sf_type

    @property
    def r_shift(self):
        """Shifts r_s (length), read-only array of length ``n_pairs``."""
        return self._grid[0]

    @property
    def eta(self):
        """Widths η (1/length²), read-only array of length ``n_pairs``."""
        return self._grid[1]

    @property
    def lambdas(self):
        """λ values: (−1, +1) for angular kinds, () otherwise."""
        return LAMBDAS if self._kind.angular else ()

    def _block(self, combo):
        """Lines of one element combination: (η, r_s), then ζ, then λ."""
        kind, r_c = self._kind, self.r_cutoff
        inner = [(z, lam) for z in self.zetas for lam in LAMBDAS] \
            if kind.angular else [(None, None)]
        return [kind.line(kind.sf_type, combo, float(eta), float(r_s), r_c, z, lam)
                for eta, r_s in zip(self.eta, self.r_shift)
                for z, lam in inner]

    def lines(self, elements):
        """``symfunction_short`` lines, with ``''`` after each element block.

        Parameters
        ----------
        elements : sequence of str
            Element symbols; their order sets the order of the blocks
            (radial: ordered pairs; angular: per central element
            ``itertools.combinations_with_replacement(elements, 2)``;
            weighted: one block per central element).

        Returns
        -------
        list of str
            Lines without newline characters; ``"\\n".join(lines) + "\\n"``
            is the text sfparamgen writes.
        """
        out = []
        for combo in self._kind.combos(_check_elements(elements)):
            out.extend(self._block(combo))
            out.append("")
        return out

    def n_per_element(self, elements):
        """Number of symmetry functions per central element."""
        elements = _check_elements(elements)
        n_blocks = len(self._kind.combos(elements)) // len(elements)
        n_inner = len(self.zetas) * len(LAMBDAS) if self._kind.angular else 1
        return n_blocks * self.n_pairs * n_inner

    def overview(self, elements):
        """Settings-overview block (``#`` comment lines, ending in ``\\n``).

        Grids are printed like numpy arrays with precision 4, e.g.
        ``# r_shift_grid   = [0.6667 0.851  1.0863 ...]``.
        """
        elements = _check_elements(elements)
        rows = [
            _RULER,
            f"# {self._kind.title} symmetry function set, for elements {list(elements)!r}",
            _RULER,
            f"# r_cutoff       = {self.r_cutoff!r}",
            "# The following settings were used for generating sets",
            "# of values for the radial parameters r_shift and eta:",
            f"# rule           = {self.rule}",
            f"# mode           = {self.mode}",
            f"# nb_param_pairs = {self.n_pairs}",
        ]
        if self.r_lower is not None:
            rows.append(f"# r_lower        = {self.r_lower!r}")
            rows.append(f"# r_upper        = {self.r_upper!r}")
        rows += [
            "# Sets of values for parameters:",
            f"# r_shift_grid   = {_array_text(self.r_shift)}",
            f"# eta_grid       = {_array_text(self.eta)}",
        ]
        if self._kind.angular:
            rows.append(f"# lambdas        = {_array_text(LAMBDAS)}")
            rows.append(f"# zetas          = {_array_text(self.zetas)}")
        return "\n".join(rows) + "\n"

    def text(self, elements):
        """Overview, a blank line, then the lines (each block + blank line)."""
        return self.overview(elements) + "\n" + "\n".join(self.lines(elements)) + "\n"


def generate(elements, sets):
    """Text of all sets: for each, its overview (comments) and its lines.

    Parameters
    ----------
    elements : sequence of str
        Element symbols (order of the element combinations).
    sets : sequence of SymFuncSet
        The sets, written in the given order.

    Returns
    -------
    str
        Ready to be pasted into (or appended to) ``input.nn``.
    """
    elements = _check_elements(elements)
    sets = tuple(sets)
    if not sets:
        raise SymFuncParamError("no symmetry-function set given")
    return "".join(s.text(elements) for s in sets)


@dataclass(frozen=True)
class SymFuncConfig:
    """Elements plus the symmetry-function sets of a potential.

    Parameters
    ----------
    elements : tuple of str
        Element symbols.
    sets : tuple of SymFuncSet
        Sets written in this order.
    """

    elements: tuple
    sets: tuple

    def __post_init__(self):
        object.__setattr__(self, "elements", _check_elements(self.elements))
        object.__setattr__(self, "sets", tuple(self.sets))

    def generate(self):
        """See :func:`generate`."""
        return generate(self.elements, self.sets)

    def lines(self):
        """All ``symfunction_short`` lines (without the blank separators)."""
        return [line for s in self.sets for line in s.lines(self.elements) if line]

    def n_per_element(self):
        """Number of symmetry functions per central element."""
        return sum(s.n_per_element(self.elements) for s in self.sets)

    def counts(self):
        """``{kind: SFs per element}`` (kinds summed over sets)."""
        out = {}
        for s in self.sets:
            out[s.kind] = out.get(s.kind, 0) + s.n_per_element(self.elements)
        return out


_LLZO_LCO_ELEMENTS = ("Li", "La", "Zr", "O", "Co")
_LLZO_LCO_RC = 6.0
_LLZO_LCO_RADIAL = SymFuncSet("radial", "imbalzano2018", "shift", 9, _LLZO_LCO_RC)
_LLZO_LCO_ANGULAR = dict(rule="gastegger2018", mode="center", n_pairs=3,
                         r_cutoff=_LLZO_LCO_RC, r_lower=1.5, r_upper=6.0, zetas=(1, 6))

#: hpcnnp default for LLZO/LCO (Li La Zr O Co, r_c = 6.0 Å): radial
#: imbalzano2018 shift N=9 + narrow angular gastegger2018 center N=3 on
#: [1.5, 6.0] Å, ζ = 1, 6, λ = ±1 → 45 + 180 = 225 SFs per element.
LLZO_LCO_DEFAULT = SymFuncConfig(_LLZO_LCO_ELEMENTS, (
    _LLZO_LCO_RADIAL,
    SymFuncSet("angular_narrow", **_LLZO_LCO_ANGULAR),
))

#: :data:`LLZO_LCO_DEFAULT` plus the same angular parameters as wide
#: angular (type 9) functions → 405 SFs per element.
LLZO_LCO_WIDE = SymFuncConfig(_LLZO_LCO_ELEMENTS, LLZO_LCO_DEFAULT.sets + (
    SymFuncSet("angular_wide", **_LLZO_LCO_ANGULAR),
))

#: preset name (``hpcnnp sfgen --preset``) -> configuration
PRESETS = {"llzo-lco": LLZO_LCO_DEFAULT, "llzo-lco-wide": LLZO_LCO_WIDE}
