"""Computing sites as data: ``jobs/sites/NAME.yaml`` -> :class:`Site`.

A site file says what a machine is (cores and GPUs per node), how jobs reach it
(scheduler, directives, queues with their walltime limits, account), how an MPI
program starts there (``srun``, PALS ``mpiexec``, ``jsrun``, ``flux run``,
Hydra ``mpiexec``), which environment a job needs (modules, venv) and which
Parsl provider and launcher dispatch tasks to it.  Nothing machine-specific lives
in the code: a new machine is a new YAML file (see ``jobs/README.md``).

>>> site = load_site("frontier")                       # doctest: +SKIP
>>> site.mpi_command(112, threads=1)                   # doctest: +SKIP
['srun', '--nodes=2', '--ntasks=112', '--ntasks-per-node=56', ...]
>>> config = site.parsl_config(nodes=4, walltime="02:00:00", account="ABC123")  # doctest: +SKIP

Placeholders
------------
Strings in a site file may use ``%{name}`` (see :mod:`hpcnnp.hpc.templates`);
the names are :data:`PLACEHOLDERS`.  In a command line (``mpi.command``, Parsl
launcher options) a *token* whose value is unset is left out; in a list of lines
(``directives``, ``environment.setup``) the *line* is left out.

Where files are looked up
-------------------------
``load_site("NAME")`` searches the folders of ``$HPCNNP_SITE_PATH``
(``os.pathsep``-separated) and then ``jobs/sites`` of the hpcnnp source tree
(or ``$HPCNNP_JOBS_DIR/sites``); ``load_site("path/to/file.yaml")`` reads that file.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import shlex
import sys
from pathlib import Path

from hpcnnp.config.base import ConfigError, validate_document
from hpcnnp.config.site import SiteFile
from hpcnnp.config.types import parse_walltime
from hpcnnp.config.yamlfile import parse_yaml
from hpcnnp.errors import HpcnnpError
from hpcnnp.hpc.tables import (PARSL_LAUNCHERS, PARSL_PROVIDERS, PLACEHOLDERS,
                               PROVIDER_CLASSES, SCHEDULERS)
from hpcnnp.hpc.templates import placeholders, render_text, render_tokens


class SiteError(ConfigError):
    """A problem in a site file (message names the file, line and key)."""


# The tables (schedulers, Parsl providers and launchers, placeholders) live in
# hpcnnp.hpc.tables; the site file's keys in hpcnnp.config.site.

_ACCOUNT_ENV = "HPCNNP_ACCOUNT"
_QUEUE_ENV = "HPCNNP_QUEUE"


# ---------------------------------------------------------------------------
# Walltime
# ---------------------------------------------------------------------------

def format_walltime(seconds):
    """``HH:MM:SS`` of *seconds* (hours may exceed 24)."""
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours:02d}:{rest // 60:02d}:{rest % 60:02d}"


def walltime_minutes(seconds):
    """Whole minutes of *seconds*, rounded up (LSF ``-W``, Flux ``-t``)."""
    return max(1, math.ceil(seconds / 60))


def _positive_int(value, what):
    """*value* as an int >= 1 (digit strings accepted), else HpcnnpError naming *what*."""
    if isinstance(value, str) and re.fullmatch(r"\s*\+?\d+\s*", value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise HpcnnpError(f"{what} must be a whole number, got {value!r}")
    if value <= 0:
        raise HpcnnpError(f"{what} must be at least 1, got {value}")
    return value


# ---------------------------------------------------------------------------
# Where files live
# ---------------------------------------------------------------------------

def jobs_dir():
    """The ``jobs/`` folder (site files, templates): ``$HPCNNP_JOBS_DIR`` or the source tree's."""
    env = os.environ.get("HPCNNP_JOBS_DIR")
    candidates = [Path(env)] if env else []
    candidates.append(Path(__file__).resolve().parents[1] / "_jobs")   # installed copy
    candidates.append(Path(__file__).resolve().parents[2] / "jobs")   # source tree
    for path in candidates:
        if (path / "sites").is_dir():
            return path
    raise HpcnnpError("cannot find the jobs/ folder with sites/ and templates/ (looked in "
                      + ", ".join(str(p) for p in candidates)
                      + "); set HPCNNP_JOBS_DIR to the jobs/ folder of the hpcnnp sources")


