"""Benchmark of ``hpcnnp predict``: one rank against ``mpiexec -n P`` in the same run.

Writes a data set of ``--structures`` structures (the synth5_A structures of
``../shared/refdata``, repeated, each with its own small random displacement) and
predicts it with the synth5_A potential, with forces, once serially and once under
``mpiexec -n P`` (structure k on rank k % P, rank 0 writes).  Prints structures/s and
atoms/s of both (wall time of the whole command, start-up included, and the time the
command itself reports), the CPU time of all processes of each, the parallel speed-up, the peak resident memory of the
serial run, and checks that both wrote identical files.

Run::

    python benchmarks/bench_predict.py --structures 300 --ranks 2
"""

from __future__ import annotations

import argparse
import filecmp
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REFDATA = Path(os.environ.get("HPCNNP_REFDATA",
                              Path(__file__).resolve().parents[2] / "shared" / "refdata"))


def make_data(path, n, seed=0):
    from hpcnnp.io import n2p2

    base = n2p2.read_data(REFDATA / "synth5_A" / "input.data")
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        a = base[k % len(base)].copy()
        a.positions += rng.normal(0.0, 0.02, a.positions.shape)
        a.calc = base[k % len(base)].calc
        out.append(a)
    n2p2.write_data(path, out)
    return sum(len(a) for a in out)


def _cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run(cmd, cwd):
    """(wall s of the command, s the command reports for the prediction, CPU s of all
    its processes -- every rank included)."""
    c0, t0 = _cpu(), time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(proc.stdout + proc.stderr)
    inner = float(re.search(r"atoms in ([0-9.]+) s", proc.stdout).group(1))
    return wall, inner, _cpu() - c0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--structures", type=int, default=300)
    ap.add_argument("--ranks", type=int, default=2)
    args = ap.parse_args()
    pot = REFDATA / "synth5_A" / "potential"
    if not pot.is_dir():
        sys.exit(f"{pot} not found (set HPCNNP_REFDATA)")
    mpiexec = str(Path(sys.executable).with_name("mpiexec"))
    with tempfile.TemporaryDirectory(prefix="bench_predict_") as tmp:
        tmp = Path(tmp)
        atoms = make_data(tmp / "input.data", args.structures)
        hp = [sys.executable, "-m", "hpcnnp.cli", "predict", "-q", "-p", str(pot), "-d",
              "input.data", "--forces"]
        ser = run(hp + ["-o", "ser"], tmp)
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        par = run([mpiexec, "-n", str(args.ranks)] + hp + ["-o", "par"], tmp)
        same = all(filecmp.cmp(tmp / "ser" / f, tmp / "par" / f, shallow=False)
                   for f in os.listdir(tmp / "ser"))
        n = args.structures
        print(f"hpcnnp predict, synth5_A potential, {n} structures, {atoms} atoms, forces")
        for label, (wall, inner, cpu) in (("1 rank", ser), (f"{args.ranks} ranks", par)):
            print(f"  {label:8s}: {n / inner:8.1f} structures/s, {atoms / inner:9.0f} atoms/s "
                  f"(prediction {inner:.2f} s wall; command incl. start-up {wall:.2f} s "
                  f"wall, {cpu:.2f} s CPU of all ranks)")
        print(f"  speed-up {args.ranks} ranks / 1 rank: {ser[1] / par[1]:.2f} (prediction), "
              f"{ser[0] / par[0]:.2f} (command); CPU time {args.ranks} ranks / 1 rank "
              f"{par[2] / ser[2]:.2f} (1.0 = no parallel overhead; on a loaded machine "
              "the wall-time speed-up says little)")
        print(f"  peak RSS of the serial run: {peak:.0f} MiB; files identical: {same}")
        shutil.rmtree(tmp / "ser")
        shutil.rmtree(tmp / "par")


if __name__ == "__main__":
    main()
