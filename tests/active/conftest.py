"""Fixtures of the active-learning tests: a toy Li/O system with a known teacher.

The teacher is a synthetic HDNNP (10 SFs per element, 8-8 tanh network) that plays
the reference method; the initial data are 10 configurations within 0.05 Å of one
16-atom structure, labelled by the teacher.  The students (committee members) have
6-6 networks and train a few epochs, which takes ~2 s per member on one core.
"""

from pathlib import Path

import numpy as np
import pytest
from _synthetic import random_structure, write_synthetic_potential

#: the students' training: n2p2's Kalman settings (hpcnnp.testing.KALMAN_TRAINING)
#: without normalisation, 6 epochs
TRAINING = dict(random_seed=1, epochs=6, force_weight=3.0, short_force_fraction=0.1,
                normalize_data_set=None, nguyen_widrow_weights_short=None,
                main_error_metric=None)


def make_toy(root):
    """Teacher potential, labelled data, input.nn template and starting structure."""
    from hpcnnp.io import n2p2
    from hpcnnp.testing import label_with_potential, with_training_settings

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    edge = (16 / 0.035) ** (1.0 / 3.0)
    cell = np.diag([edge] * 3)
    base = random_structure(rng, 16, cell=cell, min_distance=1.6)
    data = []
    for _ in range(10):
        a = base.copy()
        a.positions += rng.normal(0.0, 0.05, a.positions.shape)
        data.append(a)
    wide = [random_structure(rng, 16, cell=cell, min_distance=1.4) for _ in range(10)]
    teacher = write_synthetic_potential(root / "teacher", wide + data, nodes=(8, 8), seed=3,
                                        output_scale=0.3)
    label_with_potential(data, teacher, root / "input.data")
    text = (teacher / "input.nn").read_text().replace("global_nodes_short 8 8",
                                                      "global_nodes_short 6 6")
    (root / "input.nn").write_text(with_training_settings(text, **TRAINING))
    n2p2.write_data(root / "start.data", [base])
    return root


def toy_config(root, workdir, **sections):
    """Campaign dict for the toy (sections given as dicts update the defaults)."""
    cfg = {
        "workdir": str(workdir),
        "data": str(root / "input.data"),
        "input_nn": str(root / "input.nn"),
        "committee": {"size": 3, "epochs": 6, "seed": 7, "test_fraction": 0.2},
        "exploration": {"structures": [{"file": str(root / "start.data"), "name": "toy"}],
                        "temperatures": [600, 1200], "steps": 60, "stride": 5,
                        "timestep": 1.0, "seed": 3, "min_distance": 1.0},
        "selection": {"sigma_low": 0.03, "sigma_high": 1.5, "max_select": 12,
                      "min_distance": 0.01},
        "labeler": {"name": "hdnnp", "options": {"potential": str(root / "teacher")}},
        "stop": {"max_iterations": 1, "accurate_fraction": 0.95},
        "parallel": {"parsl": False},
    }
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(cfg.get(key), dict):
            cfg[key] = {**cfg[key], **value}
        else:
            cfg[key] = value
    return cfg


@pytest.fixture(scope="session")
def toy_cfg():
    """:func:`toy_config` (test modules cannot import conftest.py by name: other test
    folders have one too)."""
    return toy_config


@pytest.fixture(scope="session")
def toy(tmp_path_factory):
    """Folder with teacher/, input.data, input.nn and start.data of the toy system."""
    return make_toy(tmp_path_factory.mktemp("active_toy"))


@pytest.fixture(scope="session")
def toy_campaign(toy, tmp_path_factory):
    """One uninterrupted iteration of the toy campaign (shared by several tests)."""
    from hpcnnp.active import ActiveLearner

    workdir = tmp_path_factory.mktemp("active_campaign")
    learner = ActiveLearner(toy_config(toy, workdir), stream=None)
    summary = learner.run()
    return workdir, learner, summary

