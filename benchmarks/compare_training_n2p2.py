"""Train n2p2 (``nnp-train``) and hpcnnp (``hpcnnp train``) on the same inputs, side by side.

Both codes get the same ``input.nn`` (same SFs, network and training keywords), the
same ``scaling.data`` (computed once) and the same ``input.data``; each runs in its
own folder under ``--workdir``, one after the other (back to back), with the same
number of MPI ranks and one thread per rank.  Their random numbers differ (n2p2:
GSL, hpcnnp: numpy PCG64), so their internal train/test splits and initial weights
differ too; the common yardstick is a held-out set of structures neither code sees
(``--test-data``, or ``--holdout`` of input.data split off here): the weights of
every epoch of both codes (``write_weights_epoch 1``) are evaluated on it with
hpcnnp's engine, and the final weights of both also with n2p2's ``nnp-dataset``
(the two evaluations must agree; the table prints both).

Printed per code and epoch: the code's own train/test RMSEs from its
``learning-curve.out`` (energy per atom and force, physical units) and the RMSEs on
the common held-out set; per code: wall time, CPU time (user + sys of the code's
processes and their children, from ``os.wait4``) and the peak RSS of its largest
process (GNU ``/usr/bin/time -f %M``).  Files: ``<workdir>/compare.csv`` (all
numbers of the table), ``compare.png`` (common-test learning curves of both codes)
and the two run folders.

Data
----
``--inputs DIR``: a folder with ``input.nn``, ``input.data``, ``scaling.data`` (e.g.
``<workdir>/potential_setup`` of ``hpcnnp run PROJECT --only sample descriptors
scale``).  ``--synth5 N``: the synth5_A recovery data of
``benchmarks/recover_synth5.py`` (the teacher = refdata's synth5_A pruned to the SFs
that vary on the data, ``--max-tail`` rare-event pruning; N training-pool structures
plus ``--synth5-test`` held-out ones, all labelled by the teacher).

Training keywords: those of ``input.nn``, or with ``--recipe workflow`` the main
job's defaults (:data:`hpcnnp.config.training.TRAINING_DEFAULTS`), then every
``--set KEY=VALUE`` (``--set KEY=`` writes a flag, ``--set KEY=none`` removes it).
The published LLZO/LCO recipe (n2p2's example Kalman settings with
``kalman_epsilon 0.01``, ``force_weight 10``, ``force_energy_ratio 10``,
``selection_mode 2``) on the demo's data, three seeds of each code (issue #12)::

    python benchmarks/compare_training_n2p2.py --inputs WORK/potential_setup \\
        --workdir /tmp/cmp --recipe workflow --set kalman_epsilon=0.01 \\
        --set force_weight=10 --set force_energy_ratio=10 --epochs 4 --seeds 1,2,3

n2p2 is found with ``--n2p2-bin DIR``, ``$N2P2_BIN`` or on PATH; without it the
script says so and exits with code 0 (nothing is compared).  Kalman checkpoints are
not written (``--no-checkpoint``: one is 8·N_w² bytes).
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CODES = ("n2p2", "hpcnnp")
#: keywords every comparison run needs (files the comparison reads)
_REQUIRED = {"write_weights_epoch": "1"}


# --------------------------------------------------------------------------- n2p2
def find_n2p2(option=None):
    """Folder holding ``nnp-train`` and ``nnp-dataset``, or None."""
    for cand in (option, os.environ.get("N2P2_BIN")):
        if cand and (Path(cand) / "nnp-train").is_file():
            return Path(cand)
    exe = shutil.which("nnp-train")
    return Path(exe).parent if exe else None


def _env(threads=1):
    """Environment of the training processes: the venv's MPI library on the loader
    path (n2p2 and mpi4py use the mpich wheel), one BLAS/OpenMP thread per rank."""
    env = dict(os.environ)
    lib = str(Path(sys.prefix) / "lib")
    env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (lib, env.get("LD_LIBRARY_PATH"))
                                             if p)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    for key in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[key] = str(threads)
    return env


def _mpiexec():
    exe = Path(sys.executable).parent / "mpiexec"
    return str(exe) if exe.exists() else shutil.which("mpiexec")


# --------------------------------------------------------------------------- inputs
def parse_sets(items):
    """``KEY=VALUE`` strings -> dict (VALUE '' = flag, 'none' = remove)."""
    out = {}
    for item in items or []:
        if "=" not in item:
            raise SystemExit(f"--set {item!r}: expected KEY=VALUE")
        key, value = item.split("=", 1)
        out[key.strip()] = None if value.strip().lower() == "none" else value.strip()
    return out


def training_keywords(recipe, sets, epochs, seed):
    """The keyword updates applied to input.nn (recipe, then --set, then the run's)."""
    kw = {}
    if recipe == "workflow":
        from hpcnnp.config.training import TRAINING_DEFAULTS
        kw.update({k: (None if v is None else str(v)) for k, v in TRAINING_DEFAULTS.items()})
        # output files the comparison does not read
        for key in ("write_trainpoints", "write_trainforces"):
            kw[key] = None
    kw.update(sets)
    if "force_energy_ratio" in kw and kw["force_energy_ratio"] is not None:
        kw.setdefault("short_force_fraction", None)      # n2p2 would warn and ignore it
        if "short_force_fraction" not in sets:
            kw["short_force_fraction"] = None
    if epochs is not None:
        kw["epochs"] = str(epochs)
    if seed is not None:
        kw["random_seed"] = str(seed)
    kw.update(_REQUIRED)
    return kw


def _split(structures, holdout, seed):
    """Indices (pool, test): a random ``holdout`` fraction per structure class (the
    comment up to its first digit, so every class of the data set is tested)."""
    import re

    rng = np.random.default_rng(seed)
    classes = {}
    for i, atoms in enumerate(structures):
        key = re.split(r"[\d(]", atoms.info.get("comment", ""), maxsplit=1)[0].strip()
        classes.setdefault(key, []).append(i)
    test = []
    for members in classes.values():
        k = int(round(holdout * len(members)))
        if k == 0 and len(members) >= 3 and holdout > 0:
            k = 1
        test += list(rng.choice(members, size=k, replace=False))
    test = sorted(int(i) for i in test)
    pool = [i for i in range(len(structures)) if i not in set(test)]
    return pool, test


def prepare_inputs(args, base):
    """``base``/input.nn, input.data (training pool), scaling.data and test.data."""
    from hpcnnp.io import n2p2

    base.mkdir(parents=True, exist_ok=True)
    if args.synth5:
        # shared by every run on the same synth5 data (labelling takes minutes)
        src = base.parent / (f"synth5_data_{args.synth5}+{args.synth5_test}"
                             f"_tail{args.max_tail:g}_seed{args.data_seed}")
        if not (src / "input.data").is_file():
            import importlib.util
            spec = importlib.util.spec_from_file_location(
                "recover_synth5", REPO / "benchmarks" / "recover_synth5.py")
            rec = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(rec)
            if not rec.TEACHER.is_dir():
                raise SystemExit(f"synth5_A teacher not found: {rec.TEACHER}")
            src.mkdir(parents=True, exist_ok=True)
            ns = argparse.Namespace(prune=1e-4, max_tail=args.max_tail, seed=7, epochs=1,
                                    force_weight=1.0, force_fraction=0.02,
                                    jacobian_mode=1, force_batch=1, memorize=False)
            rec.prepare(src, args.synth5 + args.synth5_test, args.data_seed, ns)
        structures = n2p2.read_data(src / "input.data")
        pool = list(range(args.synth5))
        test = list(range(args.synth5, len(structures)))
        nn_src, scaling_src = src / "input.nn", src / "scaling.data"
    else:
        src = Path(args.inputs)
        for name in ("input.nn", "input.data", "scaling.data"):
            if not (src / name).is_file():
                raise SystemExit(f"{src / name}: not found")
        structures = n2p2.read_data(src / "input.data")
        if args.test_data:
            pool, test = list(range(len(structures))), []
        else:
            pool, test = _split(structures, args.holdout, args.data_seed)
        nn_src, scaling_src = src / "input.nn", src / "scaling.data"
    n2p2.write_data(base / "input.data", [structures[i] for i in pool])
    if args.test_data:
        shutil.copyfile(args.test_data, base / "test.data")
    else:
        n2p2.write_data(base / "test.data", [structures[i] for i in test])
    shutil.copyfile(scaling_src, base / "scaling.data")
    kw = training_keywords(args.recipe, parse_sets(args.set), args.epochs, None)
    n2p2.write_settings(base / "input.nn", nn_src, kw, comment="compare_training_n2p2")
    return base


# --------------------------------------------------------------------------- runs
def run_code(code, base, folder, ranks, n2p2_bin, log, seed=None):
    """Train with ``code`` in ``folder`` (fresh copy of the inputs, ``random_seed``
    replaced by ``seed`` unless None); returns timings."""
    from hpcnnp.io import n2p2

    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for name in ("input.data", "scaling.data"):
        shutil.copyfile(base / name, folder / name)
    n2p2.write_settings(folder / "input.nn", base / "input.nn",
                        {} if seed is None else {"random_seed": str(seed)},
                        comment="compare_training_n2p2")
    if code == "n2p2":
        cmd = [_mpiexec(), "-n", str(ranks), str(n2p2_bin / "nnp-train")]
    else:
        cmd = [sys.executable, "-m", "hpcnnp.cli", "train", "-o", ".", "-q",
               "--no-checkpoint", "--no-plots", "--blas-threads", "1"]
        if ranks > 1:
            cmd = [_mpiexec(), "-n", str(ranks)] + cmd
    # ru_maxrss of wait4 is useless here: exec keeps the high-water mark of the forked
    # copy of this (large) process, so GNU time (a small parent) reports the peak RSS
    rss_file = folder / "peak_rss_kib.txt"
    if Path("/usr/bin/time").is_file():
        cmd = ["/usr/bin/time", "-f", "%M", "-o", str(rss_file)] + cmd
    t0 = time.perf_counter()
    with open(folder / "stdout.txt", "w") as out:
        proc = subprocess.Popen(cmd, cwd=folder, env=_env(), stdout=out,
                                stderr=subprocess.STDOUT)
        # wait4: CPU time of the child and every descendant it waited for (mpiexec
        # waits for its ranks)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    rc = proc.returncode
    cpu = usage.ru_utime + usage.ru_stime
    try:
        peak = float(rss_file.read_text().split()[-1]) / 1024.0
    except (OSError, ValueError, IndexError):
        peak = float("nan")
    info = {"code": code, "rc": rc, "wall_s": wall, "cpu_s": cpu,
            "peak_rss_mib": peak, "cmd": " ".join(cmd)}
    log(f"  {code:7s}: exit {rc}, wall {wall:8.1f} s, CPU {cpu:8.1f} s "
        f"(user+sys, {ranks} rank(s)), peak RSS {info['peak_rss_mib']:.0f} MiB")
    return info


def learning_curve(folder):
    """{epoch: (E train, E test, F train, F test)} in physical units (eV/atom, eV/Å)
    from learning-curve.out (either code; physical columns are the first ones)."""
    path = folder / "learning-curve.out"
    if not path.is_file():
        return {}
    head = [ln for ln in path.read_text().splitlines() if ln.startswith("#")]
    names = next(ln for ln in reversed(head) if "epoch" in ln).lstrip("#").split()
    data = np.loadtxt(path, comments="#", ndmin=2)
    col = {n: i for i, n in enumerate(names)}
    keys = ("RMSEpa_Etrain_pu", "RMSEpa_Etest_pu", "RMSE_Ftrain_pu", "RMSE_Ftest_pu")
    return {int(row[0]): tuple(float(row[col[k]]) if k in col else float("nan")
                               for k in keys) for row in data}


def common_test_errors(folder, test_data):
    """{epoch: (E RMSE eV/atom, F RMSE eV/Å)} of every epoch's weights on test_data
    (hpcnnp's engine)."""
    from ase.data import atomic_numbers

    from hpcnnp.io import n2p2
    from hpcnnp.potential import Potential

    settings = n2p2.read_settings(folder / "input.nn")
    structures = n2p2.read_data(test_data)
    z0 = atomic_numbers[settings.elements[0]]
    epochs = sorted(int(p.name.split(".")[2]) for p in folder.glob(f"weights.{z0:03d}.*.out"))
    out = {}
    for ep in epochs:
        pot = Potential.from_n2p2(folder, weights=f"weights.%03d.{ep:06d}.out")
        de, df = [], []
        for atoms in structures:
            res = pot.compute(atoms, stress=False)
            de.append((res.energy - atoms.get_potential_energy()) / len(atoms))
            df.append((res.forces - atoms.get_forces()).ravel())
        df = np.concatenate(df)
        with np.errstate(over="ignore", invalid="ignore"):
            out[ep] = (float(np.sqrt(np.mean(np.square(de)))),
                       float(np.sqrt(np.mean(np.square(df)))))
    return out


def nnp_dataset_errors(folder, test_data, epoch, n2p2_bin):
    """(E RMSE eV/atom, F RMSE eV/Å) of the epoch's weights on test_data by n2p2's
    nnp-dataset (an independent evaluation of the same numbers)."""
    from ase.data import atomic_numbers

    from hpcnnp.io import n2p2

    d = folder / "nnp-dataset"
    if d.exists():
        shutil.rmtree(d)
    d.mkdir()
    settings = n2p2.read_settings(folder / "input.nn")
    shutil.copyfile(folder / "input.nn", d / "input.nn")
    shutil.copyfile(folder / "scaling.data", d / "scaling.data")
    shutil.copyfile(test_data, d / "input.data")
    for el in settings.elements:
        z = atomic_numbers[el]
        shutil.copyfile(folder / f"weights.{z:03d}.{epoch:06d}.out", d / f"weights.{z:03d}.data")
    proc = subprocess.run([_mpiexec(), "-n", "1", str(n2p2_bin / "nnp-dataset"), "0"],
                          cwd=d, env=_env(), capture_output=True, text=True)
    if proc.returncode != 0:
        return float("nan"), float("nan")
    e = np.loadtxt(d / "energy.comp", comments="#", ndmin=2)
    f = np.loadtxt(d / "forces.comp", comments="#", ndmin=2)
    e_rmse = float(np.sqrt(np.mean(np.square((e[:, 3] - e[:, 2]) / e[:, 1]))))
    f_rmse = float(np.sqrt(np.mean(np.square(f[:, 3] - f[:, 2]))))
    return e_rmse, f_rmse


# --------------------------------------------------------------------------- report
def verdict(f_common):
    """'converges' / 'DIVERGES' from the common-test force RMSE per epoch: diverging
    = the final value is above twice the best one reached after epoch 0 or above
    the epoch-0 value."""
    eps = sorted(f_common)
    if len(eps) < 2:
        return "-"
    vals = np.array([f_common[e] for e in eps])
    if not np.all(np.isfinite(vals[1:])):
        return "DIVERGES (non-finite)"
    best = vals[1:].min()
    if vals[-1] > 2.0 * best or vals[-1] > vals[0]:
        return f"DIVERGES (final {vals[-1]:.3g} vs best {best:.3g} eV/A)"
    return "converges"


def table(results, label):
    """The side-by-side table (str) and its rows (list of dicts)."""
    rows = []
    lines = [f"== {label}: RMSEs in meV/atom and meV/A (own = the code's own train/test "
             "split; common = the held-out set) =="]
    hdr = (f"{'epoch':>5s} | " + " | ".join(
        f"{c:^47s}" for c in results))
    sub = f"{'':>5s} | " + " | ".join(
        f"{'E trn':>7s} {'E tst':>7s} {'F trn':>7s} {'F tst':>7s} {'E com':>7s} {'F com':>7s}"
        for _ in results)
    lines += [hdr, sub]
    epochs = sorted(set().union(*[set(r["curve"]) | set(r["common"])
                                  for r in results.values()]))
    for ep in epochs:
        cells = []
        for code, r in results.items():
            own = r["curve"].get(ep, (np.nan,) * 4)
            com = r["common"].get(ep, (np.nan, np.nan))
            vals = [own[0] * 1e3, own[1] * 1e3, own[2] * 1e3, own[3] * 1e3,
                    com[0] * 1e3, com[1] * 1e3]
            cells.append(" ".join(f"{v:7.1f}" if abs(v) < 1e6 else f"{v:7.1e}"
                                  for v in vals))
            rows.append({"label": label, "code": code, "epoch": ep,
                         "E_train_own_meV_atom": vals[0], "E_test_own_meV_atom": vals[1],
                         "F_train_own_meV_A": vals[2], "F_test_own_meV_A": vals[3],
                         "E_common_meV_atom": vals[4], "F_common_meV_A": vals[5]})
        lines.append(f"{ep:5d} | " + " | ".join(cells))
    for code, r in results.items():
        t = r["timing"]
        chk = r.get("nnp_dataset")
        extra = ""
        if chk is not None:
            last = max(r["common"]) if r["common"] else None
            ours = r["common"].get(last, (np.nan, np.nan))
            extra = (f"; final weights by nnp-dataset: E {chk[0] * 1e3:.3f} meV/atom, "
                     f"F {chk[1] * 1e3:.2f} meV/A (hpcnnp engine: {ours[0] * 1e3:.3f}, "
                     f"{ours[1] * 1e3:.2f})")
        lines.append(f"{code}: {verdict({e: v[1] for e, v in r['common'].items()})}; "
                     f"wall {t['wall_s']:.0f} s, CPU {t['cpu_s']:.0f} s, peak RSS "
                     f"{t['peak_rss_mib']:.0f} MiB, exit {t['rc']}{extra}")
    return "\n".join(lines), rows


def plot(results, path, label):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for code, r in results.items():
        eps = sorted(r["common"])
        if not eps:
            continue
        e = np.array([r["common"][k][0] for k in eps]) * 1e3
        f = np.array([r["common"][k][1] for k in eps]) * 1e3
        axes[0].plot(eps, e, "o-", label=code)
        axes[1].plot(eps, f, "o-", label=code)
    for ax, what in zip(axes, ("energy RMSE (meV/atom)", "force RMSE (meV/Å)")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(what + ", common held-out set")
        ax.set_yscale("log")
        ax.legend()
    fig.suptitle(label)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def seed_summary(all_results, label):
    """Final common-test errors per code and seed, the verdicts and the spread of the
    final force RMSE over the seeds (max/min − 1)."""
    lines = [f"== {label}: final errors on the common held-out set per seed =="]
    rows = []
    for code in CODES:
        finals = []
        for seed, results in all_results.items():
            r = results.get(code)
            if r is None or not r["common"]:
                continue
            last = max(r["common"])
            e, f = r["common"][last]
            best = min(v[1] for k, v in r["common"].items() if k > 0) \
                if len(r["common"]) > 1 else f
            v = verdict({k: x[1] for k, x in r["common"].items()})
            finals.append(f)
            lines.append(f"{code:7s} seed {seed!s:>6s}: epoch {last}: E {e * 1e3:8.2f} meV/atom,"
                         f" F {f * 1e3:8.1f} meV/A (best F {best * 1e3:8.1f}); {v}; "
                         f"CPU {r['timing']['cpu_s']:.0f} s")
            rows.append({"code": code, "seed": seed, "epoch": last, "E_meV_atom": e * 1e3,
                         "F_meV_A": f * 1e3, "best_F_meV_A": best * 1e3, "verdict": v,
                         "cpu_s": r["timing"]["cpu_s"], "wall_s": r["timing"]["wall_s"]})
        if len(finals) > 1 and all(np.isfinite(finals)):
            lines.append(f"{code:7s} final F over {len(finals)} seeds: min "
                         f"{min(finals) * 1e3:.1f}, max {max(finals) * 1e3:.1f} meV/A, "
                         f"max/min - 1 = {max(finals) / min(finals) - 1:.0%}")
    return "\n".join(lines), rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    data = ap.add_mutually_exclusive_group(required=True)
    data.add_argument("--inputs", help="folder with input.nn, input.data, scaling.data")
    data.add_argument("--synth5", type=int, metavar="N",
                      help="synth5_A recovery data: N training-pool structures")
    ap.add_argument("--synth5-test", type=int, default=50, metavar="M",
                    help="held-out synth5_A structures (default 50)")
    ap.add_argument("--max-tail", type=float, default=10.0,
                    help="synth5_A teacher: rare-event SF pruning (0: off; default 10)")
    ap.add_argument("--test-data", help="common held-out structures (default: --holdout "
                                        "of input.data, per structure class)")
    ap.add_argument("--holdout", type=float, default=0.2)
    ap.add_argument("--data-seed", type=int, default=1)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--label", default=None, help="subfolder and table title")
    ap.add_argument("--recipe", choices=("input", "workflow"), default="input",
                    help="training keywords: input.nn's, or the main job's defaults")
    ap.add_argument("--set", action="append", metavar="KEY=VALUE",
                    help="training keyword (repeatable; KEY= flag, KEY=none removes)")
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--seeds", default=None,
                    help="comma-separated random_seed values: one run of each code per "
                         "seed (default: input.nn's random_seed)")
    ap.add_argument("--ranks", type=int, default=1)
    ap.add_argument("--codes", default="n2p2,hpcnnp")
    ap.add_argument("--n2p2-bin", default=None, help="folder of nnp-train/nnp-dataset "
                                                     "(default: $N2P2_BIN, PATH)")
    ap.add_argument("--keep-runs", action="store_true",
                    help="reuse finished run folders (only evaluate and print)")
    args = ap.parse_args(argv)
    if args.inputs is None and args.synth5 is None:
        ap.error("--inputs or --synth5")

    codes = [c for c in args.codes.split(",") if c]
    n2p2_bin = find_n2p2(args.n2p2_bin)
    if n2p2_bin is None:
        print("SKIPPED: n2p2 not found (give --n2p2-bin DIR or set $N2P2_BIN to the folder "
              "of nnp-train and nnp-dataset); nothing to compare.")
        return 0
    work = Path(args.workdir)
    label = args.label or ("synth5_A %d" % args.synth5 if args.synth5 else
                           Path(args.inputs).name)
    base = work / label.replace(" ", "_")
    log = lambda s: print(s, flush=True)        # noqa: E731
    prepare_inputs(args, base)
    from hpcnnp.io import n2p2
    n_pool = sum(1 for _ in n2p2.iter_data(base / "input.data"))
    n_test = sum(1 for _ in n2p2.iter_data(base / "test.data"))
    st = n2p2.read_settings(base / "input.nn")
    n_w = sum(st.n_weights(el) for el in st.elements)
    keys = ("force_weight", "force_energy_ratio", "short_force_fraction", "selection_mode",
            "jacobian_mode", "normalize_data_set", "kalman_epsilon", "kalman_eta",
            "kalman_etamax", "epochs",
            "random_seed")
    log(f"{label}: {n_pool} structures to train on, {n_test} held out; N_w {n_w} "
        f"({', '.join(f'{el} {st.n_sf(el)} SFs' for el in st.elements)}); "
        + ", ".join(f"{k} {st.get(k) if k in st else '-'}" for k in keys))
    seeds = [int(x) for x in args.seeds.split(",")] if args.seeds else [None]
    all_results = {}
    for seed in seeds:
        tag = label if seed is None else f"{label} seed {seed}"
        sub = base if seed is None else base / f"seed{seed}"
        results = {}
        for code in codes:
            folder = sub / code
            if args.keep_runs and (folder / "learning-curve.out").is_file():
                timing = {"code": code, "rc": 0, "wall_s": float("nan"),
                          "cpu_s": float("nan"), "peak_rss_mib": float("nan")}
            else:
                log(f"{tag}: training with {code}")
                timing = run_code(code, base, folder, args.ranks, n2p2_bin, log, seed)
            r = {"timing": timing, "curve": learning_curve(folder),
                 "common": common_test_errors(folder, base / "test.data")}
            if r["common"]:
                r["nnp_dataset"] = nnp_dataset_errors(folder, base / "test.data",
                                                      max(r["common"]), n2p2_bin)
            results[code] = r
        text, rows = table(results, tag)
        print(text, flush=True)
        (sub / "compare.txt").write_text(text + "\n")
        with open(sub / "compare.csv", "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]) + ["wall_s", "cpu_s",
                                                               "peak_rss_mib"])
            w.writeheader()
            for row in rows:
                t = results[row["code"]]["timing"]
                w.writerow(dict(row, wall_s=t["wall_s"], cpu_s=t["cpu_s"],
                                peak_rss_mib=t["peak_rss_mib"]))
        plot(results, sub / "compare.png", tag)
        log(f"files: {sub / 'compare.txt'}, {sub / 'compare.csv'}, {sub / 'compare.png'}")
        all_results[seed if seed is not None else st.get("random_seed", "-")] = results
    if len(seeds) > 1:
        text, rows = seed_summary(all_results, label)
        print(text, flush=True)
        (base / "seeds.txt").write_text(text + "\n")
        with open(base / "seeds.csv", "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
