"""The project file of the main job (``hpcnnp run project.yaml``).

One YAML file describes the whole pipeline; every key with its type, range, unit,
default and meaning is a field of :class:`ProjectFile` and of the models it
embeds: the sampling campaign (:class:`hpcnnp.config.campaign.CampaignFile`),
active learning (:class:`hpcnnp.config.active.ActiveFile`), the production MD
(whose protocol is checked by :mod:`hpcnnp.config.protocol`) and the n2p2
training keywords (:mod:`hpcnnp.config.training`).  ``hpcnnp run --check``
validates every nested key with this model -- the code the stages use -- and
names file, line and full key path of each problem, e.g.::

    project.yaml:37: production.interface.temperature: must be > 0 K (got -1500)

Adding a key is one line in the model it belongs to (``name: type = Field(default,
description=...)``); the JSON Schema (``docs/schema/project.schema.json``) and
``hpcnnp config keys project`` follow from it.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import ConfigDict, Field, WithJsonSchema, field_validator, model_validator

from hpcnnp.config.active import ActiveFile, ActiveLabeler, Exploration, flat_spec
from hpcnnp.config.base import ConfigModel, KeyProblem
from hpcnnp.config.campaign import CampaignFile, site_name
from hpcnnp.config.labeler import LabelerSection, as_labeler_dict, labeler_problem
from hpcnnp.config.protocol import ZBL
from hpcnnp.config.training import TRAINING_SCHEMA, check_training, input_nn_keywords
from hpcnnp.config.types import (
    Count,
    Duration,
    Element,
    Elements,
    NonNegativeFloat,
    PositiveFloat,
    Seed,
    Temperature,
    Timestep,
    number,
    parse_duration,
)
from hpcnnp.config.yamlfile import YamlDocument
from hpcnnp.descriptors.sfgen import PRESETS
from hpcnnp.errors import InputFileError
from hpcnnp.io.n2p2 import Settings
from hpcnnp.md.protocol import protocol_from_document
from hpcnnp.structures.builders import builtin_class, structure_elements
from hpcnnp.structures.grain_boundary import SIGMA_TILTS
from hpcnnp.structures.production import HOST_ELEMENTS
from hpcnnp.validation.runner import PROPERTY_NAMES

__all__ = ["ProjectFile", "ProjectCampaign", "ProjectActive", "Network", "Descriptors",
           "Validation", "Production", "InterfaceMD", "GrainBoundaryMD", "Dopant",
           "Analysis", "DEFAULT_ELEMENTS"]

DEFAULT_ELEMENTS = ["Li", "La", "Zr", "O", "Co"]


#: campaign keys that the project sets itself
_SET_BY_PROJECT = (("labeler", "labeler"), ("output", "workdir"), ("workdir", "workdir"))


def _without_project_keys(schema, cls):
    for key, _ in _SET_BY_PROJECT:
        schema.get("properties", {}).pop(key, None)


class ProjectCampaign(CampaignFile):
    """The sampling campaign of the project (format of ``hpcnnp sample``); its data
    set, work folder and labeler are the project's, its scale is multiplied by the
    project's ``scale`` and its site and seed default to the project's."""

    model_config = ConfigDict(json_schema_extra=_without_project_keys)

    site: str | None = Field(None, description="site of the sampling (default: the "
                                "project's site)")
    seed: Seed | None = Field(None, description="seed of the first trajectories "
                                 "(default: the project's seed)")

    @model_validator(mode="before")
    @classmethod
    def _set_by_project(cls, data):
        if isinstance(data, dict):
            for key, by in _SET_BY_PROJECT:
                if key in data:
                    raise KeyProblem((key,), f"is set by the project (top-level {by}:); "
                                     "remove it here", show_value=False)
        return data


class ProjectActive(ActiveFile):
    """Active learning in the project (format of ``hpcnnp active``); data, input.nn,
    labeler and site are the project's."""

    data: str | None = Field(None, description="initial data (default: the project's "
                                "sampled data set)")
    input_nn: str | None = Field(None, description="input.nn template (default: the "
                                    "project's potential set-up)")
    labeler: ActiveLabeler | None = Field(None, description="reference calculator "
                                             "(default: the project's labeler)")
    exploration: Exploration = Field(description="exploration MD (required for the "
                                     "active-learning stage)")
    iterations: Count = Field(1, description="active-learning iterations the main job runs")


