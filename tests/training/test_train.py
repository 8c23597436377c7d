"""Tests of ``hpcnnp train`` (hpcnnp.training.trainer and friends).

1. finite-difference checks of the energy/force errors and Jacobian rows (with and
   without normalisation) and of the packed update rows (force_weight, US_ELEMENT split);
2. recovery of a known "teacher" potential from its own energies and forces;
3. 1 rank vs ``mpiexec -n 2`` (identical weights on both ranks after every update,
   distributed P == replicated P to round-off);
4. crash / SIGTERM during an epoch and ``--restart`` -> bit-identical final weights;
5. output formats column-for-column against n2p2's own files (refdata);
6. bad inputs -> one clear error, nothing written.

Everything runs on a small synthetic data set (2 elements, 10 SFs per element).
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]


def _test_helpers():
    import _synthetic          # tests/ is on sys.path (tests/conftest.py)
    return _synthetic


_helpers = _test_helpers()
random_structure = _helpers.random_structure
write_synthetic_potential = _helpers.write_synthetic_potential

TRAIN_KEYWORDS = """
use_short_forces
random_seed 123
epochs 3
updater_type 1
parallel_mode 0
jacobian_mode 1
update_strategy 0
selection_mode 2
task_batch_size_energy 1
task_batch_size_force 1
test_fraction 0.2
force_weight 3.0
short_energy_fraction 1.0
short_force_fraction 0.05
short_energy_error_threshold 0.0
short_force_error_threshold 1.0
rmse_threshold_trials 3
weights_min -1.0
weights_max 1.0
main_error_metric RMSEpa
write_trainpoints 1
write_trainforces 1
write_weights_epoch 1
write_neuronstats 1
write_trainlog
kalman_type 0
kalman_epsilon 1.0E-2
kalman_q0 0.01
kalman_qtau 2.302
kalman_qmin 1.0E-6
kalman_eta 0.01
kalman_etatau 2.302
kalman_etamax 1.0
"""


# ----------------------------------------------------------------------- helpers
def _structures(rng, count, n_min=8, n_max=20):
    out = []
    for _ in range(count):
        n = int(rng.integers(n_min, n_max + 1))
        edge = (n / 0.035) ** (1.0 / 3.0)
        cell = np.diag([edge, 1.05 * edge, 0.97 * edge])
        cell += 0.3 * np.triu(rng.uniform(-1, 1, (3, 3)), 1)
        out.append(random_structure(rng, n, cell=cell, min_distance=1.4))
    return out


def _label(structures, folder):
    from ase.calculators.singlepoint import SinglePointCalculator

    from hpcnnp.potential import Potential

    pot = Potential.from_n2p2(folder)
    for atoms in structures:
        res = pot.compute(atoms)
        atoms.calc = SinglePointCalculator(atoms, energy=res.energy, forces=res.forces)
    return structures


def _with(text, **changes):
    """input.nn text with keywords replaced/added (value None: removed)."""
    lines = text.split("\n")
    for key, value in changes.items():
        new = None if value is None else f"{key} {value}".rstrip()
        done = False
        for i, line in enumerate(lines):
            tok = line.split("#")[0].split()
            if tok and tok[0] == key:
                lines[i] = "" if new is None else new
                done = True
        if not done and new is not None:
            lines.append(new)
    return "\n".join(lines) + "\n"


def _run_dir(base, name, **changes):
    """A run folder with input.nn (base + changes), input.data and scaling.data."""
    d = base["root"] / name
    if d.exists():
        shutil.rmtree(d)
    d.mkdir()
    (d / "input.nn").write_text(_with(base["nn"], **changes))
    shutil.copy(base["root"] / "input.data", d / "input.data")
    shutil.copy(base["root"] / "scaling.data", d / "scaling.data")
    return d


def _trainer(folder, out="out", **kw):
    from hpcnnp.training.comm import Comm
    from hpcnnp.training.trainer import Trainer

    kw.setdefault("plots", False)
    return Trainer(settings=folder / "input.nn", data=folder / "input.data",
                   scaling=folder / "scaling.data", output_dir=folder / out,
                   comm=Comm(None), stream=None, **kw)


def _weights(folder):
    return np.concatenate([np.loadtxt(folder / f"weights.{z}.data", usecols=0)
                           for z in ("003", "008")])


def _mpiexec():
    exe = Path(sys.executable).parent / "mpiexec"
    if exe.exists():
        return str(exe)
    return shutil.which("mpiexec")


def _env(**extra):
    env = dict(os.environ)
    lib = str(Path(sys.executable).parent.parent / "lib")
    env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (lib, env.get("LD_LIBRARY_PATH"))
                                             if p)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    env["OPENBLAS_NUM_THREADS"] = "1"
    for k in ("HPCNNP_TRAIN_FAIL_AFTER_UPDATES", "HPCNNP_TRAIN_TERM_AFTER_UPDATES"):
        env.pop(k, None)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def _cli(folder, *args, ranks=1, env=None, out="out"):
    """Run ``hpcnnp train`` in a subprocess (under mpiexec for ranks > 1)."""
    cmd = [sys.executable, "-m", "hpcnnp.cli", "train", "-o", out, "-q", "--no-plots",
           *args]
    if ranks > 1:
        mpiexec = _mpiexec()
        if mpiexec is None:
            pytest.skip("mpiexec not found")
        pytest.importorskip("mpi4py")
        cmd = [mpiexec, "-n", str(ranks)] + cmd
    return subprocess.run(cmd, cwd=folder, env=env or _env(), capture_output=True,
                          text=True, timeout=300)


# ---------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """Teacher potential (Li/O, 10 SFs each, 8-8 tanh network, atom energies) and 60
    periodic structures of 8-20 atoms labelled with it; training keywords."""
    root = tmp_path_factory.mktemp("train")
    rng = np.random.default_rng(5)
    structures = _structures(rng, 60)
    teacher = write_synthetic_potential(root / "teacher", structures, nodes=(8, 8), seed=3,
                                        atom_energy={"Li": -1.5, "O": -2.0})
    from hpcnnp.io import n2p2

    n2p2.write_data(root / "input.data", _label(structures, teacher))
    shutil.copy(teacher / "scaling.data", root / "scaling.data")
    nn = (teacher / "input.nn").read_text() + TRAIN_KEYWORDS
    return {"root": root, "nn": nn, "teacher": teacher, "n": len(structures)}


# ============================================================ 1. Jacobian checks
def _fd_setup(tmp_path, normalization):
    rng = np.random.default_rng(11)
    structures = _structures(rng, 3, 7, 10)
    pot = write_synthetic_potential(tmp_path / "pot", structures, nodes=(5, 5), seed=4,
                                    normalization=normalization,
                                    atom_energy={"Li": -0.7, "O": -1.1})
    from hpcnnp.io import n2p2

    # reference data = a *different* potential (so that errors are not zero)
    other = write_synthetic_potential(tmp_path / "other", structures, nodes=(5, 5), seed=9)
    n2p2.write_data(tmp_path / "input.data", _label(structures, other))
    shutil.copy(pot / "scaling.data", tmp_path / "scaling.data")
    text = (pot / "input.nn").read_text() + TRAIN_KEYWORDS
    (tmp_path / "input.nn").write_text(_with(text, test_fraction="0.0"))
    tr = _trainer(tmp_path)
    tr.setup()
    return tr


def _c_prediction(tr, s):
    """Energy and forces of structure s by the C engine (training units)."""
    from hpcnnp import _core

    nl, elem = tr.potential.neighbor_list(s.atoms)
    res = _core.energy_forces(tr.potential._model, nl, elem, s.n, forces=True, full=True)
    return float(res["output"].sum()), res["forces"][:s.n] / tr.units.conv_length


def _full_row(tr, grads):
    return np.concatenate([np.zeros(n) if g is None else g
                           for g, n in zip(grads, tr.n_w_el)])


@pytest.mark.parametrize("normalization", [None, (-1.3, 7.0, 2.5)],
                         ids=["plain", "normalised"])
def test_jacobian_rows_match_finite_differences(tmp_path, normalization):
    from hpcnnp.training.jacobian import energy_terms, force_terms

    tr = _fd_setup(tmp_path, normalization)
    assert tr.units.normalized == (normalization is not None)
    s = tr.structures[1]
    sfe = tr.sf.get(s, derivatives=True)
    e_pred, e_grads = energy_terms(tr.nets, sfe)
    e_c, f_c = _c_prediction(tr, s)
    # errors: xi = ref - prediction, prediction identical to the C engine's
    assert e_pred == pytest.approx(e_c, rel=1e-13, abs=1e-13)
    units = tr.units
    assert s.e_ref == pytest.approx((s.e_phys - s.offset_sum - s.n * units.mean_energy)
                                    * units.conv_energy, rel=1e-14)
    cases = [(0, 0), (3, 1), (s.n - 1, 2)]
    f_rows = []
    for a, c in cases:
        f_pred, f_grads = force_terms(tr.nets, tr.sf.atom(s, a), c, tr.scale,
                                      1.0 / units.conv_length)
        assert f_pred == pytest.approx(f_c[a, c], rel=1e-11, abs=1e-12)
        assert s.f_ref[a, c] == pytest.approx(s.f_phys[a, c] * units.conv_energy
                                              / units.conv_length, rel=1e-14)
        f_rows.append(_full_row(tr, f_grads))
    # central finite differences over every weight
    w = tr.state[0]
    h = 1e-6
    fd_e = np.zeros_like(w)
    fd_f = np.zeros((len(cases), len(w)))
    for j in range(len(w)):
        old = w[j]
        vals = []
        for sign in (1, -1):
            w[j] = old + sign * h
            tr.nets.push()
            vals.append(_c_prediction(tr, s))
        w[j] = old
        fd_e[j] = (vals[0][0] - vals[1][0]) / (2 * h)
        for k, (a, c) in enumerate(cases):
            fd_f[k, j] = (vals[0][1][a, c] - vals[1][1][a, c]) / (2 * h)
    tr.nets.push()
    row_e = _full_row(tr, e_grads)
    assert np.abs(row_e - fd_e).max() <= 1e-6 * max(1.0, np.abs(fd_e).max())
    for k in range(len(cases)):
        assert np.abs(f_rows[k] - fd_f[k]).max() <= 1e-6 * max(1.0, np.abs(fd_f[k]).max())
        assert np.abs(fd_f[k]).max() > 1e-3          # non-trivial rows


def test_force_candidate_neighbourhood_equals_whole_structure(tmp_path):
    """A force candidate's SFs and dG/dr_a from the neighbourhood-only C kernel (the
    default) equal those cut out of the whole structure's derivatives
    (memorize_symfunc_results) bit for bit, and so do the force and its Jacobian row
    -- also in a cell smaller than the cutoff, where images of the atom itself are
    among its neighbours; the force is the C engine's."""
    from types import SimpleNamespace

    from hpcnnp.training.dataset import SFCache
    from hpcnnp.training.jacobian import force_terms

    tr = _fd_setup(tmp_path, (-1.3, 7.0, 2.5))
    rng = np.random.default_rng(3)
    small = random_structure(rng, 4, cell=[[3.5, 0.0, 0.0], [1.1, 3.4, 0.0],
                                           [-0.8, 0.9, 3.6]], min_distance=1.5)
    nl, elem = tr.potential.neighbor_list(small)
    start, idx, _, _ = nl.arrays()
    assert (idx[start[0]:start[1]] == 0).sum() >= 2           # images of atom 0 itself
    cases = tr.structures[:2] + [SimpleNamespace(atoms=small, elem=elem, n=4, local=-1)]
    lean, memo = SFCache(tr.potential), SFCache(tr.potential, memorize=True)
    inv_cl = 1.0 / tr.units.conv_length
    for s in cases:
        _, f_c = _c_prediction(tr, s)
        for a in range(s.n):
            x, y = lean.atom(s, a), memo.atom(s, a)
            for e in range(tr.n_el):
                assert np.array_equal(x.owners[e], y.owners[e])
                assert np.array_equal(x.gs[e], y.gs[e])
                assert np.array_equal(x.dg[e], y.dg[e])
            assert sum(len(o) for o in x.owners) > 1
            for c in range(3):
                fx, gx = force_terms(tr.nets, x, c, tr.scale, inv_cl)
                fy, gy = force_terms(tr.nets, y, c, tr.scale, inv_cl)
                assert fx == fy
                assert all((u is None and v is None) or np.array_equal(u, v)
                           for u, v in zip(gx, gy))
                assert fx == pytest.approx(f_c[a, c], rel=1e-11, abs=1e-12)
    assert lean.computed == sum(s.n for s in cases) and not lean._cache
    assert memo.computed == len(cases)


