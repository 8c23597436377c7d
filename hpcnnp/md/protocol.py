"""MD protocols: what ``hpcnnp md protocol.yaml`` runs.

A protocol is a YAML file: the structure, the potential, and a list of stages
run one after the other on the same atoms.  Example (every key with its default
where it has one)::

    structure: gb_sigma5.extxyz     # any file ASE reads (extxyz, POSCAR, lammps-data,
    structure_format: null          #   cif, ...) or n2p2's input.data (format "n2p2")
    structure_index: -1             # which image of a multi-image file
    potential: ../potential         # n2p2 folder: input.nn, scaling.data, weights.ZZZ.data
    elements: null                  # LAMMPS type order; default: the potential's elements
    output: null                    # run folder; default: <protocol name> beside the file
    timestep: 1.0                   # fs
    seed: 12345                     # velocities (and nothing else is random)
    dump_stride: 100                # steps between trajectory frames
    thermo_stride: 100              # steps between LAMMPS thermo lines (log.lammps)
    segment: 10 ps                  # restart file + state file after every segment
    trajectory:
      file: traj.h5md               # H5MD (hpcnnp.io.h5md), in the run folder;
                                    # MDAnalysis.Universe(path) opens .h5md
      fields: [position, image]     # + velocity, force
      extrapolations: null          # e.g. extrapolations.h5: every dumped frame that
                                    # follows extrapolation warnings also goes here
                                    # (H5MD; candidates for active learning)
    pair:                           # keywords of pair_style hpcnnp / n2p2's hdnnp
      showew: no
      showewsum: 0                  # steps between extrapolation-warning summaries
      maxew: null                   # stop when a step has more warnings (null: never)
      resetew: no
      cflength: 1.0
      cfenergy: 1.0
    zbl: null                       # e.g. {inner: 0.8, outer: 1.4} (Å): see below
    neighbor_skin: 1.0              # Å
    allow_small_box: false
    stages:
      - {type: minimize, ftol: 1.0e-3, maxiter: 1000, box: null}   # box: iso|aniso|tri
      - {type: heat, T0: 10, T1: 600, time: 20 ps}                  # nvt ramp (or ensemble: npt)
      - {type: nvt, T: 600, time: 1 ns, tdamp: 0.1 ps}
      - {type: npt, T: 600, P: 1.0, barostat: aniso, time: 1 ns, pdamp: 1 ps}
      - {type: nve, time: 10 ps}

Durations (``time``, ``segment``, ``tdamp``, ``pdamp``) are a number in ps or a
string with a unit: ``"500 fs"``, ``"20 ps"``, ``"1 ns"``, ``"2000 steps"``.
Temperatures in K, pressures in bar (LAMMPS metal units).  Defaults: ``tdamp`` =
100 time steps and ``pdamp`` = 1000 time steps (LAMMPS' recommendations), Nosé–Hoover
chains of 3 (``tchain``).

Stages
------
minimize
    Conjugate gradients (``min_style``), ``etol`` (dimensionless), ``ftol`` (eV/Å),
    ``maxiter``, ``maxeval``; ``box: iso|aniso|tri`` relaxes the cell too (``fix
    box/relax`` to ``pressure`` bar).  The step counter is unchanged; no frames.
heat
    Linear temperature ramp ``T0`` -> ``T1`` over ``time`` (Nosé–Hoover ``fix nvt
    temp T0 T1``, or ``fix npt`` with ``ensemble: npt``).
nvt / npt
    Nosé–Hoover thermostat (and barostat: ``iso``, ``aniso`` or ``tri`` coupling of
    the cell to ``P``) at ``T``.
nve
    Velocity Verlet (energy drift checks).

The first MD stage creates Gaussian velocities at its start temperature (zero
total momentum; ``seed``); any MD stage may set ``velocity: <K>`` to create new
velocities when it starts.

ZBL
---
``zbl: {inner, outer}`` overlays the universal ZBL screened nuclear repulsion
(Ziegler, Biersack, Littmark 1985), switched smoothly to zero between ``inner``
and ``outer`` (Å), on the HDNNP with ``pair_style hybrid/overlay``.  It is a
safeguard against atoms passing through each other at high temperature where the
training data had no close contacts; it changes energies and forces wherever a
pair is closer than ``outer``, so keep ``outer`` below the shortest distances of
the training data (≈1.6 Å for Li–O in LLZO).  Off by default.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from hpcnnp.errors import InputFileError

__all__ = ["Protocol", "Stage", "load_protocol", "parse_protocol", "STAGE_TYPES",
           "parse_duration"]

FIELDS = ("position", "image", "velocity", "force")
BAROSTATS = ("iso", "aniso", "tri")
_YES = {True: True, False: False, "yes": True, "no": False, "true": True, "false": False,
        "on": True, "off": False}


class _Where:
    """File + YAML line lookup for error messages."""

    def __init__(self, path, lines):
        self.path, self.lines = str(path), lines

    def error(self, keys, message):
        line = None
        for k in range(len(keys), -1, -1):
            line = self.lines.get(tuple(keys[:k]))
            if line is not None:
                break
        name = ".".join(str(k) for k in keys)
        return InputFileError(self.path, line, f"{name}: {message}" if name else message)


def _key_lines(node):
    from hpcnnp.fileio import yaml_key_lines
    return yaml_key_lines(node, index=int)


_DURATION = re.compile(r"^\s*([-+0-9.eE]+)\s*(fs|ps|ns|steps?)?\s*$")


def parse_duration(value, dt_fs, what="duration"):
    """Number of steps of a duration (number in ps, or "N fs|ps|ns|steps")."""
    if isinstance(value, bool):
        raise ValueError(f"{what} must be a duration, got {value!r}")
    if isinstance(value, (int, float)):
        number, unit = float(value), "ps"
    else:
        m = _DURATION.match(str(value))
        if not m:
            raise ValueError(f"{what} must be a number (ps) or 'N fs|ps|ns|steps', got "
                             f"{value!r}")
        number, unit = float(m.group(1)), (m.group(2) or "ps")
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"{what} must be a non-negative finite duration, got {value!r}")
    if unit.startswith("step"):
        if number != int(number):
            raise ValueError(f"{what}: a number of steps must be an integer, got {value!r}")
        return int(number)
    fs = number * {"fs": 1.0, "ps": 1e3, "ns": 1e6}[unit]
    return int(round(fs / dt_fs))


@dataclass
class Stage:
    """One stage of a protocol (see the module docstring)."""

    type: str
    index: int
    n_steps: int = 0                 # MD steps (0 for minimize)
    T0: float | None = None          # K, start temperature (MD stages with a thermostat)
    T1: float | None = None          # K, end temperature
    P: float | None = None           # bar
    barostat: str | None = None      # iso | aniso | tri
    tdamp_ps: float | None = None
    pdamp_ps: float | None = None
    tchain: int = 3
    velocity: float | None = None    # K: create velocities at the start of the stage
    # minimize
    etol: float = 0.0
    ftol: float = 1e-3
    maxiter: int = 1000
    maxeval: int = 10000
    min_style: str = "cg"
    box: str | None = None
    pressure: float = 0.0
    raw: dict = field(default_factory=dict)

    @property
    def is_md(self):
        return self.type != "minimize"

    @property
    def label(self):
        return f"stage {self.index + 1} ({self.type})"

    @property
    def start_temperature(self):
        return self.T0

    def fix_commands(self, fix_id, dt_fs):
        """LAMMPS commands defining the integrator of an MD stage."""
        if not self.is_md:
            return []
        tdamp = self.tdamp_ps if self.tdamp_ps is not None else 100 * dt_fs / 1000.0
        pdamp = self.pdamp_ps if self.pdamp_ps is not None else 1000 * dt_fs / 1000.0
        if self.type == "nve":
            return [f"fix {fix_id} all nve"]
        temp = f"temp {self.T0!r} {self.T1!r} {tdamp!r} tchain {self.tchain}"
        if self.P is None:
            return [f"fix {fix_id} all nvt {temp}"]
        return [f"fix {fix_id} all npt {temp} {self.barostat} {self.P!r} {self.P!r} "
                f"{pdamp!r}"]

    def minimize_commands(self, fix_id):
        cmds = [f"min_style {self.min_style}"]
        if self.box:
            cmds.append(f"fix {fix_id} all box/relax {self.box} {self.pressure!r}")
        cmds.append(f"minimize {self.etol!r} {self.ftol!r} {self.maxiter} {self.maxeval}")
        if self.box:
            cmds.append(f"unfix {fix_id}")
        return cmds

    def signature(self):
        """Hash of what determines the stage's trajectory (resume checks it)."""
        d = asdict(self)
        d.pop("raw")
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def _num(where, keys, value, what="a number", positive=False, integer=False):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise where.error(keys, f"must be {what}, got {value!r}")
    if integer and value != int(value):
        raise where.error(keys, f"must be an integer, got {value!r}")
    if not math.isfinite(value) or (positive and value <= 0):
        raise where.error(keys, f"must be {'positive' if positive else 'finite'}, got "
                          f"{value!r}")
    return int(value) if integer else float(value)


