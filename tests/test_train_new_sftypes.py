"""``hpcnnp train`` with the SF types beyond 2/3/9: an input.nn with element-weighted
(12, 13) and polynomial (20-25) symmetry functions trains.

The training Jacobians use the C core's SF derivatives in its compact layout
(``Model.neighbor_sfs``), which the new group kernels fill like the old ones, so no
training code is type-specific; this test shows it end to end.  A teacher potential
with these SFs labels 40 small periodic Li/O structures; a fresh network of the same
shape is trained for 3 epochs (Kalman filter, energies and forces) and must reduce the
test errors several-fold (here 0.27 -> 0.013 energy units per atom and 0.76 -> 0.12
force units); the written weights reproduce the reported final error.
"""

import shutil
import subprocess
import sys

import numpy as np
import pytest
from _helpers import subprocess_env
from _synthetic import (compact_symfunctions, random_structure, weighted_symfunctions,
                        write_synthetic_potential)

from hpcnnp.io import n2p2
from hpcnnp.potential import Potential

#: n2p2's Kalman settings (hpcnnp.testing.KALMAN_TRAINING) for a 3-epoch run without
#: normalisation, error thresholds or a Nguyen-Widrow start, weights of every epoch
TRAIN = dict(epochs=3, selection_mode=0, test_fraction=0.2, force_weight=3.0,
             short_force_fraction=0.1, normalize_data_set=None,
             short_energy_error_threshold=None, short_force_error_threshold=None,
             rmse_threshold_trials=None, nguyen_widrow_weights_short=None,
             write_trainpoints=0, write_trainforces=0, write_weights_epoch=1,
             write_neuronstats=0)


def _structures(rng, count):
    out = []
    for _ in range(count):
        n = int(rng.integers(8, 17))
        edge = (n / 0.035) ** (1.0 / 3.0)
        cell = np.diag([edge, 1.05 * edge, 0.97 * edge])
        cell += 0.3 * np.triu(rng.uniform(-1, 1, (3, 3)), 1)
        out.append(random_structure(rng, n, cell=cell, min_distance=1.4))
    return out


def test_train_with_weighted_and_polynomial_sfs(tmp_path):
    from hpcnnp.testing import label_with_potential, with_training_settings

    rng = np.random.default_rng(11)
    structures = _structures(rng, 40)
    sfs = weighted_symfunctions(rc=5.5) + compact_symfunctions("p2a", rc=5.5)
    teacher = write_synthetic_potential(tmp_path / "teacher", structures, symfunctions=sfs,
                                        nodes=(6, 6), seed=4)
    pot = Potential.from_n2p2(teacher)
    types = {sf.sftype for x in pot.symmetry_function_list.values() for sf in x}
    assert types == {12, 13, 20, 21, 22, 23, 24, 25}
    run = tmp_path / "run"
    run.mkdir()
    label_with_potential(structures, teacher, run / "input.data")
    shutil.copy(teacher / "scaling.data", run / "scaling.data")
    (run / "input.nn").write_text(with_training_settings((teacher / "input.nn").read_text(),
                                                         **TRAIN))

    proc = subprocess.run([sys.executable, "-m", "hpcnnp.cli", "train", "-o", "out", "-q",
                           "--no-plots", "--no-checkpoint"], cwd=run,
                          env=subprocess_env(OPENBLAS_NUM_THREADS=1),
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    out = run / "out"
    curve = np.loadtxt(out / "learning-curve.out")
    assert curve.shape[0] == 4                          # epochs 0-3
    header = [ln for ln in (out / "learning-curve.out").read_text().splitlines()
              if ln.startswith("#") and "epoch" in ln][-1].lstrip("#").split()
    e_test = curve[:, header.index("RMSEpa_Etest_pu")]
    f_test = curve[:, header.index("RMSE_Ftest_pu")]
    assert e_test[-1] < 0.3 * e_test[0], e_test
    assert f_test[-1] < 0.5 * f_test[0], f_test
    # the written weights are the trained potential: they reproduce the final error
    trained = Potential.from_n2p2(out)
    test = n2p2.read_data(out / "test.data")
    err = [(trained.compute(a).energy - a.get_potential_energy()) / len(a) for a in test]
    assert np.sqrt(np.mean(np.square(err))) == pytest.approx(e_test[-1], rel=1e-6)
