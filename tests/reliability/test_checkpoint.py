"""Training checkpoints under faults (issues #14 and #15): a SIGKILL at any moment,
a full disk, truncated and damaged checkpoint files.

Every case must end in one clear message (no traceback), leave no temporary file,
keep exactly one valid checkpoint, and ``--restart`` must continue bit-identically.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _reliability import env as _env
from _synthetic import random_cubic_structures, write_synthetic_potential

#: n2p2's Kalman settings (hpcnnp.testing.KALMAN_TRAINING) for a 3-epoch run
TRAIN = dict(epochs=3, random_seed=123, test_fraction=0.2, force_weight=3.0,
             short_force_fraction=0.05, normalize_data_set=None,
             nguyen_widrow_weights_short=None)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Li/O teacher (10 SFs, 8-8 networks), 40 labelled structures of 8-16 atoms."""
    from hpcnnp.testing import label_with_potential, with_training_settings

    root = tmp_path_factory.mktemp("ckpt")
    structures = random_cubic_structures(np.random.default_rng(2), 40, 8, 16)
    teacher = write_synthetic_potential(root / "teacher", structures, nodes=(8, 8), seed=3)
    label_with_potential(structures, teacher, root / "input.data")
    shutil.copy(teacher / "scaling.data", root / "scaling.data")
    (root / "input.nn").write_text(with_training_settings((teacher / "input.nn").read_text(),
                                                          **TRAIN))
    return root


def _train(folder, *args, env=None):
    cmd = [sys.executable, "-m", "hpcnnp.cli", "train", "-q", "--no-plots", *args]
    return subprocess.run(cmd, cwd=folder, env=env or _env(), capture_output=True,
                          text=True, timeout=300)


def _one_message(proc, *words):
    """Exit status 2, one line on stderr naming the problem, no traceback."""
    err = proc.stderr.strip()
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    for w in words:
        assert w in err, err
    return err


def _tmp_files(folder):
    return [p.name for p in Path(folder).rglob("*.tmp")]


def _committed_files(ckpt):
    meta = json.loads((ckpt / "meta.json").read_text())
    names = sorted(p.name for p in ckpt.iterdir())
    return meta, names


@pytest.fixture(scope="module")
def reference(data):
    """The uninterrupted run (its weights are the reference of every restart)."""
    proc = _train(data, "-o", "full")
    assert proc.returncode == 0, proc.stderr
    return data / "full"


def _same_weights(a, b):
    for z in ("003", "008"):
        assert (a / f"weights.{z}.data").read_bytes() == (b / f"weights.{z}.data").read_bytes()


def _updates_per_epoch(run):
    log = (run / "nnp-train.log.0000").read_text().splitlines()
    return sum(int(ln.split(":")[1]) for ln in log if ln.startswith("- Updates per epoch"))


@pytest.mark.parametrize("when", ["in-flight", "committed"])
def test_sigkill_then_restart_is_bit_identical(data, reference, when):
    """SIGKILL mid-epoch (in-flight: two updates after epoch 1's P write started in
    the background, before its commit at the next fold; committed: late in epoch 2)
    -> --restart gives the uninterrupted run's weights; exactly one checkpoint, no
    temp file."""
    u = _updates_per_epoch(reference)
    kill_after = u + 2 if when == "in-flight" else 2 * u - 3
    out = f"kill-{when}"
    proc = _train(data, "-o", out, env=_env(HPCNNP_TRAIN_KILL_AFTER_UPDATES=kill_after))
    assert proc.returncode == -signal.SIGKILL
    ckpt = data / out / "checkpoint"
    meta, names = _committed_files(ckpt)
    assert meta["epoch"] == (0 if when == "in-flight" else 1), (u, meta)
    proc = _train(data, "-o", out, "--restart")
    assert proc.returncode == 0, proc.stderr
    _same_weights(data / out, reference)
    meta, names = _committed_files(ckpt)
    tag = meta["tag"]
    assert meta["epoch"] == 3
    assert names == sorted(["meta.json", f"ckpt.{tag}.rank0000.npz",
                            f"ckpt.{tag}.rank0000.P"])
    assert _tmp_files(data / out) == []


