"""Storing finished campaign tasks in the data set (the driver alone writes it).

The driver appends the snapshots of each finished task to the HDF5 data set
(:class:`hpcnnp.io.dataset.Dataset`) with their provenance, then writes the
task's ``merged.json``; there are never concurrent HDF5 writes, and a structure
merged twice is stored once (hash deduplication of the data set).
"""

from __future__ import annotations

import time
from pathlib import Path

from hpcnnp import __version__
from hpcnnp.errors import HpcnnpError
from hpcnnp.io.dataset import Record
from hpcnnp.sampling.aimd import read_snapshots
from hpcnnp.sampling.worker import DONE, MERGED, TASK, atomic_json, read_json

__all__ = ["merge_task"]


def merge_task(dataset, task_dir, campaign_name=""):
    """Append the snapshots of a finished task to *dataset* (an open
    :class:`hpcnnp.io.dataset.Dataset`), then write ``merged.json``.

    Returns
    -------
    (int, int)
        Structures added, duplicates skipped.
    """
    d = Path(task_dir)
    spec = read_json(d / TASK)
    done = read_json(d / DONE)
    if spec is None or done is None:
        raise HpcnnpError(f"{d}: not a finished task (no {TASK} or {DONE})")
    snaps = read_snapshots(d)
    if len(snaps) != done["snapshots"]:
        raise HpcnnpError(f"{d}: {len(snaps)} snapshot files, {DONE} says {done['snapshots']}")
    labeler = dict(spec["labeler"])
    labeler.update(spec["label_settings"])
    records = []
    for s in snaps:
        prov = {"campaign": campaign_name, "task": spec["hash"], "seed": spec["seed"],
                "step": s["step"], "time_fs": s["time_fs"], "snapshot": s["index"],
                "temperature_inst": s["temperature_inst"], "structure": spec["structure"],
                "md": spec["md"], "labeler_versions": done.get("labeler_versions", {}),
                "builder": done.get("builder_info", {}).get("builder"),
                "hpcnnp": __version__, "source": "aimd"}
        records.append(Record(numbers=s["numbers"], positions=s["positions"], cell=s["cell"],
                              pbc=s["pbc"], energy=s["energy"], forces=s["forces"],
                              stress=s["stress"], structure_class=spec["structure_class"],
                              temperature=spec["temperature"], labeler=labeler,
                              provenance=prov))
    added, dup = dataset.append(records, where=f"{d}: snapshot")
    atomic_json(d / MERGED, {"added": added, "duplicates": dup,
                              "time": time.strftime("%Y-%m-%dT%H:%M:%S")})
    return added, dup
