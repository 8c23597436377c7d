"""Sampling campaigns: structure classes x temperatures x snapshot counts -> one data set.

A campaign YAML (``examples/campaigns/*.yaml``) says which structures are
sampled at which temperatures and how many labelled snapshots each
(structure, temperature) pair contributes::

    name: llzo_lco_laptop
    output: llzo_lco_laptop.h5          # the data set (relative to the current folder)
    workdir: llzo_lco_laptop.work       # task folders, Parsl logs, report
    site: local                         # jobs/sites/NAME.yaml, or "serial" (no Parsl)
    resources: {nodes: 1, workers_per_node: 2}
    scale: 1.0                          # multiplies every snapshot count
    seed: 1
    labeler: {name: chgnet, threads: 1}
    md: {thermostat: langevin, timestep: 1.0, equilibration: 40, interval: 10,
         snapshots_per_task: 3}
    structures:                         # named structures (builder + parameters)
      LCO: {builder: lco}
    sampling:
      - {structure: LCO, temperatures: [1000, 2000], snapshots: 6}
      - {structure: "mixture #3", temperatures: [2000, 3000, 4000], snapshots: 300}

``structure`` names an entry of ``structures:`` or a built-in class
(:data:`STRUCTURE_CLASSES`: ``LLZO cubic``, ``LLZO tetragonal``, ``LCO``,
``amorphous LLZO``, ``amorphous LCO``, ``mixture #1`` ... ``#5``,
``<n>Co_<La|Zr|Li>`` with n = 1..6).  Builders (:data:`BUILDERS`) call
:mod:`hpcnnp.structures`; every structure may add ``repeat: [a, b, c]`` or
``natoms: N`` (supercell), ``rattle: σ`` (Å) and ``class:`` (the class name
recorded in the data set; default: the structure's name).

Tasks
-----
Each (structure, temperature) pair becomes ``ceil(scale x snapshots /
snapshots_per_task)`` independent trajectories (seeds ``seed``, ``seed+1``, ...),
one task each (:func:`run_task`: build the structure, run
:func:`hpcnnp.sampling.aimd.run_aimd` with the labeler).  A task is named by the
hash of its structure (class, builder, size, parameters), temperature, seed,
MD settings and the labeler settings that change labels (:meth:`Task.hash`);
raising ``scale`` adds trajectories and keeps the finished ones.

Tasks are idempotent: a task folder ``WORKDIR/tasks/HASH/`` holds ``task.json``,
the trajectory checkpoint and snapshots, and a marker -- ``done.json`` (finished)
or ``failed.json`` (error, reason, traceback).  A re-run (``--resume``) skips
finished tasks, retries failed ones from their last checkpoint, and continues
interrupted ones.  Workers write only their task folder; the driver alone
appends finished tasks to the HDF5 data set (then writes ``merged.json``), so
there are never concurrent HDF5 writes, and a structure merged twice is
stored once (hash deduplication in :class:`hpcnnp.io.dataset.Dataset`).

Dispatch is by Parsl (one ``python_app`` call per task) on a site from
``jobs/sites`` (``local``: HighThroughputExecutor + LocalProvider, 2 workers by
default), or in this process with ``site: serial``.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import fcntl
import hashlib
import inspect
import json
import math
import os
import re
import shutil
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from hpcnnp.errors import HpcnnpError, InputFileError
from hpcnnp.progress import Progress, format_duration
from hpcnnp.units import AMU_G_CM3, atomic_mass

__all__ = ["Campaign", "Task", "load_campaign", "run_campaign", "run_task", "merge_task",
           "task_status", "BUILDERS", "STRUCTURE_CLASSES", "build_structure",
           "CampaignReport", "SERIAL_SITE"]

#: site name that runs the tasks in the driver process, without Parsl
SERIAL_SITE = "serial"
#: failure reasons retried within one run (``resources.retries`` times): transient ones;
#: deterministic failures (scf, nan, md, input) are only retried by a new run
RETRY_REASONS = ("timeout", "worker", "crash")
#: Parsl errors meaning that the executor itself is broken (no task could run)
EXECUTOR_FAILURES = ("TooManyJobFailuresError", "BadStateException", "ScalingFailed")

DONE, FAILED, MERGED, TASK, LOCK = "done.json", "failed.json", "merged.json", "task.json", ".lock"


# ---------------------------------------------------------------------------------------
# Structure builders (one table) and built-in structure classes
# ---------------------------------------------------------------------------------------

def _st():
    from hpcnnp import structures
    return structures


def _amorphous(parent="llzo_cubic", parent_params=None, density=None, natoms=None, seed=0):
    """Random packing of the composition (and density) of a crystalline parent --
    the start of a melt at high temperature, not a glass."""
    if parent not in ("llzo_cubic", "llzo_tetragonal", "lco"):
        raise HpcnnpError(f"amorphous: parent must be llzo_cubic, llzo_tetragonal or lco, "
                          f"got {parent!r}")
    atoms = getattr(_st(), parent)(**(parent_params or {}))
    return _st().amorphous(atoms, labeler=None, density=density, natoms=natoms, seed=seed)


def _packing(composition, density=None, cell=None, seed=0):
    """Random packing of a formula (``Li7La3Zr2O12``) at *density* g/cm^3 in a cube,
    or in *cell* (3 lengths or 3x3, Å)."""
    from ase import Atoms
    try:
        symbols = Atoms(composition).get_chemical_symbols()
    except Exception:
        raise HpcnnpError(f"packing: cannot read the formula {composition!r}") from None
    if (density is None) == (cell is None):
        raise HpcnnpError("packing: give exactly one of density (g/cm^3) or cell (Å)")
    if cell is None:
        if not float(density) > 0:
            raise HpcnnpError(f"packing: density must be > 0 g/cm^3, got {density}")
        mass = sum(atomic_mass(s) for s in symbols)
        length = (mass * AMU_G_CM3 / float(density)) ** (1 / 3)
        cell = np.eye(3) * length
    else:
        c = np.array(cell, float)
        cell = np.diag(c) if c.size == 3 else c.reshape(3, 3)
    atoms = _st().random_packing(symbols, cell, seed=seed)
    atoms.info.pop("packing", None)
    atoms.info.update(builder="packing", structure_class=f"packing {composition}",
                      method="random packing", composition=composition)
    return atoms


def _bulk(name, crystalstructure=None, a=None, cubic=False):
    """``ase.build.bulk`` (simple test structures, e.g. Cu fcc for the emt labeler)."""
    from ase.build import bulk
    return bulk(name, crystalstructure=crystalstructure, a=a, cubic=cubic)


def _file(path, index=-1, base_dir="."):
    """A structure from a file (``ase.io.read``; relative to the campaign file)."""
    import ase.io
    p = Path(path)
    if not p.is_absolute():
        p = Path(base_dir) / p
    if not p.is_file():
        raise HpcnnpError(f"structure file {p} not found")
    return ase.io.read(p, index=index)


#: builder name -> (function, documentation); the one place a builder is added
BUILDERS = {
    "llzo_cubic": ("llzo_cubic", "cubic garnet LLZO, 192 atoms (primitive: true -> 96)"),
    "llzo_tetragonal": ("llzo_tetragonal", "tetragonal LLZO, 192 atoms"),
    "lco": ("lco", "LiCoO2 R-3m, 12 atoms"),
    "mixture": ("mixture", "LLZO-LCO mixture model #1-#5 (random packing, 122-183 atoms)"),
    "co_doped_amorphous": ("co_doped_amorphous", "amorphous nCo-doped LLZO (random packing)"),
    "co_doped_llzo": ("co_doped_llzo", "crystalline nCo-doped LLZO"),
    "amorphous": (_amorphous, "random packing of a crystal's composition and density"),
    "packing": (_packing, "random packing of a formula at a density"),
    "bulk": (_bulk, "ase.build.bulk (test structures)"),
    "file": (_file, "a structure file read by ase.io.read"),
}

#: options every structure may have besides the builder's parameters
SIZE_OPTIONS = ("repeat", "natoms", "rattle", "class", "builder", "seed")

#: built-in structure classes -> structure spec
STRUCTURE_CLASSES = {
    "LLZO cubic": {"builder": "llzo_cubic"},
    "LLZO tetragonal": {"builder": "llzo_tetragonal"},
    "LCO": {"builder": "lco", "repeat": [3, 3, 1]},
    "amorphous LLZO": {"builder": "amorphous", "parent": "llzo_cubic"},
    "amorphous LCO": {"builder": "amorphous", "parent": "lco", "natoms": 96},
}
#: patterns of built-in classes -> function(match) -> structure spec
CLASS_PATTERNS = (
    (re.compile(r"mixture #([1-5])"), lambda m: {"builder": "mixture", "model": int(m[1])}),
    (re.compile(r"([1-6])Co_(La|Zr|Li)"),
     lambda m: {"builder": "co_doped_amorphous", "n": int(m[1]), "site": m[2]}),
)


def builtin_class(name):
    """The structure spec of a built-in class name, or None."""
    if name in STRUCTURE_CLASSES:
        return dict(STRUCTURE_CLASSES[name])
    for pattern, make in CLASS_PATTERNS:
        m = pattern.fullmatch(name)
        if m:
            return make(m)
    return None


def _builder_function(name):
    fn, _ = BUILDERS[name]
    if isinstance(fn, str):
        return getattr(_st(), fn)
    return fn


def _builder_signature(name):
    fn, _ = BUILDERS[name]
    if isinstance(fn, str):
        try:
            return inspect.signature(getattr(_st(), fn))
        except (ImportError, AttributeError) as exc:
            raise HpcnnpError(f"builder {name}: hpcnnp.structures.{fn} is not available "
                              f"({exc})") from None
    return inspect.signature(fn)


def check_structure_spec(spec, where="structure"):
    """Check builder name and parameters of a structure spec (raise HpcnnpError)."""
    if not isinstance(spec, dict):
        raise HpcnnpError(f"{where}: must be a mapping with 'builder' and its parameters")
    builder = spec.get("builder")
    if builder not in BUILDERS:
        raise HpcnnpError(f"{where}: unknown builder {builder!r}; known builders: "
                          + ", ".join(BUILDERS))
    params = {k: v for k, v in spec.items() if k not in SIZE_OPTIONS}
    sig = _builder_signature(builder)
    accepted = set(sig.parameters) - {"base_dir"}
    unknown = sorted(set(params) - accepted)
    if unknown:
        raise HpcnnpError(f"{where}: builder {builder} has no parameter {unknown[0]!r} "
                          f"(parameters: {', '.join(sorted(accepted - {'seed'}))})")
    try:
        sig.bind_partial(**params)
    except TypeError as exc:
        raise HpcnnpError(f"{where}: {exc}") from None
    if "repeat" in spec and "natoms" in spec:
        raise HpcnnpError(f"{where}: give repeat or natoms, not both")
    if "repeat" in spec:
        rep = spec["repeat"]
        if (not isinstance(rep, (list, tuple)) or len(rep) != 3
                or not all(isinstance(r, int) and not isinstance(r, bool) and r >= 1
                           for r in rep)):
            raise HpcnnpError(f"{where}: repeat must be three whole numbers >= 1, got {rep!r}")
    if "natoms" in spec and not (isinstance(spec["natoms"], int) and spec["natoms"] >= 1):
        raise HpcnnpError(f"{where}: natoms must be a whole number >= 1")
    if "rattle" in spec and not (isinstance(spec["rattle"], (int, float))
                                 and 0 <= spec["rattle"] < 1):
        raise HpcnnpError(f"{where}: rattle must be an amplitude in Å, 0 <= rattle < 1")


def build_structure(spec, seed=0, base_dir="."):
    """Build the :class:`ase.Atoms` of a structure spec (see the module docstring).

    The *seed* goes to builders that take one (packings, Li orderings) unless the
    spec fixes ``seed``; ``natoms`` goes to builders that take it, otherwise it
    selects a supercell (:func:`hpcnnp.structures.supercell`).
    """
    spec = dict(spec)
    builder = spec["builder"]
    fn = _builder_function(builder)
    sig = _builder_signature(builder)
    params = {k: v for k, v in spec.items() if k not in SIZE_OPTIONS}
    if "seed" in sig.parameters:
        params["seed"] = int(spec.get("seed", seed))
    if "base_dir" in sig.parameters:
        params["base_dir"] = str(base_dir)
    natoms = spec.get("natoms")
    if natoms is not None and "natoms" in sig.parameters:
        params["natoms"] = natoms
        natoms = None
    try:
        atoms = fn(**params)
    except HpcnnpError:
        raise
    except Exception as exc:
        raise HpcnnpError(f"builder {builder}({', '.join(f'{k}={v!r}' for k, v in params.items())})"
                          f" failed: {type(exc).__name__}: {exc}") from exc
    if spec.get("repeat") is not None:
        info = dict(atoms.info)
        atoms = atoms.repeat(tuple(int(r) for r in spec["repeat"]))
        atoms.info = dict(info, supercell={"repeat": list(spec["repeat"]),
                                           "parent_natoms": len(atoms) // int(np.prod(
                                               spec["repeat"]))})
    elif natoms is not None:
        atoms = _st().supercell(atoms, natoms=int(natoms))
    if spec.get("rattle"):
        atoms.rattle(float(spec["rattle"]), seed=int(spec.get("seed", seed)))
    atoms.pbc = True
    return atoms


# ---------------------------------------------------------------------------------------
# YAML with line numbers
# ---------------------------------------------------------------------------------------

def _key_lines(node):
    from hpcnnp.fileio import yaml_key_lines
    return yaml_key_lines(node, index=str)


class _Doc:
    def __init__(self, path, text):
        self.path = str(path)
        try:
            self.data = yaml.safe_load(text)
            self.lines = _key_lines(yaml.compose(text)) if text.strip() else {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            raise InputFileError(path, None if mark is None else mark.line + 1,
                                 f"not valid YAML: {getattr(exc, 'problem', exc)}") from None
        if not isinstance(self.data, dict):
            raise InputFileError(path, 1, "a campaign file must be a mapping (name:, "
                                 "structures:, sampling:, ...)")

    def error(self, keys, message):
        keys = tuple(str(k) for k in keys)
        probe = keys
        while probe and probe not in self.lines:
            probe = probe[:-1]
        label = ".".join(keys) if keys else "top level"
        return InputFileError(self.path, self.lines.get(probe), f"{label}: {message}")


# ---------------------------------------------------------------------------------------
# Campaign and tasks
# ---------------------------------------------------------------------------------------

#: MD defaults of a campaign (``md:`` overrides, per sampling entry too)
MD_DEFAULTS = {"thermostat": "langevin", "timestep": 1.0, "friction": 0.01, "tdamp": 100.0,
               "equilibration": 100, "interval": 20, "snapshots_per_task": 10,
               "walltime": None, "max_temperature_factor": 5.0}
TOP_KEYS = ("name", "description", "output", "workdir", "site", "resources", "scale", "seed",
            "labeler", "md", "structures", "sampling")
RESOURCE_KEYS = ("nodes", "workers_per_node", "walltime", "account", "queue", "max_blocks",
                 "retries")
ENTRY_KEYS = ("structure", "temperatures", "snapshots", "md", "labeler")


def _canonical(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


@dataclass
class Task:
    """One trajectory of a campaign.

    Attributes
    ----------
    structure_class : str
    structure : dict
        Builder spec.
    temperature : float, K
    seed : int
    md : dict
        MD settings (see :class:`hpcnnp.sampling.aimd.MDSettings`; ``snapshots``
        is the number of snapshots of this task).
    labeler : dict
        Labeler name and options.
    label_settings : dict
        The labeler settings that change labels (hashed).
    where : str
        Campaign file and line of the sampling entry (for messages).
    """

    structure_class: str
    structure: dict
    temperature: float
    seed: int
    md: dict
    labeler: dict
    label_settings: dict
    where: str = ""
    base_dir: str = "."

    def key(self):
        from hpcnnp.sampling.aimd import MDSettings
        md = {k: v for k, v in self.md.items() if k not in MDSettings.RUNTIME}
        return {"class": self.structure_class, "structure": self.structure,
                "temperature": float(self.temperature), "seed": int(self.seed), "md": md,
                "labeler": self.label_settings}

    @property
    def hash(self):
        """16 hex digits of the SHA-256 of :meth:`key` (canonical JSON)."""
        return hashlib.sha256(_canonical(self.key()).encode()).hexdigest()[:16]

    def to_dict(self):
        return {"hash": self.hash, "structure_class": self.structure_class,
                "structure": self.structure, "temperature": self.temperature,
                "seed": self.seed, "md": self.md, "labeler": self.labeler,
                "label_settings": self.label_settings, "where": self.where,
                "base_dir": self.base_dir}

    @classmethod
    def from_dict(cls, d):
        return cls(structure_class=d["structure_class"], structure=d["structure"],
                   temperature=d["temperature"], seed=d["seed"], md=d["md"],
                   labeler=d["labeler"], label_settings=d["label_settings"],
                   where=d.get("where", ""), base_dir=d.get("base_dir", "."))


@dataclass
class Campaign:
    """A loaded campaign file (see the module docstring)."""

    path: Path
    name: str
    description: str
    output: Path
    workdir: Path
    site: str
    resources: dict
    scale: float
    seed: int
    labeler: dict
    md: dict
    structures: dict
    entries: list
    lines: dict = field(default_factory=dict, repr=False)

    def tasks(self):
        """All tasks (unique by hash, in file order)."""
        from hpcnnp.sampling.labelers import make_labeler
        out = {}
        for entry in self.entries:
            lab = _entry_labeler(self.labeler, entry.get("labeler"))
            name = lab.pop("name")
            label_settings = make_labeler(name, **lab).label_settings()
            md = dict(self.md, **entry.get("md", {}))
            per = int(md.pop("snapshots_per_task"))
            n_tasks = max(1, math.ceil(self.scale * entry["snapshots"] / per))
            for temp in entry["temperatures"]:
                for i in range(n_tasks):
                    task = Task(structure_class=entry["class"], structure=entry["spec"],
                                temperature=float(temp), seed=self.seed + i,
                                md=dict(md, snapshots=per),
                                labeler={"name": name, **lab}, label_settings=label_settings,
                                where=entry["where"], base_dir=str(self.path.parent))
                    out.setdefault(task.hash, task)
        return list(out.values())


def _entry_labeler(default, override):
    """Labeler of a sampling entry: the campaign's, with the entry's options on top
    (an entry naming another labeler starts from that labeler's defaults)."""
    if not override:
        return dict(default)
    if override.get("name", default["name"]) != default["name"]:
        return dict(override)
    return dict(default, **override)


def _number(doc, keys, value, kind=float, low=None, strict=True):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            (kind is int and not float(value).is_integer()):
        raise doc.error(keys, f"must be a {'whole ' if kind is int else ''}number, "
                        f"got {value!r}")
    value = kind(value)
    if not math.isfinite(value):
        raise doc.error(keys, "must be finite")
    if low is not None and (value <= low if strict else value < low):
        raise doc.error(keys, f"must be {'>' if strict else '>='} {low}, got {value}")
    return value


def load_campaign(path, scale=None, site=None, output=None, workdir=None):
    """Read and check a campaign file.

    Parameters
    ----------
    path : str or path
    scale : float, optional
        Overrides ``scale`` (global factor on all snapshot counts).
    site : str, optional
        Overrides ``site``.
    output, workdir : str, optional
        Override ``output`` / ``workdir`` (relative paths: to the current folder).

    Raises
    ------
    InputFileError
        With file, line and key: unknown keys, unknown structure classes or
        builders, temperatures <= 0, unknown labelers or options, bad numbers.
    """
    from hpcnnp.sampling.aimd import MDSettings
    from hpcnnp.sampling.labelers import DEFAULT_LABELER, make_labeler

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputFileError(path, None, "campaign file not found") from None
    except OSError as exc:
        raise InputFileError(path, None, f"cannot read: {exc.strerror}") from None
    doc = _Doc(path, text)
    d = doc.data
    for key in d:
        if key not in TOP_KEYS:
            raise doc.error((key,), f"unknown key (known: {', '.join(TOP_KEYS)})")
    name = str(d.get("name") or path.stem)
    if scale is None:
        scale = d.get("scale", 1.0)
    scale = _number(doc, ("scale",), scale, float, 0.0)
    seed = _number(doc, ("seed",), d.get("seed", 0), int, 0, strict=False)
    site = site or d.get("site") or "local"
    if not isinstance(site, str):
        raise doc.error(("site",), "must be a site name (jobs/sites/NAME.yaml) or 'serial'")
    resources = d.get("resources") or {}
    if not isinstance(resources, dict):
        raise doc.error(("resources",), "must be a mapping")
    for key in resources:
        if key not in RESOURCE_KEYS:
            raise doc.error(("resources", key), f"unknown key (known: {', '.join(RESOURCE_KEYS)})")
    for key in ("nodes", "workers_per_node", "max_blocks"):
        if resources.get(key) is not None:
            resources[key] = _number(doc, ("resources", key), resources[key], int, 0)
    if resources.get("retries") is not None:
        resources["retries"] = _number(doc, ("resources", "retries"), resources["retries"],
                                       int, 0, strict=False)

    # labeler
    lab = d.get("labeler", {"name": DEFAULT_LABELER})
    if isinstance(lab, str):
        lab = {"name": lab}
    if not isinstance(lab, dict):
        raise doc.error(("labeler",), "must be a labeler name or a mapping with name: ...")
    lab = dict(lab)
    lab.setdefault("name", DEFAULT_LABELER)
    try:
        make_labeler(**lab)
    except HpcnnpError as exc:
        raise doc.error(("labeler",), str(exc)) from None

    # md defaults
    md = dict(MD_DEFAULTS)

    def md_section(keys, section):
        if section is None:
            return {}
        if not isinstance(section, dict):
            raise doc.error(keys, "must be a mapping")
        for key in section:
            if key not in MD_DEFAULTS:
                raise doc.error(keys + (key,), f"unknown MD setting (known: "
                                f"{', '.join(MD_DEFAULTS)})")
        merged = dict(md, **section)
        per = merged["snapshots_per_task"]
        if isinstance(per, bool) or not isinstance(per, int) or per < 1:
            raise doc.error(keys + ("snapshots_per_task",), f"must be a whole number >= 1, "
                            f"got {per!r}")
        try:
            MDSettings(temperature=1000.0, snapshots=per,
                       **{k: v for k, v in merged.items() if k != "snapshots_per_task"})
        except HpcnnpError as exc:
            bad = re.search(r"md: (\w+)", str(exc))
            raise doc.error(keys + ((bad.group(1),) if bad else ()),
                            str(exc).split(": ", 1)[-1]) from None
        return dict(section)

    md.update(md_section(("md",), d.get("md")))

    # named structures
    structures = d.get("structures") or {}
    if not isinstance(structures, dict):
        raise doc.error(("structures",), "must map structure names to builder specs")
    specs = {}
    for sname, spec in structures.items():
        try:
            check_structure_spec(spec, f"structure {sname!r}")
        except HpcnnpError as exc:
            bad = re.search(r"parameter '(\w+)'", str(exc))
            raise doc.error(("structures", sname) + ((bad.group(1),) if bad else ()),
                            str(exc)) from None
        specs[str(sname)] = dict(spec)

    # sampling entries
    sampling = d.get("sampling")
    if not isinstance(sampling, list) or not sampling:
        raise doc.error(("sampling",), "must be a list of {structure, temperatures, "
                        "snapshots} entries")
    entries = []
    for i, entry in enumerate(sampling):
        keys = ("sampling", i)
        if not isinstance(entry, dict):
            raise doc.error(keys, "must be a mapping {structure, temperatures, snapshots}")
        for key in entry:
            if key not in ENTRY_KEYS:
                raise doc.error(keys + (key,), f"unknown key (known: {', '.join(ENTRY_KEYS)})")
        for key in ("structure", "temperatures", "snapshots"):
            if key not in entry:
                raise doc.error(keys, f"missing {key}")
        sname = str(entry["structure"])
        if sname in specs:
            spec = dict(specs[sname])
        else:
            spec = builtin_class(sname)
            if spec is None:
                builtin = list(STRUCTURE_CLASSES) + ["mixture #1..#5",
                                                     "<n>Co_<La|Zr|Li> (n = 1..6)"]
                raise doc.error(keys + ("structure",),
                                f"unknown structure class {sname!r}; defined under "
                                f"structures: {', '.join(specs) or 'none'}; built in: "
                                f"{', '.join(builtin)}")
            check_structure_spec(spec, f"structure class {sname!r}")
        cls = str(spec.pop("class", sname))
        temps = entry["temperatures"]
        if not isinstance(temps, list):
            temps = [temps]
        if not temps:
            raise doc.error(keys + ("temperatures",), "needs at least one temperature (K)")
        for j, t in enumerate(temps):
            _number(doc, keys + ("temperatures", j), t, float, 0.0)
        snaps = _number(doc, keys + ("snapshots",), entry["snapshots"], int, 0)
        e = {"class": cls, "spec": spec, "temperatures": [float(t) for t in temps],
             "snapshots": snaps, "where": f"{path}:{doc.lines.get(tuple(map(str, keys)), '?')}"}
        if entry.get("md") is not None:
            e["md"] = md_section(keys + ("md",), entry["md"])
        if entry.get("labeler") is not None:
            if not isinstance(entry["labeler"], dict):
                raise doc.error(keys + ("labeler",), "must be a mapping of labeler options")
            over = _entry_labeler(lab, entry["labeler"])
            try:
                make_labeler(**over)
            except HpcnnpError as exc:
                raise doc.error(keys + ("labeler",), str(exc)) from None
            e["labeler"] = dict(entry["labeler"])
        entries.append(e)

    out = Path(output or d.get("output") or f"{name}.h5")
    work = Path(workdir or d.get("workdir") or f"{name}.work")
    return Campaign(path=path.resolve(), name=name, description=str(d.get("description", "")),
                    output=out, workdir=work, site=site, resources=resources, scale=scale,
                    seed=seed, labeler=lab, md=md, structures=specs, entries=entries,
                    lines=doc.lines)


# ---------------------------------------------------------------------------------------
# The task (runs on a worker)
# ---------------------------------------------------------------------------------------

def _atomic_json(path, obj):
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(3).hex()}.tmp")
    try:
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=1, sort_keys=True, default=str)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (FileNotFoundError, ValueError):
        return None


