"""Running hpcnnp on clusters: site definitions, batch-job scripts, Parsl configurations.

* :func:`load_site` reads ``jobs/sites/NAME.yaml`` into a :class:`Site`
  (cores/GPUs per node, scheduler, queues and walltime limits, MPI launcher,
  environment, Parsl provider); :meth:`Site.mpi_command` and
  :meth:`Site.parsl_config` turn it into an MPI command line and a
  :class:`parsl.config.Config` (Parsl is imported only then).
* :func:`render_jobs` writes batch scripts from ``jobs/templates``: a chain of
  MD segment jobs linked by scheduler dependencies, or one job for any hpcnnp
  stage command.  ``hpcnnp jobs render`` is its command-line front end.
* :mod:`.tables` holds the schedulers, Parsl providers and launchers, and
  :mod:`.flux` hpcnnp's Parsl provider for Flux.
"""

import importlib

__all__ = ["Site", "SiteError", "load_site", "list_sites", "render_jobs", "segment_bounds",
           "parse_walltime", "format_walltime", "SCHEDULERS", "PARSL_PROVIDERS",
           "PARSL_LAUNCHERS"]

#: public name -> submodule; imported on first use, so that the site-file model
#: (hpcnnp.config.site) can import hpcnnp.hpc.tables without importing sites.py
_WHERE = {"render_jobs": "render", "segment_bounds": "render", "SCHEDULERS": "tables",
          "PARSL_PROVIDERS": "tables", "PARSL_LAUNCHERS": "tables"}


def __getattr__(name):
    if name not in __all__:
        raise AttributeError(f"module 'hpcnnp.hpc' has no attribute {name!r}")
    module = importlib.import_module(f"hpcnnp.hpc.{_WHERE.get(name, 'sites')}")
    return getattr(module, name)
