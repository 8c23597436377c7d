"""The site file (``jobs/sites/NAME.yaml``): a machine as data.

Every key with its type, range and meaning is a field of :class:`SiteFile` and
its sections; :func:`hpcnnp.hpc.sites.load_site` validates a file with it (the
validation context ``path`` is the file, whose name must equal ``name:``) and
builds a :class:`hpcnnp.hpc.sites.Site`.  See ``jobs/README.md`` and
``docs/extending.md`` for how to add a machine.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator, model_validator

from hpcnnp.config.base import ConfigModel, KeyProblem, require_in
from hpcnnp.config.types import Count, Walltime, number
from hpcnnp.hpc.tables import PARSL_LAUNCHERS, PARSL_PROVIDERS, PLACEHOLDERS, SCHEDULERS
from hpcnnp.hpc.templates import placeholders

__all__ = ["SiteFile", "ParslBlocks", "Node", "Mpi", "Account", "Queue", "QueueBin", "Environment",
           "Parsl", "placeholder_problem"]

def placeholder_problem(text):
    """Message for an unknown ``%{name}`` in *text*, or None."""
    unknown = sorted(placeholders(text) - set(PLACEHOLDERS))
    if unknown:
        return f"unknown placeholder %{{{unknown[0]}}} (known: {', '.join(PLACEHOLDERS)})"
    return None


def _placeholders_ok(value):
    if isinstance(value, str):
        problem = placeholder_problem(value)
        if problem:
            raise ValueError(problem)
    return value


def _option_placeholders(options):
    for key, value in options.items():
        if isinstance(value, str):
            problem = placeholder_problem(value)
            if problem:
                raise KeyProblem((key,), problem, show_value=False)
    return options


class ParslBlocks(ConfigModel):
    """What each Parsl block (a batch job of workers) asks a site for; the sections of
    campaigns (``resources:``) and active learning (``parallel:``) extend it."""

    nodes: Count = Field(1, description="nodes per Parsl block")
    workers_per_node: Count | None = Field(None, description="Parsl workers per node")
    walltime: Walltime | None = Field(None, description="walltime of a block HH:MM:SS "
                                         "(default: the site's)")
    account: str | None = Field(None, description="account/project/bank to charge")
    queue: str | None = Field(None, description="queue/partition")


class Node(ConfigModel):
    """One compute node as jobs may use it."""

    cores: number(integer=True, ge=1) | str = Field(
        description="usable cores per node (after cores reserved for the system), or "
        "'auto' (this machine's count when the file is loaded)")
    gpus: number(integer=True, ge=0) = Field(0, description="GPUs per node")
    memory_gb: number(gt=0, unit="GB") | None = Field(None, description="memory per "
                                                         "node (GB)")
    max_nodes: Count | None = Field(None, description="nodes of the machine (a request "
                                       "for more is refused)")
    oversubscribe: bool = Field(False, description="allow more ranks x threads than cores")
    physical_cores: Count | None = Field(None, description="cores of a node including "
                                            "reserved ones (for --cpu-bind lists)")
    reserved_cores: list[number(integer=True, ge=0)] = Field(
        default_factory=list, description="core numbers the system keeps for itself")
    sockets: Count = Field(1, description="sockets (NUMA domains for rank placement)")

    @field_validator("cores", mode="before")
    @classmethod
    def _cores(cls, value):
        if value == "auto":
            return value
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError("must be a whole number >= 1 or 'auto'")
        return value

    @model_validator(mode="after")
    def _layout(self):
        physical = self.physical_cores
        for i, core in enumerate(self.reserved_cores):
            if physical is not None and core >= physical:
                raise KeyProblem(("reserved_cores", i), f"must be a core number "
                                 f"0..{physical - 1}")
        if physical is not None and physical % self.sockets:
            raise KeyProblem(("sockets",), f"{physical} physical cores do not split evenly "
                             f"into {self.sockets} sockets", show_value=False)
        usable = None if physical is None else physical - len(set(self.reserved_cores))
        if usable is not None and self.cores != "auto" and usable != self.cores:
            raise KeyProblem(("cores",), f"{self.cores} usable cores, but physical_cores "
                             f"{physical} minus {len(set(self.reserved_cores))} "
                             f"reserved_cores leaves {usable}", show_value=False)
        return self


class Mpi(ConfigModel):
    """How an MPI program starts on the site."""

    launcher: str = Field(description="name of the MPI launcher (srun, mpiexec, jsrun, "
                          "flux run, ...)")
    command: str = Field(description="command prefix with %{placeholders}, e.g. 'srun "
                         "--nodes=%{nodes} --ntasks=%{ranks}'")

    @field_validator("command")
    @classmethod
    def _placeholders(cls, value):
        return _placeholders_ok(value)


class Account(ConfigModel):
    """Whether jobs need an account (project, bank)."""

    required: bool = Field(False, description="jobs must name an account")
    default: str | int | None = Field(None, description="account used when none "
                                               "is given (--account, HPCNNP_ACCOUNT)")


class QueueBin(ConfigModel):
    """Jobs of min_nodes..max_nodes may run at most walltime."""

    max_nodes: Count = Field(description="largest job of this bin (nodes)")
    min_nodes: Count = Field(1, description="smallest job of this bin (nodes)")
    walltime: Walltime = Field(description="longest walltime of this bin HH:MM:SS")


class Queue(ConfigModel):
    """Queues (partitions) and their limits."""

    default: str | None = Field(None, description="queue used when none is given")
    limits: dict[str, list[QueueBin]] = Field(default_factory=dict, description="queue -> "
                                              "node-count bins with walltime limits")


class DefaultWalltime(ConfigModel):
    """Walltime of jobs that do not give one."""

    default: Walltime = Field(description="HH:MM:SS")


class Environment(ConfigModel):
    """What a job runs before the program."""

    modules: list[str] = Field(default_factory=list, description="modules to load")
    setup: list[str] = Field(default_factory=list, description="shell lines (%{venv}, ...)")

    @field_validator("modules", "setup", mode="before")
    @classmethod
    def _none(cls, value):
        return [] if value is None else value

    @field_validator("setup")
    @classmethod
    def _placeholders(cls, value):
        for i, line in enumerate(value):
            problem = placeholder_problem(line)
            if problem:
                raise KeyProblem((i,), problem, show_value=False)
        return value


class InAllocation(ConfigModel):
    """How Parsl starts workers when the driver already runs inside a job."""

    launcher: str | None = Field(None, description="Parsl launcher (default: parsl."
                                    "launcher)")
    launcher_options: dict | None = Field(None, description="its options")


class Parsl(ConfigModel):
    """The Parsl provider and launcher of the site (HighThroughputExecutor)."""

    provider: str | None = Field(description="Parsl provider (" + ", ".join(PARSL_PROVIDERS)
                                    + "), or null: only inside an allocation")
    provider_options: dict = Field(default_factory=dict, description="keywords of the "
                                   "provider (override hpcnnp's; null removes one)")
    launcher: str = Field(description="Parsl launcher (" + ", ".join(PARSL_LAUNCHERS) + ")")
    launcher_options: dict = Field(default_factory=dict, description="keywords of the "
                                   "launcher")
    executor_options: dict = Field(default_factory=dict, description="keywords of the "
                                   "HighThroughputExecutor")
    in_allocation: InAllocation | None = Field(None, description="launcher inside an "
                                                  "allocation (default: the same)")

    @model_validator(mode="before")
    @classmethod
    def _provider_given(cls, data):
        if isinstance(data, dict) and "provider" not in data:
            raise KeyProblem(("provider",), "required key is missing (null: no provider)")
        return data

    @field_validator("provider")
    @classmethod
    def _provider(cls, value):
        return value if value is None else require_in(value, PARSL_PROVIDERS, "Parsl provider")

    @field_validator("launcher")
    @classmethod
    def _launcher(cls, value):
        return require_in(value, PARSL_LAUNCHERS, "Parsl launcher")

    @field_validator("provider_options", "launcher_options", "executor_options")
    @classmethod
    def _options(cls, value, info):
        _option_placeholders(value)
        if info.field_name == "executor_options":
            for reserved in ("provider", "label"):
                if reserved in value:
                    raise KeyProblem((reserved,), "is set by hpcnnp; remove it",
                                     show_value=False)
        return value

    @model_validator(mode="after")
    def _in_allocation(self):
        alloc = self.in_allocation
        if alloc is not None:
            if alloc.launcher is not None:
                try:
                    require_in(alloc.launcher, PARSL_LAUNCHERS, "Parsl launcher")
                except ValueError as exc:
                    raise KeyProblem(("in_allocation", "launcher"), str(exc)) from None
            try:
                _option_placeholders(alloc.launcher_options or {})
            except KeyProblem as exc:
                raise KeyProblem(("in_allocation", "launcher_options") + exc.keys,
                                 exc.message, show_value=False) from None
        return self


class SiteFile(ConfigModel):
    """A computing site (see ``jobs/README.md``)."""

    name: str = Field(description="the site's name: must equal the file name (NAME.yaml)")
    description: str = Field(description="one line: machine, node type, scheduler")
    docs: str | list[str] = Field(default_factory=list, description="links to the "
                                        "machine's documentation")
    scheduler: str = Field(description="batch system: " + ", ".join(SCHEDULERS))
    node: Node = Field(description="a compute node")
    mpi: Mpi = Field(description="the MPI launcher")
    account: Account = Field(default_factory=Account, description="accounts")
    queue: Queue = Field(default_factory=Queue, description="queues and limits")
    walltime: DefaultWalltime = Field(description="default walltime")
    directives: list[str] = Field(default_factory=list, description="extra batch-script "
                                  "directives, with the scheduler's prefix (#SBATCH ...)")
    environment: Environment = Field(default_factory=Environment, description="modules and "
                                     "setup lines of jobs")
    parsl: Parsl = Field(description="Parsl provider and launcher")

    @field_validator("name")
    @classmethod
    def _file_name(cls, value, info):
        path = (info.context or {}).get("path")
        if path is not None and value != Path(path).stem:
            raise ValueError(f"{value!r} differs from the file name {Path(path).name!r}; "
                             "they must agree so that the site can be found by name")
        return value

    @field_validator("scheduler")
    @classmethod
    def _scheduler(cls, value):
        return require_in(value, SCHEDULERS, "scheduler")

    @model_validator(mode="after")
    def _directives(self):
        prefix = SCHEDULERS[self.scheduler]["directive"]
        for i, line in enumerate(self.directives):
            problem = placeholder_problem(line)
            if problem:
                raise KeyProblem(("directives", i), problem, show_value=False)
            if prefix is None or not line.startswith(prefix):
                expected = f"start with {prefix!r}" if prefix else \
                    "be empty: a local site has no batch directives"
                raise KeyProblem(("directives", i), f"{line!r} must {expected}",
                                 show_value=False)
        return self