@pytest.mark.parametrize("strategy", [0, 1], ids=["combined", "element"])
def test_update_rows_force_weight_and_element_split(tmp_path, strategy):
    """The (H, xi) handed to the updater: force_weight times the candidate's row and
    error; US_ELEMENT: one filter per element, errors split by atom fraction
    (energy) and neighbour fraction (force), as n2p2."""
    from hpcnnp.training.jacobian import energy_terms, force_terms

    rng = np.random.default_rng(2)
    structures = _structures(rng, 3, 7, 9)
    pot = write_synthetic_potential(tmp_path / "pot", structures, nodes=(5, 5), seed=4)
    other = write_synthetic_potential(tmp_path / "other", structures, nodes=(5, 5), seed=8)
    from hpcnnp.io import n2p2

    n2p2.write_data(tmp_path / "input.data", _label(structures, other))
    shutil.copy(pot / "scaling.data", tmp_path / "scaling.data")
    text = (pot / "input.nn").read_text() + TRAIN_KEYWORDS
    (tmp_path / "input.nn").write_text(_with(text, test_fraction="0.0", selection_mode="0",
                                             update_strategy=str(strategy)))
    tr = _trainer(tmp_path)
    tr.setup()
    tr._create_updaters()
    tr.counts = {p: 0 for p in tr.props}
    tr.evaluate(0)
    seen = []
    for u, upd in enumerate(tr.updaters):
        upd.update = (lambda w, H, xi, u=u: seen.append((u, np.array(H), np.array(xi))))
    for prop, k in (("energy", 1), ("force", 10)):
        seen.clear()
        cand = tr.cands[prop]
        cand.order = np.array([k])
        cand.pos = 0
        key = cand.keys[k]
        s = tr.structures[int(key[0])]
        sfe = tr.sf.get(s, derivatives=True)
        if prop == "energy":
            pred, grads = energy_terms(tr.nets, sfe)
            ref, fw, frac = s.e_ref, 1.0, s.n_per_elem / s.n
        else:
            a, c = int(key[1]), int(key[2])
            pred, grads = force_terms(tr.nets, tr.sf.atom(s, a), c, tr.scale, 1.0)
            ref, fw = s.f_ref[a, c], 3.0
            frac = s.nn_per_elem[a] / s.nn_per_elem[a].sum()
        tr.update(prop)
        row = fw * _full_row(tr, grads)
        if strategy == 0:
            (u, H, xi), = seen
            assert H.shape == (tr.n_w_total, 1)
            np.testing.assert_allclose(H[:, 0], row, rtol=1e-13, atol=1e-15)
            assert xi[0] == pytest.approx(fw * (ref - pred), rel=1e-13)
        else:
            assert [u for u, _, _ in seen] == [0, 1]
            for u, H, xi in seen:
                lo, hi = tr.offsets_el[u], tr.offsets_el[u + 1]
                np.testing.assert_allclose(H[:, 0], row[lo:hi], rtol=1e-13, atol=1e-15)
                assert xi[0] == pytest.approx(fw * (ref - pred) * frac[u], rel=1e-12,
                                              abs=1e-15)