class Network(ConfigModel):
    """The atomic neural networks (the same for every element)."""

    hidden: list[Count] = Field([20, 20], min_length=1, description="nodes of each hidden "
                                "layer")
    activation: str = Field("t t l", description="n2p2 activation letter of each hidden "
                            "layer and of the output (t tanh, l linear, s logistic, p "
                            "softplus, r ReLU, g Gaussian, c cos, S sin, e exp, h harmonic)")

    @model_validator(mode="after")
    def _activations(self):
        letters = self.activation.split()
        if len(letters) != len(self.hidden) + 1:
            raise KeyProblem(("activation",), "needs one letter per hidden layer plus one "
                             "for the output (e.g. 't t l')")
        bad = [a for a in letters if len(a) != 1 or a not in "ltsprgcSeh"]
        if bad:
            raise KeyProblem(("activation",), f"unknown activation {bad[0]!r} (n2p2's: "
                             "l t s p r g c S e h)")
        return self


class Descriptors(ConfigModel):
    """The symmetry-function set."""

    preset: Literal[tuple(PRESETS)] = Field("llzo-lco", description="SF set of hpcnnp "
                                            "sfgen: " + ", ".join(PRESETS))
    prune_range: NonNegativeFloat = Field(1e-4, description="SFs whose range over the data "
                                          "set is below this are removed (n2p2's "
                                          "nnp-prune range; 0: keep all)")
    prune_tail: NonNegativeFloat = Field(10.0, description="rare-event SFs, whose largest "
                                         "value lies more than this many standard "
                                         "deviations above their mean on the seed data "
                                         "((max - mean)/sigma; ~1 % of the atoms leave "
                                         "the baseline), are removed (0: keep all)")


class TestSet(ConfigModel):
    """The held-out test set: never used for selection or training."""

    fraction: number(ge=0, le=0.5) = Field(0.15, description="fraction of each structure "
                                           "class of the data set held out for testing")
    minimum: number(integer=True, ge=0) = Field(2, description="at least this many test "
                                                "structures per class (one always stays "
                                                "for training)")


class Validation(ConfigModel):
    """What ``hpcnnp validate`` checks after training."""

    properties: list[Literal[PROPERTY_NAMES]] = Field(
        ["errors"], description="properties of hpcnnp validate: " + ", ".join(PROPERTY_NAMES))
    reference_labeler: str | None = Field(None, description="labeler of the reference "
                                             "MD for rdf/vdos/diffusion")

    @field_validator("reference_labeler")
    @classmethod
    def _labeler(cls, value):
        problem = None if value is None or ":" in value else labeler_problem({"name": value})
        if problem:
            raise ValueError(problem[1])
        return value


class ProductionMD(ConfigModel):
    """Production MD of one cell: minimise, heat from 300 K, then NVT."""

    natoms: Count = Field(900, description="approximate size of the cell (atoms)")
    temperature: Temperature = Field(1500, description="temperature of the run (K)")
    time: Duration = Field("2 ps", description="NVT time at the temperature")
    heat_time: Duration = Field("1 ps", description="heating time 300 K -> temperature")
    segment: Duration = Field("1 ps", description="restart files after every segment")
    timestep: Timestep = Field(1.0, description="MD time step (fs)")
    dump_stride: Count = Field(50, description="steps between trajectory frames")
    minimize_steps: Count = Field(200, description="most minimisation iterations")
    zbl: ZBL | None = Field(None, description="ZBL overlay {inner, outer} (Å); null: the "
                               "HDNNP alone")

    @model_validator(mode="after")
    def _steps(self):
        for key in ("time", "heat_time", "segment"):
            if parse_duration(getattr(self, key), self.timestep, key) < 1:
                raise KeyProblem((key,), f"must be at least one time step "
                                 f"({self.timestep:g} fs)")
        return self

    def protocol(self, structure, potential, seed):
        """The ``hpcnnp md`` protocol of this run (a dict, the protocol file's format)."""
        return {
            "structure": str(structure),
            "potential": str(potential),
            "output": "run",
            "timestep": self.timestep,
            "seed": seed,
            "dump_stride": self.dump_stride,
            "thermo_stride": self.dump_stride,
            "segment": self.segment,
            "trajectory": {"file": "traj.h5md", "fields": ["position", "image", "velocity"],
                           "extrapolations": "extrapolations.h5md"},
            "pair": {"showewsum": self.dump_stride},
            "zbl": None if self.zbl is None else self.zbl.model_dump(),
            "stages": [
                {"type": "minimize", "ftol": 1.0e-2, "maxiter": self.minimize_steps},
                {"type": "heat", "T0": 300, "T1": self.temperature, "time": self.heat_time},
                {"type": "nvt", "T": self.temperature, "time": self.time},
            ],
        }


