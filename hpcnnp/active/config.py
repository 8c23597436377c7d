"""The campaign file of ``hpcnnp active``: YAML, every option in one table.

:data:`OPTIONS` lists every key (dotted path), its kind, its default and what it
means; :func:`load_config` reads a file (or a dict), checks every key against the
table and returns an :class:`ActiveConfig`.  A bad key or value is an
:class:`~hpcnnp.errors.InputFileError` naming the file, the line and the key.
``hpcnnp active --help`` prints the same table.

A minimal file::

    data: input.data              # labelled structures (n2p2 input.data)
    input_nn: input.nn            # elements, SFs, network, training keywords
    committee: {size: 4, epochs: 10}
    exploration:
      structures: [{file: start.data}, {builder: llzo_cubic}]
      temperatures: [600, 1200]
      steps: 2000
      stride: 20
    selection: {sigma_low: 0.05, sigma_high: 0.35, max_select: 50}
    labeler: {name: chgnet}

Relative paths are relative to the folder of the campaign file.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from hpcnnp.errors import InputFileError

__all__ = ["OPTIONS", "Option", "ActiveConfig", "load_config", "options_help"]


@dataclass(frozen=True)
class Option:
    """One key of the campaign file."""

    key: str            # dotted path, e.g. "selection.sigma_low"
    kind: str           # key of _KINDS
    default: object     # REQUIRED for keys without a default
    doc: str


REQUIRED = object()

#: every key of the campaign file (dotted path, kind, default, meaning)
OPTIONS = (
    Option("workdir", "path", None,
           "folder of the campaign (iteration_NNN/, active-learning.csv, ...); "
           "default: the folder of the campaign file"),
    Option("data", "path", REQUIRED,
           "initial labelled structures (n2p2 input.data: energies and forces)"),
    Option("input_nn", "path", REQUIRED,
           "input.nn template: elements, symmetry functions, networks and training "
           "keywords; random_seed, test_fraction and epochs are set per member"),
    Option("committee.size", "int>=2", 4, "number K of committee members"),
    Option("committee.epochs", "int>=0", None,
           "training epochs of every member (default: 'epochs' of input_nn)"),
    Option("committee.seed", "int>=0", 12345,
           "random_seed of member k in iteration n: seed + k + 1000 n (different "
           "initial weights and train/test splits)"),
    Option("committee.test_fraction", "fraction", None,
           "test_fraction of every member (default: that of input_nn)"),
    Option("committee.warm_start", "bool", False,
           "retrain from the previous committee's weights (use_old_weights_short) "
           "instead of new random weights"),
    Option("exploration.structures", "structures", REQUIRED,
           "starting structures, a list of {file: PATH, index: I} (n2p2 .data or any "
           "ASE format; index default 0), {builder: NAME, options: {...}} (a builder "
           "of hpcnnp.structures) or {data: [I, ...]} (structures of 'data'); each may "
           "add repeat: [n1, n2, n3] and name: LABEL; a builder option may itself be "
           "such an entry (interfaces, grain boundaries: {builder: grain_boundary, "
           "options: {atoms: {builder: llzo_cubic}}})"),
    Option("exploration.temperatures", "temperatures", REQUIRED,
           "temperatures (K); every structure runs at every temperature"),
    Option("exploration.steps", "int>=1", 1000, "MD steps per run"),
    Option("exploration.stride", "int>=1", 10,
           "every stride-th step the whole committee evaluates the frame"),
    Option("exploration.timestep", "float>0", 1.0, "MD time step (fs)"),
    Option("exploration.friction", "float>0", 0.01, "Langevin friction (1/fs)"),
    Option("exploration.seed", "int>=0", 1,
           "seed of the initial velocities and Langevin noise (per run and iteration)"),
    Option("exploration.min_distance", "float>=0", 0.5,
           "a frame with two atoms closer than this (Å) ends its run as 'failed'"),
    Option("selection.sigma_low", "float>=0", 0.05,
           "σ_F (eV/Å) below which a frame counts as accurate"),
    Option("selection.sigma_high", "float>0", 0.35,
           "σ_F (eV/Å) from which a frame counts as failed (unphysical, discarded)"),
    Option("selection.extrapolation", "bool", True,
           "frames with extrapolation warnings (member 0) below sigma_high are "
           "candidates even when σ_F < sigma_low"),
    Option("selection.max_select", "int>=1", 50,
           "at most this many frames labelled per iteration"),
    Option("selection.min_distance", "float>=0", 0.0,
           "diversity filter: minimum RMS distance between the SF fingerprints of two "
           "selected frames (scaled SF units; 0 = only the max_select limit)"),
    Option("selection.against_data", "bool", False,
           "diversity filter: also keep min_distance from the structures already in "
           "the data set"),
    Option("labeler.name", "str", REQUIRED,
           "reference calculator: a name of hpcnnp.sampling.labelers, 'hdnnp' (an n2p2 "
           "potential, options: {potential: DIR}) or 'module:function' (a factory "
           "returning an ASE calculator)"),
    Option("labeler.options", "mapping", {},
           "keyword arguments of the labeler factory; other keys of the labeler "
           "section are options too ({name: chgnet, threads: 1}, as in the project "
           "file); checked when the campaign is read"),
    Option("labeler.batch", "int>=1", 10, "frames per labelling task"),
    Option("labeler.max_force", "float>0", None,
           "labels whose largest teacher force component exceeds this (eV/Å) are "
           "rejected (recorded in failures.json)"),
    Option("dataset", "path", None,
           "HDF5 data set (hpcnnp.io.dataset) that receives every label with its "
           "provenance (iteration, run, frame, selection reason, train/test)"),
    Option("test.per_class", "int>=0", 0,
           "held-out test frames per structure class, drawn at random from the explored "
           "frames (never by disagreement) and never used for selection or training"),
    Option("test.seed", "int>=0", 7, "seed of the test draw"),
    Option("selection.label_high", "bool", True,
           "frames with σ_F >= sigma_high are labelled too when their shortest "
           "interatomic distance is >= failure_floor (exploration that fails is data)"),
    Option("selection.failure_frames", "int>=0", 2,
           "frames before the failure of a run that are always labelled"),
    Option("selection.failure_floor", "float>=0", 1.2,
           "shortest interatomic distance (Å) below which a frame is not labelled"),
    Option("stop.min_iterations", "int>=1", 1,
           "iterations before the stop rule may declare convergence"),
    Option("stop.max_warning_rate", "float>=0", None,
           "convergence needs at most this many extrapolation warnings per atom and "
           "evaluated frame (None: not checked)"),
    Option("stop.finished_runs", "bool", True,
           "convergence needs every exploration run to finish"),
    Option("stop.max_iterations", "int>=1", 5,
           "most iterations (hpcnnp active --iterations overrides)"),
    Option("stop.accurate_fraction", "fraction", 0.99,
           "stop when this fraction of the explored frames is accurate"),
    Option("parallel.parsl", "bool", True,
           "dispatch training, exploration and labelling as Parsl apps "
           "(hpcnnp active --no-parsl: one after the other in this process)"),
    Option("parallel.site", "str", "local", "Parsl site (hpcnnp jobs sites)"),
    Option("parallel.nodes", "int>=1", 1, "nodes per Parsl block"),
    Option("parallel.workers_per_node", "int>=1", None,
           "Parsl workers per node (default: the site's cores per node)"),
    Option("parallel.walltime", "str", None, "walltime HH:MM:SS of a Parsl block"),
    Option("parallel.account", "str", None, "account/project of the Parsl blocks"),
    Option("parallel.queue", "str", None, "queue/partition of the Parsl blocks"),
)

_BY_KEY = {o.key: o for o in OPTIONS}

#: other spellings accepted for a key (those of ``hpcnnp train`` and of the project
#: file of ``hpcnnp run``): alias -> key
ALIASES = {"settings": "input_nn", "site": "parallel.site"}
_SECTIONS = sorted({o.key.split(".")[0] for o in OPTIONS if "." in o.key})


def options_help():
    """The table of options as text (for ``hpcnnp active --help``)."""
    import textwrap

    lines = []
    aliases = {v: k for k, v in ALIASES.items()}
    for o in OPTIONS:
        default = ("required" if o.default is REQUIRED else
                   "default: none" if o.default is None else f"default: {o.default!r}")
        alias = f", alias: {aliases[o.key]}" if o.key in aliases else ""
        lines.append(f"  {o.key}  ({default}{alias})")
        lines += textwrap.wrap(o.doc, 76, initial_indent="      ", subsequent_indent="      ")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------
# Value checks: kind -> function(value) returning (value, problem or None)
# ---------------------------------------------------------------------------------------

def _number(value, integer):
    if isinstance(value, bool):
        return False
    return isinstance(value, int) if integer else isinstance(value, (int, float))


def _check_int(minimum):
    def check(v):
        if not _number(v, True):
            return v, "must be a whole number"
        return v, None if v >= minimum else f"must be >= {minimum}"
    return check


def _check_float(low, strict):
    def check(v):
        if not _number(v, False):
            return v, "must be a number"
        ok = v > low if strict else v >= low
        return float(v), None if ok else f"must be {'>' if strict else '>='} {low}"
    return check


def _check_fraction(v):
    if not _number(v, False):
        return v, "must be a number"
    return float(v), None if 0.0 <= v <= 1.0 else "must be between 0 and 1"


def _check_temperatures(v):
    v = [v] if _number(v, False) else v
    if not isinstance(v, list) or not v:
        return v, "must be a number or a non-empty list of numbers (K)"
    if not all(_number(t, False) and t > 0 for t in v):
        return v, "every temperature must be a number > 0 (K)"
    return [float(t) for t in v], None


_SOURCE_KEYS = {"file": ("file", "index", "repeat", "name", "strains"),
                "builder": ("builder", "options", "repeat", "name", "strains"),
                "data": ("data", "repeat", "name", "strains")}


def _check_structures(v):
    if not isinstance(v, list) or not v:
        return v, "must be a non-empty list of {file: ...}, {builder: ...} or {data: ...}"
    for i, entry in enumerate(v):
        if isinstance(entry, str):          # a bare file name
            v[i] = entry = {"file": entry}
        if not isinstance(entry, dict):
            return v, f"entry {i}: must be a mapping"
        kinds = [k for k in _SOURCE_KEYS if k in entry]
        if len(kinds) != 1:
            return v, f"entry {i}: needs exactly one of file, builder, data"
        unknown = sorted(set(entry) - set(_SOURCE_KEYS[kinds[0]]))
        if unknown:
            return v, (f"entry {i}: unknown key '{unknown[0]}' (known: "
                       f"{', '.join(_SOURCE_KEYS[kinds[0]])})")
        rep = entry.get("repeat")
        if rep is not None and not (isinstance(rep, list) and len(rep) == 3
                                    and all(_number(n, True) and n >= 1 for n in rep)):
            return v, f"entry {i}: repeat must be a list of three whole numbers >= 1"
        if "data" in entry:
            idx = entry["data"]
            idx = [idx] if _number(idx, True) else idx
            if not isinstance(idx, list) or not all(_number(k, True) for k in idx):
                return v, f"entry {i}: data must be a structure index or a list of them"
            entry["data"] = idx
        if "options" in entry and not isinstance(entry["options"], dict):
            return v, f"entry {i}: options must be a mapping"
    return v, None


def _check_type(kind, name):
    def check(v):
        ok = isinstance(v, kind) and (kind is bool or not isinstance(v, bool))
        return v, None if ok else f"must be {name}"
    return check


_KINDS = {
    "path": _check_type(str, "a path (string)"),
    "str": _check_type(str, "a string"),
    "bool": _check_type(bool, "true or false"),
    "mapping": _check_type(dict, "a mapping"),
    "int>=0": _check_int(0),
    "int>=1": _check_int(1),
    "int>=2": _check_int(2),
    "float>0": _check_float(0.0, True),
    "float>=0": _check_float(0.0, False),
    "fraction": _check_fraction,
    "temperatures": _check_temperatures,
    "structures": _check_structures,
}


# ---------------------------------------------------------------------------------------
# The configuration object
# ---------------------------------------------------------------------------------------

class ActiveConfig:
    """A checked campaign: ``cfg["selection.sigma_low"]`` or ``cfg.selection.sigma_low``.

    Attributes
    ----------
    values : dict
        Dotted key -> value (defaults filled in, paths absolute).
    path : Path or None
        The campaign file.
    base : Path
        Folder against which relative paths were resolved.
    """

    def __init__(self, values, path=None, base=None, lines=None):
        self.values = values
        self.path = None if path is None else Path(path)
        self.base = Path(base) if base is not None else Path.cwd()
        self._lines = lines or {}

    def __getitem__(self, key):
        return self.values[key]

    def __getattr__(self, section):
        if section.startswith("_") or section not in _SECTIONS:
            raise AttributeError(section)
        prefix = section + "."
        from types import SimpleNamespace
        return SimpleNamespace(**{k[len(prefix):]: v for k, v in self.values.items()
                                  if k.startswith(prefix)})

    @property
    def workdir(self):
        return Path(self.values["workdir"])

    def error(self, key, message):
        """An InputFileError naming the campaign file, the key's line and the key."""
        parts = tuple(key.split("."))
        while parts and parts not in self._lines:
            parts = parts[:-1]
        return InputFileError(self.path or "<config>", self._lines.get(parts),
                              f"{key}: {message}")

    def as_dict(self):
        """Nested dict (what a YAML file with these values would hold)."""
        out = {}
        for key, value in self.values.items():
            node = out
            *head, last = key.split(".")
            for h in head:
                node = node.setdefault(h, {})
            node[last] = value
        return out