def test_checkpoint_holds_only_the_stored_triangle(data, reference):
    meta, _ = _committed_files(reference / "checkpoint")
    n_w = 2 * (10 * 8 + 8 + 8 * 8 + 8 + 8 + 1)            # Li and O: 10-8-8-1
    p = reference / "checkpoint" / f"ckpt.{meta['tag']}.rank0000.P"
    assert p.stat().st_size == 8 * n_w * (n_w + 1) // 2 == meta["files"][0]["P"]["bytes"]
    log = (reference / "nnp-train.log.0000").read_text()
    assert "CHECKPOINT     3 waited" in log


def _copy_run(reference, dst):
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(reference, dst)
    return dst / "checkpoint"


@pytest.mark.parametrize("damage, words", [
    ("truncate-P", ("truncated",)),
    ("truncate-state", ("truncated",)),
    ("flip-P", ("damaged", "CRC-32")),
    ("flip-state", ("damaged", "CRC-32")),
    ("meta", ("meta.json",)),
    ("missing-P", ("missing",)),
])
def test_damaged_checkpoint_gives_one_clear_error(data, reference, damage, words):
    ckpt = _copy_run(reference, data / f"damaged-{damage}")
    meta = json.loads((ckpt / "meta.json").read_text())
    kind, what = damage.split("-") if "-" in damage else (damage, None)
    path = ckpt / (f"ckpt.{meta['tag']}.rank0000." + ("P" if what == "P" else "npz"))
    if kind == "truncate":
        with open(path, "r+b") as f:
            f.truncate(path.stat().st_size // 2)
    elif kind == "flip":
        raw = bytearray(path.read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        path.write_bytes(bytes(raw))
    elif kind == "meta":
        (ckpt / "meta.json").write_text('{"version": 2, "tag": ')
    else:
        path.unlink()
    log = (ckpt.parent / "nnp-train.log.0000").read_bytes()
    err = _one_message(_train(data, "-o", ckpt.parent.name, "--restart"), *words)
    assert "BadZipFile" not in err
    assert (ckpt.parent / "nnp-train.log.0000").read_bytes() == log   # nothing written


def test_full_disk_injected_oserror(data, monkeypatch, tmp_path):
    """ENOSPC while P is written in the background: one error naming the problem,
    the temp files removed, the previous checkpoint kept and still valid."""
    import errno

    from hpcnnp.training import checkpoint as ck
    from hpcnnp.training.comm import Comm
    from hpcnnp.training.trainer import Trainer

    real_open = open
    state = {"writes": 0}

    def failing_open(path, mode="r", *a, **k):
        f = real_open(path, mode, *a, **k)
        name = Path(path).name
        if name.startswith(".ckpt.") and ".P." in name and name.endswith(".tmp"):
            state["writes"] += 1
            if state["writes"] == 2:           # the second checkpoint (after epoch 1)
                f.close()

                class Full:
                    def __enter__(self):
                        return self

                    def __exit__(self, *exc):
                        return False

                    def write(self, b):
                        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

                return Full()
        return f

    monkeypatch.setattr(ck, "open", failing_open, raising=False)
    out = tmp_path / "out"
    tr = Trainer(settings=data / "input.nn", data=data / "input.data",
                 scaling=data / "scaling.data", output_dir=out, comm=Comm(None),
                 stream=None, plots=False)
    with pytest.raises(ck.CheckpointError, match="No space left on device") as info:
        tr.run()
    assert "previous checkpoint" in str(info.value)
    assert _tmp_files(out) == []
    meta, names = _committed_files(out / "checkpoint")
    assert meta["epoch"] == 0 and len(names) == 3
    monkeypatch.undo()
    again = Trainer(settings=data / "input.nn", data=data / "input.data",
                    scaling=data / "scaling.data", output_dir=out, comm=Comm(None),
                    stream=None, plots=False, restart=True)
    again.run()
    assert again.epoch == 3


def test_full_disk_tmpfs(data, reference, tmp_path):
    """A real full file system (a 300 KiB tmpfs holds the checkpoint folder, the
    P file needs 350 KiB): one message, exit 2, nothing left in the folder."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(mnt)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.strip()})")
    try:
        proc = _train(data, "-o", str(tmp_path / "out"), "--checkpoint", str(mnt / "ck"))
        _one_message(proc, "No space left on device", "checkpoint")
        assert [p.name for p in (mnt / "ck").iterdir()] == []
    finally:
        subprocess.run(["umount", str(mnt)], check=False)
