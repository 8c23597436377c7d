"""The ``slurm_cluster`` fixture: a real single-node Slurm (tests/slurm/cluster.py),
started once per session and stopped -- jobs cancelled, daemons ended -- at its end.

Where Slurm cannot run (not root, slurm-wlm/munge not installed) the tests skip with
the reason printed; ``.ci/run`` installs the packages so that they run in CI.
"""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from cluster import SlurmCluster, why_not  # noqa: E402


@pytest.fixture(scope="session")
def slurm_cluster():
    reason = why_not()
    if reason:
        print(f"\nSlurm tests skipped: {reason}", file=sys.stderr)
        pytest.skip(f"no Slurm test cluster: {reason}")
    cluster = SlurmCluster()
    try:
        cluster.start()
    except Exception as exc:          # noqa: BLE001 - reported as the skip reason
        cluster.stop()
        print(f"\nSlurm tests skipped: the cluster did not start: {exc}", file=sys.stderr)
        pytest.skip(f"the Slurm test cluster did not start: {exc}")
    old = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(cluster.conf)     # for hpcnnp and Parsl's sbatch
    try:
        yield cluster
    finally:
        if old is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = old
        cluster.stop()
