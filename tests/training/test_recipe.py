"""The main job's default training recipe is robust to the random seed (issue #12, point 3).

The training keywords the main job writes (``hpcnnp.config.training.TRAINING_DEFAULTS``)
are trained from three ``random_seed`` values on a small data set: 60 periodic Li/O
cells of 8-20 atoms labelled by a random "teacher" HDNNP of the same shape (10 SFs per
element, 8-8 tanh networks), 20 more held out.  Every epoch's weights are evaluated on
the held-out cells; the recipe must not diverge for any seed (the held-out force RMSE
falls to < 0.3 × its start and never climbs back above 1.3 × its best) and the three
final force RMSEs must lie within ±30 % of their mean.

What was measured (issue #12; ``benchmarks/compare_training_n2p2.py`` runs both codes on
the same inputs):

* hpcnnp's trainer does n2p2's arithmetic: with the same initial weights and
  ``selection_mode 1`` (deterministic order) the weights after an epoch of force or of
  energy updates agree with nnp-train's to round-off, at force_weight 10 and 1
  (:func:`test_updates_match_n2p2_at_force_weight_10`; on the CHGNet LLZO/LCO demo data
  10 force updates agree to 1e-11 relative), and :func:`test_kalman_updates_by_hand`
  pins the filter's order of operations.
* Same data set as here, 32 seeds of each code with n2p2's example Kalman settings and
  force_weight 10: held-out force RMSE after 10 epochs median 289 (hpcnnp) and 224
  (n2p2) meV/Å, final > 1.3 × best in 28 % and 31 % of the seeds: the two codes
  scatter and diverge alike.  On the demo data n2p2 diverged on a seed where hpcnnp
  converged and vice versa.  So force_weight 10 diverging is a property of the recipe,
  not a defect of hpcnnp.
* The cause is the start of the filter: n2p2's examples start from P₀ = I/ε = 100 I,
  and the first force updates then fit single force components almost exactly.
  ``kalman_epsilon 1.0`` (P₀ = I) converges monotonically on every seed tried, in both
  codes (here, 9 seeds: hpcnnp 89-147, n2p2 77-151 meV/Å; seeds 1-3: 117, 109, 95).
  It is the default now (with force_weight 1), and
  :func:`test_published_recipe_fails_the_same_check` shows that the check below catches
  the published recipe (ε 0.01, force_weight 10) on this data set.
"""

import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
SEEDS = (1, 2, 3)
#: the acceptance of issue #12: final test force RMSEs within ±30 % of each other
SPREAD = 0.30


def _synthetic():
    """tests/_synthetic.py loaded by path (tests/ is not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("_hpcnnp_tests_synthetic",
                                                  REPO / "tests" / "_synthetic.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _cells(rng, count, syn):
    out = []
    for _ in range(count):
        n = int(rng.integers(8, 21))
        edge = (n / 0.035) ** (1.0 / 3.0)
        cell = np.diag([edge, 1.05 * edge, 0.97 * edge])
        cell += 0.3 * np.triu(rng.uniform(-1, 1, (3, 3)), 1)
        out.append(syn.random_structure(rng, n, cell=cell, min_distance=1.4))
    return out


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Teacher (Li/O, 10 SFs each, 8-8 tanh, atom energies), 60 training-pool and 20
    held-out cells labelled with it; scaling.data of the teacher."""
    from ase.calculators.singlepoint import SinglePointCalculator

    from hpcnnp.io import n2p2
    from hpcnnp.potential import Potential

    syn = _synthetic()
    root = tmp_path_factory.mktemp("recipe")
    rng = np.random.default_rng(5)
    pool, held_out = _cells(rng, 60, syn), _cells(rng, 20, syn)
    teacher = syn.write_synthetic_potential(root / "teacher", pool, nodes=(8, 8), seed=3,
                                            atom_energy={"Li": -1.5, "O": -2.0})
    pot = Potential.from_n2p2(teacher)
    for atoms in pool + held_out:
        res = pot.compute(atoms)
        atoms.calc = SinglePointCalculator(atoms, energy=res.energy, forces=res.forces)
    n2p2.write_data(root / "input.data", pool)
    n2p2.write_data(root / "test.data", held_out)
    shutil.copy(teacher / "scaling.data", root / "scaling.data")
    return root