def test_initial_weights_glorot_and_nguyen_widrow(tmp_path):
    from hpcnnp.io import n2p2
    from hpcnnp.training.config import training_config
    from hpcnnp.training.trainer import initial_weights

    rng = np.random.default_rng(0)
    pot = write_synthetic_potential(tmp_path / "pot", _structures(rng, 1), nodes=(6, 5),
                                    activations=("t", "s", "l"))
    text = (pot / "input.nn").read_text() + TRAIN_KEYWORDS
    st = n2p2.Settings.from_text(text)
    st.validate()
    cfg = training_config(st)
    raw = [np.random.default_rng(7).random(st.n_weights(el)) * 2 - 1 for el in st.elements]
    glorot = initial_weights(st, cfg, np.random.default_rng(7))
    sizes = st.layer_sizes("Li")                       # [10, 6, 5, 1]
    w, r = glorot[0], raw[0]
    n1 = sizes[0] * sizes[1]
    a = np.sqrt(6.0 / (sizes[0] + sizes[1]))
    np.testing.assert_allclose(w[:n1], r[:n1] * a)                   # tanh layer scaled
    assert (w[n1:n1 + sizes[1]] == 0).all()                          # biases zero
    o2 = n1 + sizes[1]
    n2 = sizes[1] * sizes[2]
    np.testing.assert_allclose(w[o2:o2 + n2], r[o2:o2 + n2])         # logistic: unscaled
    cfg.nguyen_widrow = True
    nw = initial_weights(st, cfg, np.random.default_rng(7))[0]
    W1 = r[:n1].reshape(sizes[0], sizes[1])
    beta = 0.7 * sizes[1] ** (1.0 / sizes[0])
    np.testing.assert_allclose(nw[:n1].reshape(W1.shape),
                               2.0 * beta * W1 / np.sqrt((W1 ** 2).sum(axis=0)))
    o3 = o2 + n2 + sizes[2]
    assert nw[o3] == pytest.approx(0.5 * r[o3])                       # n2p2's quirk
    assert nw[o3 + 1] == pytest.approx(r[o3 + 1])


