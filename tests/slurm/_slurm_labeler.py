"""EMT that insists on running inside a Slurm job (for the campaign test): a task that
Parsl ran anywhere else fails, so a finished campaign proves the SlurmProvider path.

Loaded by file path inside Parsl workers: must not import the tests."""

import os

from ase.calculators.emt import EMT


def emt_in_slurm_job():
    if not os.environ.get("SLURM_JOB_ID"):
        raise RuntimeError("not inside a Slurm job (no SLURM_JOB_ID)")
    return EMT()
