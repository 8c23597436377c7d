"""Fixtures of the reliability suite (helpers in _reliability.py)."""

import contextlib
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import numpy as np
import pytest
from _synthetic import random_cubic_structures, write_synthetic_potential


@pytest.fixture(scope="session")
def small_potential(tmp_path_factory):
    """A Li/O potential (10 SFs per element, 6-5 network) and 16 structures of 8-14
    atoms labelled with it: ``{"pot": folder, "data": input.data, "train": folder with
    input.nn (+ training keywords), input.data and scaling.data}``."""
    from hpcnnp.testing import label_with_potential, with_training_settings

    root = tmp_path_factory.mktemp("reliability")
    structures = random_cubic_structures(np.random.default_rng(7), 16, 8, 14)
    pot_dir = write_synthetic_potential(root / "potential", structures, seed=3,
                                        atom_energy={"Li": -1.5, "O": -2.0})
    label_with_potential(structures, pot_dir, root / "input.data")
    train = root / "train"
    train.mkdir()
    (train / "input.nn").write_text(with_training_settings(
        (pot_dir / "input.nn").read_text(), epochs=2, random_seed=123, test_fraction=0.2,
        short_force_fraction=0.1, write_weights_epoch=1))
    shutil.copy(root / "input.data", train / "input.data")
    shutil.copy(pot_dir / "scaling.data", train / "scaling.data")
    return {"pot": pot_dir, "data": root / "input.data", "train": train,
            "n": len(structures)}


@pytest.fixture
def train_dir(small_potential, tmp_path):
    """A fresh copy of the training folder."""
    d = tmp_path / "train"
    shutil.copytree(small_potential["train"], d)
    return d


@contextlib.contextmanager
def _mount(options, what="tmpfs"):
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root (the injected-OSError tests cover "
                    "the same code paths)")
    point = Path("/tmp") / f"hpcnnp-reliability-{uuid.uuid4().hex[:8]}"
    point.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, what, str(point)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        point.rmdir()
        pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.strip()})")
    try:
        yield point
    finally:
        subprocess.run(["umount", "-l", str(point)], capture_output=True)
        with contextlib.suppress(OSError):
            point.rmdir()


@pytest.fixture
def small_disk():
    """Mount a tmpfs of a given size: ``with small_disk("64k") as path: ...``."""
    return lambda size: _mount(f"size={size},mode=0777")


@pytest.fixture
def read_only_dir():
    """A read-only file system (an empty tmpfs mounted ``ro``: even root cannot write)."""
    with _mount("ro,size=64k") as point:
        yield point
