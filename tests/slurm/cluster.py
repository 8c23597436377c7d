"""A single-node Slurm cluster for the tests: Debian's slurm-wlm and munge, started by
hand in a private folder (own munge socket and key, own ports, own state), so that it
neither needs systemd nor touches a Slurm the machine may already run.

Recipe (verified on Debian 12, slurm-wlm 22.05, munge 0.5; see ../shared/environment.md):
munged as the ``munge`` user -> ``slurmctld`` (wait for ``scontrol ping``: UP) ->
``slurmd`` (wait until the node is idle).  ``SlurmUser=root``, no cgroups
(``proctrack/linuxproc``, ``task/none``), ``select/cons_tres`` with ``CR_Core_Memory``
and ``DefMemPerCPU`` (else one job takes all memory), ``kill_invalid_depend`` (a job
whose afterok parent failed is removed instead of pending forever),
``sched_interval=1``, ``MpiDefault=pmi2`` (srun starts MPICH programs, e.g. of the
``mpich`` wheel), accounting off (no sacct: ``scontrol show job``).

Stopping: every job of the partition is cancelled first (stopping slurmd does not end
running jobs), then slurmd, slurmctld and munged are ended by their pid files.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

PACKAGES = ("slurm-wlm", "munge")
BINARIES = ("slurmctld", "slurmd", "sbatch", "scontrol", "sinfo", "squeue", "scancel",
            "srun", "munged", "munge", "unmunge")


def why_not():
    """Why a cluster cannot be started here (None if it can)."""
    if not os.path.isdir("/proc"):
        return "not Linux"
    if os.geteuid() != 0:
        return "starting slurmctld/slurmd needs root"
    missing = [b for b in BINARIES if shutil.which(b) is None
               and not Path("/usr/sbin", b).exists()]
    if missing:
        return (f"Slurm is not installed (missing {', '.join(missing)}): "
                f"apt-get install {' '.join(PACKAGES)}")
    try:
        pwd.getpwnam("munge")
    except KeyError:
        return "no 'munge' user (apt-get install munge)"
    return None


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _exe(name):
    return shutil.which(name) or str(Path("/usr/sbin", name))


class SlurmCluster:
    """One node (this machine), one partition ``hpcnnp`` (default), no accounting.

    Attributes
    ----------
    root : Path
        Private folder (config, state, logs, munge socket).
    conf : Path
        slurm.conf; clients find it through ``env["SLURM_CONF"]``.
    env : dict
        Environment for Slurm clients (``SLURM_CONF``).
    partition : str
    cpus : int
    """

    partition = "hpcnnp"

    def __init__(self, root=None):
        self.root = Path(root or f"/tmp/hpcnnp-slurm-{uuid.uuid4().hex[:8]}")
        self.conf = self.root / "slurm.conf"
        self.env = dict(os.environ, SLURM_CONF=str(self.conf))
        self.cpus = os.cpu_count() or 1
        self.started = []

    # ------------------------------------------------------------------ set-up
    def _write_files(self):
        root = self.root
        root.mkdir(parents=True, exist_ok=True)
        os.chmod(root, 0o755)
        munge = root / "munge"              # key, seed, log: private to munge
        run = root / "munge-run"            # the socket: reachable by everyone
        for d in (munge, run):
            d.mkdir(exist_ok=True)
        key = munge / "munge.key"
        if Path("/etc/munge/munge.key").exists():
            shutil.copy("/etc/munge/munge.key", key)
        else:
            key.write_bytes(os.urandom(128))
        user = pwd.getpwnam("munge")
        for p in (munge, run, key):
            os.chown(p, user.pw_uid, user.pw_gid)
        os.chmod(munge, 0o700)
        os.chmod(run, 0o755)
        os.chmod(key, 0o400)
        for d in ("state", "spool", "log"):
            (root / d).mkdir(exist_ok=True)
        node = subprocess.run([_exe("slurmd"), "-C"], capture_output=True, text=True,
                              check=True).stdout.splitlines()[0]
        fields = dict(kv.split("=", 1) for kv in node.split())
        memory = int(int(fields.get("RealMemory", "2048")) * 0.9)
        self.cpus = int(fields.get("CPUs", self.cpus))
        host = socket.gethostname().split(".")[0]
        self.host = host
        ctld, slurmd_port = _free_port(), _free_port()
        conf = f"""\
