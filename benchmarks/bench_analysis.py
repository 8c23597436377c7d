"""Benchmark of the trajectory analyses: segregation + Li density on 17,000 atoms.

Writes (once, rank 0) a synthetic H5MD trajectory: a random walk of an LLZO-like
random cell (:func:`hpcnnp.testing.llzo_like_cell`, Li La Zr O + Co) of
``--atoms`` atoms, ``--frames`` frames, with two boundary planes in the metadata.
Then it times

* :class:`hpcnnp.analysis.Segregation` (Co, 0.2 Å bins) and
  :class:`hpcnnp.analysis.LiDensity` (0.5 Å grid), reported as frames/s,
* with ``--mdanalysis`` (serial, rank 0 only): MDAnalysis' ``DensityAnalysis``
  (Li, delta 0.5 Å) and ``LinearDensity`` (all atoms, 0.2 Å bins) on the same file,
  and the ratio of the frame rates,

and prints the peak resident memory (max over ranks).

Run::

    python benchmarks/bench_analysis.py --mdanalysis
    mpiexec -n 2 python benchmarks/bench_analysis.py
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import numpy as np


def _comm():
    try:
        from mpi4py import MPI
    except ImportError:
        return None
    return MPI.COMM_WORLD if MPI.COMM_WORLD.Get_size() > 1 else None


def make_trajectory(path, n_atoms, n_frames, seed=0, sigma=0.1, dt_ps=0.01):
    """Random walk (Gaussian steps, sigma Å per dimension) of an LLZO-like cell."""
    from hpcnnp.io.h5md import H5MDWriter
    from hpcnnp.testing import llzo_like_cell

    atoms = llzo_like_cell(n_atoms, seed=seed,
                           formula={"Li": 56, "La": 24, "Zr": 16, "O": 96, "Co": 8})
    L = atoms.cell.array[2, 2]
    atoms.info.update(structure_class="benchmark random walk", sigma=5,
                      planes=[{"normal": [0.0, 0.0, 1.0], "position": 0.25 * L},
                              {"normal": [0.0, 0.0, 1.0], "position": 0.75 * L}])
    rng = np.random.default_rng(seed)
    box = atoms.cell.array
    x = atoms.positions.copy()
    with H5MDWriter(path, atoms, fields=("position", "image")) as w:
        for k in range(n_frames):
            if k:
                x += rng.normal(0.0, sigma, x.shape)
            s = x @ np.linalg.inv(box)
            image = np.floor(s).astype(np.int64)
            w.write_frame(k, k * dt_ps, (s - image) @ box, box, image=image)


def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main():
    from hpcnnp.analysis import LiDensity, Segregation

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--atoms", type=int, default=17000)
    ap.add_argument("--frames", type=int, default=80)
    ap.add_argument("--file", default="bench_analysis_traj.h5")
    ap.add_argument("--repeat", type=int, default=2, help="best of N runs")
    ap.add_argument("--mdanalysis", action="store_true",
                    help="also time MDAnalysis DensityAnalysis and LinearDensity")
    args = ap.parse_args()
    comm = _comm()
    rank = comm.Get_rank() if comm is not None else 0
    size = comm.Get_size() if comm is not None else 1
    path = Path(args.file)
    if rank == 0 and not path.exists():
        t0 = time.perf_counter()
        make_trajectory(path, args.atoms, args.frames)
        print(f"wrote {path} ({args.atoms} atoms, {args.frames} frames, "
              f"{path.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t0:.1f} s")
    if comm is not None:
        comm.Barrier()

    def best(make):
        times = []
        for _ in range(args.repeat):
            if comm is not None:
                comm.Barrier()
            t0 = time.perf_counter()
            a = make().run(comm=comm)
            times.append(time.perf_counter() - t0)
        return min(times), a

    t_seg, seg = best(lambda: Segregation(str(path), "Co", bin_width=0.2))
    t_den, den = best(lambda: LiDensity(str(path), "Li", spacing=0.5))
    n = seg.n_frames
    mem = comm.allreduce(peak_mb(), op=__import__("mpi4py").MPI.MAX) if comm else peak_mb()
    if rank == 0:
        print(f"hpcnnp.analysis on {size} rank(s), {seg.trajectory.n_atoms} atoms, {n} frames")
        print(f"  Segregation(Co, 0.2 A)   {n / t_seg:8.1f} frames/s  ({t_seg:.2f} s; "
              f"read {seg.timing['read']:.2f} s on rank 0)")
        print(f"  LiDensity(Li, 0.5 A grid {tuple(den.grid)}) {n / t_den:8.1f} frames/s  "
              f"({t_den:.2f} s)")
        print(f"  both                     {n / (t_seg + t_den):8.1f} frames/s")
        print(f"  peak memory (max over ranks) {mem:.0f} MB")
    if args.mdanalysis and rank == 0:
        try:
            from MDAnalysis.analysis.density import DensityAnalysis
            from MDAnalysis.analysis.lineardensity import LinearDensity

            from hpcnnp.io.h5md import mdanalysis_universe
        except ImportError as exc:
            print(f"MDAnalysis not available: {exc}")
            return
        u = mdanalysis_universe(path)
        u.add_TopologyAttr("charges", np.zeros(len(u.atoms)))   # LinearDensity wants them
        t0 = time.perf_counter()
        DensityAnalysis(u.select_atoms("type Li"), delta=0.5).run()
        t_mda_den = time.perf_counter() - t0
        t0 = time.perf_counter()
        LinearDensity(u.atoms, grouping="atoms", binsize=0.2).run()
        t_mda_lin = time.perf_counter() - t0
        nf = u.trajectory.n_frames
        u.trajectory.close()
        print(f"MDAnalysis (serial), {nf} frames")
        print(f"  DensityAnalysis(Li, delta 0.5 A)  {nf / t_mda_den:8.1f} frames/s "
              f"-> hpcnnp LiDensity is {t_mda_den / t_den:.1f}x faster on {size} rank(s)")
        print(f"  LinearDensity(all, 0.2 A)         {nf / t_mda_lin:8.1f} frames/s "
              f"-> hpcnnp Segregation is {t_mda_lin / t_seg:.1f}x faster on {size} rank(s)")
        print(f"  both                              {nf / (t_mda_den + t_mda_lin):8.1f} "
              f"frames/s -> ratio {(t_mda_den + t_mda_lin) / (t_seg + t_den):.1f}x")
        print(f"  peak memory (rank 0, incl. MDAnalysis) {peak_mb():.0f} MB")


if __name__ == "__main__":
    main()
