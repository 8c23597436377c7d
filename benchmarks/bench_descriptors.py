"""Benchmark of hpcnnp's descriptor and energy/force kernels (single thread), with n2p2
measured on the same inputs in the same run.

Exponential SFs (types 2/3): periodic random cells at LLZO density
(:func:`hpcnnp.testing.llzo_like_cell`) and the published LLZO/LCO set (225 SFs per
element, 5 elements, 20-20 networks, :func:`hpcnnp.testing.synthetic_potential`,
scaling from the benchmark cell itself); it times

  nlist  neighbour-list build (C core, all images within r_c = 6 Å)
  sf     symmetry-function values on a prebuilt neighbour list
  sfd    SF values + Cartesian derivatives (``_core.symmetry_functions(...,
         derivatives=True)``)
  ef     energy + forces, raw ``_core.energy_forces`` on a prebuilt neighbour list
  ef+nl  energy + forces through ``Potential.compute`` (checks, neighbour list, result)

Polynomial SFs (types 20/22, compact support): n2p2's example potential Anisole_SCAN
(``../shared/refdata/n2p2-examples``, 331-354 SFs per element, r_c 15 Bohr, ~190
neighbours per atom) on its five 256-atom data-set structures, ``ef`` and ``ef+nl``.

Every kernel reports the CPU time (``time.process_time``, best of ``--repeat``), atoms/s
and ms/atom, plus peak memory (``ru_maxrss`` of the process and the tracemalloc peak of
Python-level allocations, measured in a separate untimed pass).

n2p2 (``nnp-dataset`` built from source, found as the tests find it: ``--n2p2-bin``,
``$HPCNNP_N2P2_BIN``, the PATH or ``n2p2/bin`` beside the repository) evaluates the
same potential files on the same structures in the same run: its energy+force cost per
structure is the CPU time (user + sys of the child, ``RUSAGE_CHILDREN``) of a run on k
structures minus that of a run on one structure, divided by k - 1 (start-up and setup
cancel; neighbour list, SFs, networks, forces and output remain).  The ratio
hpcnnp/n2p2 is printed for ``ef+nl`` (the comparable quantity) and ``ef``.  Without
n2p2 the ratio columns say so; no stored n2p2 figure is ever printed.

Run::

    python benchmarks/bench_descriptors.py
    python benchmarks/bench_descriptors.py --sizes 200 2000 17000 --repeat 5 --json out.json

Thread counts of OpenMP/BLAS are pinned to 1 before numpy is imported.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse            # noqa: E402
import json                # noqa: E402
import platform            # noqa: E402
import resource            # noqa: E402
import shutil              # noqa: E402
import sys                 # noqa: E402
import tempfile            # noqa: E402
import time                # noqa: E402
import tracemalloc         # noqa: E402
from pathlib import Path   # noqa: E402

import numpy as np         # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))     # the n2p2 locator the tests use
from _n2p2 import n2p2_bin, run  # noqa: E402

POLYNOMIAL_CASE = "Anisole_SCAN"


def _best(fn, repeat):
    """(best CPU seconds, result) over *repeat* calls."""
    best = float("inf")
    out = None
    for _ in range(repeat):
        t = time.process_time()
        out = fn()
        best = min(best, time.process_time() - t)
    return best, out


def _maxrss_mib():
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1024.0 if sys.platform != "darwin" else rss / 2**20


def _children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def n2p2_seconds_per_structure(bin_dir, pot_dir, structures, repeat, workdir):
    """n2p2's CPU seconds per structure (energy + forces) of nnp-dataset, from a run
    on all *structures* minus a run on the first one (best of *repeat* each)."""
    from hpcnnp.io import n2p2

    folder = Path(tempfile.mkdtemp(prefix="n2p2-", dir=workdir))
    for f in Path(pot_dir).iterdir():
        if f.name == "input.nn" or f.name.startswith(("scaling", "weights")):
            shutil.copy(f, folder / f.name)
    text = (folder / "input.nn").read_text()
    if "use_short_forces" not in text.split():
        (folder / "input.nn").write_text(text + "\nuse_short_forces\n")
    times = {}
    for k in (1, len(structures)):
        n2p2.write_data(folder / "input.data", structures[:k])
        best = float("inf")
        for _ in range(repeat):
            t = _children_cpu()
            run(bin_dir, "nnp-dataset", folder, 0)
            best = min(best, _children_cpu() - t)
        times[k] = best
    shutil.rmtree(folder)
    return (times[len(structures)] - times[1]) / (len(structures) - 1)


def _rows(timings, n, n2p2_ms):
    rows = {}
    for name, t in timings.items():
        ms = 1e3 * t / n
        row = {"cpu_seconds": t, "ms_per_atom": ms, "atoms_per_s": n / t}
        if n2p2_ms is not None and name in ("ef", "ef+nl"):
            row["n2p2_ms_per_atom"] = n2p2_ms
            row["ratio_to_n2p2"] = ms / n2p2_ms
        rows[name] = row
    return rows


def _python_peaks(fns):
    peaks = {}
    for name, fn in fns:
        tracemalloc.start()
        fn()
        peaks[name] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    return peaks


def bench_size(n_atoms, repeat, seed, workdir, n2p2_dir):
    from hpcnnp import _core
    from hpcnnp.potential import Potential
    from hpcnnp.testing import llzo_like_cell, synthetic_potential

    atoms = llzo_like_cell(n_atoms, seed=seed)
    folder = synthetic_potential(os.path.join(workdir, f"pot{n_atoms}"), seed=seed,
                                 structures=[atoms])
    pot = Potential.from_n2p2(folder)
    model = pot._model
    nl, elem = pot.neighbor_list(atoms)
    n = len(atoms)

    timings = {}
    timings["nlist"], _ = _best(lambda: pot.neighbor_list(atoms), repeat)
    timings["sf"], _ = _best(lambda: _core.symmetry_functions(model, nl, elem), repeat)
    timings["sfd"], _ = _best(
        lambda: _core.symmetry_functions(model, nl, elem, derivatives=True), repeat)
    timings["ef"], _ = _best(lambda: _core.energy_forces(model, nl, elem, n, forces=True),
                             repeat)
    timings["ef+nl"], full = _best(lambda: pot.compute(atoms, forces=True, stress=False),
                                   repeat)
    assert np.isfinite(full.energy) and np.isfinite(full.forces).all()
    rss = _maxrss_mib()
    peaks = _python_peaks((
        ("sfd", lambda: _core.symmetry_functions(model, nl, elem, derivatives=True)),
        ("ef+nl", lambda: pot.compute(atoms, forces=True, stress=False))))
    n2p2_ms = None
    if n2p2_dir is not None:
        n2p2_ms = 1e3 * n2p2_seconds_per_structure(n2p2_dir, folder, [atoms] * 3, repeat,
                                                   workdir) / n
    return {"label": f"{n} atoms (cubic cell {atoms.cell.lengths()[0]:.2f} Å), "
                     f"{nl.n_pairs / n:.1f} neighbours/atom within 6 Å, 225 SFs/element "
                     "(types 2/3), 5 elements, 20-20 networks",
            "n_atoms": n, "neighbours_per_atom": nl.n_pairs / n,
            "timings": _rows(timings, n, n2p2_ms), "tracemalloc_peak_mib": peaks,
            "maxrss_mib": rss}


def bench_polynomial(refdata, repeat, workdir, n2p2_dir, n_structures=5):
    """Anisole_SCAN (types 20/22): hpcnnp and n2p2 on the (first *n_structures* of the)
    five data-set structures."""
    from hpcnnp import _core
    from hpcnnp.io import n2p2
    from hpcnnp.potential import Potential

    root = Path(refdata) / "n2p2-examples" / POLYNOMIAL_CASE
    pot = Potential.from_n2p2(root / "potential")
    structures = n2p2.read_data(root / "nnp-dataset" / "input.data",
                                elements=pot.elements)[:n_structures]
    n = sum(len(a) for a in structures)
    lists = [pot.neighbor_list(a) for a in structures]
    timings = {
        "nlist": _best(lambda: [pot.neighbor_list(a) for a in structures], repeat)[0],
        "ef": _best(lambda: [_core.energy_forces(pot._model, nl, elem, len(elem))
                             for nl, elem in lists], repeat)[0],
        "ef+nl": _best(lambda: [pot.compute(a, forces=True, stress=False)
                                for a in structures], repeat)[0],
    }
    rss = _maxrss_mib()
    peaks = _python_peaks((("ef+nl", lambda: pot.compute(structures[0], forces=True,
                                                        stress=False)),))
    n2p2_ms = None
    if n2p2_dir is not None:
        n2p2_ms = 1e3 * n2p2_seconds_per_structure(
            n2p2_dir, root / "potential", structures, repeat, workdir) / len(structures[0])
    n_sf = "/".join(str(len(pot.symmetry_function_list[el])) for el in pot.elements)
    nb = sum(nl.n_pairs for nl, _ in lists) / n
    return {"label": f"{POLYNOMIAL_CASE}: {len(structures)} x {len(structures[0])} atoms, "
                     f"{nb:.0f} neighbours/atom within {pot.cutoff:g} Bohr, {n_sf} SFs/"
                     f"element ({'/'.join(pot.elements)}; types 20/22, polynomial)",
            "n_atoms": n, "neighbours_per_atom": nb,
            "timings": _rows(timings, n, n2p2_ms), "tracemalloc_peak_mib": peaks,
            "maxrss_mib": rss}


def _report(res, n2p2_note):
    lines = [f"\n== {res['label']}",
             f"{'kernel':<8} {'CPU s':>9} {'atoms/s':>11} {'ms/atom':>9} "
             f"{'n2p2 ms/atom':>13} {'hpcnnp/n2p2':>12}"]
    labels = {"nlist": "nlist", "sf": "sf", "sfd": "sf+deriv", "ef": "E+F raw",
              "ef+nl": "E+F pot"}
    for key, row in res["timings"].items():
        if "ratio_to_n2p2" in row:
            ref = f"{row['n2p2_ms_per_atom']:13.4f} {row['ratio_to_n2p2']:12.3f}"
        elif key in ("ef", "ef+nl"):
            ref = f"{n2p2_note:>26}"
        else:
            ref = ""
        lines.append(f"{labels[key]:<8} {row['cpu_seconds']:9.4f} {row['atoms_per_s']:11.0f} "
                     f"{row['ms_per_atom']:9.4f} {ref}")
    lines.append(f"peak RSS (ru_maxrss, whole process so far): {res['maxrss_mib']:.1f} MiB; "
                 "tracemalloc peak (Python/numpy allocations): "
                 + ", ".join(f"{k} {v:.1f} MiB" for k, v in
                             res["tracemalloc_peak_mib"].items()))
    return "\n".join(lines)


def _parse(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="*", default=[200, 2000], metavar="N",
                   help="numbers of atoms of the LLZO benchmark cells (default: 200 2000)")
    p.add_argument("--repeat", type=int, default=5, metavar="N",
                   help="timed repetitions per kernel; the best is reported (default 5)")
    p.add_argument("--seed", type=int, default=1, help="seed of cells and weights")
    p.add_argument("--refdata", default=os.environ.get(
        "HPCNNP_REFDATA", str(REPO.parent / "shared" / "refdata")),
        help="folder with n2p2-examples/ (the polynomial-SF line; default "
             "$HPCNNP_REFDATA or ../shared/refdata)")
    p.add_argument("--n2p2-bin", help="folder with n2p2's nnp-dataset (default: as the "
                                      "tests find it)")
    p.add_argument("--no-n2p2", action="store_true", help="do not run n2p2")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = p.parse_args(argv)
    if args.repeat < 1 or any(n < 1 for n in args.sizes):
        p.error("--repeat and --sizes must be >= 1")
    return args


def main(argv=None):
    args = _parse(argv)
    n2p2_dir = None if args.no_n2p2 else (Path(args.n2p2_bin) if args.n2p2_bin
                                          else n2p2_bin())
    note = ("n2p2 not run (--no-n2p2)" if args.no_n2p2 else "n2p2 not found")
    try:
        load = os.getloadavg()
    except OSError:
        load = (float("nan"),) * 3
    header = {"python": platform.python_version(), "machine": platform.machine(),
              "cpus": os.cpu_count(), "loadavg": load, "n2p2": str(n2p2_dir),
              "threads": {v: os.environ.get(v) for v in ("OMP_NUM_THREADS",
                                                         "OPENBLAS_NUM_THREADS")}}
    print(f"hpcnnp descriptor benchmark: {header['cpus']} CPUs, load average "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, single thread, CPU time, best of "
          f"{args.repeat}; n2p2: {n2p2_dir if n2p2_dir else note}")
    results = []
    with tempfile.TemporaryDirectory(prefix="hpcnnp-bench-") as work:
        for n in args.sizes:
            results.append(bench_size(n, args.repeat, args.seed, work, n2p2_dir))
            print(_report(results[-1], note), flush=True)
        if (Path(args.refdata) / "n2p2-examples" / POLYNOMIAL_CASE).is_dir():
            results.append(bench_polynomial(args.refdata, args.repeat, work, n2p2_dir))
            print(_report(results[-1], note), flush=True)
        else:
            print(f"\n(polynomial-SF line skipped: {args.refdata}/n2p2-examples not found)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"environment": header, "results": results}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