def _check_keys(d, where, keys, kind, allowed):
    unknown = sorted(set(d) - allowed - {"type"})
    if unknown:
        raise where.error(keys + [unknown[0]], f"unknown key for a {kind} stage "
                          f"(allowed: {', '.join(sorted(allowed))})")


def _md_time(d, where, keys, dt):
    if ("time" in d) == ("steps" in d):
        raise where.error(keys, "give the stage length as 'time' (or 'steps')")
    try:
        if "steps" in d:
            n = _num(where, keys + ["steps"], d["steps"], "an integer", integer=True)
        else:
            n = parse_duration(d["time"], dt, "time")
    except ValueError as exc:
        raise where.error(keys + ["time"], str(exc)) from None
    if n < 1:
        raise where.error(keys + ["time"], "the stage must have at least one time step")
    return n


def _damping(d, key, where, keys, dt):
    if d.get(key) is None:
        return None
    try:
        n = parse_duration(d[key], dt, key)
    except ValueError as exc:
        raise where.error(keys + [key], str(exc)) from None
    if n < 1:
        raise where.error(keys + [key], "must be at least one time step")
    return n * dt / 1000.0


def _thermostat(d, stage, where, keys, dt, need_p):
    stage.tdamp_ps = _damping(d, "tdamp", where, keys, dt)
    stage.tchain = _num(where, keys + ["tchain"], d.get("tchain", 3), "an integer",
                        positive=True, integer=True)
    if need_p:
        stage.P = _num(where, keys + ["P"], d.get("P", 1.0))
        stage.barostat = str(d.get("barostat", "iso"))
        if stage.barostat not in BAROSTATS:
            raise where.error(keys + ["barostat"], f"must be one of {', '.join(BAROSTATS)}")
        stage.pdamp_ps = _damping(d, "pdamp", where, keys, dt)


