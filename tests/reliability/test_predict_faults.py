"""``hpcnnp predict`` when things go wrong: full disk, read-only output, bad bytes,
empty input, a killed run's temporary files, two ranks, two runs in one folder."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _reliability import REPO, env, hpcnnp, one_clear_line, temp_files


def _predict(small_potential, out, data=None, args=(), **kw):
    return hpcnnp("predict", "-p", small_potential["pot"], "-d",
                  data or small_potential["data"], "-o", out, "-q", *args, **kw)


def test_full_disk_is_one_line_and_leaves_no_temp_file(small_potential, small_disk,
                                                        tmp_path):
    """Case: predict on a full disk gave three chained tracebacks and left its
    temporary files."""
    data = tmp_path / "big.data"
    data.write_text(small_potential["data"].read_text() * 20)
    with small_disk("200k") as disk:
        out = disk / "out"
        out.mkdir()
        (out / "energy.comp").write_text("old\n")
        proc = _predict(small_potential, out, data=data, args=("--per-structure",))
        line = one_clear_line(proc, "No space left on device", str(out))
        assert line.startswith("hpcnnp predict: error: ")
        assert temp_files(disk) == []
        assert sorted(os.listdir(out)) == ["energy.comp"]
        assert (out / "energy.comp").read_text() == "old\n"


def test_full_disk_injected(small_potential, tmp_path, monkeypatch):
    """The same with an injected ENOSPC at the final fsync (no tmpfs needed)."""
    import errno

    from hpcnnp.cli import main

    real = os.fsync
    calls = []

    def fsync(fd):
        calls.append(fd)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    rc = main(["predict", "-p", str(small_potential["pot"]), "-d",
               str(small_potential["data"]), "-o", str(tmp_path / "out"), "-q"])
    assert rc == 2
    assert not (tmp_path / "out").exists()          # nothing written, not even the folder


def test_read_only_output_folder(small_potential, read_only_dir):
    proc = _predict(small_potential, read_only_dir)
    one_clear_line(proc, str(read_only_dir), "Read-only file system")


def test_non_utf8_comment_is_kept_byte_for_byte(small_potential, tmp_path):
    """Case: a non-UTF-8 byte in an input.data comment crashed predict."""
    raw = small_potential["data"].read_bytes()
    bad = tmp_path / "latin1.data"
    bad.write_bytes(raw.replace(b"begin\n", b"begin\ncomment Zr\xf6\xdfe T=300 K\n", 1))
    proc = _predict(small_potential, tmp_path / "out", data=bad)
    assert proc.returncode == 0, proc.stderr
    assert b"comment Zr\xf6\xdfe T=300 K\n" in (tmp_path / "out" / "output.data").read_bytes()


def test_empty_input_is_an_error(small_potential, tmp_path):
    """Case: predict on an empty input.data exited 0 with empty outputs."""
    empty = tmp_path / "empty.data"
    empty.write_text("")
    proc = _predict(small_potential, tmp_path / "out", data=empty)
    one_clear_line(proc, str(empty), "no structures")
    assert not (tmp_path / "out").exists()


def test_temp_files_of_a_killed_run_are_removed_by_the_next(small_potential, tmp_path):
    """Case: temporary files of a killed predict were never cleaned, not even by the
    next successful run."""
    big = tmp_path / "big.data"
    big.write_text(small_potential["data"].read_text() * 40)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "hpcnnp.cli", "predict", "-p",
                             str(small_potential["pot"]), "-d", str(big), "-o", str(out),
                             "-q"], env=env(), stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while time.time() < deadline and not temp_files(out):
        time.sleep(0.02)
    assert temp_files(out), "the run did not start writing"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert temp_files(out)                       # SIGKILL: nothing could clean them
    done = _predict(small_potential, out)
    assert done.returncode == 0, done.stderr
    assert temp_files(out) == []


def test_sigterm_removes_temp_files_and_says_so(small_potential, tmp_path):
    big = tmp_path / "big.data"
    big.write_text(small_potential["data"].read_text() * 40)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "hpcnnp.cli", "predict", "-p",
                             str(small_potential["pot"]), "-d", str(big), "-o", str(out),
                             "-q"], env=env(), stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and not temp_files(out):
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    rc = proc.wait(timeout=30)
    err = proc.stderr.read().strip()
    assert (rc, err) == (143, "hpcnnp predict: received SIGTERM, stopping")
    assert not out.exists(), os.listdir(out)        # nothing left, not even the folder


def test_two_runs_in_one_folder(small_potential, tmp_path):
    from hpcnnp.fileio import folder_lock

    out = tmp_path / "out"
    with folder_lock(out, "hpcnnp predict"):
        proc = _predict(small_potential, out)
    one_clear_line(proc, f"{out}: in use by another hpcnnp process (hpcnnp predict, pid "
                         f"{os.getpid()}")


@pytest.mark.mpi
def test_two_ranks_split_the_structures_and_one_writes(small_potential, tmp_path):
    """Case: ``mpiexec -n 2 hpcnnp predict`` ran two full predictions racing on the same
    output files."""
    ser = _predict(small_potential, tmp_path / "ser", timeout=120)
    assert ser.returncode == 0, ser.stderr
    par = _predict(small_potential, tmp_path / "par", ranks=2, timeout=120)
    assert par.returncode == 0, par.stderr
    assert par.stdout.count("hpcnnp predict: ") == 1          # one report, by rank 0
    assert "on 2 MPI ranks" in par.stdout
    for name in os.listdir(tmp_path / "ser"):
        assert (tmp_path / "par" / name).read_bytes() == (tmp_path / "ser" / name).read_bytes()
    assert Path(REPO).is_dir()


@pytest.mark.mpi
def test_bad_structure_on_one_rank_is_one_message(small_potential, tmp_path):
    """Structure 2 (evaluated by rank 1) has two atoms on top of each other: the same
    single message as a serial run, no hang, nothing written."""
    lines = small_potential["data"].read_text().splitlines(keepends=True)
    starts = [i for i, ln in enumerate(lines) if ln.startswith("begin")]
    atoms = [i for i in range(starts[1], starts[2]) if lines[i].startswith("atom")]
    a, b = lines[atoms[0]].split(), lines[atoms[1]].split()
    b[1:4] = a[1:4]
    lines[atoms[1]] = " ".join(b) + "\n"
    bad = tmp_path / "bad.data"
    bad.write_text("".join(lines))
    ser = _predict(small_potential, tmp_path / "ser", data=bad)
    par = _predict(small_potential, tmp_path / "par", data=bad, ranks=2, timeout=120)
    line = one_clear_line(par, "structure 2")
    assert line == one_clear_line(ser)
    assert not (tmp_path / "par").exists()


@pytest.mark.mpi
def test_full_disk_and_empty_input_under_mpi(small_potential, small_disk, tmp_path):
    """Rank 0's write error and the empty input reach every rank at once: one line,
    no wait for a timeout, no temporary file."""
    data = tmp_path / "big.data"
    data.write_text(small_potential["data"].read_text() * 20)
    with small_disk("200k") as disk:
        t0 = time.time()
        proc = _predict(small_potential, disk / "out", data=data, ranks=2,
                        args=("--per-structure",), timeout=120)
        one_clear_line(proc, "No space left on device")
        assert time.time() - t0 < 25               # no 30 s grace period
        assert temp_files(disk) == []
    empty = tmp_path / "empty.data"
    empty.write_text("")
    proc = _predict(small_potential, tmp_path / "out", data=empty, ranks=2, timeout=120)
    one_clear_line(proc, "no structures")
