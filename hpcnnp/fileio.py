"""Files every stage writes: atomic outputs, one lock per output folder, stale temp files.

Atomic outputs
    A reader (another stage, a batch system, a user) never sees a half-written file
    under its final name: the content goes to a temporary file in the same folder
    (``.NAME.PID.XXXXXXXX.tmp``), is fsync'ed and renamed over the target.  On any
    error -- a full disk, a read-only folder, an exception of the caller, Ctrl-C or
    SIGTERM -- the temporary file is removed and the previous file stays untouched.

    * :func:`write_atomic` -- text or bytes in one call;
    * :func:`atomic_path` -- a context manager yielding the temporary path, for
      writers that want a file name (h5py, numpy, matplotlib);
    * :func:`atomic_open` -- a context manager yielding an open file object;
    * :class:`AtomicFiles` -- several files that replace their targets together at
      the end (``hpcnnp predict``'s outputs).

    Write errors become :class:`~hpcnnp.errors.OutputError` naming the file and the
    reason (``No space left on device``, ``Read-only file system``).

Folder lock
    :func:`folder_lock` takes an exclusive lock on ``FOLDER/.hpcnnp.lock`` (removed
    again at the end) for the duration of a command, so that two runs cannot mix their
    files in one output or work folder; the second one stops at once with a message
    naming the first (command, pid, host, start time).  The lock is a POSIX record lock
    (``fcntl.lockf``): the kernel releases it when the holder dies, even by SIGKILL, so
    there are no stale locks; it also works on NFS and on Lustre mounted with ``flock``.
    Under MPI only rank 0 takes it.

Stale temporary files
    A process killed by SIGKILL cannot remove its temporary files.
    :func:`remove_stale_temps` deletes hpcnnp's temporary files in a folder whose
    writer no longer runs; commands call it while holding the folder lock.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import socket
import time
from pathlib import Path

from hpcnnp.errors import HpcnnpError, OutputError

__all__ = ["write_atomic", "atomic_path", "atomic_open", "AtomicFiles", "temp_path",
           "output_error", "folder_lock", "FolderLock", "FolderBusyError", "LOCK_FILE",
           "remove_stale_temps"]

#: name of the lock file in a locked folder
LOCK_FILE = ".hpcnnp.lock"

#: hpcnnp's temporary files: ``.NAME.PID.HEX8.tmp`` (and the older
#: ``.NAME.tmp.PID.HEX8`` of predict/scaling before the helpers were shared)
_TEMP_RE = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[0-9a-f]{8}\.tmp$"
                      r"|^\.(?P<name2>.+)\.tmp\.(?P<pid2>\d+)\.[0-9a-f]{8}$")


def _umask():
    umask = os.umask(0)
    os.umask(umask)
    return umask


def output_error(path, exc, action="cannot write"):
    """:class:`OutputError` for an OSError while writing ``path``."""
    reason = exc.strerror or str(exc) if isinstance(exc, OSError) else str(exc)
    name = errno.errorcode.get(getattr(exc, "errno", None) or -1)
    hint = {errno.ENOSPC: " (the disk is full)", errno.EDQUOT: " (disk quota exceeded)",
            errno.EROFS: " (read-only file system)"}.get(getattr(exc, "errno", None), "")
    return OutputError(path, f"{action}: {reason}{hint}" + (f" [{name}]" if name else ""))


def temp_path(path):
    """A fresh temporary name beside ``path`` (``.NAME.PID.HEX8.tmp``)."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")


def _unlink_quietly(path):
    with contextlib.suppress(OSError):
        os.unlink(path)


def _target_mode(path, executable):
    try:
        mode = path.stat().st_mode & 0o7777
        if executable:
            mode |= 0o111 & ~_umask()
    except FileNotFoundError:
        mode = (0o777 if executable else 0o666) & ~_umask()
    except OSError as exc:
        raise output_error(path, exc, "cannot access") from None
    return mode


def _fsync_path(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path, *, executable=False, fsync=True):
    """Yield a temporary path beside ``path``; rename it to ``path`` on success.

    The caller creates the file (any writer that takes a file name).  If the block
    raises -- anything, including KeyboardInterrupt -- the temporary file is removed
    and the exception propagates; OSErrors of the block and of the rename become
    :class:`OutputError` naming ``path``.  An existing target keeps its permission
    bits; a new one gets 0o666 (0o777 with ``executable``) minus the umask.
    """
    path = Path(path)
    mode = _target_mode(path, executable)
    tmp = temp_path(path)
    try:
        yield tmp
        if fsync:
            _fsync_path(tmp)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as exc:
        _unlink_quietly(tmp)
        raise output_error(path, exc) from None
    except BaseException:
        _unlink_quietly(tmp)
        raise


