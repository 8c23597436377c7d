"""Benchmark of the trajectory analyses: segregation, Li density, RDF, MSD and the
smallest-distance check on 17,000 atoms.

Writes (once, rank 0) a synthetic H5MD trajectory: a random walk of an LLZO-like
random cell (:func:`hpcnnp.testing.llzo_like_cell`, Li La Zr O + Co) of
``--atoms`` atoms, ``--frames`` frames, with two boundary planes in the metadata.
Then it times

* :class:`hpcnnp.analysis.Segregation` (Co, 0.2 Å bins),
  :class:`hpcnnp.analysis.LiDensity` (0.5 Å grid), :class:`hpcnnp.analysis.RDF`
  (Li-O, 6 Å, 120 bins), :class:`hpcnnp.analysis.MSD` (Li) and
  :class:`hpcnnp.analysis.MinimumDistance`, reported as frames/s (wall, best of
  ``--repeat``) and CPU seconds of rank 0 (``time.process_time``: comparable on a
  loaded machine),
* with ``--mdanalysis`` (serial, rank 0 only): MDAnalysis' ``DensityAnalysis``
  (Li, delta 0.5 Å), ``LinearDensity`` (all atoms, 0.2 Å bins) and ``InterRDF``
  (Li-O, 6 Å, 120 bins) on the same file, opened plainly with
  ``MDAnalysis.Universe(path)``, and the ratios,

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

from hpcnnp.io.h5md import H5MDTrajectory, H5MDWriter


def _comm():
    try:
        from mpi4py import MPI
    except ImportError:
        return None
    return MPI.COMM_WORLD if MPI.COMM_WORLD.Get_size() > 1 else None


def make_trajectory(path, n_atoms, n_frames, seed=0, sigma=0.1, dt_ps=0.01):
    """Random walk (Gaussian steps, sigma Å per dimension) of an LLZO-like cell."""
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
    from hpcnnp.analysis import MSD, RDF, LiDensity, MinimumDistance, Segregation

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--atoms", type=int, default=17000)
    ap.add_argument("--frames", type=int, default=80)
    ap.add_argument("--file", default="bench_analysis_traj.h5md")
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
        times, cpus = [], []
        for _ in range(args.repeat):
            if comm is not None:
                comm.Barrier()
            t0, c0 = time.perf_counter(), time.process_time()
            a = make().run(comm=comm)
            times.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
        return min(times), min(cpus), a

    runs = {"Segregation(Co, 0.2 A)": lambda: Segregation(str(path), "Co", bin_width=0.2),
            "LiDensity(Li, 0.5 A)": lambda: LiDensity(str(path), "Li", spacing=0.5),
            "RDF(Li-O, 6 A, 120 bins)": lambda: RDF(str(path), pairs=[("Li", "O")],
                                                    r_max=6.0, nbins=120),
            "MSD(Li)": lambda: MSD(str(path), "Li"),
            "MinimumDistance": lambda: MinimumDistance(str(path))}
    res = {name: best(make) for name, make in runs.items()}
    n = res["Segregation(Co, 0.2 A)"][2].n_frames
    mem = comm.allreduce(peak_mb(), op=__import__("mpi4py").MPI.MAX) if comm else peak_mb()
    if rank == 0:
        n_atoms = res["MSD(Li)"][2].trajectory.n_atoms
        print(f"hpcnnp.analysis on {size} rank(s), {n_atoms} atoms, {n} frames")
        for name, (t, c, _) in res.items():
            print(f"  {name:26s} {n / t:8.1f} frames/s  ({t:.2f} s wall, {c:.2f} s CPU "
                  "rank 0)")
        print(f"  peak memory (max over ranks) {mem:.0f} MB")
    if args.mdanalysis and rank == 0:
        mdanalysis_peers(path, res, size)


def mdanalysis_peers(path, res, size):
    """MDAnalysis' peers of three analyses on the same file (serial), with ratios."""
    try:
        import MDAnalysis as mda
        from MDAnalysis.analysis.density import DensityAnalysis
        from MDAnalysis.analysis.lineardensity import LinearDensity
        from MDAnalysis.analysis.rdf import InterRDF
    except ImportError as exc:
        print(f"MDAnalysis not available: {exc}")
        return
    u = mda.Universe(str(path))                        # plain: no topology needed
    with H5MDTrajectory(path) as t:
        species = list(t.species)
    u.add_TopologyAttr("types", species)
    u.add_TopologyAttr("charges", np.zeros(len(u.atoms)))   # LinearDensity wants them
    u.add_TopologyAttr("masses", np.ones(len(u.atoms)))
    nf = u.trajectory.n_frames
    t_mda = {}
    for name, job in (
            ("DensityAnalysis(Li, delta 0.5 A)",
             lambda: DensityAnalysis(u.select_atoms("type Li"), delta=0.5).run()),
            ("LinearDensity(all, 0.2 A)",
             lambda: LinearDensity(u.atoms, grouping="atoms", binsize=0.2).run()),
            ("InterRDF(Li-O, 6 A, 120 bins)",
             lambda: InterRDF(u.select_atoms("type Li"), u.select_atoms("type O"),
                              nbins=120, range=(0.0, 6.0)).run())):
        t0, c0 = time.perf_counter(), time.process_time()
        job()
        t_mda[name] = (time.perf_counter() - t0, time.process_time() - c0)
    u.trajectory.close()
    print(f"MDAnalysis (serial), {nf} frames")
    mine = [res[k] for k in ("LiDensity(Li, 0.5 A)", "Segregation(Co, 0.2 A)",
                             "RDF(Li-O, 6 A, 120 bins)")]
    for (name, (t, c)), (tw, tc, _) in zip(t_mda.items(), mine):
        print(f"  {name:32s} {nf / t:8.1f} frames/s ({c:.2f} s CPU) -> hpcnnp/MDAnalysis"
              f" speed: {t / tw:.1f}x wall on {size} rank(s), {c / tc:.1f}x CPU (rank 0)")
    print(f"  peak memory (rank 0, incl. MDAnalysis) {peak_mb():.0f} MB")


if __name__ == "__main__":
    main()
