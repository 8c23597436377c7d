"""The MD protocol file (``hpcnnp md protocol.yaml``): structure, potential, stages.

Every key with its type, range, unit and default is a field of
:class:`ProtocolFile` and of the stage models (:data:`STAGE_MODELS`, one per
``type:``); :func:`hpcnnp.md.protocol.parse_protocol` validates a file with them
and converts durations into steps.  The format is described in
:mod:`hpcnnp.md.protocol`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from hpcnnp.config.base import ConfigModel, KeyProblem
from hpcnnp.config.types import (
    Count,
    Duration,
    Elements,
    FiniteFloat,
    Length,
    PositiveFloat,
    Temperature,
    Timestep,
    number,
)

__all__ = ["ProtocolFile", "STAGE_MODELS", "ZBL", "Trajectory", "PairOptions", "FIELDS",
           "BAROSTATS", "MIN_STYLES"]

FIELDS = ("position", "image", "velocity", "force")
BAROSTATS = ("iso", "aniso", "tri")
MIN_STYLES = ("cg", "sd", "fire", "quickmin", "hftn")
_YES = {"yes": True, "no": False, "true": True, "false": False, "on": True, "off": False}


def _yes_no(value):
    if isinstance(value, str) and value.strip().lower() in _YES:
        return _YES[value.strip().lower()]
    if not isinstance(value, bool):
        raise ValueError("must be yes or no")
    return value


class ZBL(ConfigModel):
    """The ZBL screened nuclear repulsion overlaid on the HDNNP, switched off smoothly
    between ``inner`` and ``outer``."""

    inner: Length = Field(description="start of the switching region (Å)")
    outer: Length = Field(description="end of the switching region: no ZBL beyond (Å)")

    @model_validator(mode="after")
    def _order(self):
        if self.outer <= self.inner:
            raise KeyProblem(("outer",), "must be larger than inner")
        return self


class Trajectory(ConfigModel):
    """The H5MD trajectory of the run."""

    file: str = Field("traj.h5", description="H5MD file in the run folder")
    fields: list[Literal[FIELDS]] = Field(
        ["position", "image"], description="per-atom fields stored: " + ", ".join(FIELDS)
        + " (position and image always)")
    extrapolations: str | None = Field(
        None, description="H5MD file that also gets every dumped frame following "
        "extrapolation warnings (candidates for active learning)")

    @field_validator("fields", mode="before")
    @classmethod
    def _split(cls, value):
        return value.replace(",", " ").split() if isinstance(value, str) else value


class PairOptions(ConfigModel):
    """Keywords of ``pair_style hpcnnp`` / n2p2's ``hdnnp``."""

    showew: bool | None = Field(None, description="print every extrapolation warning")
    showewsum: number(integer=True) | None = Field(
        None, description="steps between extrapolation-warning summaries (0: never)")
    maxew: number(integer=True) | None = Field(
        None, description="stop when a step has more warnings (null: never)")
    resetew: bool | None = Field(None, description="reset the warning count every step")
    cflength: PositiveFloat | None = Field(None, description="length unit conversion")
    cfenergy: PositiveFloat | None = Field(None, description="energy unit conversion")

    @field_validator("showew", "resetew", mode="before")
    @classmethod
    def _yes(cls, value):
        return value if value is None else _yes_no(value)


# ---------------------------------------------------------------------------------------
# Stages (one model per type)
# ---------------------------------------------------------------------------------------

class _MDStage(ConfigModel):
    time: Duration | None = Field(None, description="length: a number (ps) or 'N fs|ps|"
                                     "ns|steps'")
    steps: Count | None = Field(None, description="length in MD steps (instead of time)")
    velocity: Temperature | None = Field(None, description="create Gaussian velocities "
                                            "at this temperature (K) when the stage starts")

    @model_validator(mode="after")
    def _length(self):
        if (self.time is None) == (self.steps is None):
            raise KeyProblem((), "give the stage length as 'time' (or 'steps')")
        return self


class _Thermostat(_MDStage):
    tdamp: Duration | None = Field(None, description="thermostat damping time (default "
                                      "100 time steps)")
    tchain: Count = Field(3, description="length of the Nosé-Hoover chain")


class _Barostat(ConfigModel):
    P: number(unit="bar") = Field(1.0, description="pressure (bar)")
    barostat: Literal[BAROSTATS] = Field("iso", description="cell coupling: iso, aniso, tri")
    pdamp: Duration | None = Field(None, description="barostat damping time (default "
                                      "1000 time steps)")


class NVTStage(_Thermostat):
    """Nosé-Hoover thermostat at ``T``."""

    type: Literal["nvt"]
    T: Temperature = Field(description="temperature (K)")


class NPTStage(_Thermostat, _Barostat):
    """Nosé-Hoover thermostat and barostat at ``T`` and ``P``."""

    type: Literal["npt"]
    T: Temperature = Field(description="temperature (K)")


