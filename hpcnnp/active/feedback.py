"""Production frames that raised extrapolation warnings, back into the data set.

The tutorial's loop does not end with the production run: a frame in which the
potential extrapolates (a symmetry function outside the range of the training
data) is a configuration the data set lacks.  ``hpcnnp md`` writes every dumped
frame that follows extrapolation warnings to a second H5MD file (protocol key
``trajectory.extrapolations``).  :func:`label_production_frames` picks frames of
such files (evenly spread in time), labels them with the teacher in Parsl batches
(the tasks of active learning) and appends them to the HDF5 data set with their
provenance (``source: production MD``), so the next training of the project --
``hpcnnp run --only train ...`` or the next ``hpcnnp active`` iteration started
from the data set -- learns them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hpcnnp.active.labeling import label_batch_to_file
from hpcnnp.fileio import write_atomic
from hpcnnp.io import n2p2

__all__ = ["pick_frames", "label_production_frames"]


def pick_frames(n_frames, max_frames):
    """Indices of at most ``max_frames`` frames evenly spread over ``n_frames``."""
    if n_frames <= 0 or max_frames <= 0:
        return []
    if n_frames <= max_frames:
        return list(range(n_frames))
    return sorted({int(round(x)) for x in np.linspace(0, n_frames - 1, max_frames)})


def label_production_frames(runs, dataset, labeler, options, dispatcher, workdir,
                            max_frames=4, batch=None, max_force=None, log=print):
    """Label frames of production runs with extrapolation warnings.

    Parameters
    ----------
    runs : dict
        Run name -> (path of its extrapolation H5MD file, temperature in K,
        structure class).  Missing files (a run without warnings) are skipped.
    dataset : path
        HDF5 data set (:mod:`hpcnnp.io.dataset`) the labels are appended to.
    labeler, options : str, dict
        Teacher (:data:`hpcnnp.sampling.labelers.LABELERS`) and its options.
    dispatcher : hpcnnp.active.dispatch.Dispatcher
        Where the labelling tasks run.
    workdir : path
        Folder of the batches (a finished batch is not labelled again).
    max_frames : int
        Frames per run at most.
    batch : int, optional
        Frames per labelling task (default: all in one task, labelled one after the
        other by one worker: a production cell's label can take GBs of memory).
    max_force : float, optional
        Labels with a larger teacher force component (eV/Å) are rejected.

    Returns
    -------
    dict
        Per run: frames with warnings, frames labelled, rejected and failed.
    """
    from hpcnnp.io.dataset import Dataset, Record
    from hpcnnp.io.h5md import H5MDTrajectory

    workdir = Path(workdir)
    batch = batch or 10**9
    workdir.mkdir(parents=True, exist_ok=True)
    summary, tasks, meta, pending = {}, [], {}, []
    for name, (path, temperature, cls) in runs.items():
        path = Path(path)
        if not path.is_file():
            summary[name] = {"frames_with_warnings": 0, "labelled": 0}
            continue
        with H5MDTrajectory(path) as traj:
            n = len(traj)
            frames = []
            for i in pick_frames(n, max_frames):
                a = traj.atoms(i)
                step = int(a.info.get("step", i))
                a.info = {"id": f"{name}/step_{step}",
                          "comment": f"{cls} | T={temperature:g}K | production MD {name} "
                                     f"step {step} (extrapolation warnings)"}
                meta[a.info["id"]] = (name, step, temperature, cls)
                frames.append(a)
        summary[name] = {"frames_with_warnings": n, "labelled": 0, "rejected": 0,
                         "failed": 0}
        pending.extend(frames)
    # batches across runs: a production cell is large, and how many a labeller holds in
    # memory at once is what ``batch`` bounds (one batch = one task = one worker)
    for b in range(0, len(pending), batch):
        tasks.append({"name": labeler, "options": options, "frames": pending[b:b + batch],
                      "output": str(workdir / f"batch_{b // batch:03d}")})
    if not tasks:
        return summary
    log(f"labelling {sum(len(t['frames']) for t in tasks)} production frames with "
        f"extrapolation warnings ({len(tasks)} batches)")
    infos = dispatcher.map(label_batch_to_file, tasks)
    records = []
    lab = {"name": labeler, **{k: v for k, v in options.items() if k != "name"}}
    for t, info in zip(tasks, infos):
        images = n2p2.read_data(Path(t["output"]).with_suffix(".data")) \
            if info["labelled"] else []
        for f in info["failures"]:
            summary[meta[f["id"]][0]]["failed"] += 1
        for frame_id, a in zip(info["labelled"], images):
            name, step, temperature, cls = meta[frame_id]
            if max_force is not None and float(np.abs(a.get_forces()).max()) > max_force:
                summary[name]["rejected"] += 1
                continue
            summary[name]["labelled"] += 1
            records.append(Record.from_atoms(
                a, structure_class=cls, temperature=temperature, labeler=lab,
                provenance={"source": "production MD", "run": name, "step": step,
                            "selection": "extrapolation warnings"}))
    if records:
        with Dataset(dataset, "a") as ds:
            ds.append(records, where="production MD extrapolation warnings")
    write_atomic(workdir / "summary.json", json.dumps(summary, indent=1))
    return summary
