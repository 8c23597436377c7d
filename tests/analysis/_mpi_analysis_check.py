"""Run under ``mpiexec -n 2``: every analysis gives bit-identical results on 2 ranks,
on every rank, and equal to a serial run (see test_analysis_mpi.py).

Usage: mpiexec -n 2 python _mpi_analysis_check.py TRAJ.h5
"""

import hashlib
import sys

import numpy as np
from mpi4py import MPI

from hpcnnp.analysis import (MSD, RDF, VDOS, ClusterSizes, Diffusivity,
                             InterdiffusionProfiles, LiDensity, Segregation)


def digest(results):
    h = hashlib.sha256()
    for k in sorted(results):
        v = results[k]
        if isinstance(v, dict):
            for kk in sorted(v):
                h.update(np.ascontiguousarray(np.asarray(v[kk], dtype=float)).tobytes())
        elif isinstance(v, (np.ndarray, float, int, np.number)):
            h.update(np.ascontiguousarray(np.asarray(v, dtype=float)).tobytes())
    return h.hexdigest()


def main(path):
    comm = MPI.COMM_WORLD
    makers = {
        "segregation": lambda: Segregation(path, "Co", windows=3),
        "density": lambda: LiDensity(path, grid=(14, 15, 24)),
        "profiles": lambda: InterdiffusionProfiles(path, windows=3),
        "clusters": lambda: ClusterSizes(path, "Co", cutoff=3.0),
        "rdf": lambda: RDF(path, r_max=6.0, nbins=60),
        "msd": lambda: MSD(path, "Li"),
        "vdos": lambda: VDOS(path),
    }
    failures = []
    for name, make in makers.items():
        for sel in (dict(), dict(start=3, stop=50, step=2)):
            par = make().run(comm=comm, **sel)
            ser = make().run(comm=None, **sel)
            d_par, d_ser = digest(par.results), digest(ser.results)
            all_par = comm.allgather(d_par)
            if len(set(all_par)) != 1:
                failures.append(f"{name} {sel}: ranks differ")
            if d_par != d_ser:
                failures.append(f"{name} {sel}: 2 ranks != serial")
            if par.n_reductions != 1:
                failures.append(f"{name}: {par.n_reductions} reductions")
    dif = Diffusivity(path, species="Li").run(comm=comm)
    if comm.allgather(dif.results.D)[0] != dif.results.D:
        failures.append("diffusivity: ranks differ")
    # an error on one rank is raised on every rank (no deadlock)
    seg = Segregation(path, "Co")
    if comm.Get_rank() == 1:
        seg._chunk = lambda chunk: 1 / 0
    try:
        seg.run(comm=comm)
        failures.append("error on rank 1 not raised")
    except Exception as exc:
        if "rank 1: ZeroDivisionError" not in str(exc):
            failures.append(f"unexpected error: {exc}")
    if comm.Get_rank() == 0:
        print("FAIL: " + "; ".join(failures) if failures else "OK")


if __name__ == "__main__":
    main(sys.argv[1])