def _train(data, name, seed, changes=None):
    """Train with TRAINING_DEFAULTS (+ changes) and ``random_seed`` = seed; returns the
    held-out force RMSE (eV/Å) of every epoch's weights."""
    from hpcnnp.io import n2p2
    from hpcnnp.potential import Potential
    from hpcnnp.training.comm import Comm
    from hpcnnp.training.trainer import Trainer
    from hpcnnp.config.training import TRAINING_DEFAULTS

    folder = data / name / f"seed{seed}"
    folder.mkdir(parents=True)
    keywords = dict(TRAINING_DEFAULTS, **(changes or {}))
    keywords.update(random_seed=seed, write_weights_epoch=1, write_trainpoints=None,
                    write_trainforces=None)
    n2p2.write_settings(folder / "input.nn", data / "teacher" / "input.nn",
                        {k: (None if v is None else str(v)) for k, v in keywords.items()},
                        comment="")
    trainer = Trainer(settings=folder / "input.nn", data=data / "input.data",
                      scaling=data / "scaling.data", output_dir=folder, comm=Comm(None),
                      stream=None, plots=False, checkpoint_dir=False, blas_threads=1)
    trainer.run()
    held_out = n2p2.read_data(data / "test.data")
    curve = []
    for epoch in range(trainer.cfg.epochs + 1):
        pot = Potential.from_n2p2(folder, weights=f"weights.%03d.{epoch:06d}.out")
        dev = np.concatenate([(pot.compute(a, stress=False).forces - a.get_forces()).ravel()
                              for a in held_out])
        curve.append(math.sqrt(float(np.mean(dev * dev))))
    return np.array(curve)


def _problems(curves):
    """What is wrong with a recipe, from its held-out force RMSE curves per seed."""
    problems = []
    for seed, c in curves.items():
        if not np.all(np.isfinite(c)):
            problems.append(f"seed {seed}: non-finite force RMSE {c}")
            continue
        if c[-1] > 0.3 * c[0]:
            problems.append(f"seed {seed}: final force RMSE {c[-1]:.4f} eV/A not below "
                            f"0.3 x the start {c[0]:.4f}")
        if c[-1] > 1.3 * c[1:].min():
            problems.append(f"seed {seed}: diverges: final {c[-1]:.4f} eV/A vs best "
                            f"{c[1:].min():.4f}")
    finals = np.array([c[-1] for c in curves.values()])
    if np.all(np.isfinite(finals)):
        dev = finals / finals.mean() - 1.0
        if np.abs(dev).max() > SPREAD:
            problems.append(f"final force RMSEs {np.round(finals, 4)} eV/A deviate "
                            f"{np.round(dev, 2)} from their mean (limit ±{SPREAD:.0%})")
    return problems


def test_default_recipe_is_seed_robust(data):
    """TRAINING_DEFAULTS, three seeds: no divergence, final held-out force RMSEs within
    ±30 % of their mean.  Measured (kalman_epsilon 1, force_weight 1, 10 epochs, 2 s CPU
    per seed): 0.117, 0.109, 0.095 eV/Å (start 0.48)."""
    curves = {s: _train(data, "default", s) for s in SEEDS}
    problems = _problems(curves)
    assert not problems, "\n".join(problems) + "\ncurves (eV/A): " + repr(
        {s: np.round(c, 4).tolist() for s, c in curves.items()})


def test_published_recipe_fails_the_same_check(data):
    """The check has teeth: the published recipe (n2p2's example Kalman settings with
    kalman_epsilon 0.01, force_weight 10) diverges or scatters over the seeds on this
    data set (measured: 0.62, 0.16, 1.52 eV/Å; n2p2 does the same, see the module
    docstring)."""
    curves = {s: _train(data, "published", s, {"force_weight": 10.0,
                                               "kalman_epsilon": 0.01})
              for s in SEEDS}
    assert _problems(curves), {s: np.round(c, 4).tolist() for s, c in curves.items()}


def test_force_weight_is_a_measurement_noise_scale():
    """Kalman update with row w·h and error w·ξ at learning rate η == update with h, ξ
    at η·w² (same P, same weights): force_weight w is a force measurement noise
    1/(η w²), w² times smaller than that of an energy."""
    from hpcnnp.training.kalman import KalmanFilter

    n, w_f = 40, 10.0
    rng = np.random.default_rng(1)
    common = dict(epsilon=0.01, q0=0.01, qtau=2.302, qmin=1e-6, updates_per_epoch=7,
                  fold_every=1)
    weighted = KalmanFilter(n, eta=0.01, etatau=2.302, etamax=1.0, **common)
    scaled = KalmanFilter(n, eta=0.01 * w_f ** 2, etatau=2.302, etamax=1.0 * w_f ** 2,
                          **common)
    a, b = rng.standard_normal(n), None
    b = a.copy()
    for _ in range(30):
        h, xi = rng.standard_normal((n, 1)), rng.standard_normal(1)
        weighted.update(a, w_f * h, w_f * xi)
        scaled.update(b, h, xi)
    np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_kalman_updates_by_hand():
    """Two updates of n2p2's standard filter computed by hand (the order of n2p2's
    KalmanFilter::update: η ← η·e^{τ_η} before R = 1/η enters A; P ← P − K Xᵀ + q I
    with the q of this update; q ← q·e^{−τ_q} afterwards; P₀ = I/ε; τ = tau/U).
    ε = 0.5 → P₀ = 2I, η₀ = 0.1 doubling per update (etatau = ln 2, U = 1), q₀ = 0.25
    halving."""
    from hpcnnp.training.kalman import KalmanFilter

    kf = KalmanFilter(2, epsilon=0.5, q0=0.25, qtau=math.log(2.0), qmin=0.0, eta=0.1,
                      etatau=math.log(2.0), etamax=1.0, updates_per_epoch=1, fold_every=1)
    w = np.zeros(2)
    # update 1: η = 0.2, X = P H = (2, 2), A = 4 + 5 = 9, K = (2/9, 2/9), ξ = 3
    kf.update(w, np.array([[1.0], [1.0]]), np.array([3.0]))
    np.testing.assert_allclose(w, [2 / 3, 2 / 3], rtol=1e-14)
    P1 = 2.0 * np.eye(2) - 4.0 / 9.0 + 0.25 * np.eye(2)
    np.testing.assert_allclose(kf.full_P(), P1, rtol=1e-14)
    assert math.isclose(kf.status()["eta"], 0.2, rel_tol=1e-14)
    assert math.isclose(kf.status()["q"], 0.125, rel_tol=1e-14)
    # update 2: η = 0.4, H = (1, 0), X = (65/36, -16/36), A = 65/36 + 5/2 = 155/36, ξ = 1
    kf.update(w, np.array([[1.0], [0.0]]), np.array([1.0]))
    K = np.array([65.0, -16.0]) / 155.0
    np.testing.assert_allclose(w, [2 / 3 + 65 / 155, 2 / 3 - 16 / 155], rtol=1e-14)
    X = np.array([65.0, -16.0]) / 36.0
    np.testing.assert_allclose(kf.full_P(), P1 - np.outer(K, X) + 0.125 * np.eye(2),
                               rtol=1e-13)
    assert math.isclose(kf.status()["eta"], 0.4, rel_tol=1e-14)
    assert math.isclose(kf.status()["q"], 0.0625, rel_tol=1e-14)


