"""``hpcnnp train``: training of a 2G-HDNNP with n2p2's algorithm (nnp-train).

See n2p2-formats.md §10–§12 for the algorithm and the files; the docstrings of
:mod:`~hpcnnp.training.dataset` (data layout per rank),
:mod:`~hpcnnp.training.jacobian` (errors and Jacobian rows),
:mod:`~hpcnnp.training.schedule` (random streams, update plan, candidates) and
:mod:`~hpcnnp.training.checkpoint` (restart files) for the parts.

Parallel scheme (multi-stream Kalman filter)
--------------------------------------------
Every rank owns a share of the structures and computes the errors ξ and the
Jacobian rows of *its* update candidates; the rows (JM_SUM: summed over all
candidates; JM_TASK: one per rank; JM_FULL: one per candidate) are packed with
their errors into one buffer and all-gathered (Allgatherv; sums are formed in
rank order from the gathered rows, so every rank holds the same bits).  Then
every rank calls :meth:`KalmanFilter.update` with the same H and ξ; P is
distributed over the ranks by rows (``distributed=True``; ``--replicated-kalman``
keeps a full copy per rank).  The filter leaves bit-identical weights on all
ranks after every update (checked with ``--check-sync N``).

What is n2p2's behaviour exactly, and what is not
-------------------------------------------------
Same as nnp-train (61daa0d): the keywords of §2.2 and their defaults/errors; the
update plan (updates per epoch U_p = ⌊N_p,train·f_p/b_p/P⌋, b_p = 0 = one update with
⌊f_p·local candidates⌋ patterns, ``force_energy_ratio``); the epoch schedule (U_F
force and U_E energy entries, filled in reverse property order, shuffled); candidate
lists shuffled (SM_RANDOM/SM_THRESHOLD) or sorted by the last epoch's |error|
(SM_SORT) at the start of every epoch, cursor wrapping around; SM_THRESHOLD trials and
the threshold on error/RMSE_train; selection-mode schedules and the ``INFO   Switching
selection mode …`` line; ξ and H of §10.5 in training units, ``force_weight`` on both;
JM_SUM/JM_TASK/JM_FULL rows; US_COMBINED (weights of all elements in element order)
and US_ELEMENT (one filter per element, errors × N_e/N for energies and × the
neighbour fraction of atom a for forces); the Kalman filter of §11 (τ = rate/U_tot);
gradient descent (fixed, Adam); initial weights (uniform, Glorot–Bengio on tanh
layers + zero biases, or Nguyen–Widrow with the output-layer quirk); atom_energy
offsets; normalisation and ``normalize_data_set ref|force|stats-only`` (statistics
over all structures, σ with n−1, input.nn rewritten with an ``input.nn.bak``
backup); error metrics; file names and formats (headers and printf formats of
learning-curve.out, updater.*.out, timing.out, train/test points and forces,
weights.ZZZ.NNNNNN.out, neuron-stats, train-log.out, the ENERGY/FORCE/TIMING log
lines).

Different on purpose or by necessity:

* random numbers — GSL's generators cannot be reproduced; numpy PCG64 streams
  derived from ``random_seed`` (:mod:`~hpcnnp.training.schedule`).  The train/test
  split and the initial weights therefore differ from n2p2's for the same seed, but
  they are the same for any number of ranks (n2p2's split depends on the ranks).
* SM_THRESHOLD when no trial passes: the candidate with the largest error ratio is
  used (what n2p2 documents and logs; its code then computes the Jacobian of the
  *last* drawn candidate — a pointer bug).
* parallel_mode 0/1: always "all ranks update", with P distributed over the ranks
  (``--replicated-kalman``: full P per rank, n2p2's PM_TRAIN_ALL).  Rows are
  all-gathered; sums over ranks are formed in rank order (bit-identical everywhere).
* comparison files (trainpoints …) are sorted by structure index (n2p2 concatenates
  per-rank files); only rank 0 writes a log (``nnp-train.log.0000``); train.data /
  test.data keep the input's ``set=`` tags and positions (n2p2 wraps positions).
* extra files: final ``weights.ZZZ.data`` (the weights after the last epoch; n2p2
  writes only epoch files) plus copies of input.nn and scaling.data, so the output
  folder is a complete potential (with ``use_old_weights_short`` in the same folder
  the starting weights are kept as ``weights.ZZZ.data.bak``); learning-curve.png,
  parity plots (PNG + CSV); ``checkpoint/`` (restart files).
* ``precondition_weights`` and LM (updater_type 2) stop with an error, as in n2p2;
  4G/charge training is not supported.

Checkpoint / restart
--------------------
After epoch 0, every ``checkpoint_every`` epochs, after the last epoch (and after
the current update on SIGTERM) the full state is saved
(:mod:`~hpcnnp.training.checkpoint`): per rank the owned region of its P block
(only the stored triangle/rectangles, streamed to disk by a background thread
while the end-of-epoch evaluation runs; the next fold of the filter waits for it)
and a small file with the weights, filter scalars and pending low-rank factors,
random-stream states, candidate orders/cursors/errors, selection modes, the last
error metrics and the learning-curve/updater/timing history; committed atomically
by ``meta.json`` (sizes and CRC-32 of every file), exactly one checkpoint on disk.
``--restart`` continues bit-identically (same inputs and number of ranks); the
history files are rewritten from the checkpoint.  SIGTERM exits with code 143.

Memory
------
Before the filter is allocated every rank estimates its peak memory
(:mod:`~hpcnnp.training.memory`), the log prints it, and the run stops with one
message if the ranks of a node would need more than the node has available.
Symmetry-function derivatives are recomputed per force candidate, for the
candidate atom's neighbourhood only (SF values of energy candidates: a cache of
``cache_structures`` structures and ``sf_cache_mb`` MiB) unless
``memorize_symfunc_results`` asks to keep them all.

Code layout: :mod:`~hpcnnp.training.inputs` (data, initial weights),
:mod:`~hpcnnp.training.normalization`, :mod:`~hpcnnp.training.evaluation` (errors),
:mod:`~hpcnnp.training.step` (one update), :mod:`~hpcnnp.training.memory`,
:mod:`~hpcnnp.training.report` (log blocks), :mod:`~hpcnnp.training.checkpoint`;
this module runs the epochs.
"""
from __future__ import annotations