class InterfaceMD(ProductionMD):
    """Production MD of an LLZO(001)|LCO(104) interface cell."""

    BUILDER: ClassVar[str] = "llzo_lco_interface"


class Dopant(ConfigModel):
    """Substitutional dopants placed at random (seeded) in the cell."""

    element: Element = Field("Co", description="dopant element (one of the potential's)")
    site: Element = Field("La", description="host element it replaces")
    count: Count = Field(1, description="number of host atoms replaced")


class GrainBoundaryMD(ProductionMD):
    """Production MD of a symmetric Σ-tilt grain boundary of cubic LLZO."""

    BUILDER: ClassVar[str] = "llzo_tilt_gb"

    natoms: Count = Field(700, description="approximate size of the bicrystal (atoms)")
    sigma: Literal[tuple(SIGMA_TILTS)] = Field(13, description="Σ of the boundary: "
                                               + ", ".join(map(str, SIGMA_TILTS)))
    dopant: Dopant | None = Field(None, description="dopants in the bicrystal "
                                     "(e.g. {element: Co, site: La, count: 8})")

    @model_validator(mode="after")
    def _host(self):
        host = HOST_ELEMENTS[self.BUILDER]
        if self.dopant is not None and self.dopant.site not in host:
            raise KeyProblem(("dopant", "site"), f"{self.dopant.site!r} is not an element "
                             f"of the grain boundary's cell (cubic LLZO: {', '.join(host)})",
                             show_value=False)
        return self


class Production(ConfigModel):
    """The production MD runs of the main job (LAMMPS with the hpcnnp plugin)."""

    interface: InterfaceMD = Field(default_factory=InterfaceMD, description="the interface")
    gb: GrainBoundaryMD = Field(default_factory=GrainBoundaryMD, description="the grain "
                                "boundary")
    feedback_frames: number(integer=True, ge=0) = Field(
        4, description="frames of each run that follow extrapolation warnings labelled by "
        "the teacher and added to the data set (stage feedback; 0: none)")


class Analysis(ConfigModel):
    """Trajectory analyses of the production runs."""

    segregation: Element | None = Field("Co", description="element whose segregation "
                                           "profile is measured (null: none)")
    li_density: bool = Field(True, description="Li probability density (cube files)")


