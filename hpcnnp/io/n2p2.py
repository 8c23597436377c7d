"""n2p2 file formats: ``input.data``, ``input.nn``, ``scaling.data``, ``weights.ZZZ.data``.

hpcnnp exchanges potentials and data sets with n2p2 unchanged, so this module reads
what n2p2 reads and writes, byte for byte, what n2p2 writes.  The rules implemented here
are those of ``shared/n2p2-formats.md`` (n2p2 commit 61daa0d); the section numbers in
the comments refer to that document.

Structures (``input.data``)
    :func:`iter_data` streams a file of any size, one :class:`ase.Atoms` per
    ``begin``/``end`` block; :func:`read_data` collects (a slice of) them and
    :func:`write_data` writes n2p2's own output format (``%24.16E``, 17 significant
    digits, so every double survives a write/read round trip exactly).

    Conventions of the returned Atoms: positions are kept verbatim (n2p2 wraps them into
    the cell on reading, hpcnnp does not); ``pbc=True`` and ``cell`` from the three
    ``lattice`` lines, or ``pbc=False`` and a zero cell without them; atomic charges as
    initial charges; the reference energy and forces in a
    :class:`~ase.calculators.singlepoint.SinglePointCalculator` (energy 0 when the file
    has no ``energy`` line); ``info`` keys ``comment`` (only if the block has one),
    ``set`` ("train"/"test", only if tagged), ``charge`` (total charge),
    ``n2p2_index`` (0-based structure index) and ``n2p2_line`` (line of ``begin``).

Settings (``input.nn``)
    :func:`read_settings` returns a :class:`Settings`: keyword access with n2p2's
    aliases, and validated derived quantities (elements in atomic-number order,
    symmetry functions sorted as n2p2 sorts them, scaling type, network topology,
    offsets, normalisation).  :func:`write_settings` rewrites the file keeping every
    line and updating or appending keywords.

Potential files
    :func:`read_scaling` / :func:`write_scaling` and :func:`read_weights` /
    :func:`write_weights`, with n2p2's headers.

Every problem in an input file raises :class:`~hpcnnp.errors.InputFileError` naming the
file, the 1-based line and the problem.

>>> settings = read_settings("pot/input.nn")                       # doctest: +SKIP
>>> settings.elements, settings.layer_sizes("Li")                  # doctest: +SKIP
(['Li', 'O', 'Co', 'Zr', 'La'], [225, 20, 20, 1])
>>> for atoms in iter_data("input.data", settings.elements):       # doctest: +SKIP
...     print(atoms.info["n2p2_index"], atoms.get_potential_energy())
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from functools import cached_property
from itertools import islice
from typing import Iterator

import numpy as np

from hpcnnp.errors import InputFileError, PotentialError
from hpcnnp.units import CHEMICAL_SYMBOLS

__all__ = [
    "N2P2_ELEMENTS", "element_order", "SymmetryFunction", "parse_symfunction",
    "Settings", "read_settings", "write_settings",
    "read_scaling", "write_scaling", "read_weights", "write_weights",
    "weights_filename", "iter_data", "read_data", "write_data",
]

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
    """Write a file atomically: ``write(fileobj)`` fills a temporary file in the same
    folder, which then replaces *path* (a killed run never leaves half a file)."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(folder, f".{os.path.basename(path)}.tmp.{os.getpid()}."
                               f"{os.urandom(4).hex()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape",
                       newline="\n") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.chmod(tmp, os.stat(path).st_mode & 0o7777)
        except FileNotFoundError:
            pass
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


# ---------------------------------------------------------------------------------------
# Symmetry functions (§5.1, §5.3)
# ---------------------------------------------------------------------------------------

_SF_COMPACT_SUBTYPES = ("p1", "p2", "p3", "p4", "p1a", "p2a", "p3a", "p4a", "e")

# type -> (number of tokens after "Ec type" (min, max), description of the line)
_SF_FORMATS = {
    2: ((4, 4), "Ec 2 E1 eta rs rc"),
    3: ((6, 7), "Ec 3 E1 E2 eta lambda zeta rc [rs]"),
    9: ((6, 7), "Ec 9 E1 E2 eta lambda zeta rc [rs]"),
    12: ((3, 3), "Ec 12 eta rs rc"),
    13: ((5, 5), "Ec 13 eta rs lambda zeta rc"),
    20: ((4, 4), "Ec 20 E1 rl rc sub"),
    21: ((7, 7), "Ec 21 E1 E2 rl rc angle_l angle_r sub"),
    22: ((7, 7), "Ec 22 E1 E2 rl rc angle_l angle_r sub"),
    23: ((3, 3), "Ec 23 rl rc sub"),
    24: ((5, 5), "Ec 24 rl rc angle_l angle_r sub"),
    25: ((5, 5), "Ec 25 rl rc angle_l angle_r sub"),
}