import hashlib
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np

from hpcnnp.errors import HpcnnpError
from hpcnnp.io import n2p2
from hpcnnp.potential import Potential
from hpcnnp.progress import Progress
from hpcnnp.training import outputs as out
from hpcnnp.training.checkpoint import (CheckpointWriter, checkpoint_exists, load_checkpoint,
                                        read_p)
from hpcnnp.training.comm import get_comm
from hpcnnp.training.config import SELECTION_NAMES, training_config
from hpcnnp.training.dataset import SFCache, Units, scale_factors
from hpcnnp.training.decoupled import decoupling_groups
from hpcnnp.training.evaluation import Evaluator
from hpcnnp.training.inputs import (initial_weights, load_structures, read_old_weights,
                                    settings_without_normalization)
from hpcnnp.training.jacobian import Networks
from hpcnnp.training.memory import check_memory, estimate_memory, peak_rss
from hpcnnp.training.normalization import normalize_data_set
from hpcnnp.training.report import final_lines, setup_lines
from hpcnnp.training.runfiles import RunFiles
from hpcnnp.training.schedule import Candidates, Streams, UpdatePlan, epoch_schedule
from hpcnnp.training.step import UpdateStep
from hpcnnp.training.updaters import make_updater

__all__ = ["Trainer", "TrainingInterrupted", "initial_weights", "EXIT_SIGTERM"]

#: exit code after a SIGTERM (checkpoint written): 128 + 15, as a shell reports it
EXIT_SIGTERM = 143

#: seconds into an epoch after which its updates are reported (rate, ETA)
EPOCH_PROGRESS_S = 30.0


class TrainingInterrupted(Exception):
    """Raised after a SIGTERM once the checkpoint is written."""


class _StopAfterUpdates(Exception):
    """``stop_after_updates`` reached (benchmarks)."""