def task_status(task_dir):
    """``"merged"``, ``"done"``, ``"failed"``, ``"started"`` or ``"new"``."""
    d = Path(task_dir)
    if (d / MERGED).is_file():
        return "merged"
    if (d / DONE).is_file():
        return "done"
    if (d / FAILED).is_file():
        return "failed"
    if (d / "state.npz").is_file():
        return "started"
    return "new"


def run_task(task_dir):
    """Run one campaign task (a Parsl app body; also callable directly).

    Reads ``task.json`` of *task_dir*, builds the structure, runs the
    trajectory with the labeler and writes ``done.json`` -- or ``failed.json``
    with the error; never raises for a failed labeling.  A task already done
    returns at once; a started one continues from its checkpoint.  A file lock
    keeps two workers (e.g. an orphan of a killed run) off the same task.

    Returns
    -------
    dict
        ``{"hash", "status": "done"|"failed", "snapshots", "wall_time", "error", ...}``.
    """
    d = Path(task_dir)
    t0 = time.perf_counter()
    with open(d / LOCK, "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        done = _read_json(d / DONE)
        if done is not None:
            return dict(done, status="done", skipped=True)
        previous = _read_json(d / FAILED)
        attempt = 1 + (previous or {}).get("attempt", 0)
        if previous is not None:
            (d / FAILED).unlink()
        spec = _read_json(d / TASK)
        task = Task.from_dict(spec)
        log_lines = []
        logf = open(d / "task.log", "a")

        def log(line):
            stamp = time.strftime("%H:%M:%S")
            logf.write(f"{stamp} {line}\n")
            logf.flush()
            log_lines.append(line)

        calc = None
        try:
            from hpcnnp.sampling.aimd import MDSettings, run_aimd
            from hpcnnp.sampling.labelers import LabelingError, make_labeler
            log(f"task {task.hash} attempt {attempt}: {task.structure_class} "
                f"T={task.temperature:g} K seed={task.seed} labeler={task.labeler['name']} "
                f"on {os.uname().nodename} pid {os.getpid()}")
            lab = dict(task.labeler)
            labeler = make_labeler(lab.pop("name"), **lab)
            atoms = build_structure(task.structure, seed=task.seed, base_dir=task.base_dir)
            labeler.check(sorted(set(atoms.get_chemical_symbols())))
            calc = labeler.calculator(directory=d / "labeler")
            md = dict(task.md)
            settings = MDSettings(temperature=task.temperature, seed=task.seed,
                                  snapshots=int(md.pop("snapshots")), **md)
            result = run_aimd(atoms, calc, settings, directory=d, log=log)
            done = {"hash": task.hash, "snapshots": len(result.snapshots),
                    "natoms": len(atoms), "steps": settings.total_steps,
                    "steps_this_attempt": result.steps_run, "resumed_from": result.resumed_from,
                    "calls": result.calls, "wall_time": time.perf_counter() - t0,
                    "attempt": attempt, "labeler_versions": labeler.versions(),
                    "builder_info": _jsonable_info(atoms.info),
                    "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}
            _atomic_json(d / DONE, done)
            log(f"done: {done['snapshots']} snapshots, {result.steps_run} steps in "
                f"{done['wall_time']:.1f} s")
            return dict(done, status="done")
        except Exception as exc:
            from hpcnnp.sampling.labelers import LabelingError
            reason = exc.reason if isinstance(exc, LabelingError) else \
                ("input" if isinstance(exc, HpcnnpError) else "crash")
            failed = {"hash": task.hash, "error": f"{type(exc).__name__}: {exc}",
                      "reason": reason, "attempt": attempt,
                      "traceback": traceback.format_exc(limit=12),
                      "wall_time": time.perf_counter() - t0,
                      "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
            _atomic_json(d / FAILED, failed)
            log(f"FAILED ({reason}): {failed['error']}")
            return dict(failed, status="failed")
        finally:
            if calc is not None:
                with contextlib.suppress(Exception):
                    calc.close()
            logf.close()


def _jsonable_info(info):
    out = {}
    for k, v in info.items():
        try:
            json.dumps(v, default=_np_default)
            out[k] = v
        except (TypeError, ValueError):
            out[k] = repr(v)
    return json.loads(json.dumps(out, default=_np_default))


def _np_default(obj):
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(type(obj).__name__)


# ---------------------------------------------------------------------------------------
# Merging (driver only)
# ---------------------------------------------------------------------------------------

def merge_task(dataset, task_dir, campaign_name=""):
    """Append the snapshots of a finished task to *dataset* (an open
    :class:`hpcnnp.io.dataset.Dataset`), then write ``merged.json``.

    Returns
    -------
    (int, int)
        Structures added, duplicates skipped.
    """
    from hpcnnp import __version__
    from hpcnnp.io.dataset import Record
    from hpcnnp.sampling.aimd import read_snapshots
    d = Path(task_dir)
    spec = _read_json(d / TASK)
    done = _read_json(d / DONE)
    if spec is None or done is None:
        raise HpcnnpError(f"{d}: not a finished task (no {TASK} or {DONE})")
    snaps = read_snapshots(d)
    if len(snaps) != done["snapshots"]:
        raise HpcnnpError(f"{d}: {len(snaps)} snapshot files, {DONE} says {done['snapshots']}")
    labeler = dict(spec["labeler"])
    labeler.update(spec["label_settings"])
    records = []
    for s in snaps:
        prov = {"campaign": campaign_name, "task": spec["hash"], "seed": spec["seed"],
                "step": s["step"], "time_fs": s["time_fs"], "snapshot": s["index"],
                "temperature_inst": s["temperature_inst"], "structure": spec["structure"],
                "md": spec["md"], "labeler_versions": done.get("labeler_versions", {}),
                "builder": done.get("builder_info", {}).get("builder"),
                "hpcnnp": __version__, "source": "aimd"}
        records.append(Record(numbers=s["numbers"], positions=s["positions"], cell=s["cell"],
                              pbc=s["pbc"], energy=s["energy"], forces=s["forces"],
                              stress=s["stress"], structure_class=spec["structure_class"],
                              temperature=spec["temperature"], labeler=labeler,
                              provenance=prov))
    added, dup = dataset.append(records, where=f"{d}: snapshot")
    _atomic_json(d / MERGED, {"added": added, "duplicates": dup,
                              "time": time.strftime("%Y-%m-%dT%H:%M:%S")})
    return added, dup


# ---------------------------------------------------------------------------------------
# The driver
# ---------------------------------------------------------------------------------------

@dataclass
class CampaignReport:
    """Outcome of :func:`run_campaign`."""

    tasks: int = 0
    done: int = 0
    failed: int = 0
    skipped: int = 0
    snapshots_added: int = 0
    duplicates: int = 0
    wall_time: float = 0.0
    failures: dict = field(default_factory=dict)
    dataset: str = ""
    workdir: str = ""

    @property
    def ok(self):
        return self.failed == 0

    def to_dict(self):
        return {k: getattr(self, k) for k in ("tasks", "done", "failed", "skipped",
                                              "snapshots_added", "duplicates", "wall_time",
                                              "failures", "dataset", "workdir")}


@contextlib.contextmanager
def _driver_lock(workdir):
    path = Path(workdir) / "driver.lock"
    fh = open(path, "a+")
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.seek(0)
        other = fh.read().strip()
        fh.close()
        raise HpcnnpError(f"another hpcnnp sample is running on {workdir} ({other or 'pid ?'});"
                          " one driver per campaign") from None
    fh.seek(0)
    fh.truncate()
    fh.write(f"pid {os.getpid()} on {os.uname().nodename}\n")
    fh.flush()
    try:
        yield
    finally:
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        fh.close()


def _preflight(campaign, tasks, log):
    """Build every distinct structure once (base seed): atoms count and elements;
    check the labelers for those elements.  Returns {(class, structure json): natoms}."""
    from hpcnnp.sampling.labelers import make_labeler
    sizes = {}
    seen_labelers = {}
    for task in tasks:
        key = (task.structure_class, _canonical(task.structure))
        if key not in sizes:
            try:
                atoms = build_structure(task.structure, seed=campaign.seed,
                                        base_dir=campaign.path.parent)
            except HpcnnpError as exc:
                raise HpcnnpError(f"{task.where}: structure class {task.structure_class!r}: "
                                  f"{exc}") from None
            sizes[key] = (len(atoms), sorted(set(atoms.get_chemical_symbols())))
        natoms, elements = sizes[key]
        lab_key = (_canonical(task.labeler), tuple(elements))
        if lab_key not in seen_labelers:
            lab = dict(task.labeler)
            labeler = make_labeler(lab.pop("name"), **lab)
            try:
                labeler.check(elements)
            except HpcnnpError as exc:
                raise HpcnnpError(f"{task.where}: {exc}") from None
            seen_labelers[lab_key] = True
    return sizes


def _resolve_site_launcher(campaign, tasks):
    """Labelers with ``launcher: site``: the site's MPI command for ``ranks``."""
    needs = [t for t in tasks if t.labeler.get("launcher") == "site"]
    if not needs:
        return
    if campaign.site == SERIAL_SITE:
        raise HpcnnpError("labeler launcher 'site' needs a site (not 'serial')")
    from hpcnnp.hpc.sites import load_site
    site = load_site(campaign.site)
    for t in needs:
        ranks = int(t.labeler.get("ranks") or 1)
        threads = int(t.labeler.get("threads") or 1)
        t.labeler["launcher"] = " ".join(site.mpi_command(ranks, threads=threads))


def _parsl_executor(campaign, log):
    """(submit(task_dir) -> future, shutdown()) for the campaign's site."""
    if campaign.site == SERIAL_SITE:
        def submit(task_dir):
            return concurrent.futures.Future()
        return submit, (lambda: None), True
    try:
        import parsl
        from parsl.app.python import PythonApp
    except ImportError as exc:
        raise HpcnnpError(f"Parsl is not installed ({exc}): pip install parsl, or run with "
                          "--site serial") from None
    from hpcnnp.hpc.sites import SCHEDULERS, load_site
    site = load_site(campaign.site)
    submit_cmd = SCHEDULERS[site.scheduler]["submit"].split()[0]
    if site.scheduler != "local" and shutil.which(submit_cmd) is None:
        raise HpcnnpError(f"site {site.name} submits batch jobs with {submit_cmd}, which is "
                          "not on PATH here: run hpcnnp sample on a login node of that "
                          "machine (or choose --site local / serial)")
    res = campaign.resources
    run_dir = (campaign.workdir / "parsl").resolve()
    config = site.parsl_config(nodes=res.get("nodes", 1), walltime=res.get("walltime"),
                               workers_per_node=res.get("workers_per_node", 2),
                               run_dir=str(run_dir), account=res.get("account"),
                               queue=res.get("queue"), max_blocks=res.get("max_blocks", 1))
    # workers must import this hpcnnp, also when it is not installed
    root = str(Path(__file__).resolve().parents[2])
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [root] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != root])
    parsl.clear()
    dfk = parsl.load(config)
    app = PythonApp(run_task, data_flow_kernel=dfk, cache=False)
    log(f"Parsl: site {site.name}, {res.get('nodes', 1)} node(s) x "
        f"{res.get('workers_per_node', 2)} worker(s), run dir {run_dir}")

    def shutdown():
        with contextlib.suppress(Exception):
            dfk.cleanup()
        with contextlib.suppress(Exception):
            parsl.clear()

    return (lambda task_dir: app(str(task_dir))), shutdown, False


def run_campaign(path, site=None, resume=False, scale=None, output=None, workdir=None,
                 log=None, progress_interval=30.0):
    """Run a campaign: dispatch its unfinished tasks and merge their snapshots.

    Parameters
    ----------
    path : str or path
        Campaign YAML.
    site : str, optional
        Overrides the file's ``site`` (``serial``: in this process, no Parsl).
    resume : bool
        Required when the work folder holds an earlier run of the campaign:
        finished tasks are skipped, failed ones retried, interrupted ones continued.
    scale : float, optional
        Overrides the file's ``scale``.
    output, workdir : str, optional
        Override the data set / work folder.
    log : callable, optional
        ``log(line)`` for progress (default: print to standard output).
    progress_interval : float, s
        A progress line at least this often while tasks run.

    Returns
    -------
    CampaignReport
    """
    if log is None:
        def log(line):
            print(line, flush=True)
    campaign = load_campaign(path, scale=scale, site=site, output=output, workdir=workdir)
    tasks = campaign.tasks()
    work = campaign.workdir
    work.mkdir(parents=True, exist_ok=True)
    (work / "tasks").mkdir(exist_ok=True)
    t0 = time.perf_counter()
    report = CampaignReport(tasks=len(tasks), dataset=str(campaign.output), workdir=str(work))
    with _driver_lock(work):
        marker = work / "campaign.json"
        previous = _read_json(marker)
        if previous is not None and not resume:
            n_prev = sum(1 for p in (work / "tasks").glob("*") if (p / DONE).is_file())
            raise HpcnnpError(f"{work} holds an earlier run of campaign "
                              f"{previous.get('name')!r} ({n_prev} task(s) finished): pass "
                              "--resume to continue it (finished tasks are kept, failed "
                              "ones retried), or remove the folder to start over")
        _resolve_site_launcher(campaign, tasks)
        log(f"campaign {campaign.name}: {len(tasks)} task(s) "
            f"({len(campaign.entries)} sampling entries, scale {campaign.scale:g}), labeler "
            f"{campaign.labeler['name']}, site {campaign.site}")
        sizes = _preflight(campaign, tasks, log)
        for (cls, _), (natoms, elements) in sizes.items():
            n = sum(1 for t in tasks if t.structure_class == cls)
            log(f"  {cls}: {natoms} atoms ({' '.join(elements)}), {n} task(s)")
        _atomic_json(marker, {"name": campaign.name, "file": str(campaign.path),
                              "output": str(campaign.output), "scale": campaign.scale,
                              "tasks": [t.hash for t in tasks],
                              "started": time.strftime("%Y-%m-%dT%H:%M:%S")})
        # task folders and their state
        todo, to_merge = [], []
        for task in tasks:
            d = work / "tasks" / task.hash
            d.mkdir(exist_ok=True)
            # (re)written when runtime options (threads, launcher, walltime) changed;
            # the hash -- and so the folder -- covers everything that changes labels
            if _read_json(d / TASK) != json.loads(json.dumps(task.to_dict(), default=str)):
                _atomic_json(d / TASK, task.to_dict())
            status = task_status(d)
            if status == "merged":
                report.skipped += 1
            elif status == "done":
                to_merge.append((task, d))
            else:
                todo.append((task, d))
        retried = sum(1 for _, d in todo if (d / FAILED).is_file())
        log(f"  {report.skipped} task(s) already merged, {len(to_merge)} finished to merge, "
            f"{len(todo)} to run ({retried} failed before: retried)")

        from hpcnnp.io.dataset import Dataset

        def merge(task, d):
            with Dataset(campaign.output, "a") as ds:
                added, dup = merge_task(ds, d, campaign.name)
            report.snapshots_added += added
            report.duplicates += dup
            report.done += 1

        for task, d in to_merge:
            merge(task, d)
        submit, shutdown, serial = _parsl_executor(campaign, log) if todo else \
            ((lambda _: None), (lambda: None), True)
        retries = int(campaign.resources.get("retries") or 0)
        attempts = {}
        queue = []          # serial mode: futures in the order they are run

        def launch(task, d):
            fut = submit(d.resolve())      # workers may start in another folder
            futures[fut] = (task, d)
            pending.add(fut)
            queue.append(fut)

        try:
            futures, pending = {}, set()
            for task, d in todo:
                launch(task, d)
            reporter = Progress(f"campaign {campaign.name}", report.tasks, unit="tasks",
                                out=log, interval=progress_interval,
                                initial=report.done + report.skipped)

            def progress(force=False):
                reporter.update(report.done + report.skipped + report.failed, force=force,
                                msg=f"{report.failed} failed, {len(pending)} pending, "
                                    f"{report.snapshots_added} snapshots added")

            def handle(fut, result, error):
                task, d = futures[fut]
                if error is not None and type(error).__name__ in EXECUTOR_FAILURES:
                    # no task ran: the executor cannot start workers (wrong machine,
                    # scheduler refused the job, ...) -- stop instead of failing all tasks
                    first = str(error).strip().splitlines()
                    raise HpcnnpError(
                        f"Parsl cannot start workers on site {campaign.site}: "
                        f"{' '.join(first[:3])[:400]} (logs in "
                        f"{campaign.workdir / 'parsl'}); no task was run or marked failed")
                if error is not None:
                    # the worker died (not a labeling failure): record it here
                    failed = {"hash": task.hash, "error": f"{type(error).__name__}: {error}",
                              "reason": "worker", "attempt": 1 +
                              ((_read_json(d / FAILED) or {}).get("attempt", 0)),
                              "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
                    _atomic_json(d / FAILED, failed)
                    result = dict(failed, status="failed")
                if result.get("status") != "done" and result.get("reason") in RETRY_REASONS \
                        and attempts.get(task.hash, 0) < retries:
                    attempts[task.hash] = attempts.get(task.hash, 0) + 1
                    log(f"  retry  {task.hash} {task.structure_class} T={task.temperature:g} K"
                        f" ({result.get('reason')}: {result.get('error')}), attempt "
                        f"{attempts[task.hash]}/{retries} of this run")
                    pending.discard(fut)
                    launch(task, d)
                    return
                if result.get("status") == "done":
                    merge(task, d)
                    log(f"  done   {task.hash} {task.structure_class} T={task.temperature:g} K"
                        f" seed {task.seed}: {result.get('snapshots')} snapshots in "
                        f"{result.get('wall_time', 0):.1f} s")
                else:
                    report.failed += 1
                    report.failures[task.hash] = {"class": task.structure_class,
                                                  "temperature": task.temperature,
                                                  "seed": task.seed,
                                                  "reason": result.get("reason"),
                                                  "error": result.get("error")}
                    log(f"  FAILED {task.hash} {task.structure_class} T={task.temperature:g} K"
                        f" seed {task.seed}: {result.get('error')} (see {d / FAILED})")
                pending.discard(fut)
                progress(force=True)

            progress(force=True)
            if serial:
                while queue:
                    fut = queue.pop(0)
                    try:
                        result, error = run_task(futures[fut][1]), None
                    except Exception as exc:    # pragma: no cover - run_task catches
                        result, error = None, exc
                    handle(fut, result, error)
            while pending:
                done_set, _ = concurrent.futures.wait(
                    pending, timeout=max(1.0, progress_interval),
                    return_when=concurrent.futures.FIRST_COMPLETED)
                for fut in done_set:
                    try:
                        result, error = fut.result(), None
                    except Exception as exc:
                        result, error = None, exc
                    handle(fut, result, error)
                progress()
            reporter.close()
        finally:
            shutdown()
        report.wall_time = time.perf_counter() - t0
        _atomic_json(work / "report.json", dict(report.to_dict(),
                                                finished=time.strftime("%Y-%m-%dT%H:%M:%S")))
        log(f"campaign {campaign.name}: {report.done + report.skipped}/{report.tasks} tasks "
            f"finished ({report.skipped} from earlier runs), {report.failed} failed; "
            f"{report.snapshots_added} snapshots added ({report.duplicates} duplicates "
            f"skipped) to {campaign.output} in {format_duration(report.wall_time)}")
        if report.failed:
            log(f"failed tasks are listed in {work / 'report.json'}; re-run with --resume to "
                "retry them")
    return report