class HeatStage(_Thermostat, _Barostat):
    """Linear temperature ramp T0 -> T1 (``ensemble: npt`` also couples the cell)."""

    type: Literal["heat"]
    T0: Temperature = Field(description="start temperature (K)")
    T1: Temperature = Field(description="end temperature (K)")
    ensemble: Literal["nvt", "npt"] = Field("nvt", description="nvt or npt")

    @model_validator(mode="after")
    def _barostat_keys(self):
        if self.ensemble == "nvt":
            for key in ("P", "barostat", "pdamp"):
                if key in self.model_fields_set:
                    raise KeyProblem((key,), "only with ensemble: npt", show_value=False)
        return self


class NVEStage(_MDStage):
    """Velocity Verlet (energy conservation checks)."""

    type: Literal["nve"]


class MinimizeStage(ConfigModel):
    """Energy minimisation (LAMMPS ``minimize``); ``box`` relaxes the cell too."""

    type: Literal["minimize", "minimise"]
    etol: FiniteFloat = Field(0.0, description="energy tolerance (dimensionless)")
    ftol: number(ge=0, unit="eV/Å") = Field(1e-3, description="force tolerance (eV/Å)")
    maxiter: Count = Field(1000, description="most iterations")
    maxeval: Count | None = Field(None, description="most force evaluations (default "
                                     "10 x maxiter)")
    min_style: Literal[MIN_STYLES] = Field("cg", description="LAMMPS min_style")
    box: Literal[BAROSTATS] | None = Field(None, description="relax the cell too: iso, "
                                              "aniso or tri (fix box/relax)")
    pressure: number(unit="bar") = Field(0.0, description="target pressure of box (bar)")

    @field_validator("box", mode="before")
    @classmethod
    def _no_box(cls, value):
        return None if value is False else value


#: stage type -> model (``minimise`` is another spelling of ``minimize``)
STAGE_MODELS = {"minimize": MinimizeStage, "minimise": MinimizeStage, "heat": HeatStage,
                "nvt": NVTStage, "npt": NPTStage, "nve": NVEStage}

Stage = Annotated[MinimizeStage | HeatStage | NVTStage | NPTStage | NVEStage,
                  Field(discriminator="type")]


class ProtocolFile(ConfigModel):
    """An MD protocol (see :mod:`hpcnnp.md.protocol` for the format)."""

    structure: str = Field(description="start structure: any file ASE reads, or n2p2's "
                           "input.data (relative to the protocol file)")
    structure_format: str | None = Field(None, description="ASE format name, or 'n2p2' "
                                            "(default: from the file name)")
    structure_index: number(integer=True) = Field(-1, description="image of a multi-image "
                                                  "file")
    potential: str = Field(description="n2p2 potential folder (input.nn, scaling.data, "
                           "weights.ZZZ.data)")
    elements: Elements | None = Field(None, description="LAMMPS type order (default: the "
                                         "potential's elements)")
    output: str | None = Field(None, description="run folder (default: the protocol's "
                                  "name beside the file)")
    timestep: Timestep = Field(1.0, description="MD time step (fs)")
    seed: Count = Field(12345, description="seed of the initial velocities")
    dump_stride: Count = Field(100, description="steps between trajectory frames")
    thermo_stride: Count = Field(100, description="steps between thermo lines")
    segment: Duration = Field("10 ps", description="restart and state files after every "
                              "segment")
    trajectory: Trajectory = Field(default_factory=Trajectory, description="H5MD output")
    pair: PairOptions = Field(default_factory=PairOptions, description="pair style keywords")
    zbl: ZBL | None = Field(None, description="ZBL overlay {inner, outer} (Å); null: off")
    neighbor_skin: Length = Field(1.0, description="LAMMPS neighbour skin (Å)")
    allow_small_box: bool = Field(False, description="allow a box shorter than twice the "
                                  "cutoff (several images of an atom in one neighbourhood)")
    stages: list[Stage] = Field(min_length=1, description="stages run one after the other")

    @field_validator("structure", "potential", mode="before")
    @classmethod
    def _required(cls, value):
        if value in (None, ""):
            raise ValueError("is required")
        return value

    @field_validator("zbl", mode="before")
    @classmethod
    def _zbl_off(cls, value):
        return None if value is False else value

    @field_validator("allow_small_box", mode="before")
    @classmethod
    def _yes(cls, value):
        return _yes_no(value)

    @field_validator("trajectory", "pair", mode="before")
    @classmethod
    def _empty(cls, value):
        return {} if value is None else value

    @model_validator(mode="after")
    def _first_velocities(self):
        md = [(i, s) for i, s in enumerate(self.stages) if not isinstance(s, MinimizeStage)]
        if md and isinstance(md[0][1], NVEStage) and md[0][1].velocity is None:
            raise KeyProblem(("stages", md[0][0]), "the first MD stage is nve: give "
                             "'velocity: <K>' to create initial velocities")
        return self