# ======================================================= 2. recovery of a teacher
@pytest.fixture(scope="module")
def recovery_run(base):
    d = _run_dir(base, "recovery", epochs="4", normalize_data_set="ref")
    tr = _trainer(d, plots=True)
    summary = tr.run()
    return d, tr, summary


def test_recovers_teacher_potential(recovery_run):
    """Train a fresh 8-8 network (Glorot init, Kalman filter, 4 epochs) on 60 structures
    labelled by a teacher of the same shape (data set normalised by normalize_data_set
    ref); test-set RMSEs (physical units) must fall far below the initial ones:
    energy < 6 meV/atom and < 0.15 x the start (epoch 0: 43 meV/atom, epoch 4:
    4.3 meV/atom), force < 0.05 eV/A and < 0.2 x the start (0.30 -> 0.037 eV/A)."""
    d, tr, summary = recovery_run
    curve = np.loadtxt(d / "out" / "learning-curve.out")
    assert curve.shape == (5, 25)                   # epochs 0-4, normalised layout
    e_test, f_test = curve[:, 2], curve[:, 10]      # RMSEpa_Etest_pu, RMSE_Ftest_pu
    assert e_test[-1] < 6e-3 and e_test[-1] < 0.15 * e_test[0], e_test
    assert f_test[-1] < 0.05 and f_test[-1] < 0.2 * f_test[0], f_test
    # the normalisation was computed and written back with a backup
    assert (d / "input.nn.bak").is_file()
    text = (d / "input.nn").read_text()
    assert "mean_energy" in text and "conv_length" in text
    # outputs of the end of the run
    out = d / "out"
    for name in ("weights.003.data", "weights.008.data", "learning-curve.png",
                 "parity-energy.png", "parity-forces.png", "parity-energy.csv",
                 "parity-forces.csv", "train.data", "test.data", "input.nn",
                 "scaling.data", "nnp-train.log.0000"):
        assert (out / name).is_file(), name
    # the final weights are a working potential reproducing the final errors
    from hpcnnp.potential import Potential
    pot = Potential.from_n2p2(out)
    from hpcnnp.io import n2p2
    test = n2p2.read_data(out / "test.data")
    err = [(pot.compute(a).energy - a.get_potential_energy()) / len(a) for a in test]
    assert np.sqrt(np.mean(np.square(err))) == pytest.approx(e_test[-1], rel=1e-6)
    # train.data + test.data = input.data
    assert len(n2p2.read_data(out / "train.data")) + len(test) == 60


