"""Running hpcnnp on clusters: site definitions, batch-job scripts, Parsl configurations.

* :func:`load_site` reads ``jobs/sites/NAME.yaml`` into a :class:`Site`
  (cores/GPUs per node, scheduler, queues and walltime limits, MPI launcher,
  environment, Parsl provider); :meth:`Site.mpi_command` and
  :meth:`Site.parsl_config` turn it into an MPI command line and a
  :class:`parsl.config.Config` (Parsl is imported only then).
* :func:`render_jobs` writes batch scripts from ``jobs/templates``: a chain of
  MD segment jobs linked by scheduler dependencies, or one job for any hpcnnp
  stage command.  ``hpcnnp jobs render`` is its command-line front end.
"""

from hpcnnp.hpc.render import render_jobs, segment_bounds
from hpcnnp.hpc.sites import (PARSL_LAUNCHERS, PARSL_PROVIDERS, SCHEDULERS, Site, SiteError,
                              format_walltime, list_sites, load_site, parse_walltime)

__all__ = ["Site", "SiteError", "load_site", "list_sites", "render_jobs", "segment_bounds",
           "parse_walltime", "format_walltime", "SCHEDULERS", "PARSL_PROVIDERS",
           "PARSL_LAUNCHERS"]