@dataclass(frozen=True)
class SymmetryFunction:
    """One ``symfunction_short`` line of an ``input.nn`` (§5.1).

    Attributes
    ----------
    central : str
        Element of the central atom.
    sftype : int
        n2p2 type number: 2 radial, 3 narrow angular, 9 wide angular (the engine's
        types); 12, 13 (weighted) and 20-25 (compact) are parsed too.
    e1, e2 : str or None
        Neighbour elements; ``e2`` is None for radial types, both None for the
        weighted types 12/13.  For angular types ``e1``/``e2`` are ordered so that
        ``index(e1) <= index(e2)`` (n2p2 swaps them).
    eta : float, 1/length²
        Gaussian width (0.0 for compact types 20-25).
    rs : float, length
        Gaussian shift (default 0 for types 3/9; 0.0 for compact types).
    rc : float, length
        Cutoff radius (for compact types: the right cutoff radius).
    lam, zeta : float or None
        Angular parameters lambda and zeta (types 3, 9, 13).
    line : int
        1-based line in ``input.nn``.
    rl, angle_left, angle_right : float or None
        Compact types only: left radius (length), angle interval (degrees).
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
    def is_angular(self) -> bool:
        return self.sftype in (3, 9, 13, 21, 22, 24, 25)

    def sort_key(self, element_index: dict, cutoff_type: int, cutoff_alpha: float) -> tuple:
        """n2p2's sort key (§5.3): type, cutoff type, alpha, r_c, eta, r_s, then
        (angular) zeta, lambda, then the neighbour element indices.

        The sorted position is the network input index, the ``sf_index`` of
        ``scaling.data`` and the row order of the first weight layer.
        """
        base = (self.sftype, cutoff_type, cutoff_alpha, self.rc)
        neighbours = tuple(element_index[e] for e in (self.e1, self.e2) if e is not None)
        if self.sftype in (2, 12):
            return base + (self.eta, self.rs) + neighbours
        if self.sftype in (3, 9, 13):
            return base + (self.eta, self.rs, self.zeta, self.lam) + neighbours
        # compact types (20-25): left radius, angle interval, core function
        return base + (self.rl, self.angle_left if self.angle_left is not None else 0.0,
                       self.angle_right if self.angle_right is not None else 0.0,
                       self.subtype) + neighbours


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
        arguments, bad numbers, elements not listed in ``elements``.
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
    sftype = _to_int(tokens[1], path, line, "symmetry function type")
    if sftype not in _SF_FORMATS:
        raise InputFileError(path, line, f"unknown symmetry function type {sftype} "
                                         f"(n2p2 has {', '.join(map(str, _SF_FORMATS))})")
    (nmin, nmax), form = _SF_FORMATS[sftype]
    args = tokens[2:]
    if not nmin <= len(args) <= nmax:
        raise InputFileError(path, line, f"symmetry function type {sftype} takes "
                                         f"'{form}', got {len(args) + 2} fields")

    def num(k, what):
        return _to_float(args[k], path, line, f"symmetry function {what}")

    e1 = e2 = lam = zeta = rl = angle_left = angle_right = subtype = None
    eta = rs = 0.0
    if sftype == 2:
        e1 = element(args[0], "neighbour")
        eta, rs, rc = num(1, "eta"), num(2, "r_s"), num(3, "r_c")
    elif sftype in (3, 9):
        e1, e2 = element(args[0], "neighbour"), element(args[1], "neighbour")
        eta, lam, zeta, rc = num(2, "eta"), num(3, "lambda"), num(4, "zeta"), num(5, "r_c")
        rs = num(6, "r_s") if len(args) == 7 else 0.0
    elif sftype == 12:
        eta, rs, rc = num(0, "eta"), num(1, "r_s"), num(2, "r_c")
    elif sftype == 13:
        eta, rs, lam, zeta, rc = (num(0, "eta"), num(1, "r_s"), num(2, "lambda"),
                                  num(3, "zeta"), num(4, "r_c"))
    else:
        k = 0
        if sftype in (20, 21, 22):
            e1 = element(args[0], "neighbour")
            k = 1
            if sftype in (21, 22):
                e2 = element(args[1], "neighbour")
                k = 2
        rl, rc = num(k, "r_l"), num(k + 1, "r_c")
        if sftype in (21, 22, 24, 25):
            angle_left, angle_right = num(k + 2, "left angle"), num(k + 3, "right angle")
        subtype = args[-1]
        if subtype not in _SF_COMPACT_SUBTYPES:
            raise InputFileError(path, line, f"unknown compact function subtype {subtype!r} "
                                             f"(expected one of {' '.join(_SF_COMPACT_SUBTYPES)})")
        if rl >= rc:
            raise InputFileError(path, line, f"symmetry function r_l = {rl} must be < r_c = {rc}")
    if rc <= 0.0:
        raise InputFileError(path, line, f"symmetry function cutoff radius r_c = {rc} "
                                         "must be positive")
    if e2 is not None and element_index[e1] > element_index[e2]:
        e1, e2 = e2, e1
    return SymmetryFunction(central=central, sftype=sftype, e1=e1, e2=e2, eta=eta, rs=rs,
                            rc=rc, lam=lam, zeta=zeta, line=line, rl=rl,
                            angle_left=angle_left, angle_right=angle_right,
                            subtype=subtype)


# ---------------------------------------------------------------------------------------
# input.nn keywords (§2)
# ---------------------------------------------------------------------------------------

# Main spelling -> alternative spellings (identical meaning, §2).
_ALIASES = {
    "symfunction_short": ("symfunction",),
    "energy_fraction": ("short_energy_fraction",),
    "force_fraction": ("short_force_fraction",),
    "rmse_threshold_energy": ("short_energy_error_threshold",),
    "rmse_threshold_force": ("short_force_error_threshold",),
    "nnp_type": ("nnp_generation", "nnp_type_gen", "nnp_gen"),
}
_CANONICAL = {alt: main for main, alts in _ALIASES.items() for alt in alts}

# Keywords that may appear on several lines.
_REPEATABLE = frozenset({"symfunction_short", "atom_energy", "element_nodes_short",
                         "fixed_gausswidth", "initial_hardness"})

# Keywords n2p2 knows (main spellings); anything else only gives a warning.
_KNOWN = frozenset("""
number_of_elements elements atom_energy cutoff_type symfunction_short
scale_symmetry_functions center_symmetry_functions scale_symmetry_functions_sigma
scale_min_short scale_max_short global_hidden_layers_short global_nodes_short
global_activation_short element_hidden_layers_short element_nodes_short
element_activation_short normalize_nodes mean_energy conv_energy conv_length nnp_type
global_hidden_layers_electrostatic global_nodes_electrostatic
global_activation_electrostatic element_hidden_layers_electrostatic
element_nodes_electrostatic element_activation_electrostatic fixed_gausswidth
initial_hardness ewald_truncation_error_method ewald_prec screen_electrostatics
four_pi_epsilon kspace_solver committee_dir_prefix
random_seed test_fraction epochs use_short_forces rmse_threshold rmse_threshold_energy
rmse_threshold_force rmse_threshold_charge rmse_threshold_trials
rmse_threshold_trials_energy rmse_threshold_trials_force rmse_threshold_trials_charge
energy_fraction force_fraction charge_fraction force_energy_ratio use_old_weights_short
use_old_weights_charge weights_min weights_max nguyen_widrow_weights_short
nguyen_widrow_weights_charge precondition_weights main_error_metric write_trainpoints
write_trainforces write_traincharges write_weights_epoch write_neuronstats
write_trainlog repeated_energy_update updater_type parallel_mode jacobian_mode
update_strategy selection_mode selection_mode_energy selection_mode_force
selection_mode_charge task_batch_size_energy task_batch_size_force
task_batch_size_charge gradient_type gradient_eta gradient_adam_eta gradient_adam_beta1
gradient_adam_beta2 gradient_adam_epsilon kalman_type kalman_epsilon kalman_eta
kalman_etatau kalman_etamax kalman_q0 kalman_qtau kalman_qmin kalman_lambda_short
kalman_nue_short memorize_symfunc_results force_weight normalize_data_set
kalman_decoupling
""".split())   # kalman_decoupling: hpcnnp's decoupled Kalman filter (n2p2 ignores it)

_ACTIVATIONS = frozenset("ltsprgcSeh")          # §8.1


def _canonical(keyword):
    return _CANONICAL.get(keyword, keyword)


@dataclass(frozen=True)
class _Entry:
    keyword: str        # spelling used in the file
    args: str           # arguments, comment stripped, whitespace collapsed
    line: int           # 1-based


class Settings:
    """An n2p2 ``input.nn`` (§2): keywords plus validated derived quantities.

    Construct with :func:`read_settings` (or ``Settings(path, lines)``).  Keyword access
    resolves aliases (``"symfunction"`` is ``"symfunction_short"`` ...).  Derived
    properties are computed (and validated) on first use; :func:`read_settings`
    touches all of them unless ``validate=False``.

    Attributes
    ----------
    path : str
        File name (used in error messages).
    lines : list of str
        Raw lines of the file, without line ends (for faithful rewriting).
    elements : list of str
        Elements sorted by atomic number (n2p2's element index order).
    warnings : list of str
        Non-fatal problems (unknown keywords), "file:line: message".
    """

    def __init__(self, path, lines):
        self.path = str(path)
        self.lines = list(lines)
        self.warnings: list[str] = []
        self._entries: dict[str, list[_Entry]] = {}
        for number, raw in enumerate(self.lines, start=1):
            text = raw
            for mark in "#!":
                cut = text.find(mark)
                if cut >= 0:
                    text = text[:cut]
            tokens = text.split()
            if not tokens:
                continue
            keyword, args = tokens[0], " ".join(tokens[1:])
            main = _canonical(keyword)
            if main not in _KNOWN:
                self.warnings.append(f"{self.path}:{number}: unknown keyword {keyword!r} "
                                     "(ignored)")
            entries = self._entries.setdefault(main, [])
            if entries:
                first = entries[0]
                if first.keyword != keyword:
                    raise InputFileError(self.path, number,
                                         f"keyword {keyword!r} is another spelling of "
                                         f"{first.keyword!r} (line {first.line}); "
                                         "use only one")
                if main in _KNOWN and main not in _REPEATABLE:   # unknown: warning only
                    raise InputFileError(self.path, number,
                                         f"keyword {keyword!r} repeated (first at line "
                                         f"{first.line}); it may appear only once")
            entries.append(_Entry(keyword, args, number))

        # Elements (§2.1, §3).
        if "elements" not in self:
            raise InputFileError(self.path, None, "keyword 'elements' missing")
        line = self.line_of("elements")
        symbols = self.get("elements").split()
        if not symbols:
            raise InputFileError(self.path, line, "'elements' lists no element")
        self.elements = element_order(symbols, self.path, line)
        if "number_of_elements" not in self:
            raise InputFileError(self.path, None, "keyword 'number_of_elements' missing")
        count = self.get_int("number_of_elements")
        if count != len(self.elements):
            raise InputFileError(self.path, self.line_of("number_of_elements"),
                                 f"number_of_elements is {count} but 'elements' (line "
                                 f"{line}) lists {len(self.elements)}")
        self.element_index = {e: i for i, e in enumerate(self.elements)}

    @classmethod
    def from_text(cls, text, path="<input.nn>"):
        """Settings from the text of an ``input.nn`` (for tests and generators)."""
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        return cls(path, lines)

    # -- keyword access ------------------------------------------------------------------

    def __contains__(self, key) -> bool:
        return _canonical(key) in self._entries

    def _entry(self, key):
        entries = self._entries.get(_canonical(key))
        return entries[0] if entries else None

    def get(self, key, default=None):
        """Argument string of a keyword (comment stripped, whitespace collapsed; ``""``
        for a flag), or *default* when absent.  For repeatable keywords: the first."""
        entry = self._entry(key)
        return default if entry is None else entry.args

    def _value(self, key, convert, kind):
        entry = self._entry(key)
        tokens = entry.args.split()
        if not tokens:
            raise InputFileError(self.path, entry.line,
                                 f"{entry.keyword} needs a value ({kind})")
        return convert(tokens[0], self.path, entry.line, entry.keyword)

    def get_float(self, key, default=None):
        """First argument of a keyword as float, or *default* when absent.

        Like n2p2's ``atof`` only the first argument counts (``selection_mode 2 10 1``),
        but it is parsed strictly: garbage, NaN and inf are errors."""
        return default if key not in self else self._value(key, _to_float, "a number")

    def get_int(self, key, default=None):
        """First argument of a keyword as int (strictly parsed), or *default*."""
        return default if key not in self else self._value(key, _to_int, "an integer")

    def get_flag(self, key) -> bool:
        """Presence of a flag keyword; its value is ignored (``use_short_forces 0`` is
        ON, as in n2p2)."""
        return key in self

    def get_all(self, key) -> list[tuple[str, int]]:
        """``(argument string, line)`` of every occurrence (repeatable keywords)."""
        return [(e.args, e.line) for e in self._entries.get(_canonical(key), [])]

    def line_of(self, key):
        """1-based line of the (first) occurrence of a keyword, or None."""
        entry = self._entry(key)
        return None if entry is None else entry.line

    def _require(self, key):
        if key not in self:
            raise InputFileError(self.path, None, f"keyword {key!r} missing")

    # -- derived, validated quantities --------------------------------------------------

    @cached_property
    def cutoff_type(self) -> int:
        """Cutoff function type T of ``cutoff_type T [alpha]`` (0-8, §4)."""
        return self._cutoff[0]

    @cached_property
    def cutoff_alpha(self) -> float:
        """Inner cutoff fraction alpha (default 0, 0 <= alpha < 1)."""
        return self._cutoff[1]

    @cached_property
    def _cutoff(self):
        self._require("cutoff_type")
        line = self.line_of("cutoff_type")
        tokens = self.get("cutoff_type").split()
        if not 1 <= len(tokens) <= 2:
            raise InputFileError(self.path, line, "expected 'cutoff_type T [alpha]'")
        ctype = _to_int(tokens[0], self.path, line, "cutoff_type")
        if not 0 <= ctype <= 8:
            raise InputFileError(self.path, line, f"unknown cutoff type {ctype} (0-8)")
        alpha = _to_float(tokens[1], self.path, line, "cutoff alpha") if len(tokens) == 2 else 0.0
        if not 0.0 <= alpha < 1.0:
            raise InputFileError(self.path, line, f"cutoff alpha {alpha} must satisfy "
                                                  "0 <= alpha < 1")
        return ctype, alpha

    @cached_property
    def symmetry_functions(self) -> dict[str, list[SymmetryFunction]]:
        """Symmetry functions per central element, sorted in n2p2's order (§5.3)."""
        per_element = {e: [] for e in self.elements}
        for args, line in self.get_all("symfunction_short"):
            sf = parse_symfunction(args, self.element_index, self.path, line)
            per_element[sf.central].append(sf)
        ctype, alpha = self._cutoff
        for element, sfs in per_element.items():
            if not sfs:
                raise InputFileError(self.path, self.line_of("elements"),
                                     f"element {element} has no symmetry function "
                                     "(symfunction_short)")
            # stable sort: duplicate lines keep their file order (they are identical)
            sfs.sort(key=lambda sf: sf.sort_key(self.element_index, ctype, alpha))
        return per_element

    def n_sf(self, element) -> int:
        """Number of symmetry functions (network inputs) of an element."""
        return len(self.symmetry_functions[element])

    @cached_property
    def scaling_type(self) -> str:
        """SF scaling (§7): 'none', 'scale', 'center', 'scalecenter' or 'scalesigma'.

        As in n2p2, ``scale_symmetry_functions_sigma`` is ignored when
        ``scale_symmetry_functions`` or ``center_symmetry_functions`` is present."""
        scale = "scale_symmetry_functions" in self
        center = "center_symmetry_functions" in self
        if scale and center:
            return "scalecenter"
        if scale:
            return "scale"
        if center:
            return "center"
        if "scale_symmetry_functions_sigma" in self:
            return "scalesigma"
        return "none"

    @cached_property
    def scale_min(self) -> float:
        """S_min of ``scale_min_short`` (default 0.0)."""
        return self.get_float("scale_min_short", 0.0)

    @cached_property
    def scale_max(self) -> float:
        """S_max of ``scale_max_short`` (default 1.0)."""
        return self.get_float("scale_max_short", 1.0)

    @cached_property
    def _topology(self):
        # Global topology.
        self._require("global_hidden_layers_short")
        n_hidden = self.get_int("global_hidden_layers_short")
        if n_hidden < 0:
            raise InputFileError(self.path, self.line_of("global_hidden_layers_short"),
                                 "number of hidden layers must be >= 0")
        if n_hidden > 0:
            self._require("global_nodes_short")
        nodes = self._node_list(self.get("global_nodes_short", ""),
                                self.line_of("global_nodes_short"), "global_nodes_short")
        if len(nodes) != n_hidden:
            raise InputFileError(self.path, self.line_of("global_nodes_short"),
                                 f"global_nodes_short gives {len(nodes)} layer sizes but "
                                 f"global_hidden_layers_short is {n_hidden}")
        self._require("global_activation_short")
        line = self.line_of("global_activation_short")
        acts = self._activation_list(self.get("global_activation_short"), line,
                                     "global_activation_short")
        if len(acts) != n_hidden + 1:
            raise InputFileError(self.path, line,
                                 f"global_activation_short needs {n_hidden + 1} letters "
                                 f"({n_hidden} hidden layers + output), got {len(acts)}")

        # Per-element overrides (§2.1, §8.1).  Intended semantics, implemented here:
        #   element_hidden_layers_short El n         -> n hidden layers for El
        #   element_nodes_short El n_1 ... n_n       -> all n hidden layer sizes
        #   element_activation_short El a_1 ... a_n a_out
        # Caveat: n2p2 (61daa0d) only copies layers 1 ... n-1 from element_nodes_short
        # (the last hidden layer keeps the global size) -- a loop-bound bug.  Potentials
        # that rely on per-element sizes therefore behave differently in n2p2; the
        # global keywords are the portable choice.
        def overrides(keyword):
            found = {}
            for args, ln in self.get_all(keyword):
                tokens = args.split()
                if not tokens:
                    raise InputFileError(self.path, ln, f"{keyword} needs '<element> ...'")
                element = tokens[0]
                if element not in self.element_index:
                    raise InputFileError(self.path, ln, f"{keyword}: element {element!r} is "
                                                        "not listed in 'elements'")
                if element in found:
                    raise InputFileError(self.path, ln, f"{keyword} for {element} given "
                                                        f"twice (also line {found[element][1]})")
                found[element] = (tokens[1:], ln)
            return found

        el_layers = overrides("element_hidden_layers_short")
        el_nodes = overrides("element_nodes_short")
        el_acts = overrides("element_activation_short")
        hidden, activations = {}, {}
        for element in self.elements:
            n, n_line = n_hidden, self.line_of("global_hidden_layers_short")
            if element in el_layers:
                tokens, n_line = el_layers[element]
                if len(tokens) != 1:
                    raise InputFileError(self.path, n_line,
                                         "expected 'element_hidden_layers_short El n'")
                n = _to_int(tokens[0], self.path, n_line, "element_hidden_layers_short")
                if n < 0:
                    raise InputFileError(self.path, n_line,
                                         "number of hidden layers must be >= 0")
            if element in el_nodes:
                tokens, ln = el_nodes[element]
                el_n = self._node_list(" ".join(tokens), ln, "element_nodes_short")
            elif element in el_layers:      # layer count changed, sizes still global
                el_n, ln = nodes, n_line
            else:
                el_n, ln = nodes, self.line_of("global_nodes_short") or n_line
            if len(el_n) != n:
                raise InputFileError(self.path, ln,
                                     f"{len(el_n)} hidden layer sizes for {element}, but it "
                                     f"has {n} hidden layers (line {n_line}); give "
                                     f"'element_nodes_short {element} n_1 ... n_{n}'")
            if element in el_acts:
                tokens, ln = el_acts[element]
                el_a = self._activation_list(" ".join(tokens), ln, "element_activation_short")
            elif element in el_layers:
                el_a, ln = acts, n_line
            else:
                el_a, ln = acts, line
            if len(el_a) != n + 1:
                raise InputFileError(self.path, ln,
                                     f"{len(el_a)} activation letters for {element}, but it "
                                     f"needs {n + 1} ({n} hidden layers + output, line "
                                     f"{n_line}); give 'element_activation_short {element} "
                                     f"a_1 ... a_{n} a_out'")
            hidden[element], activations[element] = list(el_n), list(el_a)
        return hidden, activations

    def _node_list(self, args, line, keyword):
        nodes = [_to_int(t, self.path, line, keyword) for t in args.split()]
        if any(n < 1 for n in nodes):
            raise InputFileError(self.path, line, f"{keyword}: layer sizes must be >= 1")
        return nodes

    def _activation_list(self, args, line, keyword):
        letters = args.split()
        for letter in letters:
            if letter not in _ACTIVATIONS:
                raise InputFileError(self.path, line,
                                     f"{keyword}: unknown activation function {letter!r} "
                                     f"(one of {' '.join(sorted(_ACTIVATIONS))})")
        return letters

    @cached_property
    def hidden_nodes(self) -> dict[str, list[int]]:
        """Hidden layer sizes per element (global keywords + per-element overrides)."""
        return self._topology[0]

    @cached_property
    def activations(self) -> dict[str, list[str]]:
        """Activation letters per element: one per hidden layer, then the output's."""
        return self._topology[1]

    @cached_property
    def normalize_nodes(self) -> bool:
        """``normalize_nodes`` flag (divide pre-activations by the fan-in, §8.2)."""
        return "normalize_nodes" in self

    @cached_property
    def atom_energy(self) -> dict[str, float]:
        """Atomic energy offsets E0 per element (``atom_energy El E0``; missing -> 0)."""
        energies = {e: 0.0 for e in self.elements}
        seen = {}
        for args, line in self.get_all("atom_energy"):
            tokens = args.split()
            if len(tokens) != 2:
                raise InputFileError(self.path, line, "expected 'atom_energy El E0'")
            element = tokens[0]
            if element not in self.element_index:
                raise InputFileError(self.path, line, f"atom_energy: element {element!r} is "
                                                      "not listed in 'elements'")
            if element in seen:
                raise InputFileError(self.path, line, f"atom_energy for {element} given twice "
                                                      f"(also line {seen[element]})")
            seen[element] = line
            energies[element] = _to_float(tokens[1], self.path, line, "atom_energy")
        return energies

    @cached_property
    def normalization(self):
        """``(mean_energy, conv_energy, conv_length)`` when all three are present, None
        when none is (§9.2); one or two of them is an error."""
        keys = ("mean_energy", "conv_energy", "conv_length")
        present = [k for k in keys if k in self]
        if not present:
            return None
        if len(present) < 3:
            missing = [k for k in keys if k not in self]
            raise InputFileError(self.path, self.line_of(present[0]),
                                 f"normalisation needs mean_energy, conv_energy and "
                                 f"conv_length together; missing: {', '.join(missing)}")
        mean, conv_e, conv_l = (self.get_float(k) for k in keys)
        for key, value in (("conv_energy", conv_e), ("conv_length", conv_l)):
            if value == 0.0:
                raise InputFileError(self.path, self.line_of(key), f"{key} must not be 0")
        return mean, conv_e, conv_l

    def layer_sizes(self, element) -> list[int]:
        """Neurons per layer of an element's network: ``[n_sf, h_1, ..., 1]``."""
        return [self.n_sf(element)] + self.hidden_nodes[element] + [1]

    def n_weights(self, element) -> int:
        """Number of connections (weights + biases) of an element's network (§8.3)."""
        return _n_connections(self.layer_sizes(element))

    def validate(self):
        """Compute every derived quantity (raises InputFileError on the first problem)."""
        self._cutoff
        self.symmetry_functions
        self.scale_min, self.scale_max
        self._topology
        self.atom_energy
        self.normalization
        return self

    def __repr__(self):
        return f"Settings({self.path!r}, elements={self.elements})"


def read_settings(path, validate=True) -> Settings:
    """Read an ``input.nn`` (§2).

    Parameters
    ----------
    path : str or os.PathLike
    validate : bool
        Also compute and check every derived quantity now (cutoff, symmetry functions,
        topology, offsets, normalisation), so that problems surface at once.  With
        False only the keyword syntax and the element list are checked here.
    """
    settings = Settings(os.fspath(path), _read_lines(path))
    if validate:
        settings.validate()
    return settings


def write_settings(path, settings, updates: dict | None = None, comment="hpcnnp"):
    """Write an ``input.nn``: every line of *settings* kept, keywords updated/appended.

    Parameters
    ----------
    path : str or os.PathLike
        Output file (written atomically: temporary file + rename).
    settings : Settings or path
        The file to rewrite (its raw lines).
    updates : dict, optional
        keyword -> argument string (``""`` for a flag, None to comment the keyword
        out).  An existing line of the keyword (any spelling) is replaced in place,
        otherwise the line is appended at the end.  Each written line reads
        ``keyword value # comment`` (``mean_energy -2.55E+01 # nnp-train`` style).
        Repeatable keywords (e.g. ``atom_energy``) cannot be updated this way.
    comment : str
        Text after ``#`` on updated lines ("" for none).
    """
    if not isinstance(settings, Settings):
        settings = Settings(os.fspath(settings), _read_lines(settings))
    lines = list(settings.lines)
    appended = []
    for key, value in (updates or {}).items():
        main = _canonical(key)
        if main in _REPEATABLE:
            raise ValueError(f"write_settings: repeatable keyword {key!r} cannot be updated")
        new = key if value is None or value == "" else f"{key} {value}"
        if comment:
            new += f" # {comment}"
        entry = settings._entry(main)
        if value is None:
            if entry is not None:
                lines[entry.line - 1] = "#" + lines[entry.line - 1] + (
                    f" # removed by {comment}" if comment else "")
        elif entry is not None:
            lines[entry.line - 1] = new
        else:
            appended.append(new)
    lines.extend(appended)

    def write(f):
        for line in lines:
            f.write(line)
            f.write("\n")

    _atomic_write(path, write)


# ---------------------------------------------------------------------------------------
# scaling.data (§7)
# ---------------------------------------------------------------------------------------

_SCALING_HEADER = """\
################################################################################
# Symmetry function scaling data.
################################################################################
# Col  Name     Description
################################################################################
# 1    e_index  Element index.
# 2    sf_index Symmetry function index.
# 3    sf_min   Symmetry function minimum.
# 4    sf_max   Symmetry function maximum.
# 5    sf_mean  Symmetry function mean.
# 6    sf_sigma Symmetry function sigma.
#########################################################################################################################
#        1          2                        3                        4                        5                        6
#  e_index   sf_index                   sf_min                   sf_max                  sf_mean                 sf_sigma
#########################################################################################################################
"""


def read_scaling(path, n_sf: dict, elements) -> dict[str, np.ndarray]:
    """Read ``scaling.data`` (§7).

    As n2p2 does, every line not starting with ``#`` is a data row, assigned in order
    element by element (``n_sf[e]`` rows each, elements in index order); the index
    columns are only checked loosely (an error only when *both* differ from the
    expected values).  Rows with 5 columns (no sigma) get sigma = 0.

    Parameters
    ----------
    path : str or os.PathLike
    n_sf : dict
        Element -> number of symmetry functions.
    elements : list of str
        Elements in n2p2 index order (``Settings.elements``).

    Returns
    -------
    dict
        Element -> array (n_sf, 4): columns min, max, mean, sigma of the raw SF values.
    """
    path = os.fspath(path)
    lines = _read_lines(path)
    rows = []           # (line number, tokens)
    for number, raw in enumerate(lines, start=1):
        if raw.startswith("#"):
            continue
        tokens = raw.split()
        if not tokens:
            raise InputFileError(path, number, "empty line (n2p2 cannot read scaling files "
                                               "with empty lines)")
        rows.append((number, tokens))
    expected = sum(n_sf[e] for e in elements)
    if len(rows) != expected:
        where = rows[expected][0] if len(rows) > expected else (len(lines) or None)
        detail = ", ".join(f"{e} {n_sf[e]}" for e in elements)
        raise InputFileError(path, where, f"{len(rows)} data rows, expected {expected} "
                                          f"(symmetry functions per element: {detail})")
    stats, k = {}, 0
    for ie, element in enumerate(elements, start=1):
        table = np.zeros((n_sf[element], 4))
        for isf in range(1, n_sf[element] + 1):
            number, tokens = rows[k]
            k += 1
            if len(tokens) not in (5, 6):
                raise InputFileError(path, number, f"expected 6 columns (e_index sf_index "
                                                   f"min max mean sigma), got {len(tokens)}")
            e_index = _to_int(tokens[0], path, number, "e_index")
            sf_index = _to_int(tokens[1], path, number, "sf_index")
            if e_index != ie and sf_index != isf:
                raise InputFileError(path, number,
                                     f"row is for element {e_index} SF {sf_index}, expected "
                                     f"element {ie} ({element}) SF {isf}")
            table[isf - 1, :len(tokens) - 2] = [
                _to_float(t, path, number, name)
                for t, name in zip(tokens[2:], ("sf_min", "sf_max", "sf_mean", "sf_sigma"))]
        stats[element] = table
    return stats


def write_scaling(path, elements, stats: dict):
    """Write ``scaling.data`` in n2p2's format (header + ``%10d %10d %24.16E`` x 4).

    Parameters
    ----------
    path : str or os.PathLike
        Output file (written atomically).
    elements : list of str
        Elements in n2p2 index order.
    stats : dict
        Element -> array (n_sf, 4): min, max, mean, sigma.
    """
    def write(f):
        f.write(_SCALING_HEADER)
        for ie, element in enumerate(elements, start=1):
            table = np.asarray(stats[element], dtype=float)
            if table.ndim != 2 or table.shape[1] != 4:
                raise ValueError(f"scaling statistics of {element} must have shape "
                                 f"(n_sf, 4), got {table.shape}")
            f.write("".join("%10d %10d %24.16E %24.16E %24.16E %24.16E\n"
                            % (ie, isf, *row) for isf, row in enumerate(table.tolist(), 1)))

    _atomic_write(path, write)


# ---------------------------------------------------------------------------------------
# weights.ZZZ.data (§8.3)
# ---------------------------------------------------------------------------------------

_WEIGHTS_HEADER = """\
################################################################################
# Neural network connection values (weights and biases).
################################################################################
# Col  Name       Description
################################################################################
# 1    connection Neural network connection value.
# 2    t          Connection type (a = weight, b = bias).
# 3    index      Index enumerating weights.
# 4    l_s        Starting point layer (end point layer for biases).
# 5    n_s        Starting point neuron in starting layer (end point neuron for biases).
# 6    l_e        End point layer.
# 7    n_e        End point neuron in end layer.
################################################################################
#                      1 2         3     4     5     6     7
#             connection t     index   l_s   n_s   l_e   n_e
############################################################
"""


def _n_connections(layer_sizes):
    return sum(a * b + b for a, b in zip(layer_sizes[:-1], layer_sizes[1:]))


def read_weights(path, n_expected: int) -> np.ndarray:
    """Read a ``weights.ZZZ.data`` (§8.3): the first column of every non-``#`` line.

    Parameters
    ----------
    path : str or os.PathLike
    n_expected : int
        Number of connections the network needs (``Settings.n_weights``).

    Returns
    -------
    numpy.ndarray, shape (n_expected,)
        Connection values in n2p2's order.
    """
    path = os.fspath(path)
    values = []
    lines = _read_lines(path)
    for number, raw in enumerate(lines, start=1):
        if raw.startswith("#"):
            continue
        tokens = raw.split()
        if not tokens:
            raise InputFileError(path, number, "empty line (n2p2 cannot read weight files "
                                               "with empty lines)")
        if len(values) == n_expected:
            raise InputFileError(path, number, f"more than the {n_expected} connection "
                                               "values the network needs")
        values.append(_to_float(tokens[0], path, number, "connection value"))
    if len(values) != n_expected:
        raise InputFileError(path, len(lines) or None,
                             f"{len(values)} connection values, the network needs "
                             f"{n_expected}")
    return np.array(values, dtype=float)


def write_weights(path, weights, layer_sizes):
    """Write a ``weights.ZZZ.data`` in n2p2's format (§8.3).

    Per layer k = 1..L: the weights a(k-1, m -> k, n) with the start neuron m as outer
    and the end neuron n as inner loop, then the biases b(k, n).  Lines are
    ``%24.16E a %9d %5d %5d %5d %5d`` and ``%24.16E b %9d %5d %5d`` (1-based neuron and
    connection indices, layer 0 = input), after n2p2's header.

    Parameters
    ----------
    path : str or os.PathLike
        Output file (written atomically).
    weights : array-like, shape (n_connections,)
    layer_sizes : list of int
        ``[n_sf, h_1, ..., 1]``.
    """
    weights = np.asarray(weights, dtype=float).ravel()
    sizes = [int(n) for n in layer_sizes]
    if weights.size != _n_connections(sizes):
        raise PotentialError(f"{os.fspath(path)}: {weights.size} connection values for "
                             f"layers {sizes}, which need {_n_connections(sizes)}")
    values = weights.tolist()

    def write(f):
        f.write(_WEIGHTS_HEADER)
        index = 0
        for k in range(1, len(sizes)):
            n_in, n_out = sizes[k - 1], sizes[k]
            out = []
            for m in range(1, n_in + 1):
                for n in range(1, n_out + 1):
                    out.append("%24.16E a %9d %5d %5d %5d %5d\n"
                               % (values[index], index + 1, k - 1, m, k, n))
                    index += 1
            for n in range(1, n_out + 1):
                out.append("%24.16E b %9d %5d %5d\n" % (values[index], index + 1, k, n))
                index += 1
            f.write("".join(out))

    _atomic_write(path, write)


# ---------------------------------------------------------------------------------------
# input.data (§1)
# ---------------------------------------------------------------------------------------

# One atom line: keyword, x y z, element, charge, (ignored) atomic energy, fx fy fz.
# Element column wider than any symbol so that e.g. "Lix" is caught, not truncated.
_ATOM_DTYPE = np.dtype([("k", "U5"), ("r", "f8", (3,)), ("el", "U3"), ("q", "f8"),
                        ("e", "f8"), ("f", "f8", (3,))])
_DATA_KEYWORDS = ("begin", "end", "comment", "lattice", "atom", "energy", "charge")
# n2p2 requires periodic structures to be neutral to 10 machine epsilons.
_NEUTRAL_TOLERANCE = 10.0 * np.finfo(float).eps


class _Block:
    """Accumulates one begin/end block while streaming."""

    __slots__ = ("begin_line", "set_tag", "comment", "lattice", "energy", "charge",
                 "charge_line", "atom_lines", "other_lines", "index")

    def __init__(self, begin_line, set_tag, index):
        self.begin_line = begin_line
        self.set_tag = set_tag
        self.index = index
        self.comment = None
        self.lattice = []
        self.energy = None
        self.charge = None
        self.charge_line = None
        self.atom_lines = []
        self.other_lines = [begin_line]      # line numbers of non-atom lines

    def atom_line_numbers(self, end_line):
        others = set(self.other_lines)
        return [n for n in range(self.begin_line + 1, end_line) if n not in others]


def _parse_atoms(block, end_line, path, allowed):
    """Bulk-parse the atom lines of a block; on failure, find the first bad line.

    ``allowed`` maps the allowed element symbols to their atomic numbers."""
    n = len(block.atom_lines)
    if n == 0:
        return np.zeros((0, 3)), np.zeros(0, dtype=int), np.zeros(0), np.zeros((0, 3))
    try:
        table = np.loadtxt(block.atom_lines, dtype=_ATOM_DTYPE, comments=None, ndmin=1)
        numbers = [allowed[s] for s in table["el"].tolist()]
    except (ValueError, KeyError):
        table = None
    if (table is None or not np.isfinite(table["r"]).all()
            or not np.isfinite(table["q"]).all() or not np.isfinite(table["e"]).all()
            or not np.isfinite(table["f"]).all()):
        _diagnose_atoms(block, end_line, path, allowed)
        raise InputFileError(path, block.begin_line, "cannot read the atom lines of this "
                                                     "structure")  # pragma: no cover
    return table["r"], numbers, table["q"], table["f"]


def _diagnose_atoms(block, end_line, path, allowed):
    """Line-by-line check of a block's atom lines: raises on the first defect."""
    names = ("x", "y", "z", None, "charge", "atomic energy", "fx", "fy", "fz")
    for number, raw in zip(block.atom_line_numbers(end_line), block.atom_lines):
        tokens = raw.split()
        if len(tokens) != 10:
            raise InputFileError(path, number, f"atom line has {len(tokens)} fields, n2p2 "
                                               "needs 10: atom x y z element charge "
                                               "energy fx fy fz")
        for token, name in zip(tokens[1:], names):
            if name is None:
                if token not in allowed:
                    raise InputFileError(path, number, _unknown_element_message(token, allowed))
            else:
                _to_float(token, path, number, f"atom {name}")


def _unknown_element_message(symbol, allowed):
    if symbol not in _Z:
        return f"unknown element {symbol!r} (n2p2 knows H ... No, case-sensitive)"
    return (f"element {symbol!r} is not one of the potential's elements "
            f"({' '.join(sorted(allowed, key=_Z.__getitem__))})")


def _make_atoms(block, end_line, path, allowed):
    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator

    if len(block.lattice) not in (0, 3):
        raise InputFileError(path, end_line,
                             f"strange number of box vectors: {len(block.lattice)} lattice "
                             f"line(s) in the structure that began at line "
                             f"{block.begin_line} (n2p2 needs 0 or 3)")
    periodic = len(block.lattice) == 3
    charge = 0.0 if block.charge is None else block.charge
    if periodic and abs(charge) > _NEUTRAL_TOLERANCE:
        raise InputFileError(path, block.charge_line,
                             f"periodic structure with total charge {charge!r}: n2p2 "
                             "requires periodic structures to be neutral")
    positions, numbers, charges, forces = _parse_atoms(block, end_line, path, allowed)
    cell = np.array(block.lattice) if periodic else np.zeros((3, 3))
    atoms = Atoms(numbers=numbers, positions=positions, cell=cell, pbc=periodic)
    atoms.set_initial_charges(charges)
    energy = 0.0 if block.energy is None else block.energy
    atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=np.array(forces))
    info = atoms.info
    if block.comment is not None:
        info["comment"] = block.comment
    if block.set_tag is not None:
        info["set"] = block.set_tag
    info["charge"] = charge
    info["n2p2_index"] = block.index
    info["n2p2_line"] = block.begin_line
    return atoms


