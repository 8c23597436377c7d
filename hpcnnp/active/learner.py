"""The active-learning loop: train → explore → select → label → retrain.

Folder layout (``workdir`` of the campaign)::

    start-structures.xyz              the starting structures (built once)
    iteration_000/
      train/        input.data, scaling/scaling.data, committee/member_k/, done.json
      explore/      run_NNN.h5 (H5MD), run_NNN.json, frames.csv, done.json
      select/       frames.csv (class, σ_F, selected), selected.json, done.json
      label/        batch_NNN.data/.json, labelled.data, failures.json, done.json
      retrain/      input.data (= previous + labelled), scaling/, committee/member_k/,
                    reevaluation.csv, done.json
      record.json, sigma-histogram.png
    iteration_001/  explore/ select/ label/ retrain/ ...  (committee: the previous
                    iteration's retrain/committee)
    active-learning.csv, active-learning.png, active-learning.json, active.log

Iteration 0 trains the first committee (``train``); every iteration explores with
its committee, selects, labels and retrains (the retrained committee explores in
the next iteration).  The loop stops when the fraction of accurate frames reaches
``stop.accurate_fraction``, when there is nothing new to label (no candidates, or
all of them failed to label), or after ``stop.max_iterations`` iterations.  The
final potential is ``committee/member_0`` of the last committee
(``active-learning.json``: ``final_committee``).

Resuming
--------
Each step writes ``done.json`` as its last act; a step whose marker exists is never
run again, and inside a step the tasks (committee members, MD runs, label batches)
have markers of their own, so a re-run after a kill continues where it stopped:
finished members, runs and batches are skipped, an interrupted member continues
from its training checkpoint.  ``record.json`` is written when the iteration is
complete.  For tests, ``stop_after="label"`` (or ``"1:label"``; environment
variable ``HPCNNP_ACTIVE_STOP_AFTER``) raises :class:`ActiveInterrupted` right
after that step's marker is written.
"""

from __future__ import annotations

import csv
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from hpcnnp.active import record as rec
from hpcnnp.active.committee import (committee_disagreement, load_committee, prepare_member,
                                     train_member)
from hpcnnp.active.config import ActiveConfig, load_config
from hpcnnp.active.dispatch import Dispatcher
from hpcnnp.active.explore import (explore_run, read_run_frames, run_temperatures,
                                   starting_structures)
from hpcnnp.active.labeling import label_batch_to_file
from hpcnnp.active.selection import (diversity_filter, draw_test_frames, failure_precursors,
                                     select_frames, structure_fingerprint)
from hpcnnp.errors import HpcnnpError
from hpcnnp.fileio import atomic_open, atomic_path, write_atomic

__all__ = ["ActiveLearner", "ActiveInterrupted", "STEPS", "MARKER"]

#: the steps of an iteration, in order
STEPS = ("train", "explore", "select", "label", "retrain")
#: marker file of a finished step (in the step's folder)
MARKER = "done.json"
#: seed offset between iterations (random_seed of member k in iteration n: seed + k + 1000 n)
SEED_STRIDE = 1000
_FRAME_COLUMNS = ("run", "name", "temperature", "frame", "step", "sigma_f", "sigma_e",
                  "n_warnings", "energy", "d_min", "n_atoms", "status")


class ActiveInterrupted(HpcnnpError):
    """Raised by the ``stop_after`` test hook after a step has finished."""


def _mean_errors(members):
    out = {}
    for prop in ("energy", "force"):
        for split in ("train", "test"):
            vals = [m["errors"][prop][split] for m in members if prop in m.get("errors", {})]
            vals = [v for v in vals if v is not None and np.isfinite(v)]
            if vals:
                out[f"{prop}_{split}"] = float(np.mean(vals))
    return out