def _temperature(d, key, where, keys, required=True):
    if key not in d:
        if required:
            raise where.error(keys, f"needs {key} (K)")
        return None
    return _num(where, keys + [key], d[key], "a temperature (K)", positive=True)


_MD_KEYS = {"time", "steps", "velocity", "tdamp", "tchain"}
_P_KEYS = {"P", "barostat", "pdamp"}


def _build_thermostatted(kind):
    def build(d, index, where, keys, dt):
        npt = kind == "npt"
        s = Stage(kind, index, raw=dict(d))
        _check_keys(d, where, keys, s.type, _MD_KEYS | {"T"} | (_P_KEYS if npt else set()))
        s.n_steps = _md_time(d, where, keys, dt)
        s.T0 = s.T1 = _temperature(d, "T", where, keys)
        _thermostat(d, s, where, keys, dt, npt)
        return s
    return build


def _build_heat(d, index, where, keys, dt):
    ens = str(d.get("ensemble", "nvt"))
    if ens not in ("nvt", "npt"):
        raise where.error(keys + ["ensemble"], "must be nvt or npt")
    s = Stage("heat", index, raw=dict(d))
    _check_keys(d, where, keys, s.type, _MD_KEYS | {"T0", "T1", "ensemble"}
                  | (_P_KEYS if ens == "npt" else set()))
    s.n_steps = _md_time(d, where, keys, dt)
    s.T0 = _temperature(d, "T0", where, keys)
    s.T1 = _temperature(d, "T1", where, keys)
    _thermostat(d, s, where, keys, dt, ens == "npt")
    return s


def _build_nve(d, index, where, keys, dt):
    s = Stage("nve", index, raw=dict(d))
    _check_keys(d, where, keys, s.type, {"time", "steps", "velocity"})
    s.n_steps = _md_time(d, where, keys, dt)
    return s


def _build_minimize(d, index, where, keys, dt):
    s = Stage("minimize", index, raw=dict(d))
    _check_keys(d, where, keys, s.type, {"etol", "ftol", "maxiter", "maxeval", "min_style",
                                          "box", "pressure"})
    s.etol = _num(where, keys + ["etol"], d.get("etol", 0.0))
    s.ftol = _num(where, keys + ["ftol"], d.get("ftol", 1e-3))
    s.maxiter = _num(where, keys + ["maxiter"], d.get("maxiter", 1000), "an integer",
                     positive=True, integer=True)
    s.maxeval = _num(where, keys + ["maxeval"], d.get("maxeval", 10 * s.maxiter),
                     "an integer", positive=True, integer=True)
    s.min_style = str(d.get("min_style", "cg"))
    if s.min_style not in ("cg", "sd", "fire", "quickmin", "hftn"):
        raise where.error(keys + ["min_style"], "must be cg, sd, fire, quickmin or hftn")
    box = d.get("box")
    if box not in (None, False) and box not in BAROSTATS:
        raise where.error(keys + ["box"], f"must be null or one of {', '.join(BAROSTATS)}")
    s.box = box or None
    s.pressure = _num(where, keys + ["pressure"], d.get("pressure", 0.0))
    return s


