"""The active-learning file (``hpcnnp active config.yaml``; ``active:`` of a project).

Every key with its type, range, unit, default and meaning is a field of
:class:`ActiveFile` and its sections; :func:`hpcnnp.active.config.load_config`
validates a file with it.  Relative paths are relative to the file's folder
(validation context ``base_dir``); files and folders named must exist.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar, Optional

from pydantic import (ConfigDict, Field, TypeAdapter, ValidationError, field_validator,
                      model_validator)

from hpcnnp.config.base import ConfigModel, KeyProblem, OpenModel
from hpcnnp.config.campaign import site_name
from hpcnnp.config.labeler import labeler_problem
from hpcnnp.config.site import ParslBlocks
from hpcnnp.config.types import (
    Count,
    Fraction,
    NonNegativeFloat,
    Seed,
    Temperature,
    Timestep,
    number,
)
from hpcnnp.structures.builders import spec_problem

__all__ = ["ActiveFile", "flat_spec", "Committee", "Exploration", "Selection", "ActiveLabeler",
           "Stop", "TestSet",
           "Parallel", "SOURCE_KEYS", "resolve_path"]

#: source key of an exploration.structures entry -> the keys it may have
SOURCE_KEYS = {"file": ("file", "index", "repeat", "name", "strains", "temperatures"),
               "builder": ("builder", "options", "repeat", "name", "strains",
                           "temperatures"),
               "data": ("data", "repeat", "name", "strains", "temperatures")}


def resolve_path(value, info):
    """*value* made absolute against the file's folder (validation context
    ``base_dir``; the current folder without one)."""
    base = Path((info.context or {}).get("base_dir") or Path.cwd())
    return str((base / os.path.expanduser(str(value))).resolve())


def _must_exist(info):
    return (info.context or {}).get("check_files", True)


class Committee(ConfigModel):
    """The committee of potentials trained on the same data."""

    size: number(integer=True, ge=2) = Field(4, description="number K of committee members")
    epochs: number(integer=True, ge=0) | None = Field(
        None, description="training epochs of every member (default: 'epochs' of input_nn)")
    seed: Seed = Field(12345, description="random_seed of member k in iteration n: seed + k "
                       "+ 1000 n (different initial weights and train/test splits)")
    test_fraction: Fraction | None = Field(
        None, description="test_fraction of every member (default: that of input_nn)")
    warm_start: bool = Field(False, description="retrain from the previous committee's "
                             "weights (use_old_weights_short) instead of new random weights")


def flat_spec(entry):
    """A starting structure ``{builder: NAME, options: {...}}`` (nested entries too) as
    a structure spec of :data:`hpcnnp.structures.BUILDERS` (``{builder: NAME, ...}``)."""
    options = {k: flat_spec(v) if isinstance(v, dict) and "builder" in v else v
               for k, v in (entry.get("options") or {}).items()}
    return {"builder": entry["builder"], **options}


def _source_problem(i, entry, info):
    """(key path, message) of an exploration.structures entry, or None; resolves files."""
    if not isinstance(entry, dict):
        return (i,), "must be a mapping {file: ...}, {builder: ...} or {data: ...}"
    kinds = [k for k in SOURCE_KEYS if k in entry]
    if len(kinds) != 1:
        return (i,), "needs exactly one of file, builder, data"
    unknown = sorted(set(entry) - set(SOURCE_KEYS[kinds[0]]))
    if unknown:
        return (i, unknown[0]), f"unknown key (known: {', '.join(SOURCE_KEYS[kinds[0]])})"
    rep = entry.get("repeat")
    if rep is not None and not (isinstance(rep, list) and len(rep) == 3 and all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in rep)):
        return (i, "repeat"), "must be a list of three whole numbers >= 1"
    strains = entry.get("strains")
    if strains is not None and not (isinstance(strains, list) and all(
            isinstance(e, (int, float)) and not isinstance(e, bool) and -0.2 < e < 0.2
            for e in strains)):
        return (i, "strains"), ("must be a list of isotropic linear strains between -0.2 "
                                "and 0.2 (e.g. [-0.02, 0.03])")
    if entry.get("temperatures") is not None:
        problem = _temperatures_problem(entry)
        if problem is not None:
            return (i,) + problem[0], problem[1]
    problem = _SOURCE_CHECKS[kinds[0]](entry, info)
    return None if problem is None else ((i,) + problem[0], problem[1])


_TEMPERATURES = TypeAdapter(list[Temperature])


def _temperatures_problem(entry):
    """An entry's own ``temperatures`` (one or a list, K) checked by the same type as
    exploration.temperatures and stored as a list of floats."""
    temps = entry["temperatures"]
    try:
        entry["temperatures"] = _TEMPERATURES.validate_python(
            temps if isinstance(temps, list) else [temps])
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ("temperatures",) + tuple(err["loc"][:1]) if isinstance(temps, list) \
            else ("temperatures",)
        return where, err["msg"].removeprefix("Value error, ")
    if not entry["temperatures"]:
        return ("temperatures",), "must name at least one temperature"
    return None


def _data_problem(entry, info):
    idx = [entry["data"]] if isinstance(entry["data"], int) else entry["data"]
    if not isinstance(idx, list) or not all(isinstance(k, int) and not isinstance(k, bool)
                                            for k in idx):
        return ("data",), "must be a structure index or a list of them"
    entry["data"] = idx
    return None


def _builder_problem(entry, info):
    if not isinstance(entry.get("options", {}), dict):
        return ("options",), "must be a mapping"
    problem = spec_problem(flat_spec(entry))
    if problem is None:
        return None
    return (("builder",) if problem[0] == ("builder",) else ("options",) + problem[0],
            problem[1])


def _file_problem(entry, info):
    entry["file"] = resolve_path(entry["file"], info)
    if _must_exist(info) and not Path(entry["file"]).is_file():
        return ("file",), f"file not found: {entry['file']}"
    return None


#: source kind -> check(entry, info) -> (key path below the entry, message) or None
_SOURCE_CHECKS = {"file": _file_problem, "builder": _builder_problem, "data": _data_problem}


class Exploration(ConfigModel):
    """MD with committee member 0 from the starting structures, judged by the committee."""

    structures: list[dict] = Field(
        min_length=1, description="starting structures, a list of {file: PATH, index: I} "
        "(n2p2 .data or any ASE format; index default 0), {builder: NAME, options: {...}} "
        "(a builder of hpcnnp.structures.BUILDERS) or {data: [I, ...]} (structures of "
        "'data'); each may add repeat: [n1, n2, n3], name: LABEL, strains: [e, ...] and "
        "temperatures: [T, ...] (K, instead of exploration.temperatures: e.g. a melt only "
        "where the data set has one); a builder option may itself be such an entry "
        "(interfaces, grain boundaries)")
    temperatures: list[Temperature] = Field(min_length=1, description="temperatures (K); "
                                            "every structure runs at every temperature "
                                            "unless it names its own")
    steps: Count = Field(1000, description="MD steps per run")
    stride: Count = Field(10, description="every stride-th step the whole committee "
                          "evaluates the frame")
    timestep: Timestep = Field(1.0, description="MD time step (fs)")
    friction: number(gt=0, unit="1/fs") = Field(0.01, description="Langevin friction (1/fs)")
    seed: Seed = Field(1, description="seed of the initial velocities and Langevin noise "
                       "(per run and iteration)")
    min_distance: number(ge=0, unit="Å") = Field(0.5, description="a frame with two atoms closer "
                                           "than this (Å) ends its run as 'failed'")

    @field_validator("temperatures", mode="before")
    @classmethod
    def _one(cls, value):
        return [value] if isinstance(value, (int, float)) and not isinstance(value, bool) \
            else value

    @field_validator("structures", mode="before")
    @classmethod
    def _sources(cls, value, info):
        if not isinstance(value, list):
            return value
        value = [{"file": e} if isinstance(e, str) else e for e in value]
        for i, entry in enumerate(value):
            problem = _source_problem(i, entry, info)
            if problem is not None:
                raise KeyProblem(*problem, show_value=False)
        return value


class Selection(ConfigModel):
    """Which explored frames are labelled."""

    sigma_low: number(ge=0, unit="eV/Å") = Field(0.05, description="σ_F (eV/Å) below which a frame "
                                        "counts as accurate")
    sigma_high: number(gt=0, unit="eV/Å") = Field(0.35, description="σ_F (eV/Å) from which a frame "
                                      "counts as failed (unphysical, discarded)")
    extrapolation: bool = Field(True, description="frames with extrapolation warnings "
                                "(member 0) below sigma_high are candidates even when "
                                "σ_F < sigma_low")
    max_select: Count = Field(50, description="at most this many frames labelled per "
                              "iteration")
    min_distance: NonNegativeFloat = Field(
        0.0, description="diversity filter: minimum RMS distance between the SF fingerprints "
        "of two selected frames (scaled SF units; 0 = only the max_select limit)")
    against_data: bool = Field(False, description="diversity filter: also keep min_distance "
                               "from the structures already in the data set")
    label_high: bool = Field(True, description="frames with σ_F >= sigma_high are labelled "
                             "too while their shortest interatomic distance is >= "
                             "failure_floor (exploration that fails is data)")
    failure_frames: number(integer=True, ge=0) = Field(
        2, description="stored frames before the failure of a run that are always labelled")
    failure_floor: number(ge=0, unit="Å") = Field(
        1.2, description="shortest interatomic distance (Å) below which a frame is not "
        "labelled (the reference itself becomes unreliable)")

    @model_validator(mode="after")
    def _band(self):
        if self.sigma_high <= self.sigma_low:
            raise KeyProblem(("sigma_high",), "must be larger than selection.sigma_low")
        return self


class ActiveLabeler(OpenModel):
    """The reference calculator; keys other than name, options, batch are options too
    (``{name: chgnet, threads: 1}``, as in the project file)."""

    name: str = Field(description="a labeler of hpcnnp.sampling.labelers.LABELERS (e.g. "
                      "chgnet; hdnnp: {potential: DIR}) or 'module:function' (a factory "
                      "returning an ASE calculator: code run by hpcnnp)")
    options: dict = Field(default_factory=dict, description="options of the labeler "
                          "(checked when the file is read)")
    batch: Count = Field(10, description="frames per labelling task")
    max_force: Optional[number(gt=0, unit="eV/Å")] = Field(
        None, description="labels whose largest teacher force component exceeds this (eV/Å) "
        "are rejected (listed in failures.json); null: keep all")

    @model_validator(mode="after")
    def _check(self, info):
        inline = dict(self.model_extra or {})
        self.__pydantic_extra__ = {}
        clash = sorted(set(inline) & set(self.options))
        if clash:
            raise KeyProblem((clash[0],), "given twice (inline and under options)",
                             show_value=False)
        options = {**self.options, **inline}
        if self.name == "hdnnp" and isinstance(options.get("potential"), str):
            options["potential"] = resolve_path(options["potential"], info)
            if _must_exist(info) and not Path(options["potential"]).is_dir():
                raise KeyProblem(("options", "potential") if "potential" in self.options
                                 else ("potential",),
                                 f"potential folder not found: {options['potential']}",
                                 show_value=False)
        if ":" not in self.name:
            problem = labeler_problem({"name": self.name, **options})
            if problem is not None:
                keys = problem[0]
                if keys and keys[0] in self.options:
                    keys = ("options",) + keys
                raise KeyProblem(keys, *problem[1:])
        self.options = options
        return self


class Stop(ConfigModel):
    """When the iterations stop."""

    max_iterations: Count = Field(5, description="most iterations (hpcnnp active "
                                  "--iterations overrides)")
    accurate_fraction: Fraction = Field(0.99, description="converged needs this fraction of "
                                        "the explored frames below sigma_low")
    min_iterations: Count = Field(1, description="iterations before the stop rule may "
                                  "declare convergence")
    finished_runs: bool = Field(True, description="converged needs every exploration run "
                                "to finish")
    max_warning_rate: Optional[NonNegativeFloat] = Field(
        None, description="converged needs at most this many extrapolation warnings per atom "
        "and evaluated frame (null: not checked)")


class TestSet(ConfigModel):
    """Held-out test frames drawn from the exploration."""

    per_class: number(integer=True, ge=0) = Field(
        0, description="test frames per structure class in total, drawn at random from the "
        "explored frames (never by disagreement), labelled, never used for selection or "
        "training")
    seed: Seed = Field(7, description="seed of the draw")


class Parallel(ParslBlocks):
    """Where the committee training, exploration and labelling run (workers per node:
    the site's cores per node by default)."""

    parsl: bool = Field(True, description="dispatch training, exploration and labelling as "
                        "Parsl apps (hpcnnp active --no-parsl: one after the other here)")
    site: str = Field("local", description="Parsl site (hpcnnp jobs sites)")

    _site = field_validator("site")(site_name)


def _alias_schema(schema, cls):
    """The other spellings in the JSON Schema: ``settings`` (input_nn), ``site``."""
    props = schema.setdefault("properties", {})
    if "input_nn" in props:
        props["settings"] = dict(props["input_nn"], description="alias of input_nn")
        required = schema.get("required", [])
        if "input_nn" in required:
            required.remove("input_nn")
            schema["anyOf"] = [{"required": ["input_nn"]}, {"required": ["settings"]}]
    props["site"] = {"type": "string", "description": "alias of parallel.site"}


class ActiveFile(ConfigModel):
    """An active-learning campaign (see :mod:`hpcnnp.active`)."""

    model_config = ConfigDict(json_schema_extra=_alias_schema)
    ALIASES: ClassVar[dict] = {"settings": "input_nn"}

    workdir: str | None = Field(None, description="folder of the campaign (iteration_NNN/,"
                                   " active-learning.csv, ...); default: the file's folder")
    data: str = Field(description="initial labelled structures (n2p2 input.data: energies "
                      "and forces)")
    input_nn: str = Field(description="input.nn template: elements, symmetry functions, "
                          "networks and training keywords; random_seed, test_fraction and "
                          "epochs are set per member (alias: settings)")
    committee: Committee = Field(default_factory=Committee, description="the committee")
    exploration: Exploration = Field(description="exploration MD")
    selection: Selection = Field(default_factory=Selection, description="frame selection")
    labeler: ActiveLabeler = Field(description="reference calculator")
    stop: Stop = Field(default_factory=Stop, description="stop rule")
    test: TestSet = Field(default_factory=TestSet, description="held-out test frames")
    dataset: str | None = Field(None, description="HDF5 data set (hpcnnp.io.dataset) that "
                                "receives every label with its provenance (iteration, run, "
                                "frame, selection reason, train/test)")
    parallel: Parallel = Field(default_factory=Parallel, description="dispatch (alias of "
                               "parallel.site: site)")

    @model_validator(mode="before")
    @classmethod
    def _site(cls, data):
        if isinstance(data, dict) and "site" in data:
            data = dict(data)
            parallel = data.get("parallel")
            parallel = dict(parallel) if isinstance(parallel, dict) else {}
            if "site" in parallel:
                raise KeyProblem(("site",), "given twice (as site and as parallel.site)")
            parallel["site"] = data.pop("site")
            data["parallel"] = parallel
        return data

    @field_validator("workdir", "data", "input_nn", "dataset")
    @classmethod
    def _paths(cls, value, info):
        if value is None:
            return None
        path = resolve_path(value, info)
        if info.field_name not in ("workdir", "dataset") and _must_exist(info) \
                and not Path(path).is_file():
            raise ValueError(f"file not found: {path}")
        return path