def _float(value):
    """A CSV cell as float (empty or missing: NaN)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _warning_rate(rows):
    """Extrapolation warnings of member 0 per atom and evaluated frame (frames.csv
    rows); n2p2 counts one warning per atom and symmetry function out of range."""
    n_warn = sum(int(float(r["n_warnings"] or 0)) for r in rows if r["status"] == "ok")
    atom_frames = sum(int(float(r["n_atoms"] or 0)) for r in rows if r["status"] == "ok")
    return {"total": n_warn, "atom_frames": atom_frames,
            "rate": n_warn / atom_frames if atom_frames else 0.0,
            "frames_with_warnings": sum(1 for r in rows if r["status"] == "ok"
                                        and int(float(r["n_warnings"] or 0)) > 0)}


def _finite_mean(values):
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else None


class _FrameTable:
    """The columns of an exploration's frames.csv that selection needs."""

    def __init__(self, rows):
        self.rows = rows
        self.sigma = np.array([_float(r["sigma_f"]) for r in rows])
        self.warn = np.array([int(float(r["n_warnings"] or 0)) for r in rows])
        self.dmin = np.array([_float(r.get("d_min")) for r in rows])
        self.ok = np.array([r["status"] == "ok" for r in rows], dtype=bool)
        self.stored = np.array([int(r.get("stored", 1) or 0) == 1 for r in rows],
                               dtype=bool)

    def entry(self, i, purpose, why):
        """One entry of selected.json."""
        r = self.rows[i]
        return {"index": i, "run": int(r["run"]), "frame": int(r["frame"]),
                "name": r["name"], "temperature": _float(r["temperature"]),
                "sigma_f": _float(r["sigma_f"]), "n_warnings": int(self.warn[i]),
                "d_min": _float(r.get("d_min")), "purpose": purpose, "reason": why}


def _sigma_summary(sigma):
    """Mean, median, 90th percentile, max and the values of the finite σ_F (eV/Å)."""
    finite = sigma[np.isfinite(sigma)]
    return {"mean": _finite_mean(sigma),
            "median": float(np.median(finite)) if finite.size else None,
            "p90": float(np.percentile(finite, 90)) if finite.size else None,
            "max": float(finite.max()) if finite.size else None,
            "values": [float(x) for x in finite]}


