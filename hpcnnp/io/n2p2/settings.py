"""n2p2's settings file ``input.nn`` (§2): keyword access with n2p2's aliases and the
validated quantities that define a potential (elements, symmetry functions in n2p2's
order, scaling, network topology, offsets, normalisation, the kind of potential)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import cached_property

from hpcnnp.errors import InputFileError
from hpcnnp.io.n2p2._common import _atomic_write, _read_lines, _to_float, _to_int, element_order
from hpcnnp.io.n2p2.potential_files import _n_connections
from hpcnnp.io.n2p2.symfunctions import SymmetryFunction, parse_symfunction

__all__ = ["Settings", "read_settings", "write_settings", "setting_tokens"]

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

# nnp_type values of n2p2 (Mode::NNPType): the names and their numbers (atoi).
_NNP_TYPES = {"2G-HDNNP": "2G-HDNNP", "4G-HDNNP": "4G-HDNNP", "Q-HDNNP": "Q-HDNNP",
              2: "2G-HDNNP", 4: "4G-HDNNP", 10: "Q-HDNNP"}
_NNP_TYPE_MISSING = {
    "4G-HDNNP": "charge networks (weightse.*.data), charge equilibration with "
                "hardness.*.data and long-range electrostatics",
    "Q-HDNNP": "a charge network (weightse.*.data) whose charges are inputs of the "
               "short-range networks",
}
_INT_PREFIX = re.compile(r"[+-]?\d+")


def _canonical(keyword):
    return _CANONICAL.get(keyword, keyword)


@dataclass(frozen=True)
class _Entry:
    keyword: str        # spelling used in the file
    args: str           # arguments, comment stripped, whitespace collapsed
    line: int           # 1-based


def setting_tokens(line):
    """Tokens of one ``input.nn`` line: keyword first, the comment (from ``#`` or ``!``)
    removed; empty for a blank or comment line."""
    for mark in "#!":
        cut = line.find(mark)
        if cut >= 0:
            line = line[:cut]
    return line.split()


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
            tokens = setting_tokens(raw)
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
    def nnp_type(self) -> str:
        """The kind of potential (``nnp_type`` / ``nnp_generation``): ``"2G-HDNNP"``.

        Raises
        ------
        InputFileError
            For every kind hpcnnp does not evaluate -- 4G-HDNNPs (charge
            equilibration, electrostatics; ``nnp_generation 4``) and Q-HDNNPs (charge
            network) -- naming the keyword and its line, before any other file of the
            potential is read.
        """
        entry = self._entry("nnp_type")
        if entry is None:
            return "2G-HDNNP"      # n2p2's default
        value = entry.args.split()[0] if entry.args.split() else ""
        kind = _NNP_TYPES.get(value)
        if kind is None and _INT_PREFIX.match(value):
            kind = _NNP_TYPES.get(int(_INT_PREFIX.match(value).group()))   # atoi, as n2p2
        if kind == "2G-HDNNP":
            return kind
        if kind is None:
            raise InputFileError(self.path, entry.line,
                                 f"{entry.keyword} {entry.args}: unknown kind of potential "
                                 "(n2p2 knows 2G-HDNNP = 2, 4G-HDNNP = 4, Q-HDNNP = 10)")
        raise InputFileError(self.path, entry.line,
                             f"{entry.keyword} {entry.args}: this is a {kind} "
                             f"({_NNP_TYPE_MISSING[kind]}), which hpcnnp does not evaluate: "
                             "it has no charge networks, charge equilibration or "
                             "electrostatics and evaluates 2G-HDNNPs (short-range networks) "
                             "only; use n2p2 itself (e.g. nnp-predict) for this potential")

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
            return self._per_element(keyword, f"{keyword} needs '<element> ...'")

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
        found = self._per_element(
            "atom_energy", "expected 'atom_energy El E0'", n_tokens=2,
            value=lambda tokens, line: _to_float(tokens[0], self.path, line, "atom_energy"))
        energies.update({element: e0 for element, (e0, _) in found.items()})
        return energies

    def _per_element(self, keyword, usage, n_tokens=None, value=None):
        """The lines ``keyword El ...`` of a per-element keyword, at most one per element.

        Parameters
        ----------
        keyword : str
        usage : str
            Error message of a line without an element (or with a number of tokens
            other than ``n_tokens``).
        n_tokens : int, optional
            Exact number of tokens, the element included.
        value : callable(tokens, line), optional
            Converts the tokens after the element (called line by line, so that the
            first bad line is reported); default: the token list.

        Returns
        -------
        dict
            Element -> (value, line number), in the order of the file.
        """
        found = {}
        for args, line in self.get_all(keyword):
            tokens = args.split()
            if not tokens or (n_tokens is not None and len(tokens) != n_tokens):
                raise InputFileError(self.path, line, usage)
            element = tokens[0]
            if element not in self.element_index:
                raise InputFileError(self.path, line, f"{keyword}: element {element!r} is "
                                                      "not listed in 'elements'")
            if element in found:
                raise InputFileError(self.path, line, f"{keyword} for {element} given "
                                                      f"twice (also line {found[element][1]})")
            found[element] = (tokens[1:] if value is None else value(tokens[1:], line), line)
        return found

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
        self.nnp_type
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


