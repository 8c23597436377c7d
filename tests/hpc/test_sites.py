"""Site files, batch-script rendering, MPI commands and Parsl configurations (hpcnnp.hpc).

The chain tests run the rendered ``submit_chain.sh`` against fake ``sbatch``/``qsub``/
``bsub``/``flux`` commands that record their arguments, so the dependency chain is
checked as the shell executes it, not only as text.  One test starts a real Parsl
HighThroughputExecutor on the local site (about 7 s).
"""

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from hpcnnp import cli
from hpcnnp.errors import HpcnnpError, InputFileError
from hpcnnp.hpc import list_sites, load_site, parse_walltime, render_jobs, segment_bounds
from hpcnnp.hpc.sites import SiteError, jobs_dir

SITES_DIR = jobs_dir() / "sites"
SHIPPED = sorted(p.stem for p in SITES_DIR.glob("*.yaml"))

#: site -> (scheduler, directives every job script must have, dependency text in the chain)
SCHEDULER_SITES = {
    "frontier": ("slurm", ["#SBATCH -N 4", "#SBATCH -t 02:00:00", "#SBATCH --account=PRJ1",
                           "#SBATCH --partition=batch"], "--dependency=\"afterok:$2\""),
    "aurora": ("pbs", ["#PBS -l select=4", "#PBS -l walltime=02:00:00", "#PBS -A PRJ1",
                       "#PBS -q prod", "#PBS -l filesystems=home:flare"],
               "-W \"depend=afterok:$2\""),
    "summit": ("lsf", ["#BSUB -nnodes 4", "#BSUB -W 02:00", "#BSUB -P PRJ1", "#BSUB -q batch"],
               "bsub -w \"done($2)\""),
    "lassen": ("lsf", ["#BSUB -nnodes 4", "#BSUB -W 02:00", "#BSUB -G PRJ1",
                       "#BSUB -q pbatch"], "bsub -w \"done($2)\""),
    "flux": ("flux", ["#flux: -N 4", "#flux: -t 120m", "#flux: --bank=PRJ1",
                      "#flux: --queue=pbatch"], "flux batch --dependency=\"afterok:$2\""),
}


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for var in ("HPCNNP_ACCOUNT", "HPCNNP_QUEUE", "HPCNNP_VENV", "HPCNNP_SITE_PATH",
                "HPCNNP_JOBS_DIR"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def protocol(tmp_path):
    path = tmp_path / "protocol.yaml"
    path.write_text("ensemble: nvt\n")
    return path


def _bash_syntax_ok(path):
    result = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, f"{path.name}: {result.stderr}"


# ---------------------------------------------------------------------------------------
# Site files
# ---------------------------------------------------------------------------------------

def test_hpc_shipped_sites_are_the_documented_ones():
    assert SHIPPED == ["aurora", "flux", "frontier", "lassen", "local", "slurm", "summit"]
    assert set(list_sites()) >= set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_hpc_every_site_file_loads(name):
    site = load_site(name)
    assert site.name == name and site.path == (SITES_DIR / f"{name}.yaml").resolve()
    assert site.cores_per_node >= 1 and site.gpus_per_node >= 0
    assert site.default_walltime > 0
    ranks = 2 if site.max_nodes == 1 else 2 * site.cores_per_node
    argv = site.mpi_command(ranks)
    assert argv and str(ranks) in " ".join(argv)
    assert site.summary()["scheduler"] == site.scheduler
    # the same file loaded by path gives the same site
    assert load_site(site.path) == site


def test_hpc_site_numbers_from_the_centres_docs():
    frontier, aurora = load_site("frontier"), load_site("aurora")
    assert (frontier.cores_per_node, frontier.gpus_per_node) == (56, 8)
    assert frontier.mpi_launcher == "srun" and frontier.account_required
    assert (aurora.cores_per_node, aurora.physical_cores, aurora.gpus_per_node) == (102, 104, 6)
    assert load_site("summit").mpi_launcher == "jsrun"
    assert load_site("flux").mpi_command(4)[:2] == ["flux", "run"]
    assert load_site("local").mpi_command(2)[0].endswith("/bin/mpiexec")


def test_hpc_mpi_command_layout():
    frontier = load_site("frontier")
    argv = frontier.mpi_command(112)
    assert argv == ["srun", "--nodes=2", "--ntasks=112", "--ntasks-per-node=56",
                    "--cpus-per-task=1", "--cpu-bind=cores"]
    assert "--ntasks-per-node=8" in frontier.mpi_command(16, threads=7)
    assert "--nodes=1" in frontier.mpi_command(10)
    with pytest.raises(HpcnnpError, match="56 usable cores"):
        frontier.mpi_command(16, ranks_per_node=8, threads=8)
    for bad in (0, -3, "x", 2.5, True):
        with pytest.raises(HpcnnpError, match="ranks"):
            frontier.mpi_command(bad)
    with pytest.raises(HpcnnpError, match="threads"):
        frontier.mpi_command(4, threads=0)
    # local: one node only, oversubscription allowed
    local = load_site("local")
    assert local.mpi_command(8)[-2:] == ["-n", "8"]
    with pytest.raises(HpcnnpError, match="node"):
        local.mpi_command(8, ranks_per_node=2)


def test_hpc_aurora_cpu_binding_skips_reserved_cores_per_socket():
    aurora = load_site("aurora")
    argv = aurora.mpi_command(24, threads=8)
    assert argv[:6] == ["mpiexec", "-n", "24", "--ppn", "12", "--depth=8"]
    # ALCF's 12-ranks-per-node layout: 6 ranks per socket, cores 0 and 52 left free
    assert argv[6] == ("--cpu-bind=list:1-8:9-16:17-24:25-32:33-40:41-48:"
                       "53-60:61-68:69-76:77-84:85-92:93-100")
    groups = aurora.cpu_list(102, 1).split(":")
    assert len(groups) == 102 and "0" not in groups and "52" not in groups


def test_hpc_account_and_queue_resolution(monkeypatch):
    frontier = load_site("frontier")
    with pytest.raises(HpcnnpError, match=r"needs an account.*--account.*HPCNNP_ACCOUNT"):
        frontier.resolve_account()
    assert frontier.resolve_account("ABC123") == "ABC123"
    monkeypatch.setenv("HPCNNP_ACCOUNT", "ENV42")
    monkeypatch.setenv("HPCNNP_QUEUE", "extended")
    assert frontier.resolve_account() == "ENV42" and frontier.resolve_queue() == "extended"
    with pytest.raises(HpcnnpError, match="account"):
        frontier.resolve_account("bad account; rm -rf")


def test_hpc_walltime_limits_per_queue():
    frontier = load_site("frontier")
    frontier.check_request(91, parse_walltime("02:00:00"), "batch")
    frontier.check_request(200, parse_walltime("12:00:00"), "batch")
    with pytest.raises(HpcnnpError, match=r"at most 02:00:00.*frontier.yaml: queue.limits"):
        frontier.check_request(4, parse_walltime("03:00:00"), "batch")
    with pytest.raises(HpcnnpError, match="1-64 nodes"):
        frontier.check_request(65, parse_walltime("01:00:00"), "extended")
    with pytest.raises(HpcnnpError, match="max_nodes"):
        frontier.check_request(10000, 60, "batch")
    frontier.check_request(4, parse_walltime("48:00:00"), "some-reservation")  # no limits known


@pytest.mark.parametrize("text, seconds", [("02:00:00", 7200), ("0:30:00", 1800),
                                           ("48:00:00", 172800), ("1-00:00:01", 86401)])
def test_hpc_parse_walltime(text, seconds):
    assert parse_walltime(text) == seconds


@pytest.mark.parametrize("text", ["2h", "01:60:00", "00:00:00", "1:2:3", "", "12:00",
                                  "-01:00:00", None])
def test_hpc_malformed_walltime_is_rejected(text):
    with pytest.raises(HpcnnpError, match="walltime"):
        parse_walltime(text)


def test_hpc_segment_bounds_are_exact():
    bounds = segment_bounds(10, 0.5)
    assert len(bounds) == 20
    assert str(bounds[2][1]) == "1.5" and str(bounds[-1][1]) == "10.0"
    assert [str(e) for _, e in segment_bounds("1", "0.3")] == ["0.3", "0.6", "0.9", "1"]
    for bad in ((0, 1), (10, 0), (10, -1), ("x", 1), (float("nan"), 1)):
        with pytest.raises(HpcnnpError):
            segment_bounds(*bad)
    with pytest.raises(HpcnnpError, match="at most"):
        segment_bounds(10, 0.0001)


# ---------------------------------------------------------------------------------------
# Broken site files: clear errors naming file, line and key
# ---------------------------------------------------------------------------------------

def _broken_site(tmp_path, name, edit):
    text = (SITES_DIR / "frontier.yaml").read_text()
    new = edit(text)
    assert new != text
    path = tmp_path / f"{name}.yaml"
    path.write_text(new.replace("name: frontier", f"name: {name}"))
    return path


@pytest.mark.parametrize("edit, pattern", [
    (lambda t: t.replace("  command: >-\n    srun", "  commandx: >-\n    srun"),
     r"mpi\.commandx: unknown key"),
    (lambda t: t.replace("  launcher: srun\n  command: >-", "  launcher: srun\n  comm: >-"),
     r"mpi\.comm: unknown key"),
    (lambda t: t.replace("scheduler: slurm", "scheduler: sge"), r"scheduler: unknown scheduler"),
    (lambda t: t.replace("  cores: 56", "  cores: many"), r"node\.cores: must be"),
    (lambda t: t.replace("  cores: 56", "  cores: 50"), r"node\.cores: 50 usable cores"),
    (lambda t: t.replace('default: "02:00:00"', 'default: "2 hours"'),
     r"walltime\.default: .*not HH:MM:SS"),
    (lambda t: t.replace("--cpus-per-task=%{threads}", "--cpus-per-task=%{thread}"),
     r"mpi\.command: unknown placeholder %\{thread\}"),
    (lambda t: t.replace('"#SBATCH --partition=%{queue}"', '"#PBS -q %{queue}"'),
     r"directives\.1: .*must start with '#SBATCH'"),
    (lambda t: t.replace("provider: SlurmProvider", "provider: SlurmProvidr"),
     r"parsl\.provider: unknown Parsl provider"),
    (lambda t: t.replace('{max_nodes: 91, walltime: "02:00:00"}', '{walltime: "02:00:00"}'),
     r"queue\.limits\.batch\.0\.max_nodes: required key is missing"),
])
def test_hpc_bad_site_file_names_file_line_and_key(tmp_path, edit, pattern):
    path = _broken_site(tmp_path, "broken", edit)
    with pytest.raises(SiteError, match=pattern) as info:
        load_site(path)
    assert info.value.path == str(path.resolve())
    assert str(path.name) in str(info.value)


def test_hpc_missing_required_key_names_it(tmp_path):
    text = (SITES_DIR / "frontier.yaml").read_text()
    path = tmp_path / "nompi.yaml"
    lines = [ln for ln in text.splitlines() if not ln.startswith(("mpi:", "  launcher: srun",
                                                                  "  command: >-", "    srun",
                                                                  "    --cpus-per-task"))]
    path.write_text("\n".join(lines).replace("name: frontier", "name: nompi"))
    with pytest.raises(SiteError, match=r"nompi\.yaml.*mpi: required key is missing"):
        load_site(path)
    # the line number is part of the message when the key's parent exists
    path.write_text(text.replace("name: frontier", "name: nompi").replace(
        "  launcher: srun\n", ""))
    with pytest.raises(SiteError, match=r"nompi\.yaml:\d+: mpi\.launcher: required key"):
        load_site(path)


def test_hpc_site_name_must_match_file_and_yaml_must_parse(tmp_path):
    path = tmp_path / "copy.yaml"
    shutil.copy(SITES_DIR / "frontier.yaml", path)
    with pytest.raises(SiteError, match="differs from the file name"):
        load_site(path)
    from _helpers import rejected      # not at the top: Parsl workers import this module

    rejected(load_site, path, "name: copy\nnode: [1, 2\n", SiteError,
             match=r"copy\.yaml:\d+: not valid YAML")
    rejected(load_site, path, "- just a list\n", SiteError, match="must be a YAML mapping")


def test_hpc_unknown_site_lists_known_ones():
    with pytest.raises(HpcnnpError, match=r"unknown site 'nosuch'.*aurora, flux, frontier, "
                                          r"lassen, local, slurm, summit") as info:
        load_site("nosuch")
    assert not isinstance(info.value, InputFileError)
    with pytest.raises(HpcnnpError, match="does not exist"):
        load_site("/nonexistent/site.yaml")


def test_hpc_site_path_env_adds_sites(tmp_path, monkeypatch):
    path = tmp_path / "mycluster.yaml"
    path.write_text((SITES_DIR / "frontier.yaml").read_text().replace(
        "name: frontier", "name: mycluster"))
    monkeypatch.setenv("HPCNNP_SITE_PATH", str(tmp_path))
    assert load_site("mycluster").scheduler == "slurm"
    assert "mycluster" in list_sites()


# ---------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(SCHEDULER_SITES))
def test_hpc_render_md_chain_per_scheduler(tmp_path, protocol, name):
    scheduler, directives, dependency = SCHEDULER_SITES[name]
    out = tmp_path / "jobs"
    paths = render_jobs(name, 4, "02:00:00", protocol=protocol, total_time_ns=10,
                        segment_ns=0.5, out_dir=out, account="PRJ1", workdir=tmp_path)
    assert [p.name for p in paths] == [f"segment_{k:03d}.sh" for k in range(1, 21)] + \
        ["submit_chain.sh"]
    site = load_site(name)
    launcher = site.mpi_command(4 * site.cores_per_node)
    for k, path in enumerate(paths[:-1], 1):
        text = path.read_text()
        assert os.access(path, os.X_OK)
        for line in directives:
            assert line in text.splitlines(), f"{name} {path.name}: {line!r} missing"
        end = f"{k * 0.5:g}"
        assert f"hpcnnp md {protocol} --resume --until-ns {end}\n" in text
        assert " ".join(launcher) + " hpcnnp md" in text
        assert f"export HPCNNP_SEGMENT={k}\n" in text and f"cd {tmp_path}\n" in text
        _bash_syntax_ok(path)
    chain = paths[-1].read_text()
    assert dependency in chain
    assert all(f"    segment_{k:03d}.sh\n" in chain for k in range(1, 21))
    _bash_syntax_ok(paths[-1])


def test_hpc_render_local_chain_and_command(tmp_path, protocol):
    paths = render_jobs("local", 1, None, protocol=protocol, total_time_ns="1",
                        segment_ns="0.25", out_dir=tmp_path / "md")
    assert len(paths) == 5
    text = paths[0].read_text()
    assert "#SBATCH" not in text and "mpiexec -n " in text
    for path in paths:
        _bash_syntax_ok(path)
    job, submit = render_jobs("local", 1, "00:10:00", command="hpcnnp train --epochs 2",
                              out_dir=tmp_path / "train")
    assert (job.name, submit.name) == ("job.sh", "submit.sh")
    assert "/bin/mpiexec -n " in job.read_text() and "hpcnnp train --epochs 2" in job.read_text()
    _bash_syntax_ok(job)
    _bash_syntax_ok(submit)


def test_hpc_render_command_job_mpi_and_plain(tmp_path):
    job, submit = render_jobs("frontier", 2, "01:00:00", command="hpcnnp train",
                              out_dir=tmp_path / "a", account="PRJ1", ranks_per_node=8,
                              threads=7)
    text = job.read_text()
    assert "#SBATCH -N 2" in text and "#SBATCH -J hpcnnp-train" in text
    assert ("srun --nodes=2 --ntasks=16 --ntasks-per-node=8 --cpus-per-task=7 "
            "--cpu-bind=cores hpcnnp train\n") in text
    assert "export OMP_NUM_THREADS=7" in text
    assert 'sbatch --parsable "$1"' in submit.read_text()
    job, _ = render_jobs("frontier", 2, "01:00:00", command="hpcnnp sample campaign.yaml",
                         out_dir=tmp_path / "b", account="PRJ1", launch="plain")
    text = job.read_text()
    assert "\nhpcnnp sample campaign.yaml\n" in text and "srun" not in text.split("cd ")[-1]
    for path in (tmp_path / "a").iterdir():
        _bash_syntax_ok(path)


def test_hpc_rerender_replaces_and_removes_stale_segments(tmp_path, protocol):
    out = tmp_path / "jobs"
    render_jobs("frontier", 1, None, protocol=protocol, total_time_ns=2, segment_ns=0.5,
                out_dir=out, account="PRJ1")
    (out / "notes.txt").write_text("mine")
    (out / "segment_999.sh").write_text("#!/bin/bash\n# my own script\n")
    render_jobs("frontier", 1, None, protocol=protocol, total_time_ns=1, segment_ns=0.5,
                out_dir=out, account="PRJ1")
    assert sorted(p.name for p in out.glob("segment_*.sh")) == [
        "segment_001.sh", "segment_002.sh", "segment_999.sh"]
    assert (out / "notes.txt").read_text() == "mine"
    assert not list(out.glob(".*.tmp"))


@pytest.mark.parametrize("kwargs, pattern", [
    (dict(nodes=0), "nodes must be at least 1"),
    (dict(nodes=-2), "nodes must be at least 1"),
    (dict(nodes="two"), "nodes must be a whole number"),
    (dict(walltime="2:00"), "walltime '2:00' is not HH:MM:SS"),
    (dict(walltime="03:00:00"), "at most 02:00:00"),
    (dict(account=None), "needs an account"),
    (dict(segment_ns=0), "segment length"),
    (dict(protocol="missing.yaml"), "does not exist"),
    (dict(site="nosuch"), "unknown site"),
    (dict(command="hpcnnp train"), "either a protocol"),
    (dict(threads=100), "usable cores"),
])
def test_hpc_render_bad_input_writes_nothing(tmp_path, protocol, kwargs, pattern):
    args = dict(site="frontier", nodes=4, walltime="02:00:00", protocol=protocol,
                total_time_ns=10, segment_ns=0.5, out_dir=tmp_path / "out", account="PRJ1")
    args.update(kwargs)
    if args["protocol"] == "missing.yaml":
        args["protocol"] = tmp_path / "missing.yaml"
    with pytest.raises(HpcnnpError, match=pattern):
        render_jobs(**args)
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------------
# Executing the chains against fake schedulers (and on the local site for real)
# ---------------------------------------------------------------------------------------

_FAKE_SCHEDULER = r"""#!/bin/bash
# records "NAME ARGS | first line of stdin (bsub)" and prints a job id like the real one
name=$(basename "$0")
n=$(( $(cat "$FAKE_LOG" 2>/dev/null | wc -l) + 1001 ))
stdin=""
[ "$name" = bsub ] && stdin=" | $(head -n 1)"
echo "$name $*$stdin" >> "$FAKE_LOG"
case "$name" in
    sbatch) echo "$n;cluster" ;;
    qsub)   echo "$n.aurora-pbs-0001.hostmgmt.cm.aurora.alcf.anl.gov" ;;
    bsub)   echo "Job <$n> is submitted to queue <batch>." ;;
    flux)   echo "f2x${n}" ;;
esac
"""

_EXPECTED_IDS = {"slurm": "{n}", "pbs": "{n}.aurora-pbs-0001.hostmgmt.cm.aurora.alcf.anl.gov",
                 "lsf": "{n}", "flux": "f2x{n}"}


@pytest.mark.parametrize("name", sorted(SCHEDULER_SITES))
def test_hpc_submit_chain_links_segments_by_dependency(tmp_path, protocol, name):
    scheduler = SCHEDULER_SITES[name][0]
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for cmd in ("sbatch", "qsub", "bsub", "flux"):
        (bindir / cmd).write_text(_FAKE_SCHEDULER)
        (bindir / cmd).chmod(0o755)
    out = tmp_path / "jobs"
    *_, chain = render_jobs(name, 4, "02:00:00", protocol=protocol, total_time_ns=10,
                            segment_ns=0.5, out_dir=out, account="PRJ1")
    log = tmp_path / "calls.log"
    env = dict(os.environ, PATH=f"{bindir}:{os.environ['PATH']}", FAKE_LOG=str(log))
    subprocess.run([str(chain)], env=env, check=True, capture_output=True, text=True)
    calls = log.read_text().splitlines()
    assert len(calls) == 20
    ids = [_EXPECTED_IDS[scheduler].format(n=1001 + k) for k in range(20)]
    for k, call in enumerate(calls):
        script = f"segment_{k + 1:03d}.sh"
        if scheduler == "lsf":
            assert call.endswith("| #!/bin/bash"), "bsub must read the script on stdin"
        else:
            assert call.endswith(script)
        if k == 0:
            assert "afterok" not in call and "done(" not in call
        elif scheduler == "slurm":
            assert call == f"sbatch --parsable --dependency=afterok:{ids[k - 1]} {script}"
        elif scheduler == "pbs":
            assert call == f"qsub -W depend=afterok:{ids[k - 1]} {script}"
        elif scheduler == "lsf":
            assert call.startswith(f"bsub -w done({ids[k - 1]}) |")
        else:
            assert call == f"flux batch --dependency=afterok:{ids[k - 1]} {script}"
    recorded = (out / "chain_jobs.txt").read_text().splitlines()
    assert recorded[0] == f"1 {ids[0]} segment_001.sh" and len(recorded) == 20
    # continue a broken chain at segment 15, after job 777
    log.unlink()
    subprocess.run([str(chain), "15", "777"], env=env, check=True, capture_output=True)
    calls = log.read_text().splitlines()
    assert len(calls) == 6 and "777" in calls[0] and "segment_015.sh" in calls[0] + \
        (" segment_015.sh" if scheduler == "lsf" else "")
    bad = subprocess.run([str(chain), "21"], env=env, capture_output=True, text=True)
    assert bad.returncode == 2 and "FIRST_SEGMENT" in bad.stderr


def _fake_venv(tmp_path):
    """A Python-environment prefix whose bin/ has a fake mpiexec and a fake hpcnnp."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "mpiexec").write_text('#!/bin/bash\n[ "$1" = -n ] && shift 2\nexec "$@"\n')
    (venv / "bin" / "hpcnnp").write_text(
        '#!/bin/bash\necho "$PWD $*" >> "$FAKE_LOG"\n'
        'if [ -n "${FAIL_AT:-}" ] && [ "${@: -1}" = "$FAIL_AT" ]; then exit 3; fi\n')
    for f in (venv / "bin").iterdir():
        f.chmod(0o755)
    return venv


def test_hpc_local_chain_runs_segments_in_order_and_stops_on_failure(tmp_path, protocol):
    venv = _fake_venv(tmp_path)
    workdir = tmp_path / "run"
    workdir.mkdir()
    *_, chain = render_jobs("local", 1, None, protocol=protocol, total_time_ns=10,
                            segment_ns=0.5, out_dir=tmp_path / "jobs", workdir=workdir,
                            venv=str(venv))
    log = tmp_path / "md.log"
    env = dict(os.environ, FAKE_LOG=str(log))
    subprocess.run([str(chain)], env=env, check=True, capture_output=True)
    calls = log.read_text().splitlines()
    assert calls == [f"{workdir} md {protocol} --resume --until-ns {k * 0.5:g}"
                     for k in range(1, 21)]
    assert (tmp_path / "jobs" / "segment_001.out").exists()
    log.unlink()
    failed = subprocess.run([str(chain)], env=dict(env, FAIL_AT="1.5"), capture_output=True,
                            text=True)
    assert failed.returncode != 0 and "segment_003.sh failed" in failed.stderr
    assert len(log.read_text().splitlines()) == 3


# ---------------------------------------------------------------------------------------
# Parsl
# ---------------------------------------------------------------------------------------

def test_hpc_parsl_config_local_builds():
    pytest.importorskip("parsl")
    from parsl.config import Config
    from parsl.executors import HighThroughputExecutor
    from parsl.providers import LocalProvider

    config = load_site("local").parsl_config(workers_per_node=2, run_dir="ri")
    assert isinstance(config, Config) and config.run_dir == "ri"
    (executor,) = config.executors
    assert isinstance(executor, HighThroughputExecutor) and executor.label == "local"
    assert isinstance(executor.provider, LocalProvider)
    assert executor.max_workers_per_node == 2
    assert "export PATH=" in executor.provider.worker_init


def test_hpc_parsl_config_cluster_providers():
    pytest.importorskip("parsl")
    from parsl.launchers import JsrunLauncher, MpiExecLauncher, SrunLauncher, WrappedLauncher
    from parsl.providers import LocalProvider, LSFProvider, PBSProProvider, SlurmProvider

    frontier = load_site("frontier")
    p = frontier.parsl_config(nodes=4, walltime="02:00:00", account="PRJ1").executors[0].provider
    assert isinstance(p, SlurmProvider) and isinstance(p.launcher, SrunLauncher)
    assert (p.nodes_per_block, p.walltime) == (4, "02:00:00")
    assert "--account=PRJ1" in p.scheduler_options and "--partition=batch" in p.scheduler_options
    assert "--cpus-per-task=56" in p.launcher.overrides
    assert "source " in p.worker_init and "module load" in p.worker_init
    with pytest.raises(HpcnnpError, match="needs an account"):
        frontier.parsl_config(nodes=4)
    with pytest.raises(HpcnnpError, match="at most 02:00:00"):
        frontier.parsl_config(nodes=4, walltime="05:00:00", account="PRJ1")
    inside = frontier.parsl_config(nodes=4, inside_allocation=True).executors[0].provider
    assert isinstance(inside, LocalProvider) and isinstance(inside.launcher, SrunLauncher)

    p = load_site("aurora").parsl_config(nodes=2, account="P").executors[0].provider
    assert isinstance(p, PBSProProvider) and isinstance(p.launcher, MpiExecLauncher)
    assert (p.account, p.queue) == ("P", "prod")
    p = load_site("lassen").parsl_config(nodes=2, account="bank").executors[0].provider
    assert isinstance(p, LSFProvider) and isinstance(p.launcher, JsrunLauncher)
    assert p.project is None and "#BSUB -G bank" in p.scheduler_options
    from hpcnnp.hpc.flux import FluxProvider
    p = load_site("flux").parsl_config(nodes=2, walltime="01:30:00").executors[0].provider
    assert isinstance(p, FluxProvider) and isinstance(p.launcher, WrappedLauncher)
    assert p.bank is None and "--bank" not in p.scheduler_options     # no bank: no line


def test_hpc_parsl_bad_option_and_missing_provider(tmp_path):
    pytest.importorskip("parsl")
    path = _broken_site(tmp_path, "badopt", lambda t: t.replace(
        "    exclusive: true", "    exclusive: true\n    no_such_option: 1"))
    with pytest.raises(SiteError, match="parsl.provider_options: SlurmProvider does not accept"):
        load_site(path).parsl_config(nodes=1, account="A")
    path = _broken_site(tmp_path, "noprov", lambda t: t.replace(
        "provider: SlurmProvider", "provider: null"))
    with pytest.raises(HpcnnpError, match="inside_allocation=True"):
        load_site(path).parsl_config(nodes=1, account="A")
    assert load_site(path).parsl_config(nodes=1, inside_allocation=True)


def _square(x):
    """A Parsl python_app body (module level, so that the workers can import it)."""
    import os
    return x * x, os.getpid()


def _greet(path, stdout=None, stderr=None):
    """A Parsl bash_app body."""
    return f"echo hello from $(hostname) > {path}"


def test_hpc_parsl_local_run_python_and_bash_apps(tmp_path, monkeypatch):
    parsl = pytest.importorskip("parsl")
    from parsl import bash_app, python_app

    # the workers unpickle _square by reference: let them import this test module
    here = str(Path(__file__).resolve().parent)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        p for p in (here, os.environ.get("PYTHONPATH")) if p))
    square, greet = python_app(_square), bash_app(_greet)
    run_dir = tmp_path / "runinfo"
    config = load_site("local").parsl_config(nodes=1, workers_per_node=2, run_dir=run_dir)
    start = time.perf_counter()
    with parsl.load(config):
        futures = [square(i) for i in range(6)]
        done = greet(str(tmp_path / "bash.txt"), stdout=str(tmp_path / "bash.out"))
        results = [f.result(timeout=60) for f in futures]
        assert done.result(timeout=60) == 0
    elapsed = time.perf_counter() - start
    assert [r[0] for r in results] == [0, 1, 4, 9, 16, 25]
    assert len({r[1] for r in results}) <= 2                       # two workers
    assert (tmp_path / "bash.txt").read_text().startswith("hello from ")
    assert run_dir.is_dir()
    shutil.rmtree(run_dir)
    # a hang, not a speed test: the machine may be shared (about 7 s when idle)
    assert elapsed < 300, f"local Parsl run took {elapsed:.1f} s"


# ---------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------

def test_hpc_cli_sites_table_and_detail(capsys):
    assert cli.main(["jobs", "sites"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:3] == ["SITE", "SCHEDULER", "MPI"]
    rows = {line.split()[0]: line.split() for line in out[1:]}
    assert set(rows) == set(SHIPPED)
    assert rows["frontier"][1:3] == ["slurm", "srun"] and rows["summit"][1:3] == ["lsf", "jsrun"]
    assert cli.main(["jobs", "sites", "aurora"]) == 0
    detail = capsys.readouterr().out
    assert "102 usable cores" in detail and "prod: 1-512 nodes <= 06:00:00" in detail


def test_hpc_cli_render_chain_and_errors(tmp_path, protocol, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc = cli.main(["jobs", "render", "--site", "aurora", "--nodes", "2", "--walltime",
                   "01:00:00", "--account", "PRJ1", "--queue", "debug", "--protocol",
                   str(protocol), "--total-ns", "10", "--segment-ns", "0.5"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "20 segment jobs for site aurora (pbs)" in out
    assert (tmp_path / "jobs-aurora" / "segment_020.sh").exists()
    assert "#PBS -q debug" in (tmp_path / "jobs-aurora" / "segment_001.sh").read_text()

    cases = [
        (["--site", "nosuch", "--nodes", "1", "--command", "x"], "unknown site 'nosuch'"),
        (["--site", "local", "--nodes", "0", "--command", "x"], "nodes must be at least 1"),
        (["--site", "local", "--nodes", "1", "--walltime", "1h", "--command", "x"],
         "walltime '1h' is not HH:MM:SS"),
        (["--site", "frontier", "--nodes", "1", "--command", "x"], "needs an account"),
        (["--site", "local", "--nodes", "1", "--protocol", str(protocol)],
         "--protocol needs --total-ns and --segment-ns"),
        (["--site", "local", "--nodes", "1", "--command", "x", "--total-ns", "1"],
         "apply only with --protocol"),
        (["--site", "aurora", "--nodes", "3", "--queue", "debug", "--account", "A",
          "--command", "x"], "takes jobs of 1-2 nodes"),
    ]
    for argv, message in cases:
        assert cli.main(["jobs", "render"] + argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("hpcnnp jobs: error: ") and message in err, err


def test_hpc_cli_every_option_has_help():
    import argparse

    parser = cli.build_parser()
    jobs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    jobs_parser = jobs.choices["jobs"]
    sub = next(a for a in jobs_parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, p in sub.choices.items():
        for action in p._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help, f"hpcnnp jobs {name}: {action.option_strings or action.dest}"
    render_help = sub.choices["render"].format_help()
    for option in ("--site", "--nodes", "--walltime", "--account", "--queue", "--total-ns",
                   "--segment-ns", "--protocol", "--command", "--output-dir"):
        assert option in render_help


# ---------------------------------------------------------------------------------------
# Flux: hpcnnp's FluxProvider, exercised with a stand-in `flux` command
# ---------------------------------------------------------------------------------------

#: the subset of flux-batch(1), flux-jobs(1), flux-cancel(1) and flux-run(1) that the
#: provider uses; `batch` runs the script in the background (a process group per job)
FAKE_FLUX = r"""#!/bin/bash
state="$FAKE_FLUX_DIR"
echo "$*" >> "$state/calls"
case "$1" in
  batch)
    script="$2"
    n=$(ls "$state"/*.pid 2>/dev/null | wc -l)
    id="f$((n + 1))Zq"
    out=$(sed -n 's/^#flux: --output=//p' "$script")
    err=$(sed -n 's/^#flux: --error=//p' "$script")
    setsid bash "$script" > "$out" 2> "$err" < /dev/null &
    echo $! > "$state/$id.pid"
    echo "$id" ;;
  jobs)
    shift
    while [ $# -gt 0 ]; do
      case "$1" in
        -a|-n) shift ;;
        -o) shift 2 ;;
        *) pid=$(cat "$state/$1.pid")
           if [ -e "$state/$1.cancelled" ]; then echo "$1 CA"
           elif kill -0 "$pid" 2>/dev/null; then echo "$1 R"; else echo "$1 CD"; fi
           shift ;;
      esac
    done ;;
  cancel)
    shift
    for id in "$@"; do
      touch "$state/$id.cancelled"
      kill -TERM -- -"$(cat "$state/$id.pid")" 2>/dev/null
    done ;;
  run)
    shift
    while [ $# -gt 0 ] && [ "${1#--}" != "$1" ]; do shift; done
    exec "$@" ;;
  *) echo "fake flux: unknown command $1" >&2; exit 1 ;;
esac
"""


@pytest.fixture
def fake_flux(tmp_path, monkeypatch):
    bindir = tmp_path / "fakebin"
    bindir.mkdir()
    flux = bindir / "flux"
    flux.write_text(FAKE_FLUX)
    flux.chmod(0o755)
    state = tmp_path / "fluxstate"
    state.mkdir()
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_FLUX_DIR", str(state))
    yield state
    for pid_file in state.glob("*.pid"):                 # leave nothing running
        with contextlib.suppress(ProcessLookupError, ValueError, PermissionError):
            os.killpg(int(pid_file.read_text()), signal.SIGKILL)


def test_hpc_flux_provider_batch_script_status_cancel(tmp_path, fake_flux):
    pytest.importorskip("parsl")
    from parsl.jobs.states import JobState
    from parsl.launchers import WrappedLauncher

    from hpcnnp.hpc.flux import FluxProvider

    config = load_site("flux").parsl_config(nodes=2, walltime="01:30:00", account="B1")
    provider = config.executors[0].provider
    assert isinstance(provider, FluxProvider) and isinstance(provider.launcher, WrappedLauncher)
    assert (provider.nodes_per_block, provider.walltime, provider.queue, provider.bank) == \
        (2, "01:30:00", "pbatch", "B1")
    assert provider.launcher.prepend == ("flux run --nodes=2 --ntasks=2 "
                                         "--cores-per-task=96")
    assert "module load cray-python" in provider.worker_init
    provider.script_dir = str(tmp_path)
    job = provider.submit("sleep 30", 1, job_name="hpcnnp.test")
    script = next(tmp_path.glob("hpcnnp.test.*[0-9]"))
    text = script.read_text()
    for line in ("#flux: --nodes=2", "#flux: --time-limit=90m", "#flux: --exclusive",
                 "#flux: --queue=pbatch", "#flux: --bank=B1",
                 "flux run --nodes=2 --ntasks=2 --cores-per-task=96 sleep 30"):
        assert line in text, line
    _bash_syntax_ok(script)
    assert job == "f1Zq"
    assert provider.status([job])[0].state == JobState.RUNNING
    assert provider.cancel([job]) == [True]
    assert provider.status([job])[0].state == JobState.CANCELLED
    calls = (fake_flux / "calls").read_text()
    assert "jobs -a -n -o {id.f58} {status_abbrev} f1Zq" in calls and "cancel f1Zq" in calls
    # inside an allocation nothing is submitted: the same flux run on the allocation
    inside = load_site("flux").parsl_config(nodes=2, inside_allocation=True)
    assert "--queue" not in inside.executors[0].provider.launcher.prepend


def test_hpc_flux_provider_runs_parsl_tasks(tmp_path, fake_flux, monkeypatch):
    """A Parsl python_app through FluxProvider + HighThroughputExecutor: the block is a
    `flux batch` job whose `flux run` starts the worker manager."""
    parsl = pytest.importorskip("parsl")
    from parsl import python_app

    here = str(Path(__file__).resolve().parent)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        p for p in (here, os.environ.get("PYTHONPATH")) if p))
    text = (SITES_DIR / "flux.yaml").read_text().replace("name: flux", "name: fluxtest")
    text = text.replace("  cores: 96", "  cores: auto").replace("    - cray-python\n", "")
    text = text.replace("  modules:                 # CHECK: example stack\n",
                        "  modules: []\n")
    text = text.replace('"source %{venv}/bin/activate"', '"export PATH=%{venv}/bin:$PATH"')
    site = tmp_path / "fluxtest.yaml"
    site.write_text(text)
    config = load_site(site).parsl_config(nodes=1, workers_per_node=2,
                                          run_dir=tmp_path / "runinfo", strategy_period=1)
    config.executors[0].provider._polling = 1
    square = python_app(_square)
    with parsl.load(config):
        results = [f.result(timeout=120) for f in [square(i) for i in range(4)]]
    assert [r[0] for r in results] == [0, 1, 4, 9]
    calls = (fake_flux / "calls").read_text().splitlines()
    assert calls[0].startswith("batch ") and any(c.startswith("run ") for c in calls)
    assert any(c.startswith("cancel ") for c in calls)        # the block ended by Parsl
