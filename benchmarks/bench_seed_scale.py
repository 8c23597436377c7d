"""Training at the published scale: the seed's data set size and class mix, hpcnnp
against n2p2 measured in the same run, and a projection to 84 epochs on a node.

The published LLZO/LCO potential was trained with n2p2 on 12,651 structures for 84
epochs (316 energy + 3,202 force updates per epoch, ~10,500 s per epoch on one node of
~36 MPI ranks).  This benchmark builds a data set with the same class mix and count,
labels it with a smooth 5-element teacher evaluated by hpcnnp's engine (the tail-pruned
synth5_A of :func:`hpcnnp.testing.pruned_potential`, its scaling taken on a sample of
the data), runs ``hpcnnp scale`` and prunes dead SFs of the published 225-SF set
(range < 1e-4), and trains 20-20 networks with the published update scheme
(selection mode 2, jacobian_mode 1, force_energy_ratio 10, force_weight 10):

1. hpcnnp on the whole data set, 1 and 2 ranks, for ``--updates`` updates: time per
   update split into SF/derivatives, Jacobian, Kalman, communication; the epoch-0 error
   evaluation; peak memory per rank against the printed estimate;
2. n2p2 (``/work/n2p2/bin/nnp-train`` or ``--n2p2``) and hpcnnp back to back on the
   first ``--n2p2-structures`` structures (same files) for one epoch of the same
   number of updates (n2p2 keeps every structure's neighbour list in memory, 12,651
   structures do not fit next to its 4.9 GB covariance on a 24 GB machine): time per
   update from timing.out and peak memory of both;
3. a model of the update, checked against the 1- and 2-rank measurements, projects
   one epoch and 84 epochs on this machine and on a 36-rank node.

Model (per update, R ranks, N_w weights, m = R observations with jacobian_mode 1)::

    t_update = t_cand + t_KF + t_comm
    t_cand   = trials × (SF+dG/dr_a of the candidate atom's          measured, 1 rank
                         neighbourhood, or SFs of the structure, + Jacobian)
               (trials: mean on 1 rank; 3, the most, with R > 1: all ranks wait
               for the slowest)
    t_KF     = max(t_rank(R), R × bytes_rank / B)
               t_rank(R): the local work of one rank of R (its owned blocks of P,
                          thin factors, folds) with m = R, measured here on one core
                          with the collectives replaced by local copies
               bytes_rank = 8 N_w(N_w+1)/2 / R × (1 + 2 / fold_every)
               B: the memory bandwidth the R ranks share (here R × one core's triad;
                  a 36-rank node: --node-bandwidth, default 200 GB/s)
    t_comm   = 4 α log₂R + 8 N_w (R + 2m + 1) / β                   α, β stated
    epoch    = U_E t_update + U_F t_update + atoms × t_atom / R     (evaluation)

The node's cores are taken as fast as this machine's (t_rank measured here).  The
model is checked against the 1- and 2-rank trainings (their Kalman timers include
the update's collectives and the ranks' waiting for each other); the node is
projected once more with the larger measured/model ratio.

Run (about 17 minutes on 2 idle cores, ≤ 14 GiB)::

    python benchmarks/bench_seed_scale.py --workdir /tmp/seed
    python benchmarks/bench_seed_scale.py --workdir /tmp/seed --reuse --stages report
    python benchmarks/bench_seed_scale.py --workdir /tmp/seed --scale 0.1   # quick try

Times are CPU seconds of the training processes where the split is concerned (the
machine is shared) and wall seconds of the whole runs; peak memory is ru_maxrss.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import _measure

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
TEACHER = Path(os.environ.get("HPCNNP_REFDATA", REPO.parent / "shared" / "refdata")) \
    / "synth5_A" / "potential"

ELEMENTS = ("Li", "La", "Zr", "O", "Co")
LLZO = {"Li": 56, "La": 24, "Zr": 16, "O": 96}
LCO_AMORPHOUS = {"Li": 24, "Co": 24, "O": 48}
#: class -> (count, temperatures (K), kind); the published table (12,651 structures)
CLASSES = [
    ("cubic LLZO 1273 K", 500, 1273, "llzo"),
    ("cubic LLZO 1473 K", 500, 1473, "llzo"),
    ("amorphous LLZO", 500, 4000, "a-llzo"),
    ("layered LCO 1000 K", 312, 1000, "lco"),
    ("layered LCO 2000 K", 692, 2000, "lco"),
    ("amorphous LCO", 502, 4000, "a-lco"),
    ("mixture #1", 1546, (2000, 3000, 4000), "mix1"),
    ("mixture #2", 1611, (2000, 3000, 4000), "mix2"),
    ("mixture #3", 1550, (2000, 3000, 4000), "mix3"),
    ("mixture #4", 1584, (2000, 3000, 4000), "mix4"),
    ("mixture #5", 1533, (2000, 3000, 4000), "mix5"),
    ("Co-doped amorphous LLZO", 1821, (3000, 4000), "codoped"),
]
#: share of the mixtures at 2000 / 3000 / 4000 K (issue #14: roughly 22/34/44 %)
MIX_T_WEIGHTS = (0.22, 0.34, 0.44)
EPOCHS_PUBLISHED = 84

TRAINING = dict(
    epochs=1, selection_mode=2, jacobian_mode=1, task_batch_size_energy=1,
    task_batch_size_force=1, force_weight=10.0, short_energy_fraction=1.0,
    short_force_fraction=None, force_energy_ratio=10.0, normalize_data_set=None,
    random_seed=1234, test_fraction=0.1, write_weights_epoch=None,
    memorize_symfunc_results=None)


# ====================================================================== data set
def _pools(rng, n_per):
    """Random packings per composition (hpcnnp.testing.llzo_like_cell)."""
    from hpcnnp.structures.amorphous import MIXTURE_MODELS
    from hpcnnp.testing import llzo_like_cell

    comps = {"a-llzo": [LLZO], "a-lco": [LCO_AMORPHOUS]}
    for k in range(1, 6):
        comps[f"mix{k}"] = [MIXTURE_MODELS[k]]
    doped = []
    for site in ("Li", "La", "Zr"):
        for n in range(1, 7):
            c = dict(LLZO)
            c[site] -= n
            c["Co"] = n
            doped.append(c)
    comps["codoped"] = doped
    pools = {}
    for kind, formulas in comps.items():
        pools[kind] = [[llzo_like_cell(sum(f.values()), seed=int(rng.integers(1 << 30)),
                                       formula=f, min_distance=1.6) for _ in range(n_per)]
                       for f in formulas]
    return pools


def _crystals():
    from hpcnnp.structures.crystals import llzo_cubic, lco

    return {"llzo": llzo_cubic(), "lco": lco().repeat((3, 3, 1))}


def _sigma(T):
    """Thermal displacement (Å) for the snapshots: 0.1 Å at 1000 K, ∝ √T."""
    return 0.1 * np.sqrt(T / 1000.0)


def _snapshot(base, T, rng):
    atoms = base.copy()
    strain = np.eye(3) + rng.uniform(-0.02, 0.02, (3, 3))
    atoms.set_cell(atoms.cell[:] @ strain, scale_atoms=True)
    atoms.positions += rng.normal(0.0, _sigma(T), (len(atoms), 3))
    atoms.info["comment"] = f"T={T}"
    return atoms


def class_plan(scale=1.0):
    """[(index, class, T, kind, sub)] of every structure, in file order."""
    plan = []
    for name, count, temps, kind in CLASSES:
        n = max(1, int(round(count * scale)))
        if isinstance(temps, tuple):
            w = MIX_T_WEIGHTS if len(temps) == 3 else (0.5, 0.5)
            ts = np.repeat(temps, np.diff(np.round(np.cumsum((0,) + w) * n).astype(int)))
        else:
            ts = np.full(n, temps)
        for j, T in enumerate(ts):
            plan.append((len(plan), name, int(T), kind, j))
    return plan


def build(plan, seed=7, pool_size=6):
    """The structures of ``plan`` (deterministic for ``seed``)."""
    rng = np.random.default_rng(seed)
    pools = _pools(rng, pool_size)
    crystals = _crystals()
    out = []
    for index, name, T, kind, j in plan:
        r = np.random.default_rng([seed, index])
        if kind in crystals:
            base = crystals[kind]
        else:
            group = pools[kind][j % len(pools[kind])]
            base = group[int(r.integers(len(group)))]
        atoms = _snapshot(base, T, r)
        atoms.info["comment"] = f"{name} T={T}"
        out.append(atoms)
    return out


def _min_distance_ok(atoms, dmin=1.0):
    from ase.neighborlist import neighbor_list

    return len(neighbor_list("i", atoms, dmin)) == 0


# ====================================================================== workers
def label_worker(folder, scale, seed):
    """mpiexec -n R: build and label a contiguous block of the structures per rank and
    write it to part.<rank>.data (the driver concatenates)."""
    from ase.calculators.singlepoint import SinglePointCalculator
    from mpi4py import MPI

    from hpcnnp.io import n2p2
    from hpcnnp.potential import Potential

    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    folder = Path(folder)
    plan = class_plan(scale)
    lo, hi = len(plan) * rank // size, len(plan) * (rank + 1) // size
    teacher = Potential.from_n2p2(folder / "teacher")
    structures = build(plan[lo:hi], seed)
    t0 = time.process_time()
    warnings = 0
    with open(folder / f"part.{rank}.data", "w") as f:
        for atoms in structures:
            res = teacher.compute(atoms)
            warnings += res.n_warnings
            atoms.calc = SinglePointCalculator(atoms, energy=res.energy, forces=res.forces)
            n2p2.write_data(f, atoms)
    cpu = comm.gather(time.process_time() - t0)
    warnings = comm.gather(warnings)
    if rank == 0:
        print("LABEL " + json.dumps({"cpu_s": sum(cpu), "warnings": sum(warnings)}),
              flush=True)


def train_worker(folder, out_name, updates, checkpoint):
    """mpiexec -n R: ``hpcnnp train`` in this process for ``updates`` updates; rank 0
    prints one JSON line with the times (CPU) and memory."""
    from hpcnnp.training.comm import get_comm
    from hpcnnp.training.trainer import Trainer

    comm = get_comm(True)
    folder = Path(folder)
    cpu0 = time.process_time()
    tr = Trainer(settings=folder / "input.nn", data=folder / "input.data",
                 scaling=folder / "scaling.data", output_dir=folder / out_name, comm=comm,
                 checkpoint_dir=None if checkpoint else False, plots=False, stream=None,
                 stop_after_updates=updates)
    t0 = time.perf_counter()
    summary = tr.run()
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    timers = comm.gather(dict(tr.timers))
    cpus = comm.gather(cpu)
    computed = comm.gather(tr.sf.computed)
    if comm.rank != 0:
        return
    ep0 = tr.history["timers"][0]
    res = {"ranks": comm.size, "updates": tr.count_updates, "n_weights": tr.n_w_total,
           "structures": tr.n_structures, "atoms": int(tr.n_atoms_global.sum()),
           "train_atoms": int(tr.n_atoms_global[tr.is_train].sum()),
           "n_train_e": tr.n_train["energy"],
           "plans": {p: tr.plans[p].n_updates for p in tr.props},
           "counts": dict(tr.counts), "timers": timers, "error0_s": ep0["error"],
           "peak_rss": summary["peak_rss"], "estimate": summary["memory_estimate"],
           "wall_s": wall, "cpu_s": cpus, "blas_threads": tr.blas_threads_used,
           "fold_every": tr.fold_every, "sf_computed": computed}
    print("BENCH-RESULT " + json.dumps(res), flush=True)


# ====================================================================== driver
def _run(cmd, ranks, cwd=None, tag="BENCH-RESULT "):
    if ranks > 1 or cmd[0] == sys.executable and "--worker" in " ".join(cmd):
        cmd = [_measure.mpiexec(), "-n", str(ranks)] + cmd
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=_measure.env(ranks), capture_output=True, text=True,
                          cwd=cwd)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit(f"failed: {' '.join(cmd)}")
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith(tag)), None)
    return (json.loads(line[len(tag):]) if line else None), wall, proc


def _self(*args):
    return [sys.executable, str(Path(__file__).resolve()), *args]


def prepare(folder, scale, seed, n_sample=150):
    """Teacher, labelled input.data, student input.nn, scaling.data (hpcnnp scale) with
    the dead SFs pruned.  Returns a dict of timings."""
    from hpcnnp.descriptors.prune import prune_by_range
    from hpcnnp.io import n2p2
    from hpcnnp.testing import pruned_potential, synthetic_potential, with_training_settings

    t = {}
    t0 = time.perf_counter()
    plan = class_plan(scale)
    rng = np.random.default_rng(seed)
    pick = sorted(rng.choice(len(plan), size=min(n_sample, len(plan)), replace=False))
    sample = build([plan[i] for i in pick], seed)
    pruned_potential(TEACHER, folder / "teacher", sample, max_tail=10)
    t["teacher_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    res, wall, _ = _run(_self("--label-worker", str(folder), "--scale", str(scale),
                              "--seed", str(seed)), 2, tag="LABEL ")
    with open(folder / "input.data", "wb") as out:
        for r in range(2):
            part = folder / f"part.{r}.data"
            with open(part, "rb") as f:
                shutil.copyfileobj(f, out, 16 << 20)
            part.unlink()
    t["label_s"], t["label_cpu_s"], t["teacher_warnings"] = wall, res["cpu_s"], \
        res["warnings"]
    # the student: published 225-SF set, 20-20 networks, published training keywords
    student = synthetic_potential(folder / "student", elements=ELEMENTS, hidden=(20, 20),
                                  structures=sample[:20])
    text = with_training_settings((student / "input.nn").read_text(), **TRAINING)
    (folder / "input.nn").write_text(text)
    t0 = time.perf_counter()
    _run([sys.executable, "-m", "hpcnnp.cli", "scale", "--settings", "input.nn",
          "--data", "input.data", "-o", ".", "--no-histograms", "--no-neighbors-out",
          "--quiet"], 2, cwd=folder, tag="#")
    t["scale_s"] = time.perf_counter() - t0
    shutil.copy(folder / "input.nn", folder / "input.nn.unpruned")
    pruned = prune_by_range(folder / "input.nn", folder / "scaling.data", 1e-4)
    _filter_scaling(folder, n2p2)
    t["pruned_sfs"] = {el: int(n) for el, n in pruned.items()}
    return t


def _filter_scaling(folder, n2p2):
    """scaling.data rows of the SFs still in input.nn (after prune_by_range)."""
    full = n2p2.read_settings(folder / "input.nn.unpruned") \
        if (folder / "input.nn.unpruned").exists() else None
    kept = n2p2.read_settings(folder / "input.nn")
    if full is None:
        return
    n_full = {el: len(full.symmetry_functions[el]) for el in full.elements}
    stats = n2p2.read_scaling(folder / "scaling.data", n_full, full.elements)
    out = {}
    for el in kept.elements:
        lines = {sf.line for sf in kept.symmetry_functions[el]}
        cols = [i for i, sf in enumerate(full.symmetry_functions[el]) if sf.line in lines]
        out[el] = np.asarray(stats[el])[cols]
    n2p2.write_scaling(folder / "scaling.data", kept.elements, out)


def subset(folder, sub, k):
    """Every (N/k)-th structure of input.data (the class mix kept) into ``sub``."""
    from hpcnnp.io import n2p2

    sub.mkdir(parents=True, exist_ok=True)
    n = sum(1 for _ in n2p2.iter_data(folder / "input.data"))
    keep = set(np.linspace(0, n - 1, min(k, n)).round().astype(int).tolist())
    with open(sub / "input.data", "w") as f:
        for i, atoms in enumerate(n2p2.iter_data(folder / "input.data")):
            if i in keep:
                n2p2.write_data(f, atoms)
    shutil.copy(folder / "scaling.data", sub / "scaling.data")
    return len(keep)


def _fractions_text(folder, n_e, n_f, n_structures, test_fraction=0.1):
    """input.nn of ``folder`` with fractions giving ~n_e energy and ~n_f force updates
    in one epoch on 1 rank (force_energy_ratio replaced by short_force_fraction)."""
    from hpcnnp.io import n2p2
    from hpcnnp.testing import with_training_settings

    atoms = sum(len(a) for a in n2p2.iter_data(folder / "input.data"))
    n_train = (1 - test_fraction) * n_structures
    f_e = min(1.0, (n_e + 0.5) / n_train)
    f_f = (n_f + 0.5) / (3 * atoms * (1 - test_fraction))
    text = "\n".join(ln for ln in (folder.parent / "input.nn").read_text().splitlines()
                     if not ln.startswith("force_energy_ratio"))
    return with_training_settings(text,
                                  **dict(TRAINING, short_energy_fraction=f"{f_e:.6f}",
                                         force_energy_ratio=None,
                                         short_force_fraction=f"{f_f:.8f}"))


def side_by_side(folder, k, n_e, n_f):
    """n2p2 and hpcnnp back to back on the same subset, one epoch, 1 rank."""
    sub = folder / "subset"
    n = subset(folder, sub, k)
    out = _measure.side_by_side(sub, _fractions_text(sub, n_e, n_f, n),
                                text2=_fractions_text(sub, 2 * n_e, 2 * n_f, n))
    out["structures"] = n
    return out


# ====================================================================== model
def machine_rates(n_w, ranks=(1, 2, 36), nbytes=256 << 20):
    """What the model needs from this machine: the triad bandwidth of one core
    (bytes/s) and the local Kalman work of one rank of R ranks
    (:func:`rank_update_seconds`; R = 1 on all cores, R > 1 on one core each, as
    ``hpcnnp train`` sets the BLAS threads)."""
    n = nbytes // 8
    a, b, c = np.ones(n), np.full(n, 2.0), np.full(n, 0.5)
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        np.multiply(c, 3.0, out=a)
        np.add(a, b, out=a)
        best = min(best, time.perf_counter() - t)
    del a, b, c
    cores = os.cpu_count() or 1
    t_rank = {}
    for r in ranks:
        t_rank[str(r)] = rank_update_seconds(n_w, r, threads=cores if r == 1 else 1)
        print(f"  Kalman, one rank of {r} (m = {r}): {t_rank[str(r)]:.4f} s per update",
              flush=True)
    return {"bandwidth": 5 * nbytes / best, "t_rank": t_rank}


class _OneOfR:
    """Stands in for the communicator of rank ``rank`` of ``size`` ranks in a process
    alone: the collectives copy this rank's part (the others' parts are zeros or
    copies), so :class:`~hpcnnp.training.kalman.KalmanFilter` does exactly the local
    work of that rank -- its owned blocks of P, the thin factors, the folds -- at the
    cost it has on a node.  The collectives themselves are :func:`comm_model`."""

    def __init__(self, size, rank=0):
        self.size, self.rank = size, rank

    def Get_size(self):                                     # noqa: N802 (mpi4py names)
        return self.size

    def Get_rank(self):                                     # noqa: N802
        return self.rank

    def Allgather(self, a, buf):                            # noqa: N802
        buf[...] = a

    def Reduce_scatter(self, send, recv, recvcounts, op=None):  # noqa: N802
        o = sum(recvcounts[:self.rank])
        recv.reshape(-1)[:] = send.reshape(-1)[o:o + recvcounts[self.rank]]

    def Allgatherv(self, out, spec):                        # noqa: N802
        gathered, counts, displs = spec[0], spec[1], spec[2]
        flat = gathered.reshape(-1)
        flat[:] = 0.0
        flat[displs[self.rank]:displs[self.rank] + counts[self.rank]] = out.reshape(-1)

    def Bcast(self, w, root=0):                             # noqa: N802
        pass


def rank_update_seconds(n_w, ranks, updates=None, fold_every=16, threads=1, seed=0):
    """Seconds per Kalman update of one rank of an R-rank distributed filter with m = R
    observations (jacobian_mode 1: one per rank), its folds included, measured here on
    ``threads`` cores; collectives excluded.  ``ranks = 1``: the serial filter."""
    from threadpoolctl import threadpool_limits

    from hpcnnp.training.kalman import KalmanFilter

    updates = updates or 2 * fold_every
    rng = np.random.default_rng(seed)
    comm = _OneOfR(ranks) if ranks > 1 else None
    with threadpool_limits(threads, user_api="blas"):
        kf = KalmanFilter(n_w, epsilon=0.01, q0=0.0, qtau=0.0, qmin=0.0, eta=0.01,
                          updates_per_epoch=updates, comm=comm, fold_every=fold_every)
        w = np.zeros(n_w)
        H = 1e-3 * rng.standard_normal((n_w, ranks))
        xi = 1e-2 * rng.standard_normal(ranks)
        kf.update(w, H, xi)                                 # first touch, warm caches
        kf.fold()
        t = time.perf_counter()
        for _ in range(updates):
            kf.update(w, H, xi)
        dt = (time.perf_counter() - t) / updates
        del kf
    return dt


def kalman_bytes(n_w, ranks, fold_every=16):
    """Bytes one rank moves over its share of P per update (one read of the owned
    elements for P H, a read and a write of them per fold)."""
    owned = n_w * (n_w + 1) / 2 / ranks
    return 8 * owned * (1 + 2 / fold_every)


def kalman_model(n_w, ranks, t_rank, bandwidth, fold_every=16):
    """Seconds of one Kalman update on R ranks: the measured local work of one rank
    (``t_rank``, :func:`rank_update_seconds`) or, where the ranks share a memory
    system of ``bandwidth`` bytes/s, the time its traffic needs -- whichever is
    longer."""
    return max(t_rank, ranks * kalman_bytes(n_w, ranks, fold_every) / bandwidth)


def comm_model(n_w, ranks, alpha=20e-6, beta=5e9):
    """Seconds of the four collectives of an update (rows all-gather, X
    reduce-scatter, A all-gather, [Y|w] all-gatherv): latency α per step of a
    log₂(R) tree, β bytes/s of shared memory (stated, not fitted)."""
    if ranks == 1:
        return 0.0
    return 4 * alpha * np.log2(ranks) + 8 * n_w * (ranks + 2 * ranks + 1) / beta


def _per_update(res):
    """Per-update split of a training run (rank 0's timers, wall seconds)."""
    t = res["timers"][0]
    u = max(1, res["updates"])
    get = lambda key: sum(t.get(f"{p}_{key}", 0.0) for p in ("energy", "force")) / u  # noqa
    return {"sf": get("sf"), "jacobian": get("jac"), "selection": get("err"),
            "comm": get("com"), "kalman": get("upd"),
            "total": sum(t.get(p, 0.0) for p in ("energy", "force")) / u}


def project(results, rates, args):
    """Epoch and 84-epoch times for this machine (1, 2 ranks) and a 36-rank node."""
    r1 = results[1]
    n_w, atoms = r1["n_weights"], r1["atoms"]
    bw = rates["bandwidth"]
    cores = os.cpu_count() or 1
    pu1 = _per_update(r1)
    trials = r1["sf_computed"][0] / max(1, r1["updates"])       # SF computations/update
    # the timers are wall seconds; on a shared machine a process gets only part of a
    # core: ``load`` = CPU / wall of the 1-rank run scales them to an idle core
    load = min(1.0, r1["cpu_s"][0] / r1["wall_s"]) if args.cpu_scaled else 1.0
    t_trial = load * (pu1["sf"] + pu1["jacobian"]) / max(trials, 1e-9)
    t_atom = load * r1["error0_s"] / atoms                 # evaluation, 1 rank
    rows = []
    # R ranks here share this machine's memory (R x one core's triad, optimistic);
    # the node's ranks share --node-bandwidth
    here = min(2, cores)
    for label, ranks, b_mem in (
            ("this machine, 1 rank", 1, cores * bw),
            (f"this machine, {here} ranks", here, here * bw),
            ("36-rank node", 36, args.node_bandwidth * 1e9)):
        t_rank = rates["t_rank"][str(ranks)]
        t_kf = kalman_model(n_w, ranks, t_rank, b_mem)
        t_comm = comm_model(n_w, ranks)
        # every rank waits for the slowest: with R > 1 ranks assume the maximum of 3
        # threshold trials somewhere (conservative)
        t_cand = t_trial * (trials if ranks == 1 else 3.0)
        t_upd = t_cand + t_kf + t_comm
        u_e = int(r1["n_train_e"] // ranks)
        u_f = int(10.0 * r1["n_train_e"] // ranks)
        t_eval = atoms * t_atom / ranks
        epoch = (u_e + u_f) * t_upd + t_eval
        row = {"label": label, "ranks": ranks, "t_update": t_upd, "t_kalman": t_kf,
               "t_rank": t_rank, "t_memory": ranks * kalman_bytes(n_w, ranks) / b_mem,
               "load": load,
               "t_cand": t_cand, "t_comm": t_comm, "updates": u_e + u_f,
               "t_eval": t_eval, "epoch_s": epoch, "total_s": EPOCHS_PUBLISHED * epoch,
               "t_trial": t_trial, "trials": trials}
        if ranks in results:
            pu = _per_update(results[ranks])
            row["measured_kalman"] = load * pu["kalman"]
            row["measured_update"] = load * pu["total"]
            row["measured_cand_comm"] = load * (pu["selection"] + pu["comm"])
        rows.append(row)
    # the model's Kalman term against the measurement with the most ranks here: the
    # node projection once more with that ratio applied (what the rank emulation does
    # not see: the ranks' collectives inside the update, their waiting for each other)
    checked = [r for r in rows if "measured_kalman" in r]
    if checked:
        worst = max(1.0, max(r["measured_kalman"] / r["t_kalman"] for r in checked))
        node = dict(rows[-1])
        node["t_kalman"] *= worst
        node["t_update"] = node["t_cand"] + node["t_kalman"] + node["t_comm"]
        node["epoch_s"] = node["updates"] * node["t_update"] + node["t_eval"]
        node["total_s"] = EPOCHS_PUBLISHED * node["epoch_s"]
        node["label"] = f"node, Kalman x {worst:.2f}"
        rows.append(node)
    return rows


def _gib(b):
    return b / 2 ** 30


def report(prep, results, sbs, rows, rates, args):
    r1 = results[1]
    print(f"\n=== seed-scale training benchmark: {r1['structures']} structures, "
          f"{r1['atoms']} atoms, N_w = {r1['n_weights']} (5 x (n_sf)-20-20-1; dead SFs "
          f"pruned: {prep.get('pruned_sfs')})")
    print(f"data: teacher {prep.get('teacher_s', 0):.0f} s, labelling {prep.get('label_s', 0):.0f}"
          f" s wall ({prep.get('label_cpu_s', 0):.0f} s CPU, {prep.get('teacher_warnings')} "
          f"extrapolation warnings), hpcnnp scale {prep.get('scale_s', 0):.0f} s")
    print("\nhpcnnp train, whole data set, per update (CPU s of rank 0; "
          f"{args.updates} updates, published scheme):")
    print(f"{'ranks':>5} {'SF+dG':>8} {'Jacob.':>8} {'select':>8} {'Kalman':>8} {'comm':>8}"
          f" {'update':>8} {'eval ep0':>9} {'peak RSS/rank GiB':>18} {'estimate':>9}")
    for ranks, r in sorted(results.items()):
        pu = _per_update(r)
        rss = "/".join(f"{_gib(b):.2f}" for b in r["peak_rss"])
        est = "/".join(f"{_gib(b):.2f}" for b in r["estimate"])
        print(f"{ranks:>5} {pu['sf']:>8.3f} {pu['jacobian']:>8.3f} {pu['selection']:>8.3f}"
              f" {pu['kalman']:>8.3f} {pu['comm']:>8.4f} {pu['total']:>8.3f}"
              f" {r['error0_s']:>9.1f} {rss:>18} {est:>9}")
        ratio = [e / p for e, p in zip(r["estimate"], r["peak_rss"])]
        print(f"      estimate / measured peak: {', '.join(f'{x:.2f}' for x in ratio)}")
    if sbs:
        _measure.print_side_by_side(sbs, f"{sbs['structures']} of the structures, one "
                                         "epoch, same files")
    print(f"\nmodel: Kalman = max(local work of one rank, measured here with m = ranks "
          f"observations, collectives excluded; its traffic over the shared memory); "
          f"one core here {rates['bandwidth'] / 1e9:.1f} GB/s (triad); 36-rank node "
          f"{args.node_bandwidth:.0f} GB/s (assumed, --node-bandwidth), cores as fast as "
          "this machine's; communication 20 us latency, 5 GB/s (assumed)")
    if rows and rows[0].get("load", 1.0) < 1.0:
        print(f"times scaled by CPU/wall = {rows[0]['load']:.3f} of the 1-rank run "
              "(--cpu-scaled: the machine was shared)")
    print(f"{'where':>22} {'t_update':>9} {'(Kalman':>8} {'cand':>6} {'comm)':>6}"
          f" {'measured':>9} {'upd/epoch':>9} {'eval s':>7} {'epoch h':>8} {'84 ep. d':>8}")
    for r in rows:
        meas = (f"{r['measured_update']:.3f}" if "measured_update" in r else "-")
        print(f"{r['label']:>22} {r['t_update']:>9.3f} {r['t_kalman']:>8.3f}"
              f" {r['t_cand']:>6.3f} {r['t_comm']:>6.3f} {meas:>9} {r['updates']:>9d}"
              f" {r['t_eval']:>7.0f} {r['epoch_s'] / 3600:>8.2f}"
              f" {r['total_s'] / 86400:>8.2f}")
    print(f"  (t_trial {rows[0]['t_trial']:.3f} s = SF+dG/dr and Jacobian of one "
          f"candidate, {rows[0]['trials']:.2f} per update on 1 rank; 3 with R > 1)")
    for r in rows[:3]:
        print(f"  Kalman ({r['label']}): local work of one rank {r['t_rank']:.4f} s, "
              f"memory traffic of all ranks {r['t_memory']:.4f} s")
    for r in rows:
        if "measured_kalman" in r:
            print(f"  check ({r['label']}): Kalman model {r['t_kalman']:.3f} s, measured "
                  f"{r['measured_kalman']:.3f} s; candidates+comm model "
                  f"{r['t_cand'] + r['t_comm']:.3f} s, measured "
                  f"{r['measured_cand_comm']:.3f} s; update model {r['t_update']:.3f} s, "
                  f"measured {r['measured_update']:.3f} s")
    print("(published n2p2 run: ~10,500 s per epoch, ~10 days for 84 epochs on a node)")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workdir", default="/tmp/hpcnnp-seed-scale")
    ap.add_argument("--scale", type=float, default=1.0,
                    help="multiplies the published class counts (1.0: 12,651 structures)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--updates", type=int, default=60,
                    help="updates timed per hpcnnp run on the whole data set")
    ap.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--n2p2-structures", type=int, default=800)
    ap.add_argument("--n2p2-updates", type=int, nargs=2, default=[6, 60], metavar=("E", "F"),
                    help="energy and force updates of the side-by-side epoch")
    ap.add_argument("--no-n2p2", action="store_true")
    ap.add_argument("--node-bandwidth", type=float, default=200.0,
                    help="GB/s of a 36-core node (2 sockets DDR4/5; default 200)")
    ap.add_argument("--reuse", action="store_true", help="keep an existing data set")
    ap.add_argument("--cpu-scaled", action="store_true",
                    help="project with the measured times scaled by CPU/wall of the "
                         "1-rank run (a loaded, shared machine: what an idle core gives)")
    ap.add_argument("--stages", nargs="+", default=["hpcnnp", "n2p2"],
                    choices=("hpcnnp", "n2p2", "report"),
                    help="what to run after the data set (default both); results of "
                         "earlier runs in results.json are kept; 'report' (with --reuse) "
                         "only prints them again")
    ap.add_argument("--label-worker", metavar="DIR", help=argparse.SUPPRESS)
    ap.add_argument("--worker", metavar="DIR", help=argparse.SUPPRESS)
    ap.add_argument("--out", default="out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.label_worker:
        label_worker(args.label_worker, args.scale, args.seed)
        return 0
    if args.worker:
        train_worker(args.worker, args.out, args.updates, checkpoint=False)
        return 0
    folder = Path(args.workdir)
    t_all = time.perf_counter()
    prep = {}
    if not (args.reuse and (folder / "scaling.data").exists()):
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        prep = prepare(folder, args.scale, args.seed)
        (folder / "prepare.json").write_text(json.dumps(prep))
    else:
        prep = json.loads((folder / "prepare.json").read_text())
    print(f"data set ready after {time.perf_counter() - t_all:.0f} s", flush=True)
    saved = folder / "results.json"
    old = json.loads(saved.read_text()) if saved.exists() else {}
    results = {int(k): v for k, v in old.get("hpcnnp", {}).items()}
    sbs = old.get("side_by_side")

    def save():
        """Merge this run's results into results.json (another invocation may run the
        other stage at the same time)."""
        now = json.loads(saved.read_text()) if saved.exists() else {}
        now["prepare"] = prep
        now.setdefault("hpcnnp", {}).update({str(k): v for k, v in results.items()})
        if sbs is not None:
            now["side_by_side"] = sbs
        saved.write_text(json.dumps(now, indent=1))

    for ranks in (args.ranks if "hpcnnp" in args.stages else []):
        res, wall, _ = _run(_self("--worker", str(folder), "--out", f"out_{ranks}",
                                  "--updates", str(args.updates)), ranks)
        res["wall_total_s"] = wall
        results[ranks] = res
        save()
        print(f"hpcnnp train, {ranks} rank(s): {wall:.0f} s wall", flush=True)
        shutil.rmtree(folder / f"out_{ranks}", ignore_errors=True)
    if not args.no_n2p2 and "n2p2" in args.stages:
        sbs = side_by_side(folder, args.n2p2_structures, *args.n2p2_updates)
        save()
        print(f"side by side done after {time.perf_counter() - t_all:.0f} s", flush=True)
    merged = json.loads(saved.read_text()) if saved.exists() else {}
    results = {int(k): v for k, v in merged.get("hpcnnp", {}).items()}
    sbs = merged.get("side_by_side", sbs)
    if 1 not in results:
        print("no hpcnnp results yet (run with --stages hpcnnp)")
        if sbs:
            _measure.print_side_by_side(sbs, f"{sbs['structures']} of the structures")
        return 0
    ran = ("hpcnnp" in args.stages) or ("n2p2" in args.stages and not args.no_n2p2)
    # re-printing a finished benchmark (--reuse --stages report) keeps its machine rates
    rates = merged["rates"] if (not ran and "rates" in merged) else \
        machine_rates(results[1]["n_weights"])
    rows = project(results, rates, args)
    report(prep, results, sbs, rows, rates, args)
    (folder / "results.json").write_text(json.dumps(
        {"prepare": prep, "hpcnnp": {str(k): v for k, v in results.items()},
         "side_by_side": sbs, "projection": rows, "rates": rates}, indent=1))
    print(f"\nbenchmark wall time {time.perf_counter() - t_all:.0f} s; results in "
          f"{folder / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
