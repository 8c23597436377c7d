"""Multi-rank checkpoints of a training run: one valid checkpoint, written in the
background, only the stored part of the covariance.

Layout (folder ``checkpoint/`` in the output directory, or ``--checkpoint DIR``)::

    meta.json                   {"version", "tag", "ranks", "epoch", "phase", …,
                                 "files": per rank {state, P: bytes and CRC-32}}
    ckpt.<tag>.rank0000.npz     rank 0's state: weights, filter scalars and pending
                                low-rank factors, random streams, candidates, history
    ckpt.<tag>.rank0000.P       rank 0's owned region of the Kalman covariance P₀
    ckpt.<tag>.rank0001.npz …

What is written of P
    Only what the filter stores and reads: the owned region of the rank's row
    block (:meth:`KalmanFilter.p_chunks`: the lower triangle of the diagonal
    block and the owned rectangles), as raw float64 in the order of
    ``p_chunks`` — 8·N_w(N_w+1)/2 bytes in total over all ranks (2.46 GB for
    N_w = 24 805), written straight from P's memory: no copy, and the
    never-touched half of P is never read (so it never becomes resident).

Without stalling the training
    P₀ changes only when the filter folds its pending corrections (every
    ``fold_every`` updates).  :meth:`CheckpointWriter.start_p` starts a thread
    that streams P₀ to disk when the updates of an epoch are done; the
    end-of-epoch error evaluation runs meanwhile, then :meth:`save_state`
    writes the small state file and the filter's next fold waits for the
    thread (``KalmanFilter.before_fold``) and commits the checkpoint.  The
    training computes exactly the same numbers with and without checkpoints.

Exactly one valid checkpoint
    Files are written under temporary names (:mod:`hpcnnp.fileio`), fsynced and
    renamed; when every
    rank has both files, rank 0 replaces ``meta.json`` (which names the tag,
    the sizes and the CRC-32 of every file) and every rank removes the files
    of older tags.  A run killed at any moment leaves the previous or the new
    checkpoint complete, and after every commit exactly one.  A write that
    fails (full disk, I/O error) removes its temporary files on every rank
    and stops the training with one message; the previous checkpoint stays.

Validation on ``--restart``: meta.json must parse and match the run (version,
ranks); each file must have the recorded size and CRC-32; anything else is an
:class:`~hpcnnp.errors.HpcnnpError` naming the file and the problem.
"""

from __future__ import annotations

import json
import threading
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np

from hpcnnp.errors import HpcnnpError, OutputError
from hpcnnp.fileio import atomic_path, output_error, remove_stale_temps, write_atomic

__all__ = ["CheckpointWriter", "CheckpointError", "load_checkpoint", "read_p",
           "checkpoint_exists", "flatten", "unflatten", "CHECKPOINT_VERSION"]

CHECKPOINT_VERSION = 2
_BUFFER = 8 << 20


class CheckpointError(HpcnnpError):
    """A checkpoint that cannot be written or read."""