def site_dirs():
    """Folders searched for ``NAME.yaml``, in order."""
    dirs = [Path(p) for p in os.environ.get("HPCNNP_SITE_PATH", "").split(os.pathsep) if p]
    return dirs + [jobs_dir() / "sites"]


def list_sites():
    """``{name: path}`` of every site file found (earlier folders win)."""
    found = {}
    for folder in site_dirs():
        if folder.is_dir():
            for path in sorted(folder.glob("*.yaml")):
                found.setdefault(path.stem, path)
    return found


# ---------------------------------------------------------------------------
# The Site
# ---------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class QueueLimit:
    """One node-count bin of a queue: jobs of min_nodes..max_nodes may run max_walltime s."""
    max_nodes: int
    max_walltime: int
    min_nodes: int = 1


@dataclasses.dataclass(frozen=True)
class ParslSpec:
    """The ``parsl:`` section of a site file (names of Parsl classes and their options)."""
    provider: str | None
    provider_options: dict
    launcher: str
    launcher_options: dict
    executor_options: dict
    in_allocation_launcher: str
    in_allocation_options: dict


@dataclasses.dataclass(frozen=True)
class Site:
    """A computing site, loaded from ``jobs/sites/NAME.yaml`` by :func:`load_site`.

    Attributes
    ----------
    name, description : str
    path : pathlib.Path
        The site file.
    scheduler : str
        Key of :data:`SCHEDULERS` (``local``, ``slurm``, ``pbs``, ``lsf``, ``flux``).
    cores_per_node, gpus_per_node : int
        Cores a job may use per node (after cores reserved for the system) and GPUs.
    mpi_launcher : str
        Name of the MPI launcher (``srun``, ``mpiexec``, ...).
    account_required : bool
        Whether jobs need an account/project/bank.
    queue_default : str or None
    queue_limits : dict
        queue -> tuple of :class:`QueueLimit`.
    default_walltime : int
        Seconds.
    directives, modules, setup : tuple of str
        Extra batch-script directives, modules to load, setup shell lines.
    parsl : ParslSpec
    """

    name: str
    description: str
    path: Path
    scheduler: str
    cores_per_node: int
    gpus_per_node: int
    memory_gb: float | None
    max_nodes: int | None
    oversubscribe: bool
    physical_cores: int | None
    reserved_cores: tuple
    sockets: int
    mpi_launcher: str
    mpi_template: str
    account_required: bool
    account_default: str | None
    queue_default: str | None
    queue_limits: dict
    default_walltime: int
    directives: tuple
    modules: tuple
    setup: tuple
    parsl: ParslSpec
    docs: tuple = ()

    # -- accounts, queues, limits -------------------------------------------------

    def resolve_account(self, account=None):
        """*account*, else ``$HPCNNP_ACCOUNT``, else the site's default.

        Raises
        ------
        HpcnnpError
            The site needs an account and none is given.
        """
        account = account or os.environ.get(_ACCOUNT_ENV) or self.account_default
        if account is None and self.account_required:
            raise HpcnnpError(
                f"site {self.name} needs an account (project/bank) to charge: pass "
                f"--account, set {_ACCOUNT_ENV}, or fill in account.default in {self.path}")
        if account is not None:
            _check_word(account, "account")
        return account

    def resolve_queue(self, queue=None):
        """*queue*, else ``$HPCNNP_QUEUE``, else the site's default (may be None)."""
        queue = queue or os.environ.get(_QUEUE_ENV) or self.queue_default
        if queue is not None:
            _check_word(queue, "queue")
        return queue

    def check_request(self, nodes, walltime, queue=None):
        """Check *nodes* and *walltime* (s) against the site's and the queue's limits.

        Raises
        ------
        HpcnnpError
            Too many nodes or too long a walltime; the message names the site file.
        """
        nodes = _positive_int(nodes, "nodes")
        if self.max_nodes is not None and nodes > self.max_nodes:
            raise HpcnnpError(f"site {self.name} has {self.max_nodes} node(s); "
                              f"{nodes} requested ({self.path}: node.max_nodes)")
        limits = self.queue_limits.get(queue)
        if not limits:
            return
        for limit in limits:
            if limit.min_nodes <= nodes <= limit.max_nodes:
                if walltime > limit.max_walltime:
                    raise HpcnnpError(
                        f"site {self.name}, queue {queue}: jobs of {nodes} node(s) may run "
                        f"at most {format_walltime(limit.max_walltime)}, "
                        f"{format_walltime(walltime)} requested "
                        f"({self.path}: queue.limits.{queue})")
                return
        spans = ", ".join(f"{lim.min_nodes}-{lim.max_nodes}" for lim in limits)
        raise HpcnnpError(f"site {self.name}, queue {queue} takes jobs of {spans} nodes, "
                          f"{nodes} requested ({self.path}: queue.limits.{queue})")

    # -- placeholders and commands ----------------------------------------------------

    def _layout(self, ranks_per_node, threads):
        threads = _positive_int(threads, "threads")
        if ranks_per_node is None:
            ranks_per_node = max(1, self.cores_per_node // threads)
        ranks_per_node = _positive_int(ranks_per_node, "ranks per node")
        if ranks_per_node * threads > self.cores_per_node and not self.oversubscribe:
            raise HpcnnpError(
                f"{ranks_per_node} ranks x {threads} threads per node need "
                f"{ranks_per_node * threads} cores; site {self.name} has "
                f"{self.cores_per_node} usable cores per node ({self.path}: node.cores)")
        return ranks_per_node, threads

    def cpu_list(self, ranks_per_node, threads):
        """Core groups ``a-b:c-d:...`` for ``--cpu-bind=list:`` (``%{cpu_list}``).

        Reserved cores are skipped; with ``node.sockets`` > 1 and a rank count that
        splits evenly, each socket gets the same number of ranks on its own cores.
        None when the site file gives no ``node.physical_cores``.
        """
        if self.physical_cores is None:
            return None
        usable = [c for c in range(self.physical_cores) if c not in self.reserved_cores]
        per_socket = self.physical_cores // self.sockets
        domains = [[c for c in usable if c // per_socket == k] for k in range(self.sockets)]
        share, rest = divmod(ranks_per_node, self.sockets)
        if rest or any(share * threads > len(d) for d in domains):
            domains, share = [usable], ranks_per_node     # no even split: fill in order
        groups = []
        for cores in domains:
            for r in range(min(share, len(cores) // threads)):
                groups.append(_core_ranges(cores[r * threads:(r + 1) * threads]))
        return ":".join(groups)

    def values(self, *, nodes=1, ranks=None, ranks_per_node=None, threads=1, walltime=None,
               account=None, queue=None, venv=None, job_name=None):
        """Placeholder values (:data:`PLACEHOLDERS`) for the given request."""
        ranks_per_node, threads = self._layout(ranks_per_node, threads)
        nodes = _positive_int(nodes, "nodes")
        seconds = self.default_walltime if walltime is None else walltime
        return {
            "nodes": nodes,
            "ranks": ranks if ranks is not None else nodes * ranks_per_node,
            "ranks_per_node": ranks_per_node,
            "threads": threads,
            "cores_per_node": self.cores_per_node,
            "gpus_per_node": self.gpus_per_node,
            "cpu_list": self.cpu_list(ranks_per_node, threads),
            "venv": default_venv() if venv is None else _check_venv(venv),
            "account": account,
            "queue": queue,
            "walltime": format_walltime(seconds),
            "walltime_minutes": walltime_minutes(seconds),
            "job_name": job_name,
        }

    def mpi_command(self, ranks, ranks_per_node=None, threads=1, *, venv=None):
        """The command prefix that starts *ranks* MPI ranks, as an argument list.

        Parameters
        ----------
        ranks : int
            Total number of MPI ranks.
        ranks_per_node : int, optional
            Default: as many as fit, ``cores_per_node // threads`` (at most *ranks*).
        threads : int
            OpenMP threads (cores) per rank.
        venv : str, optional
            Python environment prefix for ``%{venv}`` (default: this Python's).

        Returns
        -------
        list of str
            E.g. ``['srun', '--nodes=2', '--ntasks=112', ...]``; append the program.

        Raises
        ------
        HpcnnpError
            Non-positive numbers, more cores per node than the site has, or more nodes.
        """
        ranks = _positive_int(ranks, "ranks")
        rpn_given = ranks_per_node is not None
        ranks_per_node, threads = self._layout(ranks_per_node, threads)
        if not rpn_given:
            ranks_per_node = min(ranks, ranks_per_node)
            if self.oversubscribe and self.max_nodes is not None:
                ranks_per_node = max(ranks_per_node, math.ceil(ranks / self.max_nodes))
        nodes = math.ceil(ranks / ranks_per_node)
        if self.max_nodes is not None and nodes > self.max_nodes:
            raise HpcnnpError(
                f"{ranks} ranks at {ranks_per_node} per node need {nodes} nodes; site "
                f"{self.name} has {self.max_nodes} ({self.path}: node.max_nodes)")
        values = self.values(nodes=nodes, ranks=ranks, ranks_per_node=ranks_per_node,
                             threads=threads, venv=venv)
        return render_tokens(self.mpi_template, values, source=self.path,
                             where="mpi.command: ")

    def environment_lines(self, values):
        """``module load`` lines and setup lines of a job, placeholders filled."""
        lines = [f"module load {m}" for m in self.modules]
        text = "\n".join(self.setup)
        if text:
            lines += render_text(text, values, source=str(self.path)).splitlines()
        return lines

    # -- Parsl -------------------------------------------------------------------------

    def parsl_config(self, nodes=1, walltime=None, workers_per_node=None, run_dir="runinfo",
                     *, account=None, queue=None, max_blocks=1, inside_allocation=False,
                     venv=None, label=None, **config_options):
        """A :class:`parsl.config.Config` with one HighThroughputExecutor on this site.

        Parameters
        ----------
        nodes : int
            Nodes per block (per batch job Parsl submits, or of the allocation).
        walltime : str, optional
            ``HH:MM:SS`` of each block (default: the site's default walltime).
        workers_per_node : int, optional
            Parsl workers per node (default: Parsl's choice, one per core).
        run_dir : str or path
            Parsl's run directory (logs, submit scripts).
        account, queue : str, optional
            As for :meth:`resolve_account` / :meth:`resolve_queue`.
        max_blocks : int
            Most blocks (batch jobs) Parsl may hold at once.
        inside_allocation : bool
            True when the driver runs inside a batch job: workers start on the
            allocation's nodes with the site's launcher and a LocalProvider
            (no new batch jobs).
        venv : str, optional
            Python environment prefix on the workers (default: this Python's).
        label : str, optional
            Executor label (default: the site name).
        **config_options
            Further keywords of :class:`parsl.config.Config` (``retries``, ...).

        Raises
        ------
        HpcnnpError
            Parsl is missing, the site has no Parsl provider for this mode, or a
            site option is not accepted by Parsl (the message names the key).
        """
        try:     # Parsl is an optional dependency (the hpc extra)
            from parsl.config import Config
            from parsl.executors import HighThroughputExecutor
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise HpcnnpError(f"Parsl is not installed ({exc}); pip install parsl") from None

        nodes = _positive_int(nodes, "nodes")
        seconds = self.default_walltime if walltime is None else parse_walltime(walltime)
        local = inside_allocation or self.scheduler == "local"
        spec = self.parsl
        if not local and spec.provider is None:
            raise HpcnnpError(
                f"site {self.name}: Parsl has no provider for {self.scheduler}; run the "
                "Parsl driver inside an allocation and use inside_allocation=True "
                f"({self.path}: parsl.provider)")
        if local:   # no batch job to charge or queue: only the node count is checked
            account = account or os.environ.get(_ACCOUNT_ENV) or self.account_default
            queue = self.resolve_queue(queue)
            self.check_request(nodes, seconds, None)
        else:
            account = self.resolve_account(account)
            queue = self.resolve_queue(queue)
            self.check_request(nodes, seconds, queue)
        values = self.values(nodes=nodes, walltime=seconds, account=account, queue=queue,
                             venv=venv)
        worker_init = "\n".join(self.environment_lines(values))

        provider = self._parsl_provider(local, values, {
            "nodes": nodes, "walltime": format_walltime(seconds), "account": account,
            "queue": queue, "cores": self.cores_per_node, "worker_init": worker_init},
            max_blocks)
        executor_opts = dict(spec.executor_options)
        if workers_per_node is not None:
            executor_opts["max_workers_per_node"] = _positive_int(workers_per_node,
                                                                  "workers per node")
        # The interchange runs beside this Python; find it even if its bin/ is not on PATH.
        interchange = Path(sys.executable).parent / "interchange.py"
        if interchange.is_file():
            executor_opts.setdefault("interchange_launch_cmd", [str(interchange)])
        executor = self._construct(HighThroughputExecutor,
                                   dict(executor_opts, label=label or self.name,
                                        provider=provider), "parsl.executor_options")
        try:
            return Config(executors=[executor], run_dir=str(run_dir), **config_options)
        except TypeError as exc:
            raise HpcnnpError(f"parsl_config: {exc}") from None

    def _parsl_provider(self, local, values, generic, max_blocks):
        """The Parsl provider (with its launcher) of :meth:`parsl_config`: the site's,
        or a LocalProvider with the in-allocation launcher inside a batch job."""
        import parsl.launchers      # optional dependency, checked by parsl_config

        spec = self.parsl
        if local and self.scheduler != "local":
            provider_name = "LocalProvider"
            provider_opts, launcher_name, launcher_opts = {}, spec.in_allocation_launcher, \
                spec.in_allocation_options
            where_launcher = "parsl.in_allocation"
        else:
            provider_name = spec.provider
            provider_opts = self._parsl_options(spec.provider_options, values,
                                                "parsl.provider_options", lines=True)
            launcher_name, launcher_opts = spec.launcher, spec.launcher_options
            where_launcher = "parsl"
        launcher_opts = self._parsl_options(launcher_opts, values,
                                            f"{where_launcher}.launcher_options", lines=False)
        kwargs = {kw: generic[key] for key, kw in PARSL_PROVIDERS[provider_name].items()
                  if generic[key] is not None}
        kwargs.update(provider_opts)
        kwargs = {k: v for k, v in kwargs.items() if v is not None}
        kwargs.setdefault("init_blocks", 1)
        kwargs.setdefault("min_blocks", 0)
        kwargs.setdefault("max_blocks", _positive_int(max_blocks, "max_blocks"))

        launcher = self._construct(getattr(parsl.launchers, launcher_name), launcher_opts,
                                   f"{where_launcher}.launcher_options")
        provider = self._construct(_provider_class(provider_name),
                                   dict(kwargs, launcher=launcher), "parsl.provider_options")
        return provider

    def _parsl_options(self, options, values, where, lines):
        """Fill placeholders in string options: provider options are script lines
        (a line with an unset value is dropped), launcher options command-line
        fragments (a token with an unset value is dropped)."""
        out = {}
        for key, value in options.items():
            if isinstance(value, str) and placeholders(value):
                if lines:
                    value = render_text(value, values, source=str(self.path)).strip("\n")
                else:
                    value = shlex.join(render_tokens(value, values, source=self.path,
                                                     where=f"{where}.{key}: "))
            out[key] = value
        return out

    def _construct(self, cls, kwargs, where):
        try:
            return cls(**kwargs)
        except TypeError as exc:
            raise SiteError(self.path, None,
                            f"{where}: {cls.__name__} does not accept these options: {exc}"
                            ) from None

    # -- description ---------------------------------------------------------------

    def summary(self):
        """One-line facts for ``hpcnnp jobs sites``."""
        return {"name": self.name, "scheduler": self.scheduler,
                "launcher": self.mpi_launcher, "cores": self.cores_per_node,
                "gpus": self.gpus_per_node, "queue": self.queue_default or "-",
                "account": "required" if self.account_required else "optional",
                "parsl": f"{self.parsl.provider or 'LocalProvider'}+{self.parsl.launcher}",
                "path": str(self.path)}


def _provider_class(name):
    """The class of a Parsl provider named in a site file (Parsl's, or hpcnnp's own
    such as :class:`hpcnnp.hpc.flux.FluxProvider`)."""
    import importlib

    import parsl.providers

    if name in PROVIDER_CLASSES:
        module, _, attr = PROVIDER_CLASSES[name].partition(":")
        return getattr(importlib.import_module(module), attr)
    return getattr(parsl.providers, name)


def _core_ranges(cores):
    """``[1, 2, 3, 5]`` -> ``'1-3,5'``."""
    parts, start = [], cores[0]
    for prev, cur in zip(cores, cores[1:] + [None]):
        if cur != prev + 1 if cur is not None else True:
            parts.append(str(start) if start == prev else f"{start}-{prev}")
            start = cur
    return ",".join(parts)


def default_venv():
    """The Python environment prefix written into jobs: ``$HPCNNP_VENV`` or ``sys.prefix``."""
    return _check_venv(os.environ.get("HPCNNP_VENV") or sys.prefix)


def _check_venv(path):
    path = str(path)
    if shlex.quote(path) != path:
        raise HpcnnpError(f"the Python environment path {path!r} contains spaces or shell "
                          "special characters; use a plain path (--venv / HPCNNP_VENV)")
    return path


def _check_word(value, what):
    if not re.fullmatch(r"[A-Za-z0-9_.:@+-]+", str(value)):
        raise HpcnnpError(f"{what} {value!r} may contain only letters, digits and _ . : @ + -")


# ---------------------------------------------------------------------------
# Loading and validation
# ---------------------------------------------------------------------------

def _site_from_model(m, path):
    """The :class:`Site` of a validated site file."""
    docs = (m.docs,) if isinstance(m.docs, str) else tuple(m.docs)
    p = m.parsl
    alloc = p.in_allocation
    alloc_launcher = alloc.launcher if alloc is not None and alloc.launcher else p.launcher
    alloc_options = dict(alloc.launcher_options or {}) if alloc is not None else \
        dict(p.launcher_options)
    parsl = ParslSpec(provider=p.provider, provider_options=dict(p.provider_options),
                      launcher=p.launcher, launcher_options=dict(p.launcher_options),
                      executor_options=dict(p.executor_options),
                      in_allocation_launcher=alloc_launcher, in_allocation_options=alloc_options)
    node = m.node
    limits = {str(queue): tuple(QueueLimit(max_nodes=b.max_nodes, min_nodes=b.min_nodes,
                                           max_walltime=parse_walltime(b.walltime))
                                for b in bins)
              for queue, bins in m.queue.limits.items()}
    return Site(name=m.name, description=m.description, path=path, scheduler=m.scheduler,
                cores_per_node=os.cpu_count() or 1 if node.cores == "auto" else node.cores,
                gpus_per_node=node.gpus, memory_gb=node.memory_gb, max_nodes=node.max_nodes,
                oversubscribe=node.oversubscribe, physical_cores=node.physical_cores,
                sockets=node.sockets, reserved_cores=tuple(sorted(set(node.reserved_cores))),
                mpi_launcher=m.mpi.launcher, mpi_template=m.mpi.command,
                account_required=m.account.required,
                account_default=None if m.account.default is None else str(m.account.default),
                queue_default=m.queue.default, queue_limits=limits,
                default_walltime=parse_walltime(m.walltime.default),
                directives=tuple(m.directives), modules=tuple(m.environment.modules),
                setup=tuple(m.environment.setup), parsl=parsl, docs=docs)


def _parse_site(path, text):
    doc = parse_yaml(text, path, error=SiteError)
    if doc.data is not None and not isinstance(doc.data, dict):
        raise SiteError(path, None, "a site file must be a YAML mapping (key: value lines)")
    model = validate_document(SiteFile, doc, {"path": path}, error_class=SiteError)
    return _site_from_model(model, path)


def load_site(name_or_path):
    """Load a site by name (``frontier``) or from a YAML file path.

    Raises
    ------
    HpcnnpError
        Unknown site name (the message lists the known sites).
    SiteError
        A missing or invalid key; the message names the file, line and key.
    """
    if isinstance(name_or_path, Site):
        return name_or_path
    text = str(name_or_path)
    looks_like_path = (isinstance(name_or_path, Path) or os.sep in text
                       or text.endswith((".yaml", ".yml")))
    if looks_like_path:
        path = Path(text).expanduser()
        if not path.is_file():
            raise HpcnnpError(f"site file {path} does not exist")
    else:
        known = list_sites()
        if text not in known:
            raise HpcnnpError(
                f"unknown site {text!r}; known sites: {', '.join(sorted(known)) or 'none'} "
                f"(site files in {', '.join(str(d) for d in site_dirs())}); or give the "
                "path of a site file")
        path = known[text]
    try:
        content = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SiteError(path, None, f"not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise SiteError(path, None, f"cannot read: {exc.strerror}") from None
    return _parse_site(path.resolve(), content)


__all__ = ["Site", "SiteError", "QueueLimit", "ParslSpec", "load_site", "list_sites",
           "site_dirs", "jobs_dir", "parse_walltime", "format_walltime", "walltime_minutes",
           "default_venv", "SCHEDULERS", "PARSL_PROVIDERS", "PARSL_LAUNCHERS", "PLACEHOLDERS"]
