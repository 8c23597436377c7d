"""Benchmark of the sampling stage: AIMD throughput per labeler and Parsl task overhead.

AIMD
    Langevin NVT steps (1 fs, 1000 K) with each available labeler on the test cells:
    ``LCO`` (12 atoms, ``hpcnnp.structures.lco()``), ``LLZO f.u.`` (24 atoms, random
    packing of Li7La3Zr2O12 at 4.8 g/cm^3), ``LLZO prim`` (96 atoms, primitive cubic
    LLZO; chgnet only) and, for cp2k, the 4-atom LiCoO2 unit of the tests in a 5.5 Å
    box at the test settings (SZV, 300 Ry, smearing) and at the labeler's defaults
    (DZVP, 400 Ry).  The first step (start-up, model load, SCF from scratch) is timed
    separately; the rate is over the following steps.  Prints s/step and steps/hour.
Parsl
    ``local`` site, HighThroughputExecutor + LocalProvider, 2 workers: time until the
    first result (worker start-up), then per-task overhead of (a) a no-op python_app
    and (b) ``campaign.run_task`` on finished tasks (lock + marker check: what a
    resumed campaign pays per skipped task), over ``--tasks`` tasks.

Run::

    python benchmarks/bench_sampling.py                 # all available labelers
    python benchmarks/bench_sampling.py --labelers chgnet xtb --steps 20 --json out.json

Threads: chgnet 1 torch thread, xtb/cp2k OMP_NUM_THREADS=--threads (default 1); the
machine's load is printed because shared machines distort the figures.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse            # noqa: E402
import json                # noqa: E402
import shutil              # noqa: E402
import sys                 # noqa: E402
import tempfile            # noqa: E402
import time                # noqa: E402
from pathlib import Path   # noqa: E402


def cells():
    from ase import Atoms
    from hpcnnp import structures as st
    from hpcnnp.sampling.campaign import build_structure
    out = {"LCO": st.lco(),
           "LLZO f.u.": build_structure({"builder": "packing", "composition": "Li7La3Zr2O12",
                                         "density": 4.8}, seed=1),
           "LLZO prim": st.llzo_cubic(primitive=True),
           "LiCoO2 unit": Atoms("LiCoO2", positions=[[2.3, 2.3, 0.1], [0.0, 0.05, 0.1],
                                                     [1.95, 0.1, 0.2], [-1.9, 0.2, -0.4]],
                                cell=[5.5, 5.5, 5.5], pbc=True)}
    return out


def bench_md(name, options, atoms, steps, workdir):
    from hpcnnp.sampling.aimd import MDSettings, run_aimd
    from hpcnnp.sampling.labelers import get_labeler
    calc = get_labeler(name, directory=workdir, **options)
    try:
        t0 = time.perf_counter()
        first = MDSettings(temperature=1000, snapshots=1, interval=1, equilibration=0, seed=1)
        run_aimd(atoms, calc, first)
        t_first = time.perf_counter() - t0
        s = MDSettings(temperature=1000, snapshots=1, interval=steps, equilibration=0, seed=2)
        t0 = time.perf_counter()
        run_aimd(atoms, calc, s)
        dt = (time.perf_counter() - t0) / steps
    finally:
        calc.close()
    return {"labeler": name, "options": options, "atoms": len(atoms), "first_s": t_first,
            "s_per_step": dt, "steps_per_hour": 3600.0 / dt}


def bench_parsl(n_tasks, workdir):
    import parsl
    from parsl.app.python import PythonApp

    from hpcnnp.hpc.sites import load_site
    from hpcnnp.sampling import campaign as cp
    config = load_site("local").parsl_config(nodes=1, workers_per_node=2,
                                             run_dir=str(Path(workdir) / "parsl"))
    parsl.clear()
    dfk = parsl.load(config)
    try:
        noop = PythonApp(_noop, data_flow_kernel=dfk, cache=False)
        t0 = time.perf_counter()
        noop(0).result()
        startup = time.perf_counter() - t0
        t0 = time.perf_counter()
        for f in [noop(i) for i in range(n_tasks)]:
            f.result()
        per_noop = (time.perf_counter() - t0) / n_tasks
        # finished campaign tasks: run_task only takes the lock and reads done.json
        dirs = []
        for i in range(n_tasks):
            d = Path(workdir) / "tasks" / f"t{i:04d}"
            d.mkdir(parents=True)
            (d / cp.DONE).write_text(json.dumps({"hash": f"t{i}", "snapshots": 0}))
            dirs.append(str(d))
        app = PythonApp(cp.run_task, data_flow_kernel=dfk, cache=False)
        app(dirs[0]).result()
        t0 = time.perf_counter()
        results = [f.result() for f in [app(d) for d in dirs]]
        per_task = (time.perf_counter() - t0) / n_tasks
        assert all(r["status"] == "done" and r.get("skipped") for r in results)
    finally:
        dfk.cleanup()
        parsl.clear()
    return {"workers": 2, "startup_s": startup, "noop_ms_per_task": 1e3 * per_noop,
            "finished_run_task_ms_per_task": 1e3 * per_task, "tasks": n_tasks}


def _noop(i):
    return i


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--labelers", nargs="+", default=["chgnet", "xtb", "cp2k"])
    p.add_argument("--steps", type=int, default=10, help="timed MD steps per case")
    p.add_argument("--cp2k-steps", type=int, default=3)
    p.add_argument("--threads", type=int, default=1, help="OpenMP threads of xtb/cp2k")
    p.add_argument("--tasks", type=int, default=100, help="Parsl tasks for the overhead")
    p.add_argument("--no-parsl", action="store_true")
    p.add_argument("--json", metavar="FILE")
    args = p.parse_args(argv)
    from hpcnnp.errors import HpcnnpError
    from hpcnnp.sampling.labelers import LabelingError, make_labeler

    print(f"# {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}, "
          f"Python {sys.version.split()[0]}")
    structures = cells()
    cases = {
        "chgnet": [({"threads": 1}, "LCO", args.steps), ({"threads": 1}, "LLZO f.u.", args.steps),
                   ({"threads": 1}, "LLZO prim", max(3, args.steps // 2))],
        "xtb": [({"threads": args.threads}, "LCO", args.steps),
                ({"threads": args.threads}, "LLZO f.u.", max(3, args.steps // 2))],
        "cp2k": [({"basis": "SZV-MOLOPT-SR-GTH", "cutoff": 300, "rel_cutoff": 50,
                   "scf": "smearing", "eps_scf": 1e-6, "threads": args.threads},
                  "LiCoO2 unit", args.cp2k_steps),
                 ({"scf": "smearing", "threads": args.threads}, "LiCoO2 unit",
                  args.cp2k_steps)],
    }
    rows = []
    tmp = Path(tempfile.mkdtemp(prefix="bench_sampling_"))
    try:
        print(f"{'labeler':8s} {'cell':12s} {'atoms':>5s} {'first (s)':>10s} "
              f"{'s/step':>9s} {'steps/hour':>11s}  options")
        for name in args.labelers:
            try:
                make_labeler(name).check()
            except HpcnnpError as exc:
                print(f"{name:8s} skipped: {exc}")
                continue
            for k, (opts, cell, steps) in enumerate(cases.get(name, [])):
                try:
                    r = bench_md(name, opts, structures[cell], steps, tmp / f"{name}{k}")
                except LabelingError as exc:
                    print(f"{name:8s} {cell:12s} {len(structures[cell]):5d} FAILED: {exc}")
                    rows.append({"labeler": name, "cell": cell, "options": opts,
                                 "error": str(exc)})
                    continue
                r["cell"] = cell
                rows.append(r)
                print(f"{name:8s} {cell:12s} {r['atoms']:5d} {r['first_s']:10.2f} "
                      f"{r['s_per_step']:9.3f} {r['steps_per_hour']:11.0f}  {opts}", flush=True)
        parsl_row = None
        if not args.no_parsl:
            parsl_row = bench_parsl(args.tasks, tmp / "parsl_bench")
            print(f"parsl local, 2 workers: first result after {parsl_row['startup_s']:.1f} s; "
                  f"no-op app {parsl_row['noop_ms_per_task']:.1f} ms/task, finished "
                  f"campaign task {parsl_row['finished_run_task_ms_per_task']:.1f} ms/task "
                  f"({args.tasks} tasks)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"md": rows, "parsl": parsl_row,
                       "load_average": os.getloadavg()[0]}, f, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