# ============================================================= 3. MPI: 1 vs 2 ranks
@pytest.fixture(scope="module")
def mpi_runs(base):
    """Serial, 2 ranks (distributed P, weights compared after every update) and 2 ranks
    with replicated P; same inputs."""
    d = _run_dir(base, "mpi", selection_mode_force="2 2 1")
    runs = {}
    for name, ranks, args in (("serial", 1, []), ("dist", 2, ["--check-sync", "1"]),
                              ("repl", 2, ["--replicated-kalman"])):
        proc = _cli(d, *args, ranks=ranks, out=name)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        runs[name] = d / name
    return d, runs


@pytest.mark.mpi
def test_two_ranks_identical_weights_and_distributed_equals_replicated(mpi_runs):
    d, runs = mpi_runs
    log = (runs["dist"] / "nnp-train.log.0000").read_text()
    assert "MPI ranks          : 2" in log
    assert "P distributed over the ranks" in log
    # --check-sync 1: the ranks compared their weight hashes after every update (a
    # mismatch would have stopped the run with an error)
    assert ("Weights compared between the 2 ranks after 204 updates (--check-sync 1): "
            "bit-identical on all ranks.") in log
    w_d, w_r, w_s = (_weights(runs[k]) for k in ("dist", "repl", "serial"))
    assert np.abs(w_d - w_r).max() <= 1e-9 * np.abs(w_d).max()
    # same split and initial weights for any number of ranks: identical epoch 0
    c1 = np.loadtxt(runs["serial"] / "learning-curve.out")
    c2 = np.loadtxt(runs["dist"] / "learning-curve.out")
    np.testing.assert_allclose(c1[0], c2[0], rtol=1e-12)
    assert c2.shape == (4, 13)
    assert c2[-1, 10] < 0.3 * c2[0, 10]                 # 2-stream training works too
    # per-epoch selection switch, logged as n2p2 does
    assert ('INFO   Switching selection mode for property "force" to SM_SORT (1).'
            in log.splitlines())
    # 2 ranks: 22 energy + 46 force updates per epoch, each with 2 streams
    upd = np.loadtxt(runs["dist"] / "updater.000.out")
    assert upd[:, 1].tolist() == [0, 68, 136, 204]


def _three_element_symfunctions(elements, rc=6.0):
    """Radial SFs for every pair and a few angular ones (type 3 and 9), per element."""
    lines = []
    for c in elements:
        for k, a in enumerate(elements):
            lines += [f"{c} 2 {a} 0.5 0.0 {rc}", f"{c} 2 {a} 1.0 {1.5 + 0.3 * k} {rc - 0.5}"]
        lines += [f"{c} 3 {elements[0]} {elements[1]} 0.1 1 1.0 {rc}",
                  f"{c} 3 {elements[1]} {elements[2]} 0.05 -1 2.0 {rc}",
                  f"{c} 9 {elements[1]} {elements[1]} 0.03 1 2.0 {rc - 1.0}"]
    return lines