class ProjectFile(ConfigModel):
    """The main job (see :mod:`hpcnnp.workflow`)."""

    name: str = Field(description="project name (report title)")
    workdir: str = Field("run", description="folder for every stage's files (relative to the "
                         "project file)")
    site: str = Field("local", description="site of jobs/sites (Parsl executor and MPI "
                      "launcher), or a site file")
    ranks: Count | None = Field(None, description="MPI ranks for training/MD (default: "
                                   "the cores of one node)")
    scale: PositiveFloat = Field(1.0, description="multiplies the snapshot counts of the "
                                 "campaign")
    seed: Seed = Field(12345, description="seed of every random choice")
    elements: Elements = Field(DEFAULT_ELEMENTS, description="elements of the potential")
    labeler: LabelerSection = Field(description="reference calculator: {name: chgnet|xtb|"
                                    "cp2k|vasp|espresso|..., ...options}")
    campaign: ProjectCampaign = Field(description="sampling campaign (hpcnnp sample "
                                      "format: structures, temperatures, snapshots)")
    descriptors: Descriptors = Field(default_factory=Descriptors, description="SF set")
    network: Network = Field(default_factory=Network, description="atomic networks")
    training: Annotated[dict, WithJsonSchema(TRAINING_SCHEMA)] = Field(
        default_factory=dict, description="n2p2 training keywords of "
                           "input.nn (e.g. epochs: 8, force_weight: 1.0); defaults: "
                           "hpcnnp.config.training.TRAINING_DEFAULTS")
    test: TestSet = Field(default_factory=TestSet, description="held-out test set of "
                          "every structure class")
    validation: Validation = Field(default_factory=Validation, description="hpcnnp validate "
                                   "options")
    active: ProjectActive | None = Field(None, description="active learning (hpcnnp "
                                            "active format + iterations)")
    production: Production = Field(default_factory=Production, description="MD of the "
                                   "interface and the grain boundary")
    analysis: Analysis = Field(default_factory=Analysis, description="trajectory analyses")

    @model_validator(mode="before")
    @classmethod
    def _share_labeler(cls, data, info):
        # the campaign's entries are checked against the project's labeler
        if isinstance(data, dict) and info.context is not None:
            info.context["project_labeler"] = as_labeler_dict(data.get("labeler"))
        return data

    _site = field_validator("site")(site_name)

    @model_validator(mode="after")
    def _together(self):
        have = set(self.elements)
        cells = {"interface": self.production.interface, "gb": self.production.gb}
        for name, md in cells.items():
            missing = sorted(set(HOST_ELEMENTS[md.BUILDER]) - have)
            if missing:
                raise KeyProblem(("elements",), f"the production cell {name} contains "
                                 f"{', '.join(missing)}, which the potential lacks")
        self._sampled_elements(have)
        if self.analysis.segregation is not None and self.analysis.segregation not in have:
            raise KeyProblem(("analysis", "segregation"), f"{self.analysis.segregation!r} is "
                             f"not an element of the potential ({', '.join(self.elements)})",
                             show_value=False)
        dopant = self.production.gb.dopant
        if dopant is not None and dopant.element not in have:
            raise KeyProblem(("production", "gb", "dopant", "element"), f"{dopant.element!r}"
                             f" is not an element of the potential ({', '.join(self.elements)})",
                             show_value=False)
        try:
            check_training(self.training, self.elements, self.network.hidden,
                           self.network.activation, self.seed)
        except KeyProblem as exc:
            raise KeyProblem(("training",) + exc.keys, exc.message, exc.show_value) from None
        for name, md in cells.items():       # the protocol hpcnnp md will read
            doc = YamlDocument(path=f"production.{name}", text="",
                               data=md.protocol("structure.extxyz", "potential", self.seed))
            try:
                protocol_from_document(doc)
            except InputFileError as exc:
                raise KeyProblem(("production", name), f"hpcnnp md would refuse its "
                                 f"protocol: {exc.message}", show_value=False) from None
        return self

    def _sampled_elements(self, have):
        """Every structure the campaign samples and active learning explores must be
        made of the potential's elements (known without building it)."""
        camp = self.campaign
        for i, entry in enumerate(camp.sampling):
            named = camp.structures.get(entry.structure)
            spec = named.model_dump() if named is not None else builtin_class(entry.structure)
            extra = sorted((structure_elements(spec) or set()) - have)
            if extra:
                raise KeyProblem(("campaign", "sampling", i, "structure"),
                                 f"{entry.structure!r} contains {', '.join(extra)}, which the "
                                 f"potential lacks (elements: {', '.join(self.elements)})",
                                 show_value=False)
        structures = self.active.exploration.structures if self.active is not None else []
        for i, entry in enumerate(structures):
            if "builder" in entry:
                extra = sorted((structure_elements(flat_spec(entry)) or set()) - have)
                if extra:
                    raise KeyProblem(("active", "exploration", "structures", i),
                                     f"contains {', '.join(extra)}, which the potential "
                                     f"lacks (elements: {', '.join(self.elements)})",
                                     show_value=False)

    def input_nn_keywords(self):
        """``[(keyword, text)]`` of the input.nn the main job writes before the SFs."""
        return input_nn_keywords(self.elements, self.network.hidden, self.network.activation,
                                 self.training, self.seed)

    def input_nn_settings(self):
        """Those keywords as an n2p2 :class:`~hpcnnp.io.n2p2.Settings`."""
        text = "\n".join(f"{k} {v}".rstrip() for k, v in self.input_nn_keywords())
        return Settings.from_text(text + "\n", "input.nn")
