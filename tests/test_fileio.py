"""hpcnnp.fileio: atomic outputs (temp files removed on any error), the folder lock,
stale temporary files."""

import errno
import os
import subprocess
import sys
import textwrap

import pytest

from hpcnnp import fileio
from hpcnnp.errors import OutputError


def _temps(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_write_atomic_text_and_bytes(tmp_path):
    path = tmp_path / "a.txt"
    fileio.write_atomic(path, "x\n")
    assert path.read_text() == "x\n"
    fileio.write_atomic(path, b"\x00\xff")
    assert path.read_bytes() == b"\x00\xff"
    fileio.write_atomic(tmp_path / "run.sh", "#!/bin/sh\n", executable=True)
    assert os.access(tmp_path / "run.sh", os.X_OK)
    assert _temps(tmp_path) == []


def test_error_in_block_keeps_old_file_and_removes_temp(tmp_path):
    path = tmp_path / "out.dat"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        with fileio.atomic_open(path) as fh:
            fh.write("new, half")
            raise RuntimeError("caller failed")
    assert path.read_text() == "old" and _temps(tmp_path) == []
    with pytest.raises(KeyboardInterrupt):
        with fileio.atomic_path(path) as tmp:
            tmp.write_text("new")
            raise KeyboardInterrupt
    assert path.read_text() == "old" and _temps(tmp_path) == []


def test_disk_full_is_one_clear_error(tmp_path, monkeypatch):
    path = tmp_path / "out.dat"

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OutputError) as info:
        fileio.write_atomic(path, "data")
    assert str(info.value) == (f"{path}: cannot write: No space left on device (the disk "
                               "is full) [ENOSPC]")
    assert not path.exists() and _temps(tmp_path) == []


def test_read_only_folder(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders; the tmpfs test covers it")
    os.chmod(tmp_path, 0o555)
    try:
        with pytest.raises(OutputError, match="Permission denied"):
            fileio.write_atomic(tmp_path / "x", "y")
    finally:
        os.chmod(tmp_path, 0o755)


def test_atomic_files_commit_and_abort(tmp_path):
    with fileio.AtomicFiles(tmp_path) as files:
        files.open("a").write("A")
        files.open("b", binary=True).write(b"B")
    assert (tmp_path / "a").read_text() == "A" and (tmp_path / "b").read_bytes() == b"B"
    with pytest.raises(ValueError):
        with fileio.AtomicFiles(tmp_path) as files:
            files.open("a").write("changed")
            raise ValueError
    assert (tmp_path / "a").read_text() == "A" and _temps(tmp_path) == []


def test_abort_survives_close_failure(tmp_path):
    files = fileio.AtomicFiles(tmp_path)
    fh = files.open("a")
    fh.write("x" * 100)

    class Broken:
        """A file whose last flush fails: the descriptor is released anyway."""

        closed = False

        def close(self):
            fh.close()
            self.closed = True
            raise OSError(errno.ENOSPC, "No space left on device")

    tmp = files.files["a"][0]
    files.files["a"] = (tmp, fileio._PendingFile(Broken(), True), True)
    files.abort()                          # does not raise
    assert _temps(tmp_path) == [] and fh.closed


def test_atomic_files_closed_early_reserved_and_last(tmp_path):
    files = fileio.AtomicFiles(tmp_path)
    with files.open("histo.1", fsync=False) as fh:      # closed before the commit
        fh.write("h")
    fileio.write_atomic(tmp_path / "ignored", "")       # unrelated file
    tmp = files.reserve("scaling.data")
    tmp.write_text("s")
    done = files.commit(last="scaling.data")
    assert [p.name for p in done] == ["histo.1", "scaling.data"]
    assert (tmp_path / "histo.1").read_text() == "h"
    assert (tmp_path / "scaling.data").read_text() == "s"
    assert _temps(tmp_path) == []


def test_folder_lock_excludes_a_second_process(tmp_path):
    code = textwrap.dedent(f"""
        import sys
        from hpcnnp.fileio import folder_lock, FolderBusyError
        try:
            with folder_lock({str(tmp_path)!r}, "second"):
                print("acquired")
        except FolderBusyError as exc:
            print("busy:", exc)
    """)
    with fileio.folder_lock(tmp_path, "hpcnnp first"):
        with fileio.folder_lock(tmp_path, "nested"):           # same process: fine
            pass
        out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                             text=True, timeout=60).stdout
        assert out.startswith(f"busy: {tmp_path}: in use by another hpcnnp process "
                              f"(hpcnnp first, pid {os.getpid()} on ")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60).stdout
    assert out == "acquired\n"


def test_lock_of_a_killed_process_is_free(tmp_path):
    code = (f"from hpcnnp.fileio import folder_lock; import os, signal\n"
            f"with folder_lock({str(tmp_path)!r}, 'victim'):\n"
            f"    os.kill(os.getpid(), signal.SIGKILL)\n")
    subprocess.run([sys.executable, "-c", code], timeout=60)
    with fileio.folder_lock(tmp_path, "next"):
        pass


def test_lock_on_a_file_is_an_output_error(tmp_path):
    (tmp_path / "f").write_text("")
    with pytest.raises(OutputError, match="exists and is not a folder"):
        with fileio.folder_lock(tmp_path / "f"):
            pass


def test_remove_stale_temps(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    stale = tmp_path / f".energy.comp.{dead}.0123abcd.tmp"
    old_style = tmp_path / f".output.data.tmp.{dead}.89abcdef"
    live = tmp_path / f".energy.comp.{os.getpid()}.0123abcd.tmp"
    other = tmp_path / ".notes.tmp"
    for p in (stale, old_style, live, other):
        p.write_text("")
    removed = fileio.remove_stale_temps(tmp_path)
    assert sorted(p.name for p in removed) == sorted([stale.name, old_style.name])
    assert live.exists() and other.exists()


def test_lock_removes_a_folder_it_created_if_empty(tmp_path):
    with fileio.folder_lock(tmp_path / "new"):
        assert (tmp_path / "new" / fileio.LOCK_FILE).exists()
    assert not (tmp_path / "new").exists()
    with fileio.folder_lock(tmp_path / "kept"):
        (tmp_path / "kept" / "result").write_text("x")
    assert os.listdir(tmp_path / "kept") == ["result"]
    (tmp_path / "existing").mkdir()
    with fileio.folder_lock(tmp_path / "existing"):
        pass
    assert (tmp_path / "existing").is_dir()