def _open_text(path_or_file):
    if hasattr(path_or_file, "read"):
        return path_or_file, getattr(path_or_file, "name", "<stream>"), False
    path = os.fspath(path_or_file)
    try:
        f = open(path, "r", encoding="utf-8", errors="surrogateescape")
    except FileNotFoundError:
        raise InputFileError(path, None, "file not found") from None
    except IsADirectoryError:
        raise InputFileError(path, None, "is a directory, not a file") from None
    return f, path, True


def iter_data(path, elements=None) -> Iterator:
    """Stream the structures of an n2p2 ``input.data`` (§1), one :class:`ase.Atoms`
    per ``begin``/``end`` block.

    Only one block is held in memory at a time, so files of any size can be read.

    Parameters
    ----------
    path : str, os.PathLike or text file object
    elements : iterable of str, optional
        Elements allowed (the potential's); by default every element H...No.

    Yields
    ------
    ase.Atoms
        See the module docstring for the conventions.

    Raises
    ------
    InputFileError
        Any defect n2p2 would stop on (blank or ``#`` lines, unknown keywords, atom
        lines without exactly 10 fields, bad or non-finite numbers, unknown elements,
        1 or 2 lattice lines, charged periodic structures, bad ``begin`` arguments,
        nested or unclosed blocks), with the file name and line number.
    """
    if elements is None:
        allowed = _Z
    else:
        allowed = {}
        for symbol in elements:
            if symbol not in _Z:
                raise ValueError(f"iter_data: unknown element {symbol!r} in 'elements'")
            allowed[symbol] = _Z[symbol]
    f, name, close = _open_text(path)
    try:
        yield from _iter_blocks(f, name, allowed)
    finally:
        if close:
            f.close()