# ------------------------------------------------------- update by update against n2p2
@pytest.mark.parametrize("prop", ["force", "energy"])
def test_updates_match_n2p2_at_force_weight_10(data, tmp_path, prop, n2p2):
    """Deterministic run of both codes (same initial weights, no test set, selection
    mode 1 = sorted by error, updates of one property only, normalize_data_set ref,
    force_weight 10): the weights after the epoch agree to round-off.  Needs n2p2's
    nnp-train beside n2p2's other tools (the ``n2p2`` fixture)."""
    bin_dir = n2p2
    if not (bin_dir / "nnp-train").is_file():
        pytest.skip(f"n2p2's nnp-train not found in {bin_dir}")
    from hpcnnp.io import n2p2
    from hpcnnp.testing import with_training_settings

    settings = n2p2.read_settings(data / "teacher" / "input.nn")
    text = with_training_settings(
        (data / "teacher" / "input.nn").read_text(), use_old_weights_short="",
        nguyen_widrow_weights_short=None, test_fraction=0.0, selection_mode=1,
        short_energy_fraction=0.2 if prop == "energy" else 0.0,
        short_force_fraction=0.005 if prop == "force" else 0.0, force_weight=10.0,
        epochs=1, write_weights_epoch=1, random_seed=1)
    rng = np.random.default_rng(3)
    start = {el: rng.uniform(-0.5, 0.5, settings.n_weights(el)) for el in settings.elements}
    for code in ("n2p2", "hpcnnp"):
        d = tmp_path / code
        d.mkdir()
        (d / "input.nn").write_text(text)
        shutil.copy(data / "input.data", d)
        shutil.copy(data / "scaling.data", d)
        for el in settings.elements:
            n2p2.write_weights(d / n2p2.weights_filename(el), start[el],
                               settings.layer_sizes(el))
    env = dict(os.environ)
    lib = str(Path(sys.prefix) / "lib")
    env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (lib, env.get("LD_LIBRARY_PATH"))
                                             if p)
    env["OPENBLAS_NUM_THREADS"] = "1"
    mpiexec = Path(sys.executable).parent / "mpiexec"
    cmd = ([str(mpiexec), "-n", "1"] if mpiexec.exists() else []) + [
        str(bin_dir / "nnp-train")]
    proc = subprocess.run(cmd, cwd=tmp_path / "n2p2", env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    proc = subprocess.run([sys.executable, "-m", "hpcnnp.cli", "train", "-o", ".", "-q",
                           "--no-checkpoint", "--no-plots", "--fold-every", "1"],
                          cwd=tmp_path / "hpcnnp", env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    updates = []
    for code in ("n2p2", "hpcnnp"):
        log = (tmp_path / code / "nnp-train.log.0000").read_text().splitlines()
        row = [ln.split() for ln in log if ln.startswith(prop.upper() + " ")]
        updates.append(int(row[1][2]))                 # epoch 1: number of updates
    assert updates[0] == updates[1] > 5, updates
    for el in settings.elements:
        name = n2p2.weights_filename(el).replace(".data", ".000001.out")
        ref = np.loadtxt(tmp_path / "n2p2" / name, usecols=0)
        ours = np.loadtxt(tmp_path / "hpcnnp" / name, usecols=0)
        assert not np.allclose(ref, start[el])         # the weights did move
        np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-10 * np.abs(ref).max())