#: stage type -> builder (dict, index, where, keys, dt_fs) -> Stage
STAGE_TYPES = {
    "minimize": _build_minimize,
    "minimise": _build_minimize,
    "heat": _build_heat,
    "nvt": _build_thermostatted("nvt"),
    "npt": _build_thermostatted("npt"),
    "nve": _build_nve,
}


@dataclass
class Protocol:
    """A parsed, validated protocol (paths resolved against the protocol's folder)."""

    path: Path
    structure: Path
    potential: Path
    output: Path
    stages: list
    structure_format: str | None = None
    structure_index: int = -1
    elements: list | None = None
    timestep_fs: float = 1.0
    seed: int = 12345
    dump_stride: int = 100
    thermo_stride: int = 100
    segment_steps: int = 10000
    trajectory_file: str = "traj.h5md"
    extrapolations_file: str | None = None
    fields: tuple = ("position", "image")
    pair: dict = field(default_factory=dict)
    zbl: dict | None = None
    neighbor_skin: float = 1.0
    allow_small_box: bool = False
    text: str = ""

    @property
    def total_steps(self):
        return sum(s.n_steps for s in self.stages)

    @property
    def trajectory_path(self):
        return self.output / self.trajectory_file

    def fingerprint(self):
        """What must not change between a run and its resumption (per stage)."""
        return {"timestep_fs": self.timestep_fs, "dump_stride": self.dump_stride,
                "fields": list(self.fields), "elements": self.elements,
                "seed": self.seed,
                "stages": [s.signature() for s in self.stages]}


_TOP_KEYS = {"structure", "structure_format", "structure_index", "potential", "elements",
             "output", "timestep", "seed", "dump_stride", "thermo_stride", "segment",
             "trajectory", "pair", "zbl", "neighbor_skin", "allow_small_box", "stages"}
_PAIR_KEYS = {"showew": "yes/no", "showewsum": "int", "maxew": "int", "resetew": "yes/no",
              "cflength": "float", "cfenergy": "float"}


