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
      file: traj.h5                 # H5MD (hpcnnp.io.h5md), in the run folder
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

Every key with its type, range, unit and default is a field of the typed model
:class:`hpcnnp.config.protocol.ProtocolFile` (``hpcnnp config keys protocol``;
JSON Schema: ``docs/schema/protocol.schema.json``); a problem is reported with
file, line and key path before LAMMPS starts.

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
from dataclasses import asdict, dataclass, field
from pathlib import Path

from hpcnnp.config.base import validate_document
from hpcnnp.config.protocol import (BAROSTATS, FIELDS, STAGE_MODELS, HeatStage, MinimizeStage,
                                    NPTStage, ProtocolFile)
from hpcnnp.config.types import parse_duration
from hpcnnp.config.yamlfile import parse_yaml, read_yaml

__all__ = ["Protocol", "Stage", "load_protocol", "parse_protocol", "protocol_from_document",
           "STAGE_TYPES", "parse_duration", "FIELDS", "BAROSTATS"]


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


def _steps(doc, keys, duration, dt, what):
    """MD steps of a validated duration; at least one."""
    n = parse_duration(duration, dt, what)
    if n < 1:
        raise doc.error(keys, f"must be at least one time step (got {duration!r} at a time "
                        f"step of {dt:g} fs)")
    return n


def _damping_ps(doc, keys, duration, dt):
    return None if duration is None else _steps(doc, keys, duration, dt, keys[-1]) * dt / 1e3


def _stage(model, index, doc, dt):
    """The :class:`Stage` of a validated stage model (durations -> steps)."""
    keys = ("stages", index)
    kind = "minimize" if isinstance(model, MinimizeStage) else model.type
    raw = doc.data["stages"][index]
    s = Stage(kind, index, raw=dict(raw))
    if isinstance(model, MinimizeStage):
        s.etol, s.ftol, s.maxiter = model.etol, model.ftol, model.maxiter
        s.maxeval = model.maxeval if model.maxeval is not None else 10 * model.maxiter
        s.min_style, s.box, s.pressure = model.min_style, model.box, model.pressure
        return s
    s.n_steps = model.steps if model.steps is not None else \
        _steps(doc, keys + ("time",), model.time, dt, "time")
    s.velocity = model.velocity
    if kind == "nve":
        return s
    s.T0, s.T1 = (model.T0, model.T1) if isinstance(model, HeatStage) else (model.T, model.T)
    s.tdamp_ps = _damping_ps(doc, keys + ("tdamp",), model.tdamp, dt)
    s.tchain = model.tchain
    if isinstance(model, NPTStage) or (isinstance(model, HeatStage)
                                       and model.ensemble == "npt"):
        s.P, s.barostat = model.P, model.barostat
        s.pdamp_ps = _damping_ps(doc, keys + ("pdamp",), model.pdamp, dt)
    return s


#: stage type -> typed model of its keys (:mod:`hpcnnp.config.protocol`)
STAGE_TYPES = STAGE_MODELS


def load_protocol(path):
    """Read and validate a protocol YAML file; raises InputFileError (file:line)."""
    return protocol_from_document(read_yaml(path, "protocol"))


def parse_protocol(text, path="protocol.yaml"):
    """Parse protocol YAML *text*; relative paths are relative to *path*'s folder."""
    return protocol_from_document(parse_yaml(text, path))


def protocol_from_document(doc):
    """The :class:`Protocol` of a parsed file (:class:`~hpcnnp.config.yamlfile.YamlDocument`)."""
    model = validate_document(ProtocolFile, doc)
    path = Path(doc.path)
    base = path.resolve().parent

    def p(value):
        q = Path(str(value)).expanduser()
        return q if q.is_absolute() else base / q

    dt = model.timestep
    proto = Protocol(path=path.resolve(), structure=p(model.structure),
                     potential=p(model.potential),
                     output=p(model.output) if model.output else base / path.stem,
                     stages=[], timestep_fs=dt, text=doc.text,
                     structure_format=model.structure_format,
                     structure_index=model.structure_index, elements=model.elements,
                     seed=model.seed, dump_stride=model.dump_stride,
                     thermo_stride=model.thermo_stride,
                     segment_steps=_steps(doc, ("segment",), model.segment, dt, "segment"),
                     trajectory_file=model.trajectory.file,
                     extrapolations_file=model.trajectory.extrapolations,
                     fields=tuple(dict.fromkeys(["position", "image"]
                                                + list(model.trajectory.fields))),
                     pair=model.pair.model_dump(exclude_none=True),
                     zbl=None if model.zbl is None else model.zbl.model_dump(),
                     neighbor_skin=model.neighbor_skin,
                     allow_small_box=model.allow_small_box)
    proto.stages = [_stage(m, i, doc, dt) for i, m in enumerate(model.stages)]
    first_md = next((s for s in proto.stages if s.is_md), None)
    if first_md is not None and first_md.velocity is None:
        first_md.velocity = first_md.T0
    return proto


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
    trajectory_file: str = "traj.h5"
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