def flatten(tree, prefix=""):
    """Split a nested dict into (JSON-able tree, {path: ndarray})."""
    arrays = {}

    def walk(obj, path):
        if isinstance(obj, np.ndarray):
            arrays[path] = obj
            return {"__array__": path}
        if isinstance(obj, dict):
            return {str(k): walk(v, f"{path}.{k}" if path else str(k)) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return [walk(v, f"{path}.{i}") for i, v in enumerate(obj)]
        if isinstance(obj, np.generic):
            return obj.item()
        return obj

    return walk(tree, prefix), arrays


def unflatten(tree, arrays):
    def walk(obj):
        if isinstance(obj, dict):
            if set(obj) == {"__array__"}:
                return arrays[obj["__array__"]]
            return {k: walk(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [walk(v) for v in obj]
        return obj

    return walk(tree)


def _state_file(folder, tag, rank):
    return Path(folder) / f"ckpt.{tag}.rank{rank:04d}.npz"


def _p_file(folder, tag, rank):
    return Path(folder) / f"ckpt.{tag}.rank{rank:04d}.P"


def _remove(path):
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def _describe(exc, path):
    """One line for a failed write of ``path``."""
    if isinstance(exc, OutputError):
        return str(exc)
    if isinstance(exc, OSError):
        return str(output_error(path, exc))
    return f"{path}: {exc}"


class _PWriter(threading.Thread):
    """Streams the owned P chunks of all updaters into a temporary file (CRC-32,
    fsync, rename: :func:`hpcnnp.fileio.atomic_path`).  Errors are kept in
    ``self.error``; the temporary file is removed."""

    def __init__(self, path, updaters):
        super().__init__(name="hpcnnp-checkpoint-P", daemon=True)
        self.path = path
        self.updaters = updaters
        self.crc = 0
        self.nbytes = 0
        self.error = None
        self.seconds = 0.0
        self.cancel = False

    def run(self):
        t0 = time.perf_counter()
        try:
            with atomic_path(self.path) as tmp, open(tmp, "xb", buffering=_BUFFER) as f:
                for u in self.updaters:
                    for chunk in u.p_chunks():
                        if self.cancel:
                            raise CheckpointError("cancelled")
                        f.write(chunk)
                        self.crc = zlib.crc32(chunk, self.crc)
                        self.nbytes += chunk.nbytes
        except BaseException as exc:      # noqa: BLE001 - reported by the main thread
            self.error = _describe(exc, self.path)
        self.seconds = time.perf_counter() - t0


class CheckpointWriter:
    """The checkpoints of one run (collective over ``comm``; see the module docstring).

    Parameters
    ----------
    folder : path
    comm : hpcnnp.training.comm.Comm
    """

    def __init__(self, folder, comm):
        self.folder = Path(folder)
        self.comm = comm
        self._writer = None
        self._pending = None          # (tag, meta, state file info) not yet committed
        self.seconds_main = 0.0       # time the training waited for checkpoints
        self.seconds_write = 0.0      # background time of the last P write
        self.bytes_last = 0
        self.committed_tag = None

    # ---------------------------------------------------------------- write
    def start_p(self, tag, updaters):
        """Start writing the owned P of ``updaters`` (those with ``p_chunks``) in
        the background; their next fold waits for it (and commits)."""
        t0 = time.perf_counter()
        self.commit()                                  # at most one in flight
        if self.comm.rank == 0:
            self.folder.mkdir(parents=True, exist_ok=True)
        self.comm.barrier()
        kalman = [u for u in updaters if hasattr(u, "p_chunks")]
        if kalman:
            self._writer = _PWriter(_p_file(self.folder, tag, self.comm.rank), kalman)
            for u in kalman:
                u.before_fold = self.commit
            self._writer.start()
        self._pending = {"tag": tag, "state": None, "meta": None}
        self.seconds_main += time.perf_counter() - t0

    def save_state(self, tag, state, meta):
        """Write this rank's small state (collective); the checkpoint is committed
        once the background P write is done (:meth:`commit`)."""
        t0 = time.perf_counter()
        if self._pending is None or self._pending["tag"] != tag:
            raise CheckpointError(f"internal: save_state({tag}) without start_p")
        tree, arrays = flatten(state)
        path = _state_file(self.folder, tag, self.comm.rank)
        err = None
        try:
            crc, size = _write_npz(path, tree, arrays)
            self._pending["state"] = {"bytes": size, "crc32": crc}
        except (OSError, OutputError) as exc:
            err = _describe(exc, path)
        self._pending["meta"] = meta
        self._pending["error"] = err
        self.seconds_main += time.perf_counter() - t0

    def commit(self):
        """Wait for the P writer and commit the pending checkpoint (collective: every
        rank calls it at the same point).  Raises :class:`CheckpointError` on every
        rank if any rank failed; its temporary files are removed, the previous
        checkpoint is kept."""
        pending = self._pending
        if pending is None:
            return
        t0 = time.perf_counter()
        w = self._writer
        if w is not None:
            w.join()
            for u in w.updaters:
                u.before_fold = None
            self.seconds_write = w.seconds
        self._pending, self._writer = None, None
        tag = pending["tag"]
        rank = self.comm.rank
        err = pending.get("error") or (w.error if w is not None else None)
        if pending["state"] is None and err is None:
            err = "internal: checkpoint committed before its state was saved"
        info = {"state": pending["state"],
                "P": None if w is None else {"bytes": w.nbytes, "crc32": w.crc}}
        reports = self.comm.allgather((err, info))
        errors = [(r, e) for r, (e, _) in enumerate(reports) if e]
        if errors:
            _remove(_state_file(self.folder, tag, rank))
            _remove(_p_file(self.folder, tag, rank))
            r, e = errors[0]
            self.seconds_main += time.perf_counter() - t0
            kept = (f"the previous checkpoint ({self.committed_tag}) is kept"
                    if self.committed_tag or checkpoint_exists(self.folder)
                    else "no checkpoint is on disk")
            raise CheckpointError(f"checkpoint in {self.folder} (rank {r}): {e}; {kept}")
        self.comm.barrier()
        if rank == 0:
            meta = dict(pending["meta"], version=CHECKPOINT_VERSION, tag=tag,
                        ranks=self.comm.size, files=[i for _, i in reports])
            try:
                write_atomic(self.folder / "meta.json", json.dumps(meta, indent=1))
                err = None
            except (OSError, OutputError) as exc:
                err = _describe(exc, self.folder / "meta.json")
        err = self.comm.bcast(err if rank == 0 else None)
        if err:
            _remove(_state_file(self.folder, tag, rank))
            _remove(_p_file(self.folder, tag, rank))
            raise CheckpointError(f"checkpoint in {self.folder}: {err}")
        self.committed_tag = tag
        self._remove_old(tag)
        self.bytes_last = sum((i["state"] or {}).get("bytes", 0) + (i["P"] or {}).get(
            "bytes", 0) for _, i in reports)
        self.seconds_main += time.perf_counter() - t0

    def abort(self):
        """Stop a background write and remove its files (after an error elsewhere)."""
        w = self._writer
        if w is not None:
            w.cancel = True
            w.join()
            for u in w.updaters:
                u.before_fold = None
        if self._pending is not None:
            tag = self._pending["tag"]
            _remove(_state_file(self.folder, tag, self.comm.rank))
            _remove(_p_file(self.folder, tag, self.comm.rank))
        self._pending, self._writer = None, None

    def _remove_old(self, tag):
        """Files of older tags of this rank, and temporary files of dead processes."""
        own = f".rank{self.comm.rank:04d}."
        for old in self.folder.glob("ckpt.*"):
            if own in old.name and f"ckpt.{tag}." not in old.name:
                _remove(old)
        remove_stale_temps(self.folder)


def _write_npz(path, tree, arrays):
    """npz of the state (temporary file, fsync, rename); returns (CRC-32, bytes)."""
    with atomic_path(path) as tmp:
        with open(tmp, "xb") as f:
            np.savez(f, __state__=np.array(json.dumps(tree)), **arrays)
        crc = 0
        with open(tmp, "rb") as f:
            for block in iter(lambda: f.read(_BUFFER), b""):
                crc = zlib.crc32(block, crc)
        size = Path(tmp).stat().st_size
    return crc, size


# ------------------------------------------------------------------- read
def checkpoint_exists(folder):
    return (Path(folder) / "meta.json").is_file()


def _read_meta(folder, comm):
    meta = err = None
    if comm.rank == 0:
        path = folder / "meta.json"
        try:
            with open(path) as f:
                meta = json.load(f)
            if not isinstance(meta, dict):
                raise ValueError("not a JSON object")
        except FileNotFoundError:
            err = f"{folder}: no checkpoint (meta.json not found); nothing to restart from"
        except (OSError, ValueError) as exc:
            err = f"{path}: cannot read the checkpoint's meta.json ({exc})"
    meta, err = comm.bcast((meta, err))
    if err:
        raise CheckpointError(err)
    if meta.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(f"{folder}/meta.json: checkpoint version {meta.get('version')}"
                              f" is not supported (expected {CHECKPOINT_VERSION}); start "
                              "the training again without --restart")
    if meta.get("ranks") != comm.size:
        raise CheckpointError(f"{folder}: checkpoint written by {meta.get('ranks')} MPI "
                              f"ranks; restart with the same number (now {comm.size})")
    files = meta.get("files")
    if not isinstance(files, list) or len(files) != comm.size or "tag" not in meta:
        raise CheckpointError(f"{folder}/meta.json: incomplete (no 'tag' or 'files' entry "
                              "per rank)")
    return meta


def _check_file(path, expect):
    """Size and CRC-32 of a checkpoint file against meta.json."""
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file missing")
    size = path.stat().st_size
    if size != expect["bytes"]:
        raise CheckpointError(f"{path}: truncated or damaged checkpoint file ({size} bytes, "
                              f"meta.json says {expect['bytes']})")


def load_checkpoint(folder, comm):
    """Collective: (meta, this rank's state), validated (see the module docstring)."""
    folder = Path(folder)
    meta = _read_meta(folder, comm)
    path = _state_file(folder, meta["tag"], comm.rank)
    expect = meta["files"][comm.rank]

    def read():
        _check_file(path, expect["state"])
        with open(path, "rb") as f:
            raw = f.read()
        if zlib.crc32(raw) != expect["state"]["crc32"]:
            raise CheckpointError(f"{path}: damaged checkpoint file (CRC-32 differs from "
                                  "meta.json)")
        import io
        try:
            with np.load(io.BytesIO(raw), allow_pickle=False) as z:
                tree = json.loads(str(z["__state__"]))
                arrays = {k: z[k] for k in z.files if k != "__state__"}
        except (zipfile.BadZipFile, ValueError, KeyError, OSError) as exc:
            raise CheckpointError(f"{path}: unreadable checkpoint file ({exc})") from None
        if expect.get("P"):
            _check_file(_p_file(folder, meta["tag"], comm.rank), expect["P"])
        return unflatten(tree, arrays)

    state = comm.collective(read)
    return meta, state


def read_p(folder, meta, comm, updaters):
    """Collective: read this rank's P file into the owned chunks of ``updaters``
    (checked against the size and CRC-32 in meta.json)."""
    folder = Path(folder)
    expect = meta["files"][comm.rank].get("P")
    kalman = [u for u in updaters if hasattr(u, "p_chunks")]

    def read():
        if not kalman:
            return
        path = _p_file(folder, meta["tag"], comm.rank)
        want = sum(u.p_stored_bytes for u in kalman)
        if not expect or expect["bytes"] != want:
            raise CheckpointError(f"{path}: the checkpoint holds {0 if not expect else expect['bytes']}"
                                  f" bytes of P, this run needs {want} (other settings?)")
        crc = 0
        with open(path, "rb", buffering=_BUFFER) as f:
            for u in kalman:
                for chunk in u.p_chunks():
                    view = memoryview(chunk).cast("B")
                    got = f.readinto(view)
                    if got != chunk.nbytes:
                        raise CheckpointError(f"{path}: truncated checkpoint file")
                    crc = zlib.crc32(view, crc)
        if crc != expect["crc32"]:
            raise CheckpointError(f"{path}: damaged checkpoint file (CRC-32 differs from "
                                  "meta.json)")

    comm.collective(read)