def _key_lines(node, prefix=(), out=None):
    """{key path: 1-based line} of a composed YAML node (for messages)."""
    out = {} if out is None else out
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            path = prefix + (str(key.value),)
            out[path] = key.start_mark.line + 1
            _key_lines(value, path, out)
    return out


def load_config(source, overrides=None):
    """Read and check a campaign.

    Parameters
    ----------
    source : path or dict
        The YAML file, or its content as a nested dict (paths then relative to the
        current folder).
    overrides : dict, optional
        Dotted key -> value applied after reading (checked like the file's values).

    Returns
    -------
    ActiveConfig

    Raises
    ------
    InputFileError
        Unknown key, missing required key, bad value (names file, line and key).
    """
    lines = {}
    if isinstance(source, dict):
        path, base, raw = None, Path.cwd(), copy.deepcopy(source)
    else:
        path = Path(source)
        try:
            text = path.read_text()
        except OSError as exc:
            raise InputFileError(path, None, f"cannot read the campaign file ({exc})") \
                from None
        try:
            raw = yaml.safe_load(text)
            lines = _key_lines(yaml.compose(text))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            raise InputFileError(path, None if mark is None else mark.line + 1,
                                 f"not valid YAML ({getattr(exc, 'problem', exc)})") from None
        raw = {} if raw is None else raw
        base = path.resolve().parent
    cfg = ActiveConfig({}, path, base, lines)
    if not isinstance(raw, dict):
        raise cfg.error("top level", "the campaign file must be a mapping of keys")
    flat = {}
    for key, value in raw.items():
        key = str(key)
        if key in _SECTIONS:
            if not isinstance(value, dict):
                raise cfg.error(key, "must be a mapping")
            for sub, v in value.items():
                full = f"{key}.{sub}"
                if key == "labeler" and full not in _BY_KEY:
                    # the project file's form {name: chgnet, threads: 1}: options inline
                    flat.setdefault("labeler.options", {})
                    if not isinstance(flat["labeler.options"], dict):
                        raise cfg.error("labeler.options", "must be a mapping")
                    flat["labeler.options"] = {**flat["labeler.options"], sub: v}
                    continue
                if full == "labeler.options" and isinstance(flat.get(full), dict) \
                        and isinstance(v, dict):
                    v = {**flat[full], **v}
                flat[full] = v
        else:
            target = ALIASES.get(key, key)
            if target in flat:
                raise cfg.error(key, f"given twice (as {key} and as {target})")
            flat[target] = value
    flat.update(overrides or {})
    for key in flat:
        if key not in _BY_KEY:
            section = key.split(".")[0]
            known = [o.key for o in OPTIONS if o.key.split(".")[0] == section] or \
                [o.key for o in OPTIONS if "." not in o.key] + list(_SECTIONS)
            raise cfg.error(key, f"unknown key (known: {', '.join(known)})")
    values = {}
    for opt in OPTIONS:
        value = flat.get(opt.key)
        if value is None:
            if opt.default is REQUIRED:
                raise cfg.error(opt.key, "required key is missing")
            values[opt.key] = copy.deepcopy(opt.default)
            continue
        value, problem = _KINDS[opt.kind](value)
        if problem:
            raise cfg.error(opt.key, f"{problem}, got {flat[opt.key]!r}")
        if opt.kind == "path":
            value = str((base / os.path.expanduser(value)).resolve())
        values[opt.key] = value
    for i, entry in enumerate(values["exploration.structures"]):
        if "file" in entry:
            entry["file"] = str((base / os.path.expanduser(entry["file"])).resolve())
    if values["workdir"] is None:
        values["workdir"] = str(base)
    if values["selection.sigma_high"] <= values["selection.sigma_low"]:
        raise cfg.error("selection.sigma_high", "must be larger than selection.sigma_low")
    for key in ("data", "input_nn"):
        if not Path(values[key]).is_file():
            raise cfg.error(key, f"file not found: {values[key]}")
    for i, entry in enumerate(values["exploration.structures"]):
        if "file" in entry and not Path(entry["file"]).is_file():
            raise cfg.error("exploration.structures", f"entry {i}: file not found: "
                                                      f"{entry['file']}")
    _check_labeler(cfg, values)
    cfg.values = values
    return cfg


