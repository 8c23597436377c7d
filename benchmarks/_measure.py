"""Helpers of the training benchmarks: run a program under ``/usr/bin/time -v`` and
read n2p2-format timing files (n2p2's nnp-train and ``hpcnnp train`` write the same).

n2p2 is a measuring instrument: ``HPCNNP_N2P2_BIN`` (default /work/n2p2/bin) holds
its nnp-train built from source (see ../shared/environment.md); nothing of it is
imported or copied.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
N2P2 = Path(os.environ.get("HPCNNP_N2P2_BIN", "/work/n2p2/bin"))


def env(ranks=1):
    """Environment of a benchmark child: repo on PYTHONPATH, the venv's MPI library,
    cores/ranks BLAS threads."""
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), e.get("PYTHONPATH")) if p)
    lib = str(Path(sys.executable).parent.parent / "lib")
    e["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (lib, e.get("LD_LIBRARY_PATH")) if p)
    e["OPENBLAS_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // ranks))
    return e


def mpiexec():
    exe = Path(sys.executable).parent / "mpiexec"
    return str(exe) if exe.exists() else shutil.which("mpiexec")


def timed(cmd, cwd, environ):
    """Run ``cmd`` under /usr/bin/time -v: (wall s, user+sys s, max RSS bytes)."""
    t0 = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-v"] + list(cmd), cwd=cwd, env=environ,
                          capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
        raise SystemExit(f"failed: {' '.join(map(str, cmd))}")

    def get(key):
        return float(re.search(key + r": *([\d.]+)", proc.stderr).group(1))

    return (wall, get(r"User time \(seconds\)") + get(r"System time \(seconds\)"),
            get(r"Maximum resident set size \(kbytes\)") * 1024)


def epoch_timing(run, epoch=1):
    """(train s, energy updates, force updates, error s) of ``epoch`` from timing.out
    and nnp-train.log.0000 of a run folder."""
    rows = [ln.split() for ln in (Path(run) / "timing.out").read_text().splitlines()
            if ln.strip() and not ln.startswith("#")]
    row = next(r for r in rows if r[0] == str(epoch))
    log = (Path(run) / "nnp-train.log.0000").read_text()
    n_e = int(re.search(rf"^ENERGY +{epoch} +(\d+)", log, re.M).group(1))
    m = re.search(rf"^FORCE +{epoch} +(\d+)", log, re.M)
    return float(row[1]), n_e, int(m.group(1)) if m else 0, float(row[3])


def _one_run(code, folder, name, text, names):
    run = Path(folder) / name
    if run.exists():
        shutil.rmtree(run)
    run.mkdir(parents=True)
    (run / "input.nn").write_text(text)
    for n in names:
        os.link(Path(folder) / n, run / n)
    cmd = ([str(N2P2 / "nnp-train")] if code == "n2p2" else
           [sys.executable, "-m", "hpcnnp.cli", "train", "-q", "--no-plots"])
    wall, cpu, rss = timed(cmd, run, env(1))
    train, ue, uf, err = epoch_timing(run)
    ckpt = run / "checkpoint"
    res = {"wall_s": wall, "cpu_s": cpu, "peak_rss": rss, "train_s": train,
           "updates": ue + uf, "energy_updates": ue, "force_updates": uf,
           "error_s": err, "s_per_update": train / max(1, ue + uf),
           "checkpoint_bytes": sum(p.stat().st_size for p in ckpt.glob("*"))
           if ckpt.is_dir() else 0}
    log = (run / "nnp-train.log.0000").read_text()
    m = re.search(r"^Checkpoints: ([\d.]+) s of waiting .* written in ([\d.]+) s", log, re.M)
    if m:                         # hpcnnp: time the loop waited, background write time
        res["checkpoint_wait_s"] = float(m.group(1))
        res["checkpoint_write_s"] = float(m.group(2))
    shutil.rmtree(run)
    return res


def side_by_side(folder, text, names=("input.data", "scaling.data"), text2=None):
    """nnp-train and ``hpcnnp train`` (defaults: checkpoints on) back to back, 1 rank,
    on the same files with settings ``text``.  Returns per code: wall/CPU seconds,
    peak RSS, the epoch-1 train time, updates and (wall) seconds per update.

    ``text2``: the same settings with more updates per epoch; each code then also
    runs with it, and ``cpu_per_update`` = ΔCPU / Δupdates of the two runs (CPU time
    is what a loaded machine measures fairly; the rest of the run cancels)."""
    out = {}
    for code in ("n2p2", "hpcnnp"):
        out[code] = _one_run(code, folder, code, text, names)
        if text2 is not None:
            more = _one_run(code, folder, code + "-more", text2, names)
            out[code]["cpu_per_update"] = ((more["cpu_s"] - out[code]["cpu_s"])
                                           / max(1, more["updates"] - out[code]["updates"]))
            out[code]["more"] = more
    return out


def print_side_by_side(sbs, what):
    print(f"\nside by side ({what}; 1 rank, back to back; per update from timing.out):")
    print(f"{'code':>7} {'updates':>8} {'s/update':>9} {'train s':>8} {'eval s':>7}"
          f" {'wall s':>7} {'CPU s':>7} {'peak RSS GB':>11} {'ckpt GB':>8}")
    for code in ("n2p2", "hpcnnp"):
        x = sbs[code]
        print(f"{code:>7} {x['updates']:>8d} {x['s_per_update']:>9.3f} {x['train_s']:>8.1f}"
              f" {x['error_s']:>7.1f} {x['wall_s']:>7.1f} {x['cpu_s']:>7.1f}"
              f" {x['peak_rss'] / 1e9:>11.2f} {x['checkpoint_bytes'] / 1e9:>8.2f}")
    n, h = sbs["n2p2"], sbs["hpcnnp"]
    if "checkpoint_wait_s" in h:
        print(f"hpcnnp checkpoints: the training waited {h['checkpoint_wait_s']:.2f} s in "
              f"all; the last P write took {h['checkpoint_write_s']:.2f} s in the background")
    print(f"ratio n2p2/hpcnnp: {n['s_per_update'] / h['s_per_update']:.1f}x per update "
          f"(wall); peak memory hpcnnp/n2p2 = {h['peak_rss'] / n['peak_rss']:.2f}")
    if "cpu_per_update" in n:
        print(f"CPU per update (difference of runs with {n['updates']} and "
              f"{n['more']['updates']} updates): n2p2 {n['cpu_per_update']:.3f} s, hpcnnp "
              f"{h['cpu_per_update']:.3f} s -> {n['cpu_per_update'] / h['cpu_per_update']:.1f}x")