def _iter_blocks(f, path, allowed):
    block = None
    index = 0
    number = 0
    for number, raw in enumerate(f, start=1):
        if block is not None and raw[:5] == "atom ":      # fast path, n2p2-written files
            block.atom_lines.append(raw)
            continue
        tokens = raw.split()
        if not tokens:
            raise InputFileError(path, number, "blank line (n2p2 does not allow blank lines "
                                               "in input.data)")
        key = tokens[0]
        if key.startswith("#"):
            raise InputFileError(path, number, "comment line (n2p2 does not allow '#' lines "
                                               "in input.data)")
        if key == "begin":
            if block is not None:
                raise InputFileError(path, number, f"'begin' inside the structure that began "
                                                   f"at line {block.begin_line} (missing 'end')")
            set_tag = None
            if len(tokens) > 1:
                if len(tokens) == 2 and tokens[1] in ("set=train", "set=test"):
                    set_tag = tokens[1][4:]
                else:
                    raise InputFileError(path, number, f"unexpected 'begin' argument "
                                                       f"{' '.join(tokens[1:])!r} (only "
                                                       "set=train or set=test)")
            block = _Block(number, set_tag, index)
            continue
        if key not in _DATA_KEYWORDS:
            raise InputFileError(path, number, f"unknown keyword {key!r} (expected one of "
                                               f"{', '.join(_DATA_KEYWORDS)})")
        if block is None:
            raise InputFileError(path, number, f"{key!r} outside a begin ... end block")
        if key == "atom":
            block.atom_lines.append(raw)
            continue
        block.other_lines.append(number)
        if key == "end":
            if len(tokens) > 1:
                raise InputFileError(path, number, "'end' takes no argument")
            yield _make_atoms(block, number, path, allowed)
            block = None
            index += 1
        elif key == "comment":
            if block.comment is not None:
                raise InputFileError(path, number, "second 'comment' line in this structure")
            text = raw.lstrip()[len("comment"):]
            if text[:1] not in ("", " ", "\t", "\n", "\r"):
                raise InputFileError(path, number, f"unknown keyword {key!r}")
            block.comment = text[1:].rstrip("\r\n")
        elif key == "lattice":
            if len(tokens) != 4:
                raise InputFileError(path, number, f"lattice line needs 3 numbers, got "
                                                   f"{len(tokens) - 1}")
            if len(block.lattice) == 3:
                raise InputFileError(path, number, "more than 3 lattice lines")
            block.lattice.append([_to_float(t, path, number, "lattice vector")
                                  for t in tokens[1:]])
        else:   # energy, charge
            if len(tokens) != 2:
                raise InputFileError(path, number, f"'{key}' needs one number, got "
                                                   f"{len(tokens) - 1}")
            if getattr(block, key) is not None:
                raise InputFileError(path, number, f"second '{key}' line in this structure")
            setattr(block, key, _to_float(tokens[1], path, number, key))
            if key == "charge":
                block.charge_line = number
    if block is not None:
        raise InputFileError(path, number, f"file ends inside the structure that began at "
                                           f"line {block.begin_line} (missing 'end'; "
                                           "truncated file?)")