class ActiveLearner:
    """An active-learning campaign.

    Parameters
    ----------
    config : path, dict or ActiveConfig
        The campaign (:func:`hpcnnp.active.config.load_config`).
    parsl : bool, optional
        Override ``parallel.parsl``.
    stop_after : str, optional
        Test hook: ``"STEP"`` or ``"N:STEP"`` — raise :class:`ActiveInterrupted` after
        that step (default: ``$HPCNNP_ACTIVE_STOP_AFTER``).
    stream : file, optional
        Progress lines (default stdout; None = quiet).  ``active.log`` is always written.

    Examples
    --------
    >>> learner = ActiveLearner("campaign.yaml")                # doctest: +SKIP
    >>> summary = learner.run(iterations=3)
    >>> summary["status"], summary["final_committee"]
    """

    def __init__(self, config, *, parsl=None, stop_after=None, stream=sys.stdout):
        self.cfg = config if isinstance(config, ActiveConfig) else load_config(config)
        self.workdir = self.cfg.workdir
        self.use_parsl = self.cfg["parallel.parsl"] if parsl is None else bool(parsl)
        hook = stop_after if stop_after is not None else os.environ.get(
            "HPCNNP_ACTIVE_STOP_AFTER")
        self.stop_after = None
        if hook:
            n, _, step = hook.rpartition(":")
            if step not in STEPS:
                raise HpcnnpError(f"stop_after: unknown step '{step}' (steps: "
                                  f"{', '.join(STEPS)})")
            self.stop_after = (int(n) if n else None, step)
        self.stream = stream
        self._dispatcher = None
        self._potentials = {}

    # ------------------------------------------------------------------ paths
    def iteration_dir(self, n):
        return self.workdir / f"iteration_{n:03d}"

    def step_dir(self, n, step):
        return self.iteration_dir(n) / step

    def committee_step(self, n):
        """(iteration, step) whose committee explores in iteration n."""
        return (0, "train") if n == 0 else (n - 1, "retrain")

    def committee_dirs(self, n):
        """Member folders of the committee that explores in iteration n."""
        it, step = self.committee_step(n)
        base = self.step_dir(it, step) / "committee"
        return [base / f"member_{k}" for k in range(self.cfg["committee.size"])]

    def data_path(self, n):
        """The data set the committee of iteration n was trained on."""
        it, step = self.committee_step(n)
        return self.step_dir(it, step) / "input.data"

    def completed_iterations(self):
        """Record dicts of the completed iterations, in order."""
        out = []
        n = 0
        while (self.iteration_dir(n) / "record.json").is_file():
            out.append(rec.read_json(self.iteration_dir(n) / "record.json"))
            n += 1
        return out

    # ---------------------------------------------------------------- logging
    def log(self, text):
        self.workdir.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        with open(self.workdir / "active.log", "a") as f:
            f.write(f"{stamp} {text}\n")
        if self.stream is not None:
            self.stream.write(text + "\n")
            self.stream.flush()

    def progress(self, label, unit):
        """A progress reporter for one step's tasks (lines with rate and ETA, and
        events for ``hpcnnp run``); silent when the learner is quiet."""
        from hpcnnp.progress import Progress

        return Progress(f"active {label}", unit=unit, interval=5.0,
                        out=self.stream if self.stream is not None else False)

    # --------------------------------------------------------------- plumbing
    @property
    def dispatcher(self):
        if self._dispatcher is None:
            c = self.cfg
            self._dispatcher = Dispatcher(
                parsl=self.use_parsl, site=c["parallel.site"],
                run_dir=self.workdir / "runinfo", nodes=c["parallel.nodes"],
                workers_per_node=c["parallel.workers_per_node"],
                walltime=c["parallel.walltime"], account=c["parallel.account"],
                queue=c["parallel.queue"], log=self.log)
        return self._dispatcher

    def close(self):
        if self._dispatcher is not None:
            self._dispatcher.close()
            self._dispatcher = None

    def _potentials_of(self, n):
        if n not in self._potentials:
            self._potentials = {n: load_committee(self.committee_dirs(n))}
        return self._potentials[n]

    def _step(self, n, step, func):
        """Run ``func(folder)`` unless the step's marker exists; write the marker."""
        folder = self.step_dir(n, step)
        marker = folder / MARKER
        if marker.is_file():
            return rec.read_json(marker)
        folder.mkdir(parents=True, exist_ok=True)
        self.log(f"iteration {n}: {step} ...")
        t0 = time.perf_counter()
        summary = func(folder)
        summary["elapsed"] = time.perf_counter() - t0
        rec.write_json(marker, summary)
        self.log(f"iteration {n}: {step} done ({summary['elapsed']:.1f} s)")
        if self.stop_after is not None and self.stop_after[1] == step and \
                self.stop_after[0] in (None, n):
            raise ActiveInterrupted(f"stopped after iteration {n} step {step} "
                                    "(stop_after test hook)")
        return summary

    # ------------------------------------------------------------------ steps
    def _train_committee(self, folder, data, iteration, warm_from=None):
        """Scaling of ``data`` and K members in ``folder/committee`` (shared by train and
        retrain)."""
        from hpcnnp.descriptors.scaling import run_scaling

        c = self.cfg
        scaling_dir = folder / "scaling"
        scaling = scaling_dir / "scaling.data"
        if not scaling.is_file():
            run_scaling(c["input_nn"], data, scaling_dir, histograms=False,
                        neighbors_out=False, progress_interval=0)
        members = []
        for k in range(c["committee.size"]):
            member = folder / "committee" / f"member_{k}"
            if not (member / "input.nn").is_file():
                prepare_member(member, c["input_nn"],
                               seed=c["committee.seed"] + k + SEED_STRIDE * iteration,
                               test_fraction=c["committee.test_fraction"],
                               epochs=c["committee.epochs"],
                               old_weights=None if warm_from is None else warm_from[k],
                               scaling=scaling)
            members.append(member)
        infos = self.dispatcher.map(train_member, [
            # one BLAS thread per member: members run side by side (one per worker), and
            # the weights do not depend on where a member ran (threaded BLAS sums differ
            # in the last bits with the thread count)
            {"folder": str(m), "data": str(data), "scaling": str(scaling), "blas_threads": 1}
            for m in members],
            progress=self.progress(f"iteration {iteration}: committee training",
                                   "members"))
        for info in infos:
            info.pop("skipped", None)
            info["folder"] = self._relative(info["folder"])
        n_data = _count_structures(data)
        return {"members": infos, "mean_errors": _mean_errors(infos), "n_data": n_data,
                "committee": self._relative(folder / "committee"),
                "test_by_class": test_errors_by_class(members[0])}

    def _relative(self, path):
        """Path relative to workdir (records stay valid when the campaign moves)."""
        try:
            return str(Path(path).resolve().relative_to(self.workdir.resolve()))
        except ValueError:
            return str(path)

    def step_train(self, folder):
        """Iteration 0: the first committee on the campaign's data."""
        data = folder / "input.data"
        if not data.is_file():
            shutil.copyfile(self.cfg["data"], data)
        return self._train_committee(folder, data, 0)

    def _starting_structures(self):
        import ase.io

        path = self.workdir / "start-structures.xyz"
        if path.is_file():
            return ase.io.read(path, index=":")
        images = starting_structures(self.cfg["exploration.structures"], self.cfg["data"])
        with atomic_path(path) as tmp:
            ase.io.write(tmp, images, format="extxyz")
        return ase.io.read(path, index=":")

    def step_explore(self, n, folder):
        c = self.cfg
        starts = self._starting_structures()
        elements = set(self._potentials_of(n)[0].elements)
        for i, atoms in enumerate(starts):
            missing = sorted(set(atoms.get_chemical_symbols()) - elements)
            if missing:
                raise HpcnnpError(f"exploration.structures: {atoms.info.get('name', i)} has "
                                  f"element(s) {', '.join(missing)} that the potential "
                                  f"does not know ({', '.join(sorted(elements))})")
        tasks = []
        for s, atoms in enumerate(starts):
            for T in run_temperatures(atoms, c["exploration.temperatures"]):
                r = len(tasks)
                tasks.append({"committee": [str(p) for p in self.committee_dirs(n)],
                              "atoms": atoms, "temperature": T,
                              "steps": c["exploration.steps"],
                              "stride": c["exploration.stride"],
                              "timestep": c["exploration.timestep"],
                              "friction": c["exploration.friction"],
                              "seed": [c["exploration.seed"], n, r],
                              "output": str(folder / f"run_{r:03d}"),
                              "min_distance": c["exploration.min_distance"]})
        runs = self.dispatcher.map(explore_run, tasks,
                                   progress=self.progress(f"iteration {n}: exploration",
                                                          "runs"))
        rows = []
        for r, info in enumerate(runs):
            for fr in info["frames"]:
                rows.append({"run": r, "name": info["name"], "temperature": info["temperature"],
                             "n_atoms": info.get("n_atoms", ""),
                             **{k: fr.get(k, float("nan")) for k in _FRAME_COLUMNS[3:]
                                if k != "n_atoms"},
                             "stored": int(fr.get("stored", True))})
        _write_rows(folder / "frames.csv", _FRAME_COLUMNS + ("stored",), rows)
        return {"runs": [{"run": r, "name": i["name"], "variant": i.get("variant", ""),
                          "temperature": i["temperature"], "n_atoms": i.get("n_atoms"),
                          "frames": len(i["frames"]), "ended": i["ended"]}
                         for r, i in enumerate(runs)],
                "explored": len(rows)}

    def _test_counts(self, n):
        """structure class -> held-out test frames drawn in iterations before n."""
        counts = {}
        for k in range(n):
            path = self.step_dir(k, "select") / "selected.json"
            if path.is_file():
                for s in rec.read_json(path):
                    if s.get("purpose") == "test":
                        counts[s["name"]] = counts.get(s["name"], 0) + 1
        return counts

    def step_select(self, n, folder):
        """Test draw, trust band, failure precursors, diversity filter -> selected.json.

        1. Held-out test frames: ``test.per_class`` per structure class in total, drawn
           uniformly from the stored, evaluated frames (never by σ_F) and excluded
           from everything below.
        2. Candidates: trust-band candidates (σ_low ≤ σ_F < σ_high, or extrapolation
           warnings), and -- exploration that fails is data -- frames with
           σ_F ≥ σ_high whose shortest distance is still ≥ ``selection.failure_floor``,
           and the last ``selection.failure_frames`` frames before a run failed.
        3. Failure precursors are always labelled; the other candidates go through the
           diversity filter up to ``selection.max_select`` in total.
        """
        c = self.cfg
        rows = _read_rows(self.step_dir(n, "explore") / "frames.csv")
        f = _FrameTable(rows)
        sel = select_frames(f.sigma, f.warn, sigma_low=c["selection.sigma_low"],
                            sigma_high=c["selection.sigma_high"],
                            extrapolation=c["selection.extrapolation"], failed=~f.ok)
        groups = {}
        for i, r in enumerate(rows):
            if f.ok[i] and f.stored[i]:
                groups.setdefault(r["name"], []).append(i)
        tests = draw_test_frames(groups, c["test.per_class"], self._test_counts(n),
                                 seed=[c["test.seed"], n])
        test_idx = {i for idx in tests.values() for i in idx}
        reason, forced = self._candidates(f, sel, test_idx)
        cand = np.array(sorted(i for i in reason if i not in test_idx and i not in forced),
                        dtype=int)
        picked = list(forced[:c["selection.max_select"]])
        picked += self._diverse(n, f, cand, c["selection.max_select"] - len(picked))
        chosen = set(picked)
        out_rows = [dict(r, **{"class": sel["classes"][i], "selected": int(i in chosen),
                               "test": int(i in test_idx)})
                    for i, r in enumerate(rows)]
        _write_rows(folder / "frames.csv", _FRAME_COLUMNS + ("stored", "class", "selected",
                                                             "test"), out_rows)
        selected = [f.entry(i, "train", reason[i]) for i in picked]
        selected += [f.entry(i, "test", "random draw per class") for i in sorted(test_idx)]
        rec.write_json(folder / "selected.json", selected)
        counts = {k: int(len(sel[k])) for k in ("accurate", "candidate", "failed")}
        counts.update(explored=len(rows), selected=len(picked), test_drawn=len(test_idx))
        # the stop rule's measure: σ_F below σ_low, warnings or not (the warning rate
        # is a criterion of its own); "accurate" frames also have no warnings
        counts["below_low"] = int(np.sum(f.ok & np.isfinite(f.sigma)
                                         & (f.sigma < c["selection.sigma_low"])))
        reasons = {}
        for i in picked:
            reasons[reason[i]] = reasons.get(reason[i], 0) + 1
        return {"counts": counts, "reasons": reasons,
                "fraction_accurate": counts["below_low"] / max(1, len(rows)),
                "warnings": _warning_rate(rows), "sigma_f": _sigma_summary(f.sigma),
                "histogram": rec.sigma_histogram(f.sigma, c["selection.sigma_low"],
                                                 c["selection.sigma_high"])}

    def _candidates(self, f, sel, test_idx):
        """Why each candidate frame would be labelled, and the failure precursors
        (always labelled), test frames excluded."""
        c = self.cfg
        floor = c["selection.failure_floor"]
        reason = {}
        for i in sel["candidate"]:
            reason[int(i)] = "extrapolation" if f.sigma[i] < c["selection.sigma_low"] \
                else "disagreement"
        if c["selection.label_high"]:
            for i in sel["failed"]:
                if f.ok[i] and f.stored[i] and np.isfinite(f.sigma[i]) \
                        and f.dmin[i] >= floor:
                    reason[int(i)] = "high disagreement"
        forced = []
        by_run = {}
        for i, r in enumerate(f.rows):
            by_run.setdefault(int(r["run"]), []).append(i)
        for run, idx in sorted(by_run.items()):
            frames = [{"status": f.rows[i]["status"], "stored": f.stored[i],
                       "d_min": f.dmin[i]} for i in idx]
            for k in failure_precursors(frames, floor, c["selection.failure_frames"]):
                forced.append(idx[k])
                reason[idx[k]] = "failure precursor"
        return reason, [i for i in dict.fromkeys(forced) if i not in test_idx]

    def _diverse(self, n, f, cand, room):
        """At most ``room`` of the candidate frames ``cand`` through the diversity
        filter (highest σ_F first)."""
        if not len(cand) or room <= 0:
            return []
        c = self.cfg
        pot = self._potentials_of(n)[0]
        frames = self._frames(n, [f.rows[i] for i in cand])
        fps = np.array([structure_fingerprint(pot, a) for a in frames])
        reference = None
        if c["selection.against_data"]:
            from hpcnnp.io import n2p2
            reference = np.array([structure_fingerprint(pot, a)
                                  for a in n2p2.read_data(self.data_path(n))])
        order = diversity_filter(fps, min_distance=c["selection.min_distance"],
                                 max_select=room, reference=reference,
                                 priority=np.nan_to_num(f.sigma[cand], nan=np.inf))
        return [int(cand[k]) for k in order]

    def _frames(self, n, rows):
        """ase.Atoms of explored frames (rows of frames.csv), with ``info`` id/comment."""
        explore = self.step_dir(n, "explore")
        by_run = {}
        for k, r in enumerate(rows):
            by_run.setdefault(int(r["run"]), []).append((k, int(r["frame"])))
        out = [None] * len(rows)
        for run, items in by_run.items():
            images = read_run_frames(explore / f"run_{run:03d}", [f for _, f in items])
            for (k, f), atoms in zip(items, images):
                name, T = atoms.info["name"], float(atoms.info["temperature"])
                atoms.info["id"] = f"iteration_{n:03d}/run_{run:03d}/frame_{f}"
                # "<class> | T=<K>K | ..." is the data set's comment form: the class of
                # the frame is its starting structure's name (hpcnnp.validation.classes)
                atoms.info["comment"] = (f"{name} | T={T:g}K | hpcnnp active iteration {n} "
                                         f"run {run} frame {f}")
                atoms.info["structure_class"] = name
                out[k] = atoms
        return out

    def step_label(self, n, folder):
        """Label the selected and the test frames (Parsl batches) -> labelled.data
        (``set=train``/``set=test`` tags) and, with ``dataset``, the HDF5 data set
        with each label's provenance."""
        c = self.cfg
        selected = rec.read_json(self.step_dir(n, "select") / "selected.json")
        frames = self._frames(n, [{"run": s["run"], "frame": s["frame"]} for s in selected])
        for atoms, s in zip(frames, selected):
            atoms.info["set"] = s["purpose"]
        size = c["labeler.batch"]
        tasks = [{"name": c["labeler.name"], "options": c["labeler.options"],
                  "frames": frames[b:b + size], "output": str(folder / f"batch_{b // size:03d}")}
                 for b in range(0, len(frames), size)]
        infos = self.dispatcher.map(label_batch_to_file, tasks,
                                    progress=self.progress(f"iteration {n}: labelling",
                                                           "batches"))
        failures = [f for info in infos for f in info["failures"]]
        from hpcnnp.io import n2p2
        by_id = {a.info["id"]: (a, s) for a, s in zip(frames, selected)}
        labelled, rejected = [], []
        fmax = c["labeler.max_force"]
        for t, info in zip(tasks, infos):
            out = Path(t["output"]).with_suffix(".data")
            images = n2p2.read_data(out) if info["labelled"] else []
            for frame_id, a in zip(info["labelled"], images):
                frame, s = by_id[frame_id]
                f = float(np.abs(a.get_forces()).max())
                if fmax is not None and f > fmax:
                    rejected.append({"id": frame.info["id"], "max_force": f})
                    continue
                a.info = {"comment": frame.info["comment"], "set": s["purpose"]}
                labelled.append((a, frame, s))
        n2p2.write_data(folder / "labelled.data", [a for a, _, _ in labelled])
        if c["dataset"]:
            self._append_dataset(n, labelled)
        rec.write_json(folder / "failures.json", failures + [
            {"id": r["id"], "error": f"rejected: teacher max |F| {r['max_force']:.1f} eV/Å "
             f"> labeler.max_force"} for r in rejected])
        for f in failures:
            self.log(f"iteration {n}: labelling {f['id']} failed: {f['error']}")
        n_test = sum(1 for _, _, s in labelled if s["purpose"] == "test")
        return {"labelled": len(labelled) - n_test, "labelled_test": n_test,
                "failed": len(failures), "rejected": len(rejected),
                "labeler": _labeler_provenance(c["labeler.name"], c["labeler.options"])}

    def _append_dataset(self, n, labelled):
        """Append labels to the HDF5 data set with their provenance."""
        from hpcnnp.io.dataset import Dataset, Record

        labeler = _labeler_provenance(self.cfg["labeler.name"], self.cfg["labeler.options"])
        records = []
        for a, frame, s in labelled:
            prov = {"source": "active learning", "iteration": n, "run": s["run"],
                    "frame": s["frame"], "step": frame.info.get("step"),
                    "structure": s["name"], "selection": s["reason"],
                    "set": s["purpose"], "sigma_f": s["sigma_f"],
                    "n_warnings": s["n_warnings"], "d_min": s["d_min"],
                    "committee": self._relative(self.committee_dirs(n)[0].parent),
                    "task": f"active/{n:03d}/{s['run']:03d}"}
            records.append(Record.from_atoms(a, structure_class=s["name"],
                                             temperature=s["temperature"],
                                             labeler=labeler, provenance=prov))
        with Dataset(self.cfg["dataset"], "a") as ds:
            ds.append(records, where=f"active iteration {n}")

    def step_retrain(self, n, folder):
        data = folder / "input.data"
        if not data.is_file():
            write_atomic(data, self.data_path(n).read_bytes()
                         + (self.step_dir(n, "label") / "labelled.data").read_bytes())
        warm = self.committee_dirs(n) if self.cfg["committee.warm_start"] else None
        summary = self._train_committee(folder, data, n + 1, warm_from=warm)
        # the explored frames as the retrained committee sees them
        rows = _read_rows(self.step_dir(n, "select") / "frames.csv")
        ok = [r for r in rows if r["status"] == "ok" and int(r.get("stored", 1) or 0)]
        new = load_committee([folder / "committee" / f"member_{k}"
                              for k in range(self.cfg["committee.size"])])
        after = []
        for atoms in self._frames(n, ok):
            try:
                after.append(committee_disagreement(new, atoms)[0])
            except HpcnnpError:
                after.append(float("nan"))
        before = [float(r["sigma_f"]) for r in ok]
        _write_rows(folder / "reevaluation.csv",
                    ("run", "frame", "class", "selected", "sigma_f_before", "sigma_f_after"),
                    [{"run": r["run"], "frame": r["frame"], "class": r["class"],
                      "selected": r["selected"], "sigma_f_before": b, "sigma_f_after": a}
                     for r, b, a in zip(ok, before, after)])
        cand = [i for i, r in enumerate(ok) if r["class"] == "candidate"]
        summary["reevaluation"] = {
            "frames": len(ok),
            "sigma_f_mean_before": _finite_mean(before),
            "sigma_f_mean_after": _finite_mean(after),
            "candidates_sigma_f_mean_before": _finite_mean([before[i] for i in cand]),
            "candidates_sigma_f_mean_after": _finite_mean([after[i] for i in cand])}
        return summary

    # ------------------------------------------------------------------- loop
    def _stop_rule(self, n, explore, select):
        """Why the campaign stops after exploring in iteration n (None: go on).

        Converged means, measured on this iteration's exploration: at least
        ``stop.min_iterations`` iterations, a fraction ≥ ``stop.accurate_fraction``
        of the explored frames below σ_low, every run finished
        (``stop.finished_runs``) and at most ``stop.max_warning_rate`` extrapolation
        warnings per atom and evaluated frame.
        """
        c = self.cfg
        failed_runs = sum(1 for r in explore["runs"] if r["ended"])
        rate = select["warnings"]["rate"]
        if (n + 1 >= c["stop.min_iterations"]
                and select["fraction_accurate"] >= c["stop.accurate_fraction"]
                and (failed_runs == 0 or not c["stop.finished_runs"])
                and (c["stop.max_warning_rate"] is None
                     or rate <= c["stop.max_warning_rate"])):
            return "converged"
        if n + 1 >= c["stop.min_iterations"] and select["counts"]["selected"] == 0:
            return "no new frames"
        return None

    def run_iteration(self, n):
        """Run (or finish) iteration n; returns its record."""
        if n > 0 and not (self.iteration_dir(n - 1) / "record.json").is_file():
            raise HpcnnpError(f"iteration {n}: iteration {n - 1} is not complete")
        steps = {}
        if n == 0:
            steps["train"] = self._step(0, "train", self.step_train)
        else:
            steps["train"] = rec.read_json(self.step_dir(n - 1, "retrain") / MARKER)
        steps["explore"] = self._step(n, "explore", lambda d: self.step_explore(n, d))
        steps["select"] = self._step(n, "select", lambda d: self.step_select(n, d))
        stop = self._stop_rule(n, steps["explore"], steps["select"])
        # the test frames of a converged iteration are labelled too: they are the
        # unbiased sample of what the final potential meets in MD
        if stop is None or steps["select"]["counts"]["test_drawn"]:
            steps["label"] = self._step(n, "label", lambda d: self.step_label(n, d))
            if stop is None and steps["label"]["labelled"] == 0:
                stop = "labelling failed"
        if stop is None:
            steps["retrain"] = self._step(n, "retrain", lambda d: self.step_retrain(n, d))
        return self._record(n, steps, stop)

    def _record(self, n, steps, stop):
        c = self.cfg
        sel = steps["select"]
        counts = dict(sel["counts"])
        label = steps.get("label") or {"labelled": 0, "failed": 0}
        counts["labelled"] = label["labelled"]
        counts["labelled_test"] = label.get("labelled_test", 0)
        counts["label_failed"] = label["failed"] + label.get("rejected", 0)
        retrain = steps.get("retrain")
        runs = steps["explore"]["runs"]
        r = {"iteration": n, "counts": counts, "fraction_accurate": sel["fraction_accurate"],
             "sigma_f": {k: v for k, v in sel["sigma_f"].items() if k != "values"},
             "histogram": sel["histogram"], "reasons": sel.get("reasons", {}),
             "warnings": sel.get("warnings"),
             "runs_failed": sum(1 for x in runs if x["ended"]),
             "thresholds": {"sigma_low": c["selection.sigma_low"],
                            "sigma_high": c["selection.sigma_high"]},
             "committee": {k: steps["train"].get(k) for k in ("committee", "members",
                                                               "mean_errors", "test_by_class")},
             "retrained": None if retrain is None else {
                 k: retrain.get(k) for k in ("committee", "members", "mean_errors",
                                             "test_by_class")},
             "reevaluation": None if retrain is None else retrain["reevaluation"],
             "data": {"before": steps["train"]["n_data"],
                      "after": None if retrain is None else retrain["n_data"]},
             "runs": runs,
             "labeler": (steps.get("label") or {}).get("labeler"),
             "elapsed": {k: v.get("elapsed") for k, v in steps.items()
                         if not (k == "train" and n > 0)},
             "stop": stop}
        folder = self.iteration_dir(n)
        sigma_after = None
        if retrain is not None:
            rows = _read_rows(self.step_dir(n, "retrain") / "reevaluation.csv")
            sigma_after = [float(x["sigma_f_after"]) for x in rows]
        rec.write_json(folder / "sigma.json", {"explored": sel["sigma_f"].get("values", []),
                                               "retrained": sigma_after})
        rec.plot_histogram(folder / "sigma-histogram.png", r, sigma_after)
        rec.write_json(folder / "record.json", r)
        w = r["warnings"] or {}
        self.log(f"iteration {n}: {counts['explored']} frames explored, "
                 f"{counts.get('below_low', counts['accurate'])} below σ_low "
                 f"({r['fraction_accurate']:.1%}; {counts['accurate']} also without "
                 f"warnings), "
                 f"{counts['candidate']} candidates, {counts['failed']} failed, "
                 f"{r['runs_failed']} of {len(runs)} runs failed, "
                 f"{w.get('rate', 0):.2g} warnings per atom-frame, "
                 f"{counts['selected']} selected, {counts['labelled']} labelled "
                 f"(+{counts['labelled_test']} test)"
                 + (f"; σ_F mean {r['reevaluation']['sigma_f_mean_before']:.4g} -> "
                    f"{r['reevaluation']['sigma_f_mean_after']:.4g} eV/Å after retraining"
                    if r["reevaluation"] and r["reevaluation"]["sigma_f_mean_after"]
                    is not None else "")
                 + (f"; stop: {stop}" if stop else ""))
        return r

    def _summary(self, records, status):
        if records and records[-1].get("retrained"):
            final = str(self.workdir / records[-1]["retrained"]["committee"])
        elif records:
            final = str(self.workdir / records[-1]["committee"]["committee"])
        else:
            final = None
        rec.write_csv(self.workdir / "active-learning.csv", records)
        if records:
            sigma = []
            for r in records:
                f = self.iteration_dir(r["iteration"]) / "sigma.json"
                sigma.append(rec.read_json(f)["explored"] if f.is_file() else [])
            rec.plot_summary(self.workdir / "active-learning.png", records, sigma)
        summary = {"status": status, "iterations": len(records),
                   "final_committee": final,
                   "final_potential": None if final is None else str(Path(final) / "member_0"),
                   "records": [str(self.iteration_dir(r["iteration"]) / "record.json")
                               for r in records]}
        rec.write_json(self.workdir / "active-learning.json", summary)
        return summary

    def run(self, iterations=None):
        """Run the campaign until a stop rule holds or ``iterations`` iterations
        (default ``stop.max_iterations``) are complete; continues a campaign already
        on disk.  Returns the summary (also ``active-learning.json``)."""
        limit = self.cfg["stop.max_iterations"] if iterations is None else int(iterations)
        if limit < 1:
            raise HpcnnpError("iterations must be >= 1")
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            records = self.completed_iterations()
            status = "max iterations"
            if records and records[-1]["stop"]:
                status = records[-1]["stop"]
            else:
                while len(records) < limit:
                    r = self.run_iteration(len(records))
                    records.append(r)
                    rec.write_csv(self.workdir / "active-learning.csv", records)
                    if r["stop"]:
                        status = r["stop"]
                        break
            summary = self._summary(records, status)
            self.log(f"campaign: {summary['iterations']} iteration(s), status: {status}; "
                     f"final potential {summary['final_potential']}")
            return summary
        finally:
            self.close()


