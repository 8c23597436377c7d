"""The tables of the computing-site layer (extend here, nowhere else): schedulers,
Parsl providers and launchers, and the placeholders of site files."""

from __future__ import annotations

__all__ = ["SCHEDULERS", "PARSL_PROVIDERS", "PROVIDER_CLASSES", "PARSL_LAUNCHERS", "PLACEHOLDERS"]

#: scheduler -> directive prefix of its batch scripts ("" = none) and how chained
#: jobs depend on each other.  Templates: jobs/templates/{NAME}.sh.tmpl and
#: jobs/templates/submit/{NAME}.sh.tmpl.
SCHEDULERS = {
    "local": {"directive": None, "dependency": "run one after the other on this machine",
              "submit": "bash {script}"},
    "slurm": {"directive": "#SBATCH", "dependency": "sbatch --dependency=afterok:JOBID",
              "submit": "sbatch {script}"},
    "pbs": {"directive": "#PBS", "dependency": "qsub -W depend=afterok:JOBID",
            "submit": "qsub {script}"},
    "lsf": {"directive": "#BSUB", "dependency": "bsub -w 'done(JOBID)'",
            "submit": "bsub < {script}"},
    "flux": {"directive": "#flux:", "dependency": "flux batch --dependency=afterok:JOBID",
             "submit": "flux batch {script}"},
}

#: Parsl provider -> {generic setting: the provider's keyword}.  Generic settings:
#: nodes, walltime (HH:MM:SS), account, queue, cores (usable cores per node),
#: worker_init (module loads + setup lines).  A site's ``parsl.provider_options``
#: override these (``null`` removes one).
PARSL_PROVIDERS = {
    "LocalProvider": {"nodes": "nodes_per_block", "worker_init": "worker_init"},
    "SlurmProvider": {"nodes": "nodes_per_block", "walltime": "walltime",
                      "account": "account", "queue": "partition",
                      "worker_init": "worker_init"},
    "PBSProProvider": {"nodes": "nodes_per_block", "walltime": "walltime",
                       "account": "account", "queue": "queue", "cores": "cpus_per_node",
                       "worker_init": "worker_init"},
    "LSFProvider": {"nodes": "nodes_per_block", "walltime": "walltime",
                    "account": "project", "queue": "queue", "cores": "cores_per_node",
                    "worker_init": "worker_init"},
    "FluxProvider": {"nodes": "nodes_per_block", "walltime": "walltime", "account": "bank",
                     "queue": "queue", "cores": "cores_per_node", "worker_init": "worker_init"},
}

#: providers that are not Parsl's own: name -> "module:class"
PROVIDER_CLASSES = {"FluxProvider": "hpcnnp.hpc.flux:FluxProvider"}

#: Parsl launchers a site may name (classes of :mod:`parsl.launchers`).
PARSL_LAUNCHERS = ("SingleNodeLauncher", "SimpleLauncher", "SrunLauncher", "SrunMPILauncher",
                   "MpiExecLauncher", "MpiRunLauncher", "JsrunLauncher", "AprunLauncher",
                   "GnuParallelLauncher", "WrappedLauncher")

#: placeholder names usable in site strings
PLACEHOLDERS = ("nodes", "ranks", "ranks_per_node", "threads", "cores_per_node",
                "gpus_per_node", "cpu_list", "venv", "account", "queue", "walltime",
                "walltime_minutes", "job_name")
