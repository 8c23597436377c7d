"""Small CI version of the synth5_A recovery (issue #3 acceptance; the full run is
benchmarks/recover_synth5.py).

Teacher: refdata's 5-element Li-La-Zr-O-Co potential synth5_A (225 SFs per element,
20-20 tanh networks) with its SF scaling redone on the data, SFs without range and
rare-event SFs pruned (hpcnnp.testing.pruned_potential, max_tail 10).  A fresh network
of the same shape starts from random weights and is trained with n2p2's Kalman filter
(jacobian_mode 2, 4 force components per update) on the teacher's energies and forces;
after two epochs the test errors must have fallen by a factor of five (energy) and
below half (forces).  The acceptance run itself is benchmarks/recover_synth5.py: 1,000
structures, 2 ranks, 1.40 meV/atom and 45.8 meV/Å at epoch 4, 0.87 and 31.8 at epoch 16.
"""

import numpy as np
import pytest

N_STRUCTURES = 150
FORCE_FRACTION = 0.04
#: limits after two epochs (eV/atom, eV/Å).  Measured: 125.8 -> 25.2 -> 19.0 meV/atom,
#: 920 -> 370 -> 339 meV/Å (the teacher of pruned_potential since 5e66f06; the same
#: numbers with the trainer before and after its split; 125.8 -> 27.9 -> 11.9 and
#: 920 -> 403 -> 344 with the teacher before).  The CI data set (135 training
#: structures, 1,036 force components per epoch) is far too small for the targets:
#: short_force_fraction 0.15 took 7 min and still ended at 8.5 meV/atom and 198 meV/Å.
E_LIMIT = 0.02
F_LIMIT = 0.45

@pytest.mark.slow
def test_recovers_synth5_teacher(tmp_path, refdata):
    from ase.calculators.singlepoint import SinglePointCalculator

    from hpcnnp.io import n2p2
    from hpcnnp.potential import Potential
    from hpcnnp.testing import pruned_potential, rocksalt_cell, with_training_settings
    from hpcnnp.training.comm import Comm
    from hpcnnp.training.trainer import Trainer

    rng = np.random.default_rng(3)
    structures = [rocksalt_cell(rng, noise=(0.05, 0.1)) for _ in range(N_STRUCTURES)]
    teacher_dir = pruned_potential(refdata / "synth5_A" / "potential", tmp_path / "teacher",
                                   structures, max_tail=10)
    teacher = Potential.from_n2p2(teacher_dir)
    for atoms in structures:
        res = teacher.compute(atoms)
        assert res.n_warnings == 0             # the teacher is inside its scaling range
        atoms.calc = SinglePointCalculator(atoms, energy=res.energy, forces=res.forces)
    forces = np.concatenate([a.get_forces() for a in structures])
    assert 0.3 < forces.std() < 3.0 and np.abs(forces).max() < 30   # a smooth teacher

    run = tmp_path / "run"
    run.mkdir()
    n2p2.write_data(run / "input.data", structures)
    (run / "scaling.data").write_bytes((teacher_dir / "scaling.data").read_bytes())
    (run / "input.nn").write_text(with_training_settings(
        (teacher_dir / "input.nn").read_text(), epochs=2, memorize_symfunc_results="",
        jacobian_mode=2, task_batch_size_force=4, short_force_fraction=FORCE_FRACTION))
    tr = Trainer(settings=run / "input.nn", data=run / "input.data",
                 scaling=run / "scaling.data", output_dir=run / "out", comm=Comm(None),
                 stream=None, plots=False, checkpoint_dir=False)
    tr.run()
    # same shape as the teacher: 5 elements, (n_sf)-20-20-1 each
    settings = n2p2.read_settings(teacher_dir / "input.nn")
    assert tr.n_w_total == sum(
        n2p2._n_connections(settings.layer_sizes(el)) for el in settings.elements)
    txt = (run / "out" / "learning-curve.out").read_text().splitlines()
    cols = [ln for ln in txt if ln.startswith("#") and "epoch" in ln][-1].lstrip("#").split()
    curve = np.loadtxt(run / "out" / "learning-curve.out")
    e = curve[:, cols.index("RMSEpa_Etest_pu")]
    f = curve[:, cols.index("RMSE_Ftest_pu")]
    print("test RMSE per epoch: E (meV/atom)", np.round(e * 1e3, 2),
          "F (meV/Å)", np.round(f * 1e3, 1))
    assert curve.shape[0] == 3
    assert e[-1] < E_LIMIT and e[-1] < 0.2 * e[0], e
    assert f[-1] < F_LIMIT and f[-1] < 0.5 * f[0], f