def test_errors_by_class(member):
    """Errors of a trained member on its held-out test structures, per class.

    Parameters
    ----------
    member : path
        A trained member folder (its ``test.data`` holds the structures tagged
        ``set=test`` and those the random split put there).

    Returns
    -------
    dict
        structure class -> ``{"structures", "energy_rmse" (eV/atom), "force_rmse"
        (eV/Å)}``; the class ``all`` for everything; empty without test data.
    """
    from hpcnnp.potential import Potential
    from hpcnnp.validation.dataset import ALL, evaluate_dataset
    from hpcnnp.validation.metrics import rmse

    path = Path(member) / "test.data"
    if not path.is_file() or _count_structures(path) == 0:
        return {}
    res = evaluate_dataset(Potential.from_n2p2(member), path, "test")
    out = {}
    for cls in [ALL] + res.class_names():
        s, _ = res.select(cls)
        out[cls] = {"structures": int(s.sum()),
                    "energy_rmse": float(rmse(*res.energy_per_atom(cls))),
                    "force_rmse": float(rmse(*res.forces(cls)))}
    return out


def _labeler_provenance(name, options):
    """The labeler's settings with defaults filled in (project table) or as given."""
    try:
        from hpcnnp.sampling.labelers import LABELERS, labeler_settings
        if name.strip().lower() in LABELERS:
            return labeler_settings(name, **options)
    except (ImportError, HpcnnpError):
        pass
    return {"name": name, **options}


def _count_structures(path):
    with open(path) as f:
        return sum(1 for line in f if line.split()[:1] == ["begin"])


def _write_rows(path, columns, rows):
    with atomic_open(path, newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(columns), extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: (repr(v) if isinstance(v, float) else v) for k, v in r.items()})


def _read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))