@pytest.mark.mpi
def test_two_rank_update_rows_equal_serial_recomputation(tmp_path):
    """mpiexec -n 2 on a 3-element data set (Li/O/Co, Co only in half of the
    structures, atom energies, data-set normalisation): for every update the
    (H, xi) handed to the updaters equal the rows recomputed from scratch by a serial
    trainer holding all structures, with the weights of that moment (see
    _mpi_rows_check.py) — JM_FULL with batches of 2 (row order = rank order, then
    batch), JM_TASK with per-element updaters (US_ELEMENT error split), JM_SUM."""
    mpiexec = _mpiexec()
    if mpiexec is None:
        pytest.skip("mpiexec not found")
    pytest.importorskip("mpi4py")
    from hpcnnp.io import n2p2

    elements = ("Li", "O", "Co")
    rng = np.random.default_rng(17)
    structures = []
    for k in range(36):
        n = int(rng.integers(6, 13))
        edge = (n / 0.035) ** (1.0 / 3.0)
        cell = np.diag([edge, 1.05 * edge, 0.97 * edge])
        cell += 0.3 * np.triu(rng.uniform(-1, 1, (3, 3)), 1)
        symbols = elements if k % 2 else elements[:2]
        structures.append(random_structure(rng, n, cell=cell, symbols=symbols,
                                           min_distance=1.4))
    sfs = _three_element_symfunctions(elements)
    pot = write_synthetic_potential(tmp_path / "pot", structures, elements=elements,
                                    symfunctions=sfs, nodes=(6, 6), seed=2,
                                    atom_energy={"Li": -1.5, "O": -2.0, "Co": -3.1})
    other = write_synthetic_potential(tmp_path / "other", structures, elements=elements,
                                      symfunctions=sfs, nodes=(6, 6), seed=7,
                                      atom_energy={"Li": -1.5, "O": -2.0, "Co": -3.1})
    n2p2.write_data(tmp_path / "input.data", _label(structures, other))
    text = (pot / "input.nn").read_text() + TRAIN_KEYWORDS
    common = dict(epochs="1", selection_mode="0", test_fraction="0.15",
                  short_force_fraction="0.04", write_trainpoints=None,
                  write_trainforces=None, write_weights_epoch=None, write_neuronstats=None,
                  write_trainlog=None)
    configs = {
        "full": dict(jacobian_mode="2", task_batch_size_energy="2",
                     task_batch_size_force="2", normalize_data_set="ref"),
        "task-element": dict(jacobian_mode="1", update_strategy="1",
                             normalize_data_set="force"),
        "sum": dict(jacobian_mode="0"),
    }
    folders = []
    for name, changes in configs.items():
        d = tmp_path / name
        d.mkdir()
        (d / "input.nn").write_text(_with(text, **common, **changes))
        shutil.copy(tmp_path / "input.data", d / "input.data")
        shutil.copy(pot / "scaling.data", d / "scaling.data")
        folders.append(str(d))
    script = Path(__file__).with_name("_mpi_rows_check.py")
    proc = subprocess.run([mpiexec, "-n", "2", sys.executable, str(script), *folders],
                          cwd=tmp_path, env=_env(), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "MPI-ROWS-OK" in proc.stdout, proc.stdout + proc.stderr
    for name in configs:                            # every configuration was checked
        assert re.search(rf"^{name}: [1-9]\d* updates checked", proc.stdout, re.M), \
            proc.stdout


# ============================================================== 4. restart
def test_restart_after_crash_is_bit_identical(base, monkeypatch):
    """Serial: a crash after 200 updates (inside epoch 2 of 3, 137 updates per epoch),
    then --restart from the checkpoint of epoch 1 -> every output byte-identical to
    the uninterrupted run (weights, learning curve, filter status, train log)."""
    d = _run_dir(base, "restart", selection_mode_force="2 2 1")
    full = _trainer(d, out="full")
    full.run()
    monkeypatch.setenv("HPCNNP_TRAIN_FAIL_AFTER_UPDATES", "200")
    crashed = _trainer(d, out="crash")
    with pytest.raises(RuntimeError, match="simulated crash"):
        crashed.run()
    monkeypatch.delenv("HPCNNP_TRAIN_FAIL_AFTER_UPDATES")
    again = _trainer(d, out="crash", restart=True)
    again.run()
    for name in ("weights.003.data", "weights.008.data", "learning-curve.out",
                 "updater.000.out", "train-log.out", "trainforces.000003.out"):
        assert (d / "full" / name).read_bytes() == (d / "crash" / name).read_bytes(), name


@pytest.mark.mpi
def test_sigterm_checkpoint_and_restart_two_ranks(base, mpi_runs):
    """mpiexec -n 2: SIGTERM to rank 0 mid-epoch -> both ranks finish the update,
    write their checkpoint files and exit 143; --restart gives the weights of the
    uninterrupted run (distributed P restored per rank)."""
    d, runs = mpi_runs
    proc = _cli(d, ranks=2, out="term", env=_env(HPCNNP_TRAIN_TERM_AFTER_UPDATES=100))
    assert proc.returncode == 143, proc.stdout + proc.stderr
    import json
    meta = json.loads((d / "term" / "checkpoint" / "meta.json").read_text())
    assert meta["phase"] == "mid" and meta["count_updates"] == 100 and meta["ranks"] == 2
    assert len(list((d / "term" / "checkpoint").glob("ckpt.*.rank000?.npz"))) == 2
    proc = _cli(d, "--restart", ranks=2, out="term")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # bit-identical to the uninterrupted 2-rank run (check-sync does not change results)
    assert (d / "term" / "weights.003.data").read_bytes() == \
        (runs["dist"] / "weights.003.data").read_bytes()
    assert (d / "term" / "weights.008.data").read_bytes() == \
        (runs["dist"] / "weights.008.data").read_bytes()
    # restarting with another number of ranks is refused
    proc = _cli(d, "--restart", ranks=1, out="term")
    assert proc.returncode == 2 and "same number" in proc.stderr


# ============================================================ 5. output formats
def _header(path):
    return [ln for ln in Path(path).read_text().splitlines() if ln.startswith("#")]


def _data(path):
    return [ln for ln in Path(path).read_text().splitlines() if not ln.startswith("#")]


def _field_ends(line):
    return [m.end() for m in re.finditer(r"\S+", line)]


def _same_layout(ours, ref, skip_header=False):
    """Identical header lines and identical column end positions of every data line."""
    if not skip_header:
        assert _header(ours) == _header(ref), ours.name
    ref_ends = _field_ends(_data(ref)[0])
    lines = _data(ours)
    assert lines
    for line in lines:
        assert _field_ends(line) == ref_ends, (ours.name, line)


def test_output_formats_match_n2p2(recovery_run, mpi_runs, refdata):
    cu2s = refdata / "nnp-train-sample" / "Cu2S_PBE"
    synth = refdata / "nnp-train-sample" / "synth5_A_1epoch"
    out = recovery_run[0] / "out"                     # normalised run (25 columns)
    plain = mpi_runs[1]["serial"]                     # no normalisation (13 columns)
    _same_layout(out / "learning-curve.out", cu2s / "learning-curve.out")
    _same_layout(plain / "learning-curve.out", synth / "learning-curve.out")
    _same_layout(out / "updater.000.out", cu2s / "updater.000.out")
    _same_layout(out / "timing.out", cu2s / "timing.out")
    for name in ("trainpoints", "testpoints", "trainforces", "testforces"):
        _same_layout(out / f"{name}.000004.out", cu2s / f"{name}.000010.out")
    # neuron statistics: same header; element/neuron/count columns are widths 10
    assert _header(out / "neuron-stats.short.000004.out") == \
        _header(cu2s / "neuron-stats.short.000010.out")
    _same_layout(out / "neuron-stats.short.000004.out",
                 cu2s / "neuron-stats.short.000010.out", skip_header=True)
    assert _header(out / "weights.003.000004.out") == _header(cu2s / "weights.016.000010.out")
    ours_w, ref_w = _data(out / "weights.003.000004.out"), _data(cu2s / "weights.016.000010.out")
    assert _field_ends(ours_w[0]) == _field_ends(ref_w[0])        # weight line
    bias = next(ln for ln in ref_w if " b " in ln)
    assert _field_ends(next(ln for ln in ours_w if " b " in ln)) == _field_ends(bias)
    # train-log.out: header and the E / F line layouts
    ref_log = cu2s / "train-log.out.head300"
    assert _header(out / "train-log.out") == _header(ref_log)
    for kind in ("E", "F"):
        r = next(ln for ln in _data(ref_log) if ln.split()[0] == kind)
        o = next(ln for ln in _data(out / "train-log.out") if ln.split()[0] == kind)
        assert _field_ends(o) == _field_ends(r)
    # log lines of the epochs (nnp-train.log format)
    ref_lines = (cu2s / "nnp-train.log.0000").read_text().splitlines()
    our_lines = (out / "nnp-train.log.0000").read_text().splitlines()
    for kind in ("ENERGY", "FORCE", "TIMING"):
        r = next(ln for ln in ref_lines if re.match(rf"{kind} +1 ", ln))
        o = next(ln for ln in our_lines if re.match(rf"{kind} +1 ", ln))
        assert _field_ends(o) == _field_ends(r), kind
    for head in ("energy     ep  E_count       E_train        E_test    E_pt",
                 "force      ep  F_count       F_train        F_test    F_pt",
                 "timing     ep    count  train  error  other      epoch      total"):
        assert head in our_lines
    # learning-curve.out parses with the column count of its header
    assert np.loadtxt(out / "learning-curve.out").shape[1] == 25


def test_per_element_updaters_write_updater_files(base):
    d = _run_dir(base, "element", update_strategy="1", epochs="1",
                 write_trainforces=None, write_neuronstats=None, write_trainlog=None)
    _trainer(d).run()
    for z in ("003", "008"):
        lines = _data(d / "out" / f"updater.{z}.out")
        assert len(lines) == 2
    assert not (d / "out" / "updater.000.out").exists()


@pytest.mark.parametrize("changes", [
    {"updater_type": "0", "jacobian_mode": "0", "gradient_type": "1"},
    {"updater_type": "0", "jacobian_mode": "0", "gradient_type": "0", "gradient_eta": "1e-4"},
    {"jacobian_mode": "2", "task_batch_size_force": "2"},
    {"jacobian_mode": "0", "selection_mode": "1"},
    {"task_batch_size_energy": "0", "task_batch_size_force": "0"},
    {"kalman_type": "1", "kalman_lambda_short": "0.98", "kalman_nue_short": "0.9987",
     "force_energy_ratio": "2.0", "nguyen_widrow_weights_short": "",
     "memorize_symfunc_results": ""},
    {"use_short_forces": None, "normalize_data_set": "stats-only"},
], ids=["adam", "gd-fixed", "jm-full", "jm-sum-sort", "batch0", "fading-ratio-nw-memo",
        "energies-only"])
def test_training_variants_run(base, changes):
    """Other updaters, Jacobian modes, selection modes and options run one epoch and
    do not make the training error explode."""
    d = _run_dir(base, "variant", epochs="1", write_trainforces=None,
                 write_neuronstats=None, **changes)
    tr = _trainer(d)
    tr.run()
    curve = np.loadtxt(d / "out" / "learning-curve.out")
    ncol = 9 if "use_short_forces" in changes else 13
    assert curve.shape == (2, ncol)
    assert np.isfinite(curve).all()
    assert curve[1, 1] < 2.0 * curve[0, 1]              # energy RMSE/atom (train)
    status = _data(d / "out" / "updater.000.out")
    assert len(status) == 2
    if changes.get("updater_type") == "0":
        assert len(status[0].split()) == (6 if changes["gradient_type"] == "1" else 2)
    if changes.get("task_batch_size_energy") == "0":
        assert tr.plans["energy"].n_updates == 1
        assert tr.plans["energy"].per_update == int(tr.is_train.sum())


# ================================================================ 6. bad inputs
def _bad_case(base, kind, tmp_path):
    d = _run_dir(base, f"bad_{kind}")
    data = (d / "input.data").read_text()
    if kind == "scaling":
        lines = (d / "scaling.data").read_text().splitlines()
        (d / "scaling.data").write_text("\n".join(lines[:-3]) + "\n")
        return d, "data rows"
    if kind == "element":
        i = data.index(" Li ")
        (d / "input.data").write_text(data[:i] + " Zr " + data[i + 4:])
        return d, "not one of the potential's elements"
    if kind == "empty":
        (d / "input.nn").write_text(_with(base["nn"], test_fraction="1.0"))
        return d, "empty training set"
    if kind == "nan":
        lines = data.splitlines()
        k = next(i for i, ln in enumerate(lines) if ln.startswith("atom"))
        tok = lines[k].split()
        tok[8] = "nan"
        lines[k] = " ".join(tok)
        (d / "input.data").write_text("\n".join(lines) + "\n")
        return d, "atom fy"
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["scaling", "element", "empty", "nan"])
def test_bad_inputs_fail_before_writing(base, kind, tmp_path, capsys):
    from hpcnnp.cli import main

    d, message = _bad_case(base, kind, tmp_path)
    before = sorted(p.name for p in d.iterdir())
    rc = main(["train", "--settings", str(d / "input.nn"), "--data", str(d / "input.data"),
               "--scaling", str(d / "scaling.data"), "-o", str(d / "out"), "-q"])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("hpcnnp train: error:") and message in err, err
    assert len(err.strip().splitlines()) == 1
    assert not (d / "out").exists()                      # nothing written
    assert sorted(p.name for p in d.iterdir()) == before


