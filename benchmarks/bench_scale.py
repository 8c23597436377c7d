"""Benchmark of ``hpcnnp scale`` (n2p2's nnp-scaling), serial or MPI.

Writes (once, rank 0) a data set of random LLZO-like periodic cells of 64-216 atoms
(:func:`hpcnnp.testing.llzo_like_cell`, Li La Zr O Co, LLZO number density, ~80
neighbours within 6 Å) and an ``input.nn`` with the published 225-SF set per element
(sfgen preset llzo-lco), then runs :func:`hpcnnp.descriptors.scaling.run_scaling`
and prints the structures/s of pass 1 (neighbour lists) and pass 2 (symmetry
functions) and the wall time of the whole run including the files.

Run::

    python benchmarks/bench_scale.py --structures 400
    mpiexec -n 2 python benchmarks/bench_scale.py --structures 400
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np


def _comm():
    try:
        from mpi4py import MPI
    except ImportError:
        return None
    return MPI.COMM_WORLD if MPI.COMM_WORLD.Get_size() > 1 else None


def make_dataset(folder, n_structures, seed=0):
    from ase.calculators.singlepoint import SinglePointCalculator

    from hpcnnp.descriptors.sfgen import LLZO_LCO_DEFAULT
    from hpcnnp.io import n2p2
    from hpcnnp.testing import llzo_like_cell

    folder.mkdir(parents=True, exist_ok=True)
    head = ["number_of_elements 5", "elements Li La Zr O Co", "cutoff_type 6 0.0",
            "scale_symmetry_functions", "center_symmetry_functions", "scale_min_short -1.0",
            "scale_max_short 1.0", "global_hidden_layers_short 2", "global_nodes_short 20 20",
            "global_activation_short t t l", "use_short_forces"]
    (folder / "input.nn").write_text("\n".join(head) + "\n" + LLZO_LCO_DEFAULT.generate())
    rng = np.random.default_rng(seed)
    images = []
    for k in range(n_structures):
        n = int(rng.integers(64, 217))
        atoms = llzo_like_cell(n, seed=seed + k,
                               formula={"Li": 56, "La": 24, "Zr": 16, "O": 96, "Co": 8})
        atoms.calc = SinglePointCalculator(atoms, energy=float(rng.normal()),
                                           forces=np.zeros((n, 3)))
        images.append(atoms)
    n2p2.write_data(folder / "input.data", images)


def main():
    from hpcnnp.descriptors.scaling import run_scaling

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--structures", type=int, default=400)
    ap.add_argument("--folder", default="bench_scale_data")
    ap.add_argument("--nbins", type=int, default=500)
    args = ap.parse_args()
    comm = _comm()
    rank = comm.Get_rank() if comm is not None else 0
    size = comm.Get_size() if comm is not None else 1
    folder = Path(args.folder)
    if rank == 0 and not (folder / f"n{args.structures}").exists():
        make_dataset(folder, args.structures)
        (folder / f"n{args.structures}").write_text("")
    if comm is not None:
        comm.Barrier()
    t0 = time.perf_counter()
    res = run_scaling(folder / "input.nn", folder / "input.data", folder / f"out{size}",
                      nbins=args.nbins, comm=comm, progress_interval=0)
    wall = time.perf_counter() - t0
    if rank == 0:
        n = res.n_structures
        atoms = sum(res.n_atoms.values())
        t1, t2 = res.timings["pass1"], res.timings["pass2"]
        print(f"ranks {size}: {n} structures ({atoms / n:.0f} atoms avg, 225 SFs/element, "
              f"mean {res.neighbors['all']['mean']:.1f} neighbours)")
        print(f"  pass 1 (neighbour lists)   {t1:6.2f} s  {n / t1:7.1f} structures/s")
        print(f"  pass 2 (symmetry functions){t2:6.2f} s  {n / t2:7.1f} structures/s  "
              f"{atoms / t2:8.0f} atoms/s")
        print(f"  reduction + histograms     {res.timings['reduce']:6.2f} s")
        print(f"  whole run incl. files      {wall:6.2f} s  {n / wall:7.1f} structures/s")


if __name__ == "__main__":
    main()
