"""The sampling campaign file (``hpcnnp sample campaign.yaml``; ``campaign:`` of a
project): structure classes x temperatures x snapshot counts.

Every key, its type, range, unit and default is a field of :class:`CampaignFile`
(and of the sections below it); :func:`hpcnnp.sampling.campaign.load_campaign`
validates a file with it and plans the tasks.  The file format is described in
:mod:`hpcnnp.sampling.campaign`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from hpcnnp.config.base import ConfigModel, KeyProblem, OpenModel
from hpcnnp.config.labeler import LabelerSection, labeler_problem
from hpcnnp.config.site import ParslBlocks
from hpcnnp.config.types import (
    Count,
    NonNegativeInt,
    PositiveFloat,
    Seed,
    Temperature,
    Timestep,
    number,
)
from hpcnnp.errors import HpcnnpError
from hpcnnp.hpc.sites import load_site
from hpcnnp.sampling.aimd import THERMOSTATS
from hpcnnp.structures.builders import (
    CLASS_PATTERN_NAMES,
    STRUCTURE_CLASSES,
    builtin_class,
    spec_problem,
)

__all__ = ["CampaignFile", "CampaignMD", "Resources", "SamplingEntry", "MD_DEFAULTS",
           "SERIAL_SITE", "entry_labeler", "check_site", "site_name"]

#: site name that runs the tasks in the driver process, without Parsl
SERIAL_SITE = "serial"


def check_site(name):
    """Problem message of a site name (a file of jobs/sites, a path, or 'serial'), or None."""
    if name == SERIAL_SITE:
        return None
    try:
        load_site(name)
    except HpcnnpError as exc:
        return str(exc)
    return None


def site_name(value):
    """A validator of a site key: ``value`` if it names a site, else ValueError."""
    problem = check_site(value)
    if problem:
        raise ValueError(problem)
    return value


class CampaignMD(ConfigModel):
    """MD settings of the sampling trajectories (:class:`hpcnnp.sampling.aimd.MDSettings`)."""

    thermostat: Literal[tuple(THERMOSTATS)] = Field(
        "langevin", description="thermostat (" + ", ".join(THERMOSTATS) + ")")
    timestep: Timestep = Field(1.0, description="MD time step (fs)")
    friction: number(gt=0, unit="1/fs") = Field(0.01, description="Langevin friction (1/fs)")
    tdamp: number(gt=0, unit="fs") = Field(100.0, description="time constant of the Bussi, "
                                 "Nosé-Hoover and Berendsen thermostats (fs)")
    equilibration: NonNegativeInt = Field(100, description="MD steps before the first "
                                          "counted step")
    interval: Count = Field(20, description="MD steps between snapshots")
    snapshots_per_task: Count = Field(10, description="snapshots of one trajectory (task)")
    walltime: number(gt=0, unit="s") | None = Field(
        None, description="soft time limit of a task (s); exceeded: state saved, task "
        "retried later from it")
    max_temperature_factor: PositiveFloat = Field(
        5.0, description="stop a trajectory whose temperature exceeds this factor x T")


#: MD defaults of a campaign (``md:`` overrides them, per sampling entry too)
MD_DEFAULTS = {name: info.default for name, info in CampaignMD.model_fields.items()}


class Resources(ParslBlocks):
    """What the Parsl blocks of the campaign ask the site for (2 workers per node by
    default)."""

    max_blocks: Count = Field(1, description="most Parsl blocks (batch jobs) at once")
    retries: NonNegativeInt = Field(0, description="retries of a task that failed for a "
                                    "transient reason (timeout, worker, crash) in one run")


class StructureSpec(OpenModel):
    """A builder of :data:`hpcnnp.structures.BUILDERS` and its parameters."""

    builder: str = Field(description="builder name (hpcnnp.structures.BUILDERS)")

    @model_validator(mode="after")
    def _check(self):
        problem = spec_problem(self.model_dump())
        if problem is not None:
            raise KeyProblem(*problem)
        return self


def _temperature_list(value):
    return [value] if isinstance(value, (int, float, str)) and not isinstance(value, bool) \
        else value


class SamplingEntry(ConfigModel):
    """One ``sampling:`` entry: a structure at some temperatures."""

    structure: str = Field(description="a name under structures: or a built-in class ("
                           + ", ".join(list(STRUCTURE_CLASSES) + list(CLASS_PATTERN_NAMES))
                           + ")")
    temperatures: list[Temperature] = Field(min_length=1, description="temperatures (K)")
    snapshots: Count = Field(description="labelled snapshots per temperature (x scale)")
    md: CampaignMD | None = Field(None, description="MD settings of this entry (on top "
                                     "of the campaign's md)")
    labeler: dict | None = Field(None, description="labeler options of this entry (on "
                                    "top of the campaign's labeler)")

    @field_validator("temperatures", mode="before")
    @classmethod
    def _one_temperature(cls, value):
        return _temperature_list(value)

    @field_validator("structure", mode="before")
    @classmethod
    def _name(cls, value):
        return str(value) if isinstance(value, (int, float)) else value


def entry_labeler(default, override):
    """Labeler of a sampling entry: the campaign's, with the entry's options on top
    (an entry naming another labeler starts from that labeler's defaults)."""
    if not override:
        return dict(default)
    if override.get("name", default["name"]) != default["name"]:
        return dict(override)
    return dict(default, **override)


class CampaignFile(ConfigModel):
    """A sampling campaign (see :mod:`hpcnnp.sampling.campaign` for the format)."""

    name: str | None = Field(None, description="campaign name (default: the file name)")
    description: str = Field("", description="free text")
    output: str | None = Field(None, description="the HDF5 data set (default NAME.h5)")
    workdir: str | None = Field(None, description="task folders, Parsl logs, report "
                                   "(default NAME.work)")
    site: str = Field("local", description="site of jobs/sites (Parsl), a site file, or "
                      "'serial' (in this process, no Parsl)")
    resources: Resources = Field(default_factory=Resources, description="Parsl resources")
    scale: PositiveFloat = Field(1.0, description="multiplies every snapshot count")
    seed: Seed = Field(0, description="seed of the first trajectory of each (structure, "
                       "temperature); the next ones use seed+1, ...")
    labeler: LabelerSection = Field(default_factory=LabelerSection,
                                    description="reference calculator: name and options")
    md: CampaignMD = Field(default_factory=CampaignMD, description="MD settings")
    structures: dict[str, StructureSpec] = Field(
        default_factory=dict, description="named structures: builder and parameters, plus "
        "repeat/natoms/rattle/class/seed")
    sampling: list[SamplingEntry] = Field(min_length=1, description="what is sampled: "
                                          "{structure, temperatures, snapshots}")

    @field_validator("structures", mode="before")
    @classmethod
    def _structure_names(cls, value):
        return {str(k): v for k, v in value.items()} if isinstance(value, dict) else value

    @field_validator("site")
    @classmethod
    def _site(cls, value, info):
        if value is not None and (info.context or {}).get("check_site", True):
            problem = check_site(value)
            if problem:
                raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _entries(self, info):
        # in a project, the project's labeler replaces the campaign's
        default = (info.context or {}).get("project_labeler") or self.labeler.as_dict()
        for i, entry in enumerate(self.sampling):
            if entry.structure not in self.structures:
                spec = builtin_class(entry.structure)
                if spec is None:
                    raise KeyProblem(("sampling", i, "structure"), (
                        f"unknown structure class {entry.structure!r}; defined under "
                        f"structures: {', '.join(self.structures) or 'none'}; built in: "
                        + ", ".join(list(STRUCTURE_CLASSES) + list(CLASS_PATTERN_NAMES))),
                        show_value=False)
                problem = spec_problem(spec)
                if problem is not None:
                    raise KeyProblem(("sampling", i, "structure"), problem[1], False)
            if entry.labeler is not None:
                problem = labeler_problem(entry_labeler(default, entry.labeler))
                if problem is not None:
                    raise KeyProblem(("sampling", i, "labeler") + problem[0], *problem[1:])
        return self
