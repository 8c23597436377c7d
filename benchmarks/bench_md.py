"""Benchmark of production MD: LAMMPS + the hpcnnp plugin pair style.

1. Speed: LLZO-like cells (:func:`hpcnnp.testing.llzo_like_cell`, LLZO number
   density, ~80 neighbours within 6 Å) of ~2,000 and ~17,000 atoms with a synthetic
   potential of the published 225-SF set (5 elements, 20-20 networks), NVE steps
   on 1 and 2 MPI ranks (``mpiexec -n R``).  Reported: atom-steps/s per core from
   the wall time (and from the CPU time, less sensitive to other jobs on the node),
   ms per atom-step per core, the share of LAMMPS' Pair time, peak RSS per rank.
   Reference: LAMMPS + n2p2 (``pair_style hdnnp``) costs about 0.49 ms per
   atom-step per core with this SF set at ~88 neighbours on this machine class.
2. NVE energy drift: ``hpcnnp md`` (the production driver, 2 ranks) on a
   1,000-atom cell, NVT equilibration, then NVE at 1 fs; the drift is the slope of
   a straight-line fit of the total energy over the NVE frames, in meV/atom/ns.
   Two potentials: :func:`hpcnnp.testing.repulsive_potential` (smooth pair
   repulsion written as an HDNNP, 5 ps NVE), and the 225-SF synthetic potential
   with Glorot weights scaled by ``--weight-scale`` plus a ZBL overlay (``--zbl``,
   default switched off between 1.0 and 2.0 Å) as the short-range repulsion a
   random potential lacks (2 ps NVE; it runs far outside its scaling data, so
   expect stiff spots).

Run::

    python benchmarks/bench_md.py                        # everything (several minutes)
    python benchmarks/bench_md.py --sizes 2000 --skip-drift
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import _measure
import numpy as np

HERE = Path(__file__).resolve()


def make_potential(folder, weight_scale, seed=0):
    """Synthetic 225-SF potential (hpcnnp.testing) with Glorot weights x weight_scale."""
    from hpcnnp.io import n2p2
    from hpcnnp.testing import synthetic_potential

    if (folder / "input.nn").exists():
        return folder
    synthetic_potential(folder, seed=seed)
    st = n2p2.read_settings(folder / "input.nn")
    for el in st.elements:
        p = folder / n2p2.weights_filename(el)
        w = n2p2.read_weights(p, st.n_weights(el))
        n2p2.write_weights(p, weight_scale * w, st.layer_sizes(el))
    return folder


def make_cell(folder, n_atoms, seed=1, structure="llzo-like"):
    """extxyz + LAMMPS data file of an LLZO-like cell or an LLZO(001)|LCO(104)
    interface (hpcnnp.structures.interface, smallest cell with >= n_atoms);
    returns (extxyz, data, neighbours)."""
    from ase.io import write
    from ase.neighborlist import neighbor_list

    from hpcnnp.md.driver import lammps_frame, write_lammps_data
    from hpcnnp.testing import llzo_like_cell

    tag = f"{structure}{n_atoms}"
    xyz, data = folder / f"{tag}.extxyz", folder / f"{tag}.lammps"
    meta = folder / f"{tag}.json"
    if not meta.exists():
        if structure == "interface":
            from hpcnnp import structures as st
            atoms = st.interface(st.llzo_cubic(), (0, 0, 1), st.lco(), (1, 0, 4),
                                 natoms=n_atoms)
        else:
            atoms = llzo_like_cell(n_atoms, seed=seed)
        write(xyz, atoms)
        q, _ = lammps_frame(atoms.cell.array)
        write_lammps_data(data, atoms, ["Li", "O", "Co", "Zr", "La"], q, triclinic=False)
        nn = len(neighbor_list("i", atoms, 6.0)) / len(atoms)
        meta.write_text(json.dumps({"neighbours_6A": nn}))
    return xyz, data, json.loads(meta.read_text())["neighbours_6A"]


# ---------------------------------------------------------------------------------------
# speed worker (runs under mpiexec)
# ---------------------------------------------------------------------------------------

def _peak_rss_mb():
    """Peak resident set size of this process (VmHWM), MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def worker(data, pot, steps, warmup, log):
    from hpcnnp.md.plugin import lammps_plugin_path, preload_mpi

    preload_mpi()
    from lammps import lammps
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    plugin = comm.bcast(lammps_plugin_path() if comm.rank == 0 else None)
    lmp = lammps(cmdargs=["-log", log, "-screen", "none", "-nocite"], comm=comm)
    for c in ("units metal", "atom_style atomic", "atom_modify map array", "boundary p p p",
              f"read_data {data}", f"plugin load {plugin}",
              f"pair_style hpcnnp 6.01 dir {pot}", "pair_coeff * * Li O Co Zr La",
              "neighbor 1.0 bin", "neigh_modify every 1 delay 0 check yes",
              "timestep 0.001", "velocity all create 300 4 dist gaussian loop all",
              "fix 1 all nve", "thermo 1000", f"run {warmup}"):
        lmp.command(c)
    natoms = lmp.get_natoms()
    comm.Barrier()
    c0, t0 = time.process_time(), time.perf_counter()
    lmp.command(f"run {steps}")
    comm.Barrier()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    cpu = comm.allreduce(cpu) / comm.size
    rss = comm.gather(_peak_rss_mb())
    lmp.close()
    if comm.rank == 0:
        text = Path(log).read_text()
        pair = re.findall(r"^Pair\s*\|.*\|\s*([\d.]+)\s*$", text, re.M)
        print("RESULT " + json.dumps({"natoms": natoms, "ranks": comm.size, "steps": steps,
                                      "wall": wall, "cpu": cpu, "rss_mb": rss,
                                      "pair_pct": float(pair[-1]) if pair else None}),
              flush=True)