def read_data(path, index=None, elements=None) -> list:
    """Read structures of an n2p2 ``input.data``.

    Parameters
    ----------
    path : str, os.PathLike or text file object
    index : int, slice or None
        Which structures (0-based, like :func:`ase.io.read`; negative values count from
        the end).  None = all.  An int gives a one-element list.
    elements : iterable of str, optional
        Allowed elements (see :func:`iter_data`).

    Returns
    -------
    list of ase.Atoms
    """
    stream = iter_data(path, elements)
    if index is None:
        return list(stream)
    if isinstance(index, slice):
        start, stop, step = index.start, index.stop, index.step
        if ((start is None or start >= 0) and (stop is None or stop >= 0)
                and (step is None or step > 0)):
            try:
                return list(islice(stream, start, stop, step))
            finally:
                stream.close()
        return list(stream)[index]
    index = int(index)
    if index >= 0:
        try:
            for k, atoms in enumerate(stream):
                if k == index:
                    return [atoms]
        finally:
            stream.close()
        raise IndexError(f"read_data: {os.fspath(path) if not hasattr(path, 'read') else path}"
                         f" has no structure with index {index}")
    images = list(stream)
    try:
        return [images[index]]
    except IndexError:
        raise IndexError(f"read_data: structure index {index} out of range "
                         f"({len(images)} structures)") from None