# written by tests/slurm/cluster.py
ClusterName=hpcnnp-test
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld}
SlurmdPort={slurmd_port}
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={run / 'munge.socket'},cred_expire=10
StateSaveLocation={root / 'state'}
SlurmdSpoolDir={root / 'spool'}
SlurmctldPidFile={root / 'slurmctld.pid'}
SlurmdPidFile={root / 'slurmd.pid'}
SlurmctldLogFile={root / 'log' / 'slurmctld.log'}
SlurmdLogFile={root / 'log' / 'slurmd.log'}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=pmi2
SwitchType=switch/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU={max(256, memory // (2 * self.cpus))}
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1
DependencyParameters=kill_invalid_depend
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
MailProg=/bin/true
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
MinJobAge=300
KillWait=5
Waittime=0
NodeName={host} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={memory} State=UNKNOWN
PartitionName={self.partition} Nodes={host} Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
"""
        self.conf.write_text(conf)
        self.munge_socket = run / "munge.socket"

    def _run(self, *cmd, check=True, timeout=30):
        return subprocess.run([_exe(cmd[0]), *cmd[1:]], env=self.env, capture_output=True,
                              text=True, check=check, timeout=timeout)

    def _wait(self, what, test, seconds=60):
        deadline = time.time() + seconds
        while time.time() < deadline:
            if test():
                return
            time.sleep(0.3)
        raise RuntimeError(f"Slurm test cluster: {what} did not happen within {seconds} s; "
                           f"logs in {self.root / 'log'}:\n{self.logs()}")

    def logs(self):
        out = []
        for p in sorted((self.root / "log").glob("*")):
            out.append(f"--- {p.name}\n" + "\n".join(p.read_text().splitlines()[-20:]))
        return "\n".join(out)

    def start(self):
        """Write the files and start munged, slurmctld and slurmd; wait until the node
        is idle.  Returns self."""
        self._write_files()
        m, r = self.root / "munge", self.root / "munge-run"
        subprocess.run(["runuser", "-u", "munge", "--", _exe("munged"),
                        f"--socket={self.munge_socket}", f"--key-file={m / 'munge.key'}",
                        f"--pid-file={r / 'munged.pid'}", f"--log-file={m / 'munged.log'}",
                        f"--seed-file={m / 'munged.seed'}"], check=True, timeout=30)
        self.started.append(r / "munged.pid")
        self._wait("munge", lambda: self._munge_ok(), 30)
        self._run("slurmctld", "-i", "-f", str(self.conf))
        self.started.append(self.root / "slurmctld.pid")
        self._wait("slurmctld UP", lambda: "UP" in self._run("scontrol", "ping",
                                                             check=False).stdout)
        self._run("slurmd", "-f", str(self.conf))
        self.started.append(self.root / "slurmd.pid")
        self._wait("node idle", lambda: "idle" in self._run(
            "sinfo", "-h", "-o", "%t", "-p", self.partition, check=False).stdout)
        return self

    def _munge_ok(self):
        sock = str(self.munge_socket)
        enc = subprocess.run([_exe("munge"), "-n", f"--socket={sock}"], capture_output=True)
        if enc.returncode != 0:
            return False
        dec = subprocess.run([_exe("unmunge"), f"--socket={sock}"], input=enc.stdout,
                             capture_output=True)
        return dec.returncode == 0

    # ------------------------------------------------------------------ use
    def sbatch(self, *args, cwd=None):
        """Submit; returns the job id (``sbatch --parsable``)."""
        out = self._run("sbatch", "--parsable", *map(str, args), timeout=60,
                        **({} if cwd is None else {})) if cwd is None else \
            subprocess.run([_exe("sbatch"), "--parsable", *map(str, args)], env=self.env,
                           cwd=cwd, capture_output=True, text=True, check=True, timeout=60)
        return out.stdout.strip().split(";")[0]

    def job(self, job_id):
        """``scontrol show job`` as a dict (empty once the job is purged)."""
        res = self._run("scontrol", "show", "job", "-o", str(job_id), check=False)
        if res.returncode != 0:
            return {}
        return dict(kv.split("=", 1) for kv in res.stdout.split() if "=" in kv)

    def state(self, job_id):
        return self.job(job_id).get("JobState", "PURGED")

    def jobs(self):
        """Ids of the partition's jobs that are not finished."""
        res = self._run("squeue", "-h", "-p", self.partition, "-o", "%i", check=False)
        return res.stdout.split()

    def wait_all(self, seconds=600):
        """Until the partition has no pending or running job."""
        self._wait("all jobs ended", lambda: not self.jobs(), seconds)

    def scancel(self, *ids):
        if ids:
            self._run("scancel", *map(str, ids), check=False)

    # ------------------------------------------------------------------ tear-down
    def stop(self):
        """Cancel every job, end the daemons (by their pid files), remove the folder."""
        if any(p.name == "slurmctld.pid" for p in self.started):
            self._run("scancel", "-p", self.partition, check=False)
            deadline = time.time() + 30
            while time.time() < deadline and self.jobs():
                time.sleep(0.3)
        for pidfile in reversed(self.started):
            try:
                pid = int(pidfile.read_text().split()[0])
            except (OSError, ValueError, IndexError):
                continue
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            for _ in range(100):
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
            else:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.started = []
        shutil.rmtree(self.root, ignore_errors=True)
