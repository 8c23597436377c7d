"""``hpcnnp train`` when things go wrong: two runs in one folder, a folder given for a
file, a read-only or full disk, non-UTF-8 bytes in the data.  (Checkpoint faults:
tests/reliability/test_checkpoint.py, engineer "train".)"""

import os
import signal
import subprocess
import sys
import time

from _reliability import env, hpcnnp, one_clear_line, temp_files

TRAIN = ("train", "-q", "--no-plots")


def _start(folder, out, *extra):
    return subprocess.Popen([sys.executable, "-m", "hpcnnp.cli", *TRAIN, "-o", out, *extra],
                            cwd=folder, env=env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_for(path, proc, seconds=60):
    deadline = time.time() + seconds
    while time.time() < deadline and proc.poll() is None and not path.exists():
        time.sleep(0.02)
    return path.exists()


def test_second_train_with_other_settings_is_refused(train_dir):
    """Case: two ``hpcnnp train`` with different settings in one output folder both
    exited 0 and mixed their files."""
    other = train_dir / "other.nn"
    other.write_text((train_dir / "input.nn").read_text().replace("epochs 2", "epochs 40"))
    first = _start(train_dir, "out", "--settings", "other.nn")
    try:
        assert _wait_for(train_dir / "out" / "nnp-train.log.0000", first)
        second = hpcnnp(*TRAIN, "-o", "out", cwd=train_dir)
        one_clear_line(second, "hpcnnp train: error: out: in use by another hpcnnp process "
                               f"(hpcnnp train, pid {first.pid} on ")
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=120)
    log = (train_dir / "out" / "nnp-train.log.0000").read_text()
    assert "epochs 40" in log or "40" in log            # the folder holds the first run


def test_second_train_with_same_settings_is_refused(train_dir):
    """Case: with the same settings the second run died with a traceback (both used the
    same temporary checkpoint name)."""
    first = _start(train_dir, "out", "--epochs", "40")
    try:
        assert _wait_for(train_dir / "out" / "nnp-train.log.0000", first)
        second = hpcnnp(*TRAIN, "-o", "out", "--epochs", "40", cwd=train_dir)
        one_clear_line(second, "in use by another hpcnnp process")
    finally:
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=120) == 143
    resumed = hpcnnp(*TRAIN, "-o", "out", "--epochs", "3", "--restart", cwd=train_dir)
    assert resumed.returncode == 0, resumed.stderr


def test_folder_instead_of_file(train_dir):
    """Case: ``train`` reported "file not found" for a directory."""
    (train_dir / "data").mkdir()
    proc = hpcnnp(*TRAIN, "--data", "data", cwd=train_dir)
    one_clear_line(proc, "hpcnnp train: error: data: is a folder, not a file")
    assert not (train_dir / "out").exists()


def test_read_only_output(train_dir, read_only_dir):
    """Case: ``train`` on a read-only disk gave a traceback and half-run files."""
    proc = hpcnnp(*TRAIN, "-o", read_only_dir / "out", cwd=train_dir)
    one_clear_line(proc, str(read_only_dir / "out"), "Read-only file system")


def test_full_disk(train_dir, small_disk):
    """Case: ``train`` on a full disk gave a traceback and half-run files."""
    with small_disk("60k") as disk:
        proc = hpcnnp(*TRAIN, "-o", disk / "out", cwd=train_dir)
        one_clear_line(proc, "No space left on device")
        assert temp_files(disk) == []
        # what is there is whole: the split data sets read back, no weights file is cut
        from hpcnnp.io import n2p2
        for name in ("train.data", "test.data"):
            if (disk / "out" / name).exists():
                n2p2.read_data(disk / "out" / name)
        assert not list((disk / "out").glob("weights.???.data"))


def test_non_utf8_comment(train_dir):
    """Case: a non-UTF-8 byte in an input.data comment crashed ``train``."""
    raw = (train_dir / "input.data").read_bytes()
    (train_dir / "input.data").write_bytes(raw.replace(b"begin\n",
                                                       b"begin\ncomment Zr\xf6\xdfe\n", 1))
    proc = hpcnnp(*TRAIN, "-o", "out", cwd=train_dir)
    assert proc.returncode == 0, proc.stderr
    both = (train_dir / "out" / "train.data").read_bytes() + \
        (train_dir / "out" / "test.data").read_bytes()
    assert b"comment Zr\xf6\xdfe\n" in both
    assert os.path.exists(train_dir / "out" / "weights.003.data")