_ATOM_FORMAT = ("atom %24.16E %24.16E %24.16E %2s %24.16E %24.16E %24.16E %24.16E "
                "%24.16E\n")


def _format_structure(atoms) -> str:
    pbc = np.asarray(atoms.pbc, dtype=bool)
    if pbc.any() and not pbc.all():
        raise ValueError("n2p2's input.data knows only fully periodic or non-periodic "
                         f"structures, not pbc={pbc.tolist()}")
    info = atoms.info
    set_tag = info.get("set")
    if set_tag is None:
        out = ["begin\n"]
    elif set_tag in ("train", "test"):
        out = [f"begin set={set_tag}\n"]
    else:
        raise ValueError(f"atoms.info['set'] must be 'train' or 'test', not {set_tag!r}")
    if "comment" in info:
        comment = str(info["comment"])
        if "\n" in comment:
            raise ValueError("atoms.info['comment'] must be a single line")
        out.append(f"comment {comment}\n")
    if pbc.all():
        for vector in np.asarray(atoms.cell.array, dtype=float).tolist():
            out.append("lattice %24.16E %24.16E %24.16E\n" % tuple(vector))
    n = len(atoms)
    results = getattr(atoms.calc, "results", None) or {}
    energy = results.get("energy")
    forces = results.get("forces")
    forces = np.zeros((n, 3)) if forces is None else np.asarray(forces, dtype=float)
    charges = atoms.get_initial_charges()
    positions = atoms.positions.tolist()
    symbols = atoms.get_chemical_symbols()
    out.extend(_ATOM_FORMAT % (r[0], r[1], r[2], s, q, 0.0, f[0], f[1], f[2])
               for r, s, q, f in zip(positions, symbols, charges.tolist(), forces.tolist()))
    total_charge = info.get("charge")
    if total_charge is None:
        total_charge = float(charges.sum())
    out.append("energy %24.16E\n" % (0.0 if energy is None else float(energy)))
    out.append("charge %24.16E\n" % float(total_charge))
    out.append("end\n")
    return "".join(out)


def write_data(path_or_fileobj, images, append=False):
    """Write structures in n2p2's ``input.data`` output format (§1).

    Parameters
    ----------
    path_or_fileobj : str, os.PathLike or text file object
        A path is written atomically (temporary file + rename); with ``append=True``
        the new structures are appended to the existing file instead.
    images : ase.Atoms or iterable of ase.Atoms
        Energy and forces from ``atoms.calc.results`` (0 when absent), atomic charges
        from the initial charges, the ``set=`` tag from ``info["set"]``, the comment
        from ``info["comment"]``, the total charge from ``info["charge"]`` (default:
        sum of the atomic charges).  Positions are written as they are (not wrapped).
    """
    from ase import Atoms

    if isinstance(images, Atoms):
        images = [images]

    def write(f):
        for atoms in images:
            f.write(_format_structure(atoms))

    if hasattr(path_or_fileobj, "write"):
        write(path_or_fileobj)
    elif append:
        with open(path_or_fileobj, "a", encoding="utf-8", newline="\n") as f:
            write(f)
    else:
        _atomic_write(path_or_fileobj, write)