class _blas_threads:
    """Limit the BLAS thread pool during training (threadpoolctl).

    ``n`` None (auto): leave it alone if OPENBLAS_NUM_THREADS/OMP_NUM_THREADS/
    MKL_NUM_THREADS is set, else 1 thread for small states (N_w < 4000, where
    thread start-up dominates and idle spinning threads hurt on loaded nodes) and
    cores/ranks threads otherwise."""

    def __init__(self, n, ranks, n_weights):
        self.n = n
        self.ranks = max(1, int(ranks))
        self.n_weights = int(n_weights)
        self._ctx = None

    def __enter__(self):
        n = self.n
        if n is None:
            if any(os.environ.get(k) for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                                               "MKL_NUM_THREADS")):
                return None
            cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
                else (os.cpu_count() or 1)
            n = 1 if self.n_weights < 4000 else max(1, cores // self.ranks)
        from threadpoolctl import threadpool_limits

        self._ctx = threadpool_limits(limits=int(n), user_api="blas")
        return int(n)

    def __exit__(self, *exc):
        if self._ctx is not None:
            self._ctx.restore_original_limits()
        return False


class Trainer:
    """One training run (collective over ``comm``).

    Parameters
    ----------
    settings, data, scaling : path
        ``input.nn``, ``input.data`` and ``scaling.data``.
    output_dir : path
        Where every output file goes (created).
    comm : hpcnnp.training.comm.Comm
    restart : bool
        Continue from the checkpoint in ``checkpoint_dir``.
    checkpoint_dir : path or None
        Default ``<output_dir>/checkpoint``; ``False`` disables checkpoints.
    checkpoint_every : int
        Checkpoint every this many epochs (and after the last epoch).
    distributed_kalman : bool
        Distribute P over the ranks (default) or keep a full copy on every rank.
    check_sync : int
        Every this many updates compare a hash of the weights of all ranks (0: off).
    epochs : int or None
        Override ``epochs`` of input.nn.
    fold_every : int
        Kalman filter ``fold_every`` (deferred covariance updates).
    plots : bool
        Write learning-curve.png and the parity plots at the end.
    stream : file or None
        Screen (rank 0): the log and a progress line per epoch; None = quiet.
    cache_structures : int
        SF cache entries without ``memorize_symfunc_results``.
    sf_cache_mb : float
        SF cache size limit (MiB) without ``memorize_symfunc_results``.
    memory_check : bool
        Refuse to start when the memory estimate exceeds what the node has.
    stop_after_updates : int
        Benchmarks: end the run after this many updates of this process (no
        checkpoint, no final evaluation; 0 = off).
    blas_threads : int or None
        BLAS threads per rank during training (None: automatic, see
        :class:`_blas_threads`).
    """

    def __init__(self, settings="input.nn", data="input.data", scaling="scaling.data",
                 output_dir=".", comm=None, restart=False, checkpoint_dir=None,
                 distributed_kalman=True, check_sync=0, epochs=None, fold_every=16,
                 plots=True, stream=sys.stdout, cache_structures=2, blas_threads=None,
                 checkpoint_every=1, sf_cache_mb=256, memory_check=True,
                 stop_after_updates=0):
        self.comm = comm if comm is not None else get_comm()
        self.settings_path = Path(settings)
        self.data_path = Path(data)
        self.scaling_path = Path(scaling)
        self.output_dir = Path(output_dir)
        self.restart = bool(restart)
        if checkpoint_dir is False:
            self.checkpoint_dir = None
        else:
            self.checkpoint_dir = (Path(checkpoint_dir) if checkpoint_dir
                                   else self.output_dir / "checkpoint")
        self.checkpoint_every = max(1, int(checkpoint_every))
        self.ckpt_writer = (CheckpointWriter(self.checkpoint_dir, self.comm)
                            if self.checkpoint_dir is not None else None)
        self.distributed_kalman = bool(distributed_kalman)
        self.check_sync = int(check_sync)
        self.epochs_override = epochs
        self.fold_every = int(fold_every)
        self.plots = bool(plots)
        self.files = RunFiles(self, stream)
        self.cache_structures = int(cache_structures)
        self.sf_cache_bytes = int(float(sf_cache_mb) * 2 ** 20)
        self.memory_check = bool(memory_check)
        self.stop_after_updates = int(stop_after_updates)
        self.blas_threads = None if blas_threads is None else int(blas_threads)
        self._term = False
        self._updates_this_process = 0
        self._ckpt_seconds_seen = 0.0
        self.fail_after = int(os.environ.get("HPCNNP_TRAIN_FAIL_AFTER_UPDATES", "0") or 0)
        self.term_after = int(os.environ.get("HPCNNP_TRAIN_TERM_AFTER_UPDATES", "0") or 0)
        self.kill_after = int(os.environ.get("HPCNNP_TRAIN_KILL_AFTER_UPDATES", "0") or 0)
        self.timers = {}
        self.files_written = []
        self.evaluator = Evaluator(self)
        self.step = UpdateStep(self)

    def log(self, text=""):
        """Rank 0: log file + screen."""
        self.files.log(text)

    # ================================================================== setup
    def setup(self):
        """Read and validate everything (collective); nothing is written before
        all inputs are known to be good."""
        c = self.comm
        c.collective(self._read_inputs)
        c.collective(self._load_data)
        units = None
        if self.restart:
            if self.checkpoint_dir is None or not checkpoint_exists(self.checkpoint_dir):
                raise HpcnnpError(f"--restart: no checkpoint in {self.checkpoint_dir} "
                                  "(meta.json missing)")
            self.meta, self.ckpt = load_checkpoint(self.checkpoint_dir, c)
            c.collective(self._check_checkpoint)
            units = Units(*self.ckpt["units"])
            weights = [np.array(w, dtype=float) for w in self.ckpt["weights_el"]]
        elif self.cfg.use_old_weights:
            weights = c.collective(read_old_weights, self.settings_path.parent,
                                   self.settings, self.elements)
        else:
            weights = initial_weights(self.settings, self.cfg, self.streams.weights)
        self._setup_networks(weights)
        if units is None:
            if self.cfg.normalize_data_set:
                units = normalize_data_set(self)
            elif self.settings.normalization is not None:
                units = Units(*self.settings.normalization)
            else:
                units = Units()
        self.units = units
        for s in self.structures:
            s.set_units(units)
        c.collective(self._setup_training)

    def _read_inputs(self):
        self.settings = n2p2.read_settings(self.settings_path)
        self.cfg = training_config(self.settings)
        if self.epochs_override is not None:
            if int(self.epochs_override) < 0:
                raise HpcnnpError("--epochs must be >= 0")
            self.cfg.epochs = int(self.epochs_override)
        st = self.settings
        n_sf = {el: st.n_sf(el) for el in st.elements}
        if st.scaling_type != "none" or self.scaling_path.exists():
            self.scaling = n2p2.read_scaling(self.scaling_path, n_sf, st.elements)
        else:
            self.scaling = None
        self.potential = Potential(settings_without_normalization(st), self.scaling, None,
                                   directory=self.settings_path.parent)
        self.elements = list(st.elements)
        self.n_el = len(self.elements)
        self.atom_energy = [float(st.atom_energy.get(el, 0.0)) for el in self.elements]
        self.props = self.cfg.property_names
        self.streams = Streams(self.cfg.random_seed, self.comm.rank, self.comm.size)
        self.scale = scale_factors(self.potential)

    def _load_data(self):
        self.data = load_structures(self.data_path, self.elements, self.comm, self.streams,
                                    self.cfg.test_fraction, self.atom_energy)
        self.n_structures = self.data.n_structures
        self.owner, self.is_train = self.data.owner, self.data.is_train
        self.n_atoms_global = self.data.n_atoms
        self.structures = self.data.structures
        # neighbour statistics (US_ELEMENT force split, memory estimate); also rejects
        # structures the C core cannot handle (atoms closer than 0.1) before any output
        self.sf = SFCache(self.potential, self.cfg.memorize, self.cache_structures,
                          self.sf_cache_bytes)
        for s in self.structures:
            try:
                s.nn_per_elem, s.n_pairs = self.sf.neighbour_statistics(s)
            except HpcnnpError as exc:
                raise HpcnnpError(f"{self.data_path}: structure {s.index} (0-based): "
                                  f"{exc}") from None

    def _check_checkpoint(self):
        st = self.ckpt
        if st["n_structures"] != self.n_structures:
            raise HpcnnpError(f"checkpoint: {st['n_structures']} structures, data has "
                              f"{self.n_structures}")
        if st["data_hash"] != self.data.digest():
            raise HpcnnpError("checkpoint: the data distribution/split differs (other "
                              "input.data or random_seed?)")
        if [len(w) for w in st["weights_el"]] != [self.settings.n_weights(el)
                                                   for el in self.elements]:
            raise HpcnnpError("checkpoint: network sizes differ from input.nn")

    def _setup_networks(self, weights_el):
        """State vectors per updater and element views into them."""
        self.n_w_el = [int(len(w)) for w in weights_el]
        self.offsets_el = np.concatenate([[0], np.cumsum(self.n_w_el)]).astype(int)
        self.n_w_total = int(self.offsets_el[-1])
        if self.cfg.update_strategy == 0:
            state = np.ascontiguousarray(np.concatenate(weights_el))
            self.state = [state]
            self.views = [state[self.offsets_el[e]:self.offsets_el[e + 1]]
                          for e in range(self.n_el)]
            self.updater_cols = [(0, self.n_w_total)]
        else:
            self.state = [np.ascontiguousarray(w, dtype=float).copy() for w in weights_el]
            self.views = list(self.state)
            self.updater_cols = [(int(self.offsets_el[e]), int(self.offsets_el[e + 1]))
                                 for e in range(self.n_el)]
        self.nets = Networks(self.potential, self.views)
        self.nets.push()

    def decoupling(self, lo, hi):
        """Decoupled groups (start, stop) of the updater of state columns lo … hi,
        relative to lo (``kalman_decoupling``)."""
        sizes = [self.settings.layer_sizes(el) for e, el in enumerate(self.elements)
                 if lo <= self.offsets_el[e] < hi]
        return decoupling_groups(self.cfg.kalman_decoupling, sizes)

    def group_sizes(self, lo, hi):
        return [b - a for a, b in self.decoupling(lo, hi)]

    def _setup_training(self):
        cfg, c = self.cfg, self.comm
        # global pattern counts (every rank read every structure)
        n_train_e = int(self.is_train.sum())
        n_train_f = int(3 * self.n_atoms_global[self.is_train].sum())
        self.n_train = {"energy": n_train_e, "force": n_train_f}
        self.n_test = {"energy": int((~self.is_train).sum()),
                       "force": int(3 * self.n_atoms_global[~self.is_train].sum())}
        train = [s for s in self.structures if s.is_train]
        self.cands = {"energy": Candidates(np.array([[s.local] for s in train],
                                                    dtype=np.int64).reshape(-1, 1))}
        if cfg.use_forces:
            keys = [np.column_stack([np.full(3 * s.n, s.local),
                                     np.repeat(np.arange(s.n), 3),
                                     np.tile(np.arange(3), s.n)]) for s in train]
            self.cands["force"] = Candidates(np.concatenate(keys) if keys
                                             else np.zeros((0, 3), dtype=np.int64))
        fractions = {p: cfg.properties[p].fraction for p in self.props}
        if "force" in self.props and cfg.force_energy_ratio is not None:
            fractions["force"] = n_train_e * cfg.force_energy_ratio / n_train_f
        self.fractions = fractions
        self.plans = {p: UpdatePlan(cfg.properties[p].batch, fractions[p], self.n_train[p],
                                    self.cands[p].n, c.size) for p in self.props}
        self.per_update_all = {p: c.allgather(self.plans[p].per_update) for p in self.props}
        self.n_updates_epoch = sum(self.plans[p].n_updates for p in self.props)
        if cfg.epochs > 0 and self.n_updates_epoch == 0:
            raise HpcnnpError("no weight updates per epoch: the fractions/batch sizes give "
                              "0 updates (increase short_energy_fraction/short_force_"
                              "fraction or decrease task_batch_size_*)")
        # rows per update (packed Jacobian + errors) per property
        self.rows = {p: (list(self.per_update_all[p]) if cfg.jacobian_mode == 2
                         else [1] * c.size) for p in self.props}
        self.n_updaters = 1 if cfg.update_strategy == 0 else self.n_el
        self.modes = {p: cfg.properties[p].mode_at(0) for p in self.props}
        self.errors = None
        self.epoch = 0
        self.count_updates = 0
        self.history = {"curve": [], "updater": [[] for _ in range(self.n_updaters)],
                        "timing": [], "total_time": 0.0}

    def _create_updaters_and_report(self):
        """Memory estimate and check (collective; refuses before P is allocated),
        the updaters, the setup block of the log."""
        c = self.comm
        mine = estimate_memory(self)
        self.memory_estimates = c.allgather(mine)
        node = check_memory(mine, c, enforce=self.memory_check)
        node0 = c.bcast(node)
        self._create_updaters()
        for line in setup_lines(self, self.memory_estimates, node0):
            self.log(line)

    def _create_updaters(self):
        c = self.comm
        self.updaters = [make_updater(self.cfg, b - a, max(1, self.n_updates_epoch),
                                      c.kalman_comm, self.distributed_kalman,
                                      self.fold_every, groups=self.decoupling(a, b))
                         for (a, b) in self.updater_cols]

    # ======================================================== error evaluation
    def evaluate(self, epoch, write_points=False, write_forces=False, neuron_stats=False,
                 keep_parity=False):
        """Errors of all structures with the current weights (collective); sets
        ``self.errors``, the candidates' errors and the parity data."""
        errors, e_err, f_err, parity = self.evaluator.evaluate(
            epoch, write_points, write_forces, neuron_stats, keep_parity)
        self.errors = errors
        self.cands["energy"].errors = e_err
        if f_err is not None:
            self.cands["force"].errors = f_err
        if parity is not None:
            self.parity_local = parity

    def _evaluate_epoch(self, epoch):
        cfg = self.cfg
        t0 = time.perf_counter()
        self.evaluate(epoch, write_points=cfg.properties["energy"].write.due(epoch),
                      write_forces=("force" in self.props
                                    and cfg.properties["force"].write.due(epoch)),
                      neuron_stats=cfg.write_neuronstats.due(epoch),
                      keep_parity=epoch == cfg.epochs)
        return time.perf_counter() - t0

    # ================================================================= update
    def update(self, p):
        """One update of property ``p`` (collective)."""
        self.step(p)
        self._updates_this_process += 1
        if self.check_sync and self.count_updates % self.check_sync == 0:
            self._check_sync()
        self._test_hooks()

    def _check_sync(self):
        h = hashlib.sha256()
        for w in self.state:
            h.update(w.tobytes())
        digests = self.comm.allgather(h.hexdigest())
        if len(set(digests)) != 1:
            raise HpcnnpError(f"weights differ between MPI ranks after update "
                              f"{self.count_updates} (hashes {digests})")
        self.sync_checks = getattr(self, "sync_checks", 0) + 1

    def _test_hooks(self):
        n = self._updates_this_process
        if self.fail_after and n == self.fail_after:
            raise RuntimeError(f"HPCNNP_TRAIN_FAIL_AFTER_UPDATES: simulated crash after "
                               f"{n} updates")
        if self.term_after and n == self.term_after and self.comm.rank == 0:
            os.kill(os.getpid(), signal.SIGTERM)
        if self.kill_after and n == self.kill_after:     # tests: a hard kill, no cleanup
            os.kill(os.getpid(), signal.SIGKILL)

    # ============================================================ checkpoints
    def _state(self, phase, schedule=None, position=0):
        cands = {p: {"order": self.cands[p].order.copy(), "pos": self.cands[p].pos,
                     "errors": self.cands[p].errors.copy()} for p in self.props}
        return {
            "phase": phase, "epoch": self.epoch, "count_updates": self.count_updates,
            "units": list(self.units.as_tuple()),
            "weights_el": [np.array(v) for v in self.views],
            "updaters": [u.state_dict(include_P=False) if hasattr(u, "p_chunks")
                         else u.state_dict() for u in self.updaters],
            "streams": self.streams.state(), "candidates": cands,
            "modes": {p: int(self.modes[p]) for p in self.props},
            "errors": self.errors, "history": self.history,
            "schedule": (np.zeros(0, dtype=np.int64) if schedule is None
                         else np.asarray(schedule, dtype=np.int64)),
            "position": int(position),
            "counts": {p: int(self.counts.get(p, 0)) for p in self.props},
            "timers": dict(self.timers), "epoch_t0_elapsed": float(
                time.perf_counter() - self._epoch_t0) if phase == "mid" else 0.0,
            "n_structures": self.n_structures, "data_hash": self.data.digest(),
        }

    def _tag(self):
        return f"{self.epoch:06d}-{self.count_updates:010d}"

    def start_checkpoint(self):
        """Start writing P in the background (the state follows in
        :meth:`save_checkpoint`); no-op without checkpoints."""
        if self.ckpt_writer is not None:
            self.ckpt_writer.start_p(self._tag(), self.updaters)

    def save_checkpoint(self, phase, schedule=None, position=0, wait=False):
        """Save the state of the checkpoint started by :meth:`start_checkpoint`
        (started here if not); ``wait``: commit now (else at the next fold)."""
        self.files.flush_trainlog()
        w = self.ckpt_writer
        if w is None:
            return
        if w._pending is None or w._pending["tag"] != self._tag():
            self.start_checkpoint()
        w.save_state(self._tag(), self._state(phase, schedule, position),
                     {"epoch": self.epoch, "phase": phase,
                      "count_updates": self.count_updates})
        if wait or w._writer is None:      # nothing in the background (no Kalman P)
            w.commit()

    def _restore(self):
        st = self.ckpt
        for u, ust in zip(self.updaters, st["updaters"]):
            u.load_state_dict(ust)
        read_p(self.checkpoint_dir, self.meta, self.comm, self.updaters)
        self.streams.set_state(st["streams"])
        for p in self.props:
            cs = st["candidates"][p]
            self.cands[p].order = np.asarray(cs["order"], dtype=np.int64).copy()
            self.cands[p].pos = int(cs["pos"])
            self.cands[p].errors = np.asarray(cs["errors"], dtype=float).copy()
        self.modes = {p: int(st["modes"][p]) for p in self.props}
        self.errors = st["errors"]
        self.history = st["history"]
        self.epoch = int(st["epoch"])
        self.count_updates = int(st["count_updates"])
        self.counts = {p: int(st["counts"][p]) for p in self.props}
        self.timers = {k: float(v) for k, v in st["timers"].items()}
        return st["phase"], np.asarray(st["schedule"], dtype=np.int64), int(st["position"])

    def _epoch_end(self, epoch, t_loop, t_train, t_error):
        """Outputs after the error evaluation of ``epoch`` (rank 0 files)."""
        status = [u.status_line(epoch) for u in self.updaters]   # collective
        self.history["curve"].append(out.learning_curve_line(epoch, self.props, self.errors,
                                                             self.units))
        for u, line in enumerate(status):
            self.history["updater"][u].append(line)
        self.history["total_time"] += t_loop
        seen = self.ckpt_writer.seconds_main if self.ckpt_writer is not None else 0.0
        t = {"loop": t_loop, "train": t_train, "error": t_error,
             "total": self.history["total_time"],
             "checkpoint": seen - self._ckpt_seconds_seen}
        self._ckpt_seconds_seen = seen
        for p in self.props:
            for sub in ("", "_err", "_com", "_upd", "_log"):
                t[p + sub] = self.timers.get(p + sub, 0.0)
        if epoch > 0:
            self.history["timing"].append(out.timing_line(epoch, t, self.props))
        self.history.setdefault("timers", []).append(
            dict({k: float(v) for k, v in self.timers.items()}, epoch=epoch, loop=t_loop,
                 train=t_train, error=t_error, checkpoint=t["checkpoint"]))
        self.files.write_epoch_weights(epoch)
        self.files.write_histories()
        for line in out.log_epoch_lines(epoch, self.props, self.counts, self.errors,
                                        self.units, self.cfg, t):
            self.log(line)
        if self.ckpt_writer is not None and epoch > 0:
            # hpcnnp's own line (timing.out keeps n2p2's columns)
            self.log("CHECKPOINT %5d waited %9.3f s | last P write %9.3f s in the "
                     "background, %.3f GiB" % (epoch, t["checkpoint"],
                                               self.ckpt_writer.seconds_write,
                                               self.ckpt_writer.bytes_last / 2**30))
        return t

    def _progress_line(self, epoch):
        """One progress report per epoch (:class:`hpcnnp.progress.Progress`: line with
        rate and ETA on the screen, event for ``hpcnnp run``)."""
        conv = {"energy": self.units.energy_metric_phys,
                "force": self.units.force_metric_phys}
        parts = []
        for p in self.props:
            dm = self.cfg.display_metric(p)
            parts.append(f"{p[0].upper()} {dm} train {conv[p](self.errors[p]['train'][dm]):.4E}"
                         f" test {conv[p](self.errors[p]['test'][dm]):.4E}")
        if self.ckpt_writer is not None and self.history["timers"]:
            parts.append(f"checkpoint {self.history['timers'][-1]['checkpoint']:.2f} s")
        self.progress.update(epoch, msg=" | ".join(parts), force=True)

    # ================================================================== loop
    def _install_sigterm(self):
        def handler(signum, frame):
            self._term = True
        try:
            self._old_handler = signal.signal(signal.SIGTERM, handler)
        except ValueError:            # not in the main thread
            self._old_handler = None

    def _stop_requested(self):
        return self.comm.allmax_int(1 if self._term else 0) > 0

    def run(self):
        """Train (collective).  Returns a summary dict; raises
        :class:`TrainingInterrupted` after SIGTERM (checkpoint written)."""
        t_run = time.perf_counter()
        self.setup()
        with _blas_threads(self.blas_threads, self.comm.size,
                           max(b - a for a, b in self.updater_cols)) as nthreads:
            self.blas_threads_used = nthreads
            try:
                return self._run(t_run)
            except _StopAfterUpdates:
                t = time.perf_counter() - self._epoch_t0
                self.log(f"Stopped after {self.count_updates} updates (benchmark), "
                         f"{t:.2f} s into epoch {self.epoch}.")
                self.errors = self.errors or {}
                summary = {"epochs": self.epoch, "updates": self.count_updates,
                           "elapsed": time.perf_counter() - t_run,
                           "peak_rss": self.comm.allgather(peak_rss()),
                           "memory_estimate": [e.total for e in self.memory_estimates]}
                self._close()
                return summary
            except BaseException:
                if self.ckpt_writer is not None:    # no half-written files left
                    self.ckpt_writer.abort()
                raise

    def _begin(self):
        """Updaters, restart state (P read and checked before any file is opened),
        outputs; returns (phase, schedule, position)."""
        self._create_updaters_and_report()
        self.counts = {p: 0 for p in self.props}
        if self.restart:
            phase, schedule, position = self._restore()
        self.files.open(self.restart, int(self.ckpt["count_updates"]) if self.restart
                        else None)
        self.progress = Progress("hpcnnp train", total=self.cfg.epochs, unit="epochs",
                                 out=self.files.stream or False, interval=0,
                                 initial=self.epoch, rate_from="first", comm=self.comm,
                                 announce=False)
        self._install_sigterm()
        if self.restart:
            self.log(f"\n*** RESTART from checkpoint: epoch {self.epoch}, update "
                     f"{self.count_updates}, phase {phase} ***\n")
            self.files.write_histories()
            self.files.flush_trainlog()
            return phase, schedule, position
        self.files.write_sets()
        return "start", None, 0

    def _run(self, t_run):
        cfg = self.cfg
        phase, schedule, position = self._begin()
        self.log("*** TRAINING LOOP " + "*" * 61 + "\n")
        for line in out.log_header_lines(self.props, cfg):
            self.log(line)
        if phase == "start":
            self._epoch_t0 = time.perf_counter()
            self.start_checkpoint()              # P streams out during the evaluation
            t_err = self._evaluate_epoch(0)
            self._epoch_end(0, time.perf_counter() - self._epoch_t0, 0.0, t_err)
            self._progress_line(0)
            self.save_checkpoint("end")
            phase = "end"
        while not (phase == "end" and self.epoch >= cfg.epochs):
            if phase == "end":
                if self._stop_requested():           # collective: same on all ranks
                    self.log(f"SIGTERM: stopping after epoch {self.epoch} (checkpoint "
                             "written).")
                    self._interrupt()
                schedule, t_train_prev = self._next_epoch(), 0.0
                position = 0
            else:          # mid-epoch restart
                self._epoch_t0 = time.perf_counter() - float(self.ckpt.get(
                    "epoch_t0_elapsed", 0.0))
                t_train_prev = sum(self.timers.get(p, 0.0) for p in self.props)
            t_train = self._epoch_updates(schedule, position) + t_train_prev
            due = self.epoch % self.checkpoint_every == 0 or self.epoch == cfg.epochs
            if due:
                self.start_checkpoint()          # P streams out during the evaluation
            t_err = self._evaluate_epoch(self.epoch)
            self._epoch_end(self.epoch, time.perf_counter() - self._epoch_t0, t_train, t_err)
            self._progress_line(self.epoch)
            phase = "end"
            if due:
                self.save_checkpoint("end")
        if self.ckpt_writer is not None:
            self.ckpt_writer.commit()
        if not hasattr(self, "parity_local"):
            self.evaluate(self.epoch, keep_parity=True)
        summary = self._finish(time.perf_counter() - t_run)
        self._close()
        return summary

    def _next_epoch(self):
        """Start the next epoch: counters, selection-mode switches, shuffled candidate
        lists and update schedule."""
        cfg = self.cfg
        self.epoch += 1
        self._epoch_t0 = time.perf_counter()
        self.log("------")
        self.counts = {p: 0 for p in self.props}
        self.timers = {}
        for p in self.props:
            pc = cfg.properties[p]
            if self.epoch in pc.selection:
                self.modes[p] = pc.selection[self.epoch]
                self.log(f'INFO   Switching selection mode for property "{p}" to '
                         f'{SELECTION_NAMES[self.modes[p]]} ({self.modes[p]}).')
        for p in self.props:
            self.cands[p].prepare_epoch(self.modes[p], self.streams.rank)
        return epoch_schedule([self.plans[p].n_updates for p in self.props],
                              self.streams.schedule)

    def _epoch_updates(self, schedule, position):
        """The updates of the epoch from ``position``; returns their time.  SIGTERM:
        checkpoint after the current update, then :class:`TrainingInterrupted`."""
        t0 = time.perf_counter()
        within = None            # an epoch longer than EPOCH_PROGRESS_S reports its updates
        while position < len(schedule):
            p = self.props[int(schedule[position])]
            self.update(p)
            self.counts[p] += 1
            position += 1
            if within is not None:
                within.update(position)
            elif time.perf_counter() - t0 > EPOCH_PROGRESS_S:
                within = Progress(f"hpcnnp train: epoch {self.epoch} updates",
                                  total=len(schedule), unit="updates",
                                  out=self.files.stream or False, interval=30.0,
                                  initial=position, comm=self.comm, announce=False)
            if self.stop_after_updates and \
                    self._updates_this_process >= self.stop_after_updates:
                raise _StopAfterUpdates()
            if self._stop_requested():
                if self.ckpt_writer is not None:
                    self.ckpt_writer.commit()
                self.save_checkpoint("mid", schedule, position, wait=True)
                what = ("checkpoint written" if self.checkpoint_dir is not None
                        else "checkpoints are off (--no-checkpoint), nothing saved")
                self.log(f"SIGTERM: {what} after update {self.count_updates}"
                         f" (epoch {self.epoch}, {position}/{len(schedule)}); exiting.")
                self._interrupt()
        if within is not None:
            within.close()
        return time.perf_counter() - t0

    def _interrupt(self):
        if self.ckpt_writer is not None:
            self.ckpt_writer.commit()
        self._close(ok=False)
        raise TrainingInterrupted()

    def _finish(self, elapsed):
        """Final weights, plots, potential files; returns the summary (all ranks)."""
        c = self.comm
        allp = c.gather(self.parity_local)
        files = []
        if c.rank == 0:
            files += self.files.write_potential()
            if self.plots:
                files += self.files.plots(allp)
        peak = c.allgather(peak_rss())
        estimate = max(e.total for e in self.memory_estimates)
        summary = {"epochs": self.epoch, "updates": self.count_updates,
                   "errors": self.errors, "elapsed": elapsed, "peak_rss": peak,
                   "memory_estimate": [e.total for e in self.memory_estimates],
                   "files": files, "units": self.units.as_tuple()}
        for line in final_lines(self, elapsed, peak, estimate):
            self.log(line)
        return summary

    def _close(self, ok=True):
        progress = getattr(self, "progress", None)
        if progress is not None and not progress.closed:
            progress.close(ok=ok)
        self.files.close()
        if getattr(self, "_old_handler", None) is not None:
            try:
                signal.signal(signal.SIGTERM, self._old_handler)
            except ValueError:
                pass