def load_protocol(path):
    """Read and validate a protocol YAML file; raises InputFileError (file:line)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputFileError(path, None, f"cannot read the protocol: {exc.strerror}") from None
    return parse_protocol(text, path)


def parse_protocol(text, path="protocol.yaml"):
    """Parse protocol YAML *text*; relative paths are relative to *path*'s folder."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(text)
        lines = _key_lines(yaml.compose(text))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise InputFileError(path, mark.line + 1 if mark else None,
                             f"not valid YAML: {getattr(exc, 'problem', exc)}") from None
    where = _Where(path, lines)
    if not isinstance(data, dict):
        raise where.error([], "a protocol is a YAML mapping (structure, potential, stages)")
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise where.error([unknown[0]], f"unknown key (allowed: {', '.join(sorted(_TOP_KEYS))})")
    for key in ("structure", "potential", "stages"):
        if data.get(key) in (None, "", []):
            raise where.error([key], "is required")
    base = path.resolve().parent

    def p(value):
        q = Path(str(value)).expanduser()
        return q if q.is_absolute() else base / q

    dt = _num(where, ["timestep"], data.get("timestep", 1.0), "a time step (fs)", positive=True)
    proto = Protocol(path=path.resolve(), structure=p(data["structure"]),
                     potential=p(data["potential"]),
                     output=p(data["output"]) if data.get("output") else base / path.stem,
                     stages=[], timestep_fs=dt, text=text)
    proto.structure_format = data.get("structure_format")
    proto.structure_index = _num(where, ["structure_index"], data.get("structure_index", -1),
                                 "an integer", integer=True)
    if data.get("elements") is not None:
        els = data["elements"]
        if isinstance(els, str):
            els = els.split()
        if not isinstance(els, list) or not els or not all(isinstance(e, str) for e in els):
            raise where.error(["elements"], "must be a list of element symbols")
        if len(set(els)) != len(els):
            raise where.error(["elements"], "lists an element twice")
        proto.elements = list(els)
    proto.seed = _num(where, ["seed"], data.get("seed", 12345), "an integer", positive=True,
                      integer=True)
    proto.dump_stride = _num(where, ["dump_stride"], data.get("dump_stride", 100),
                             "an integer", positive=True, integer=True)
    proto.thermo_stride = _num(where, ["thermo_stride"], data.get("thermo_stride", 100),
                               "an integer", positive=True, integer=True)
    try:
        proto.segment_steps = parse_duration(data.get("segment", "10 ps"), dt, "segment")
    except ValueError as exc:
        raise where.error(["segment"], str(exc)) from None
    if proto.segment_steps < 1:
        raise where.error(["segment"], "must be at least one time step")
    proto.neighbor_skin = _num(where, ["neighbor_skin"], data.get("neighbor_skin", 1.0),
                               "a length (Å)", positive=True)
    asb = data.get("allow_small_box", False)
    if asb not in _YES:
        raise where.error(["allow_small_box"], "must be yes or no")
    proto.allow_small_box = _YES[asb]

    traj = data.get("trajectory") or {}
    if not isinstance(traj, dict):
        raise where.error(["trajectory"], "must be a mapping (file, fields)")
    bad = sorted(set(traj) - {"file", "fields", "extrapolations"})
    if bad:
        raise where.error(["trajectory", bad[0]],
                          "unknown key (allowed: file, fields, extrapolations)")
    proto.trajectory_file = str(traj.get("file", "traj.h5md"))
    ex = traj.get("extrapolations")
    if ex is not None and not isinstance(ex, str):
        raise where.error(["trajectory", "extrapolations"], "must be a file name (H5MD)")
    proto.extrapolations_file = ex
    fields = traj.get("fields", ["position", "image"])
    if isinstance(fields, str):
        fields = fields.replace(",", " ").split()
    if not isinstance(fields, list) or any(f not in FIELDS for f in fields):
        raise where.error(["trajectory", "fields"], f"must be a list of {', '.join(FIELDS)}")
    proto.fields = tuple(dict.fromkeys(["position", "image"] + list(fields)))

    pair = data.get("pair") or {}
    if not isinstance(pair, dict):
        raise where.error(["pair"], "must be a mapping")
    clean = {}
    for k, v in pair.items():
        if k not in _PAIR_KEYS:
            raise where.error(["pair", k], f"unknown key (allowed: {', '.join(_PAIR_KEYS)})")
        kind = _PAIR_KEYS[k]
        if v is None:
            continue
        if kind == "yes/no":
            if v not in _YES:
                raise where.error(["pair", k], "must be yes or no")
            clean[k] = _YES[v]
        elif kind == "int":
            clean[k] = _num(where, ["pair", k], v, "an integer", integer=True)
        else:
            clean[k] = _num(where, ["pair", k], v, positive=True)
    proto.pair = clean

    zbl = data.get("zbl")
    if zbl not in (None, False):
        if not isinstance(zbl, dict) or set(zbl) != {"inner", "outer"}:
            raise where.error(["zbl"], "must be {inner: Å, outer: Å} (or null)")
        inner = _num(where, ["zbl", "inner"], zbl["inner"], "a length (Å)", positive=True)
        outer = _num(where, ["zbl", "outer"], zbl["outer"], "a length (Å)", positive=True)
        if outer <= inner:
            raise where.error(["zbl", "outer"], "must be larger than inner")
        proto.zbl = {"inner": inner, "outer": outer}

    stages = data["stages"]
    if not isinstance(stages, list):
        raise where.error(["stages"], "must be a list of stages")
    for i, d in enumerate(stages):
        keys = ["stages", i]
        if not isinstance(d, dict) or "type" not in d:
            raise where.error(keys, f"a stage is a mapping with 'type' "
                              f"({', '.join(STAGE_TYPES)})")
        build = STAGE_TYPES.get(str(d["type"]))
        if build is None:
            raise where.error(keys + ["type"], f"unknown stage type {d['type']!r} "
                              f"(known: {', '.join(STAGE_TYPES)})")
        stage = build(d, i, where, keys, dt)
        if "velocity" in d and d["velocity"] is not None:
            if not stage.is_md:
                raise where.error(keys + ["velocity"], "only MD stages create velocities")
            stage.velocity = _num(where, keys + ["velocity"], d["velocity"],
                                  "a temperature (K)", positive=True)
        proto.stages.append(stage)
    first_md = next((s for s in proto.stages if s.is_md), None)
    if first_md is not None and first_md.velocity is None:
        if first_md.T0 is None:
            raise where.error(["stages", first_md.index],
                              "the first MD stage is nve: give 'velocity: <K>' to create "
                              "initial velocities")
        first_md.velocity = first_md.T0
    return proto