def test_restart_without_checkpoint_and_missing_n2p2(base, capsys, monkeypatch):
    from hpcnnp.cli import main

    d = _run_dir(base, "nockpt")
    rc = main(["train", "--settings", str(d / "input.nn"), "--data", str(d / "input.data"),
               "--scaling", str(d / "scaling.data"), "-o", str(d / "out"), "-q",
               "--restart"])
    assert rc == 2 and "no checkpoint" in capsys.readouterr().err
    monkeypatch.setenv("PATH", str(d))                   # no nnp-train anywhere
    rc = main(["train", "--engine", "n2p2", "-o", str(d / "n2p2")])
    err = capsys.readouterr().err
    assert rc == 2 and "n2p2 is not installed" in err
    assert not (d / "n2p2").exists()


def test_long_epoch_reports_its_updates(base, monkeypatch, tmp_path):
    """An epoch that runs longer than EPOCH_PROGRESS_S reports its updates (rate, ETA)
    as events, so that ``hpcnnp run`` shows a committee member's progress inside an
    epoch (#17.3)."""
    import json

    from hpcnnp.progress import EVENTS_ENV
    from hpcnnp.training import trainer as trainer_mod

    events = tmp_path / "events.jsonl"
    monkeypatch.setenv(EVENTS_ENV, str(events))
    monkeypatch.setattr(trainer_mod, "EPOCH_PROGRESS_S", 0.0)
    d = _run_dir(base, "epoch_progress", epochs="1")
    _trainer(d).run()
    evs = [json.loads(line) for line in events.read_text().splitlines()]
    within = [e for e in evs if e["stage"] == "hpcnnp train: epoch 1 updates"]
    assert within and within[0]["unit"] == "updates" and within[0]["total"] > 10
    assert within[-1]["kind"] == "end" and within[-1]["ok"] is True
    assert within[-1]["done"] == within[-1]["total"]
