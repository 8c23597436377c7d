"""Atomic multi-rank checkpoints of a training run.

Layout (folder ``checkpoint/`` in the output directory, or ``--checkpoint DIR``)::

    meta.json                      {"version", "tag", "ranks", "epoch", "phase", …}
    ckpt.<tag>.rank0000.npz        rank 0's state
    ckpt.<tag>.rank0001.npz        …

Every rank writes its own file (its block of the distributed Kalman covariance
P, its random streams and candidate lists); nothing of P is gathered.  A save
is committed atomically: each rank writes ``<file>.tmp``, fsyncs and renames
it, all ranks meet in a barrier, then rank 0 replaces ``meta.json`` (which
names the tag) and the files of the previous tag are removed.  A run killed at
any moment therefore leaves either the old or the new checkpoint complete.

Inside a rank file: ``state`` (a JSON string with every scalar, list and dict)
and the numpy arrays, keys ``<path>`` (``updater0.P_block``, ``weights0`` …).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from hpcnnp.errors import HpcnnpError

__all__ = ["save_checkpoint", "load_checkpoint", "checkpoint_exists", "flatten", "unflatten",
           "CHECKPOINT_VERSION"]

CHECKPOINT_VERSION = 1


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


def _rank_file(folder, tag, rank):
    return Path(folder) / f"ckpt.{tag}.rank{rank:04d}.npz"


def save_checkpoint(folder, comm, tag, state, meta):
    """Collective: write this rank's ``state`` (nested dict) and commit ``meta``."""
    folder = Path(folder)
    if comm.rank == 0:
        folder.mkdir(parents=True, exist_ok=True)
    comm.barrier()
    tree, arrays = flatten(state)
    path = _rank_file(folder, tag, comm.rank)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.savez(f, __state__=np.array(json.dumps(tree)), **arrays)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    comm.barrier()
    if comm.rank == 0:
        meta = dict(meta, version=CHECKPOINT_VERSION, tag=tag, ranks=comm.size)
        mtmp = folder / "meta.json.tmp"
        with open(mtmp, "w") as f:
            json.dump(meta, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(mtmp, folder / "meta.json")
    comm.barrier()
    # drop files of older tags (own rank only)
    suffix = f".rank{comm.rank:04d}.npz"
    for old in folder.glob(f"ckpt.*{suffix}"):
        if old.name != path.name:
            try:
                old.unlink()
            except FileNotFoundError:
                pass


def checkpoint_exists(folder):
    return (Path(folder) / "meta.json").is_file()


def load_checkpoint(folder, comm):
    """Collective: (meta, this rank's state)."""
    folder = Path(folder)
    meta = None
    err = None
    if comm.rank == 0:
        try:
            with open(folder / "meta.json") as f:
                meta = json.load(f)
        except FileNotFoundError:
            err = f"{folder}: no checkpoint (meta.json not found); nothing to restart from"
        except (OSError, ValueError) as exc:
            err = f"{folder}/meta.json: cannot read checkpoint ({exc})"
    meta, err = comm.bcast((meta, err))
    if err:
        raise HpcnnpError(err)
    if meta.get("version") != CHECKPOINT_VERSION:
        raise HpcnnpError(f"{folder}: checkpoint version {meta.get('version')} is not "
                          f"supported (expected {CHECKPOINT_VERSION})")
    if meta.get("ranks") != comm.size:
        raise HpcnnpError(f"{folder}: checkpoint written by {meta.get('ranks')} MPI ranks; "
                          f"restart with the same number (now {comm.size})")
    path = _rank_file(folder, meta["tag"], comm.rank)

    def read():
        if not path.is_file():
            raise HpcnnpError(f"{path}: checkpoint file of rank {comm.rank} missing")
        with np.load(path, allow_pickle=False) as z:
            tree = json.loads(str(z["__state__"]))
            arrays = {k: z[k] for k in z.files if k != "__state__"}
        return unflatten(tree, arrays)

    state = comm.collective(read)
    return meta, state