def speed(data, pot, ranks, steps, warmup, folder):
    log = folder / f"log.speed.{Path(data).stem}.{ranks}"
    cmd = [sys.executable, str(HERE), "--worker", str(data), str(pot), str(steps),
           str(warmup), str(log)]
    if ranks > 1:
        cmd = [_measure.mpiexec(), "-n", str(ranks)] + cmd
    res = subprocess.run(cmd, capture_output=True, text=True, env=_measure.env(ranks))
    rows = [line[7:] for line in res.stdout.splitlines() if line.startswith("RESULT ")]
    if res.returncode != 0 or not rows:
        raise SystemExit(f"speed run failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}")
    return json.loads(rows[0])


# ---------------------------------------------------------------------------------------
# NVE drift through the production driver
# ---------------------------------------------------------------------------------------

def drift(folder, pot, n_atoms, temperature, equil_ps, nve_ps, ranks, zbl, name):
    from hpcnnp.io import h5md

    xyz, _, _ = make_cell(folder, n_atoms, seed=2)
    out = folder / f"drift{n_atoms}_{name}"
    if out.exists():
        import shutil
        shutil.rmtree(out)
    proto = folder / f"drift{n_atoms}_{name}.yaml"
    lines = [f"structure: {xyz}", f"potential: {pot}", f"output: {out}", "timestep: 1.0",
             "seed: 11", "dump_stride: 10", "thermo_stride: 100", "segment: 1 ps"]
    if zbl:
        lines.append(f"zbl: {{inner: {zbl[0]}, outer: {zbl[1]}}}")
    lines += ["stages:",
              f"  - {{type: nvt, T: {temperature}, time: {equil_ps} ps, tdamp: 0.05 ps}}",
              f"  - {{type: nve, time: {nve_ps} ps}}"]
    proto.write_text("\n".join(lines) + "\n")
    cmd = [sys.executable, "-m", "hpcnnp.cli", "md", str(proto)]
    if ranks > 1:
        cmd = [_measure.mpiexec(), "-n", str(ranks)] + cmd
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, env=_measure.env(ranks))
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        raise SystemExit(f"drift run failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}")
    with h5md.H5MDTrajectory(out / "traj.h5") as t:
        steps, times, etot = t.observable("total_energy")
        temp = t.observable("temperature")[2]
        ew = t.observable("n_extrapolation_warnings")[2]
    start = int(round(equil_ps * 1000))
    sel = steps >= start
    tt, ee = times[sel] - times[sel][0], etot[sel]
    slope = np.polyfit(tt, ee, 1)[0]                     # eV/ps
    return {"natoms": n_atoms, "ranks": ranks, "T_set": temperature,
            "T_nve_mean": float(temp[sel].mean()), "nve_ps": float(tt[-1]),
            "drift_meV_atom_ns": slope * 1e3 * 1e3 / n_atoms,
            "fluct_meV_atom": float((ee - ee.mean()).std() * 1e3 / n_atoms),
            "max_dev_meV_atom": float(np.abs(ee - ee[0]).max() * 1e3 / n_atoms),
            "wall_s": wall, "ew_per_frame": float(ew[sel].mean()),
            "progress": res.stdout.strip().splitlines()[-2:]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[2000, 17000])
    ap.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--structure", choices=("llzo-like", "interface"), default="llzo-like",
                    help="speed runs on LLZO-like random cells or on LLZO(001)|LCO(104) "
                    "interfaces (the smallest matched cell with at least --sizes atoms)")
    ap.add_argument("--folder", default="bench_md_data")
    ap.add_argument("--weight-scale", type=float, default=0.1)
    ap.add_argument("--skip-drift", action="store_true")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--drift-atoms", type=int, default=1000)
    ap.add_argument("--drift-temperature", type=float, default=300.0)
    ap.add_argument("--equil-ps", type=float, default=0.5)
    ap.add_argument("--nve-ps", type=float, default=2.0)
    ap.add_argument("--zbl", type=float, nargs=2, metavar=("INNER", "OUTER"),
                    default=(1.0, 2.0),
                    help="ZBL overlay of the drift run, Å (default 1.0 2.0); a random-weight "
                    "potential has no short-range repulsion, and atoms that meet reach "
                    "SFs the scaling data never saw (huge forces)")
    ap.add_argument("--no-zbl", dest="zbl", action="store_const", const=None)
    ap.add_argument("--drift-potential", nargs="+", choices=("repulsive", "synthetic"),
                    default=["repulsive", "synthetic"],
                    help="repulsive: hpcnnp.testing.repulsive_potential (smooth, cheap); "
                    "synthetic: the 225-SF potential of the speed runs (+ ZBL)")
    ap.add_argument("--nve-ps-repulsive", type=float, default=5.0)
    ap.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        data, pot, steps, warmup, log = args.worker
        worker(data, pot, int(steps), int(warmup), log)
        return
    folder = Path(args.folder).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    pot = make_potential(folder / f"pot_w{args.weight_scale}", args.weight_scale)
    if not args.skip_speed:
        print(f"{'atoms':>7} {'nbrs':>5} {'ranks':>5} {'steps':>5} {'wall s':>7} "
              f"{'atom-steps/s/core':>17} {'(cpu)':>8} {'ms/atom-step/core':>17} "
              f"{'vs n2p2':>7} {'pair %':>6} {'RSS MB/rank':>12}", flush=True)
        for n in args.sizes:
            _, data, nbrs = make_cell(folder, n, structure=args.structure)
            steps, warmup = (20, 2) if n <= 5000 else (5, 1)
            for r in args.ranks:
                row = speed(data, pot, r, steps, warmup, folder)
                per_core = row["natoms"] * steps / row["wall"] / r
                per_core_cpu = row["natoms"] * steps / row["cpu"] / r
                ms = 1e3 / per_core
                print(f"{row['natoms']:>7} {nbrs:>5.1f} {r:>5} {steps:>5} {row['wall']:>7.2f} "
                      f"{per_core:>17.0f} {per_core_cpu:>8.0f} {ms:>17.3f} "
                      f"{0.49 / ms:>6.2f}x {row['pair_pct'] or float('nan'):>6.1f} "
                      f"{' '.join(f'{m:.0f}' for m in row['rss_mb']):>12}", flush=True)
    if args.skip_drift:
        return
    ranks = 2 if 2 in args.ranks else 1
    for name in args.drift_potential:
        if name == "synthetic":
            what = f"225-SF synthetic, weights x {args.weight_scale}"
            d = drift(folder, pot, args.drift_atoms, args.drift_temperature, args.equil_ps,
                      args.nve_ps, ranks, args.zbl, name)
            if args.zbl:
                what += f", ZBL {args.zbl[0]}-{args.zbl[1]} Å"
        else:
            from hpcnnp.testing import repulsive_potential
            rep = folder / "pot_repulsive"
            if not (rep / "input.nn").exists():
                repulsive_potential(rep)
            what = "repulsive_potential (12 SFs, smooth pair repulsion)"
            d = drift(folder, rep, args.drift_atoms, args.drift_temperature, args.equil_ps,
                      args.nve_ps_repulsive, ranks, None, name)
        print(f"\nNVE drift, {what}: {d['natoms']} atoms, NVT {args.equil_ps} ps at "
              f"{d['T_set']:.0f} K, then NVE {d['nve_ps']:.2f} ps at 1 fs, {d['ranks']} ranks, "
              f"<T> = {d['T_nve_mean']:.0f} K")
        print(f"  drift {d['drift_meV_atom_ns']:+.4f} meV/atom/ns (straight-line fit), "
              f"fluctuation (std) {d['fluct_meV_atom']:.4f} meV/atom, max |E - E0| "
              f"{d['max_dev_meV_atom']:.4f} meV/atom, extrapolation warnings/frame "
              f"{d['ew_per_frame']:.0f}, wall {d['wall_s']:.0f} s")
        for line in d["progress"][-1:]:
            print("  " + line)


if __name__ == "__main__":
    main()
