"""Memory estimate of ``hpcnnp train`` and the refusal when a node lacks memory."""

import shutil
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]


def _helpers():
    import _synthetic          # tests/ is on sys.path (tests/conftest.py)
    return _synthetic


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from ase.calculators.singlepoint import SinglePointCalculator

    from hpcnnp.io import n2p2
    from hpcnnp.potential import Potential
    from hpcnnp.testing import with_training_settings

    h = _helpers()
    root = tmp_path_factory.mktemp("mem")
    rng = np.random.default_rng(4)
    structures = [h.random_structure(rng, int(rng.integers(8, 14)),
                                     cell=np.diag([7.0, 7.2, 6.9]), min_distance=1.4)
                  for _ in range(12)]
    teacher = h.write_synthetic_potential(root / "teacher", structures, nodes=(8, 8), seed=3)
    pot = Potential.from_n2p2(teacher)
    for atoms in structures:
        res = pot.compute(atoms)
        atoms.calc = SinglePointCalculator(atoms, energy=res.energy, forces=res.forces)
    n2p2.write_data(root / "input.data", structures)
    shutil.copy(teacher / "scaling.data", root / "scaling.data")
    (root / "input.nn").write_text(with_training_settings(
        (teacher / "input.nn").read_text(), epochs=1, normalize_data_set=None,
        short_force_fraction=0.05))
    return root


def _trainer(d, **kw):
    from hpcnnp.training.comm import Comm
    from hpcnnp.training.trainer import Trainer

    return Trainer(settings=d / "input.nn", data=d / "input.data",
                   scaling=d / "scaling.data", output_dir=d / kw.pop("out", "out"),
                   comm=Comm(None), stream=None, plots=False, **kw)


def test_estimate_is_printed_and_close_to_the_peak(run_dir):
    tr = _trainer(run_dir, out="est")
    summary = tr.run()
    est = summary["memory_estimate"][0]
    log = (run_dir / "est" / "nnp-train.log.0000").read_text()
    assert "Memory estimate per rank" in log and "total (estimated peak RSS)" in log
    # a tiny run: the resident interpreter dominates; the model must still bound it
    assert 0.8 < est / summary["peak_rss"][0] < 1.25
    parts = tr.memory_estimates[0]
    n_w = tr.n_w_total
    assert parts["kalman_P"] == 8 * n_w * (n_w + 1) // 2


def test_refuses_before_allocating_when_memory_is_short(run_dir, monkeypatch):
    from hpcnnp.errors import HpcnnpError
    from hpcnnp.training import memory

    monkeypatch.setattr(memory, "available_memory", lambda: 1 << 20)     # 1 MiB left
    tr = _trainer(run_dir, out="refused")
    with pytest.raises(HpcnnpError, match="not enough memory on node .* --no-memory-check"):
        tr.run()
    assert not hasattr(tr, "updaters")               # no filter was allocated
    assert not (run_dir / "refused").exists()        # nothing written
    tr = _trainer(run_dir, out="forced", memory_check=False)
    tr.run()                                         # --no-memory-check: runs


def test_sf_cache_is_bounded_in_bytes(run_dir):
    from hpcnnp.training.dataset import SFCache

    tr = _trainer(run_dir, out="cache")
    tr.setup()
    one = tr.sf.compute(tr.structures[0], True).nbytes
    cache = SFCache(tr.potential, memorize=False, capacity=100, max_bytes=int(2.5 * one))
    for s in tr.structures:
        cache.get(s, derivatives=True)
        assert cache.bytes <= max(cache.max_bytes, max(e.nbytes for e in
                                                        cache._cache.values()))
    assert len(cache._cache) < len(tr.structures)
    assert cache.computed == len(tr.structures)