def _check_labeler(cfg, values):
    """Labeler options checked now, not after hours of training: the project's table
    (hpcnnp.sampling.labelers) knows the options of its labelers; ``hdnnp`` needs a
    potential folder (relative paths: to the campaign file)."""
    name, options = values["labeler.name"], values["labeler.options"]
    if name == "hdnnp":
        pot = options.get("potential")
        if not isinstance(pot, str):
            raise cfg.error("labeler.options", "labeler hdnnp needs {potential: DIR}")
        unknown = sorted(set(options) - {"potential", "warn_extrapolation"})
        if unknown:
            raise cfg.error("labeler", f"labeler hdnnp: unknown option '{unknown[0]}' "
                                       "(known: potential, warn_extrapolation)")
        options["potential"] = str((cfg.base / os.path.expanduser(pot)).resolve())
        if not Path(options["potential"]).is_dir():
            raise cfg.error("labeler.options", f"potential folder not found: "
                                               f"{options['potential']}")
        return
    if ":" in name:
        return
    try:
        from hpcnnp.sampling.labelers import labeler_settings
    except ImportError:                       # pragma: no cover - part of hpcnnp
        return
    from hpcnnp.errors import HpcnnpError
    try:
        labeler_settings(name, **options)
    except HpcnnpError as exc:
        raise cfg.error("labeler", str(exc)) from None