@contextlib.contextmanager
def atomic_open(path, mode="w", *, encoding="utf-8", errors="strict", newline="\n",
                executable=False):
    """Yield an open file (``mode`` ``"w"`` or ``"wb"``) that replaces ``path`` when
    the block ends without error (see :func:`atomic_path`).

    ``errors="surrogateescape"`` writes back undecodable bytes of text read with it
    (comments of n2p2 files in another encoding) unchanged.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open: mode must be 'w' or 'wb', got {mode!r}")
    with atomic_path(path, executable=executable, fsync=False) as tmp:
        if mode == "wb":
            fh = open(tmp, "xb")
        else:
            fh = open(tmp, "x", encoding=encoding, errors=errors, newline=newline)
        try:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        finally:
            _close_quietly(fh)


def _close_quietly(fh):
    """Close a file whose buffered data may not fit on the disk any more."""
    # io objects release their descriptor even when the final flush fails;
    # closing the number again could close a file opened since by someone else
    with contextlib.suppress(OSError):
        fh.close()


def write_atomic(path, data, executable=False):
    """Write ``data`` (str: UTF-8 with ``\\n`` line ends; bytes: as is) to ``path``
    atomically.

    Raises
    ------
    OutputError
        The folder or file cannot be written (message names the file and the reason).
    """
    with atomic_open(path, "wb" if isinstance(data, (bytes, bytearray)) else "w",
                     executable=executable) as fh:
        fh.write(data)


class _PendingFile:
    """A temporary file of :class:`AtomicFiles`: a file object whose :meth:`close`
    flushes and (optionally) fsyncs; usable as a context manager."""

    def __init__(self, fh, fsync):
        self._fh = fh
        self.fsync = fsync

    def __getattr__(self, name):
        return getattr(self._fh, name)

    @property
    def closed(self):
        return self._fh.closed

    def close(self):
        """Flush, fsync (unless ``fsync=False``) and close; raises OSError."""
        if self._fh.closed:
            return
        try:
            self._fh.flush()
            if self.fsync:
                os.fsync(self._fh.fileno())
        finally:
            _close_quietly(self._fh)

    def finish(self, sync=True):
        """Close; without ``sync`` (after an error) quietly, without flushing checks."""
        if sync:
            self.close()
        else:
            _close_quietly(self._fh)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.finish(sync=exc_type is None)
        return False


class AtomicFiles:
    """Several output files in ``folder`` that replace their targets together.

    :meth:`open` creates a temporary file per name (the caller may close it when done
    -- with thousands of files -- or leave that to :meth:`commit`); :meth:`reserve`
    gives a temporary path for writers that want a file name; :meth:`commit` fsyncs
    and renames them all into place; :meth:`abort` (or leaving a ``with`` block by an
    exception) removes them.  Neither abort nor a failed commit leaves a temporary file
    behind, even when closing a file fails because the disk is full.
    """

    def __init__(self, folder):
        self.folder = Path(folder)
        self.files = {}                 # name -> (tmp path, _PendingFile or None, fsync)

    def open(self, name, binary=False, errors="strict", fsync=True):
        """A new temporary file for ``name`` (text: UTF-8, ``\\n``; ``errors`` as for
        :func:`open`; ``fsync=False`` for files that need not survive a power cut)."""
        tmp = temp_path(self.folder / name)
        self.files[name] = (tmp, None, fsync)       # registered first: abort() removes it
        try:
            fh = open(tmp, "xb") if binary else open(tmp, "x", encoding="utf-8",
                                                      errors=errors, newline="\n")
        except OSError as exc:
            del self.files[name]
            raise output_error(self.folder / name, exc) from None
        pending = _PendingFile(fh, fsync)
        self.files[name] = (tmp, pending, fsync)
        return pending

    def reserve(self, name, fsync=True):
        """A temporary path for ``name`` that the caller creates (h5py, numpy ...)."""
        tmp = temp_path(self.folder / name)
        self.files[name] = (tmp, None, fsync)
        return tmp

    @property
    def paths(self):
        """Final paths of the files opened so far."""
        return [self.folder / name for name in self.files]

    def commit(self, last=None):
        """fsync and rename every file into place, ``last`` after all others (its
        presence then means the set is complete).  Removes all on an error.
        Returns the final paths."""
        names = [n for n in self.files if n != last] + ([last] if last in self.files else [])
        name = None
        try:
            for name, (tmp, fh, fsync) in self.files.items():
                if fh is not None:
                    fh.close()
                elif fsync:
                    _fsync_path(tmp)
            done = []
            for name in names:
                os.replace(self.files[name][0], self.folder / name)
                done.append(self.folder / name)
        except OSError as exc:
            self.abort()
            raise output_error(self.folder / (name or ""), exc) from None
        except BaseException:           # interrupted: what is not renamed yet goes
            self.abort()
            raise
        self.files = {}
        return done

    def abort(self):
        """Close and remove every temporary file; never raises."""
        for tmp, fh, _ in self.files.values():
            if fh is not None:
                fh.finish(sync=False)
            _unlink_quietly(tmp)
        self.files = {}

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self.abort()
        elif self.files:
            self.commit()


# ---------------------------------------------------------------------------------------
# The folder lock
# ---------------------------------------------------------------------------------------

class FolderBusyError(HpcnnpError):
    """Another hpcnnp process holds the lock of the folder."""


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class FolderLock:
    """An exclusive lock on ``folder`` (see the module doc); use :func:`folder_lock`."""

    #: folders locked by this process -> (lock, depth): nested locks of one folder
    #: (a library call inside a command that locked it already) are free
    _held = {}

    def __init__(self, folder, command="hpcnnp"):
        self.folder = Path(folder)
        self.command = command
        self.fd = None
        self.key = None
        self.created = False

    def acquire(self):
        folder = self.folder
        try:
            self.created = not folder.exists()
            folder.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            raise OutputError(folder, "exists and is not a folder") from None
        except OSError as exc:
            raise output_error(folder, exc, "cannot create the folder") from None
        if not folder.is_dir():
            raise OutputError(folder, "exists and is not a folder")
        self.key = os.path.realpath(folder)
        held = FolderLock._held.get(self.key)
        if held is not None:
            FolderLock._held[self.key] = (held[0], held[1] + 1)
            return self
        fd = self._lock_file(folder / LOCK_FILE)
        info = (f"{self.command}, pid {os.getpid()} on {socket.gethostname()}, since "
                f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n").encode()
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, info, 0)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(folder / LOCK_FILE)
            os.close(fd)
            raise output_error(folder, exc, "cannot write into the folder") from None
        self.fd = fd
        FolderLock._held[self.key] = (self, 1)
        return self

    def _lock_file(self, path):
        """Open and lock ``path``; retried when a releasing holder removed the file
        between our open and our lock (then we would hold a lock on a dead file)."""
        import fcntl

        for _ in range(100):
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
            except OSError as exc:
                raise output_error(path.parent, exc, "cannot write into the folder") from None
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                holder = _read_holder(fd)
                os.close(fd)
                if exc.errno in (errno.EACCES, errno.EAGAIN):
                    raise FolderBusyError(
                        f"{path.parent}: in use by another hpcnnp process "
                        f"({holder or 'unknown'}); wait until it has finished, or use "
                        "another folder") from None
                raise output_error(path.parent, exc, "cannot lock the folder") from None
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(path))
            except FileNotFoundError:
                same = False
            if same:
                return fd
            os.close(fd)
        raise FolderBusyError(f"{path.parent}: cannot take the lock ({path} keeps "
                              "changing)")

    def release(self):
        held = FolderLock._held.get(self.key)
        if held is None:
            return
        lock, depth = held
        if depth > 1:
            FolderLock._held[self.key] = (lock, depth - 1)
            return
        del FolderLock._held[self.key]
        if lock.fd is not None:
            # removed while still held, so that nobody can lock the old file after us
            with contextlib.suppress(OSError):
                os.unlink(lock.folder / LOCK_FILE)
            os.close(lock.fd)       # releases the lock
            lock.fd = None
            if lock.created:        # a run that wrote nothing leaves no empty folder
                with contextlib.suppress(OSError):
                    os.rmdir(lock.folder)

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


def _read_holder(fd):
    try:
        return os.pread(fd, 500, 0).decode("utf-8", "replace").strip()
    except OSError:
        return ""


@contextlib.contextmanager
def folder_lock(folder, command="hpcnnp", comm=None):
    """Hold the exclusive lock of ``folder`` for the ``with`` block.

    Parameters
    ----------
    folder : path
        Output or work folder (created if missing, and removed again at the end if it
        is still empty: a run that failed before writing leaves nothing behind).
    command : str
        Written into the lock file, so that a second process can name the first.
    comm : mpi4py communicator, optional
        Under MPI rank 0 takes the lock and every rank raises the same error.

    Raises
    ------
    FolderBusyError
        Another process holds the lock.
    OutputError
        The folder cannot be created or written (read-only, full, a file of that name).
    """
    from hpcnnp import mpi

    rank, size = mpi.rank_size(comm)
    lock = FolderLock(folder, command)
    error = None
    if rank == 0:
        try:
            lock.acquire()
        except HpcnnpError as exc:
            error = exc
    if size > 1:
        mpi.agree(comm, error)
    elif error is not None:
        raise error
    try:
        yield lock
    finally:
        if rank == 0:
            lock.release()


def remove_stale_temps(folder, names=None):
    """Remove hpcnnp's temporary files in ``folder`` left by processes that died.

    A file is removed when the process id in its name does not run on this host.  Call
    it while holding the folder's lock, so that no other hpcnnp process on another host
    writes into the folder.

    Parameters
    ----------
    names : collection of str, optional
        Only temporary files of these final names.

    Returns
    -------
    list of Path
        The removed files.
    """
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        m = _TEMP_RE.match(entry.name)
        if m is None or not entry.is_file(follow_symlinks=False):
            continue
        name = m.group("name") or m.group("name2")
        pid = int(m.group("pid") or m.group("pid2"))
        if names is not None and name not in names:
            continue
        if _pid_alive(pid):
            continue
        try:
            os.unlink(entry.path)
            removed.append(Path(entry.path))
        except OSError:
            pass
    return removed
