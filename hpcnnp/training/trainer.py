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
After epoch 0 and every epoch (and after the current update on SIGTERM) the full
state is written (:mod:`~hpcnnp.training.checkpoint`: one file per rank with its P
block, weights, filter scalars and pending low-rank factors, random-stream states,
candidate orders/cursors/errors, selection modes, the last error metrics and the
learning-curve/updater/timing history; committed atomically by ``meta.json``).
``--restart`` continues bit-identically (same inputs and number of ranks); the
history files are rewritten from the checkpoint.  SIGTERM exits with code 143.
"""

from __future__ import annotations

import hashlib
import math
import os
import resource
import shutil
import signal
import sys
import time
from pathlib import Path

import numpy as np
from ase.data import atomic_numbers

from hpcnnp import _core
from hpcnnp.errors import HpcnnpError, InputFileError
from hpcnnp.io import n2p2
from hpcnnp.training import outputs as out
from hpcnnp.training.checkpoint import checkpoint_exists, load_checkpoint, save_checkpoint
from hpcnnp.training.config import (SELECTION_NAMES, SM_THRESHOLD,
                                    training_config)
from hpcnnp.training.dataset import SFCache, TrainStructure, Units, scale_factors
from hpcnnp.training.jacobian import Networks, energy_terms, force_terms
from hpcnnp.training.kalman import row_partition
from hpcnnp.training.schedule import (Candidates, Streams, UpdatePlan, distribute,
                                      epoch_schedule)
from hpcnnp.training.updaters import make_updater

__all__ = ["Trainer", "TrainingInterrupted", "initial_weights", "EXIT_SIGTERM"]

#: exit code after a SIGTERM (checkpoint written): 128 + 15, as a shell reports it
EXIT_SIGTERM = 143
_NORM_KEYS = ("mean_energy", "conv_energy", "conv_length")
_MIB = 1024.0 ** 2


class TrainingInterrupted(Exception):
    """Raised after a SIGTERM once the checkpoint is written."""


def _settings_without_normalization(settings):
    """The same input.nn with mean_energy/conv_energy/conv_length blanked out: the
    C model then returns raw network outputs (training units); the trainer converts."""
    lines = []
    for raw in settings.lines:
        text = raw
        for mark in "#!":
            cut = text.find(mark)
            if cut >= 0:
                text = text[:cut]
        tok = text.split()
        lines.append("" if tok and tok[0] in _NORM_KEYS else raw)
    return n2p2.Settings(settings.path, lines).validate()


def initial_weights(settings, cfg, rng):
    """Random initial connections per element (n2p2-formats.md §8.3).

    Every connection uniform in [weights_min, weights_max) (all elements in element
    order, connections in weights-file order), then Nguyen–Widrow
    (``nguyen_widrow_weights_short``, including n2p2's quirk that only the first
    output-layer weight is halved) or Glorot–Bengio (tanh layers ×
    sqrt(6/(n_in + n_out))) with all biases set to zero.
    """
    raw = [cfg.weights_min + rng.random(settings.n_weights(el))
           * (cfg.weights_max - cfg.weights_min) for el in settings.elements]
    for el, w in zip(settings.elements, raw):
        sizes = settings.layer_sizes(el)
        acts = settings.activations[el]
        o = 0
        layers = []
        for nin, nout in zip(sizes[:-1], sizes[1:]):
            W = w[o:o + nin * nout].reshape(nin, nout)
            o += nin * nout
            b = w[o:o + nout]
            o += nout
            layers.append((W, b, nin, nout))
        if cfg.nguyen_widrow:
            for k, (W, b, nin, nout) in enumerate(layers[:-1]):
                beta = 0.7 * nout ** (1.0 / nin)
                norm = np.sqrt((W * W).sum(axis=0))
                W *= beta / norm
                b *= beta
                if acts[k] == "t":
                    W *= 2.0
                    b *= 2.0
            layers[-1][0][0, 0] *= 0.5
        else:
            for k, (W, b, nin, nout) in enumerate(layers):
                if acts[k] == "t":
                    W *= math.sqrt(6.0 / (nin + nout))
                b[:] = 0.0
    return raw


def _metrics(sums, prop):
    """Error metrics from sums (sq_pa, sq, abs_pa, abs, count) or (sq, abs, count)."""
    if prop == "energy":
        sq_pa, sq, ab_pa, ab, n = sums
        if n == 0:
            return {m: float("nan") for m in out.ENERGY_METRICS}
        return {"RMSEpa": math.sqrt(sq_pa / n), "RMSE": math.sqrt(sq / n),
                "MAEpa": ab_pa / n, "MAE": ab / n}
    sq, ab, n = sums
    if n == 0:
        return {m: float("nan") for m in out.FORCE_METRICS}
    return {"RMSE": math.sqrt(sq / n), "MAE": ab / n}


def _hms(seconds):
    seconds = int(round(max(0.0, seconds)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h:d}:{m:02d}:{s:02d}"


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
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:            # pragma: no cover
            return None
        self._ctx = threadpool_limits(limits=int(n), user_api="blas")
        return int(n)

    def __exit__(self, *exc):
        if self._ctx is not None:
            self._ctx.restore_original_limits()
        return False


def _peak_rss_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


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
    blas_threads : int or None
        BLAS threads per rank during training (None: automatic, see
        :class:`_blas_threads`).
    """

    def __init__(self, settings="input.nn", data="input.data", scaling="scaling.data",
                 output_dir=".", comm=None, restart=False, checkpoint_dir=None,
                 distributed_kalman=True, check_sync=0, epochs=None, fold_every=16,
                 plots=True, stream=sys.stdout, cache_structures=2, blas_threads=None):
        from hpcnnp.training.comm import get_comm

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
        self.distributed_kalman = bool(distributed_kalman)
        self.check_sync = int(check_sync)
        self.epochs_override = epochs
        self.fold_every = int(fold_every)
        self.plots = bool(plots)
        self.stream = stream if self.comm.rank == 0 else None
        self.cache_structures = int(cache_structures)
        self.blas_threads = None if blas_threads is None else int(blas_threads)
        self._log_file = None
        self._pending_log = []
        self._trainlog = None
        self._term = False
        self._updates_this_process = 0
        self.fail_after = int(os.environ.get("HPCNNP_TRAIN_FAIL_AFTER_UPDATES", "0") or 0)
        self.term_after = int(os.environ.get("HPCNNP_TRAIN_TERM_AFTER_UPDATES", "0") or 0)
        self.timers = {}
        self.files_written = []

    # ================================================================ logging
    def log(self, text=""):
        """Rank 0: log file + screen."""
        if self.comm.rank != 0:
            return
        if not text.endswith("\n"):
            text += "\n"
        if self._log_file is not None:
            self._log_file.write(text)
            self._log_file.flush()
        else:
            self._pending_log.append(text)
        if self.stream is not None:
            self.stream.write(text)
            self.stream.flush()

    def _progress(self, text):
        if self.comm.rank == 0 and self.stream is not None:
            self.stream.write(text + "\n")
            self.stream.flush()

    # ================================================================== setup
    def setup(self):
        """Read and validate everything (collective); nothing is written before
        all inputs are known to be good."""
        c = self.comm
        c.collective(self._read_inputs)
        c.collective(self._load_data)
        if self.restart:
            if self.checkpoint_dir is None or not checkpoint_exists(self.checkpoint_dir):
                raise HpcnnpError(f"--restart: no checkpoint in {self.checkpoint_dir} "
                                  "(meta.json missing)")
            self.meta, self.ckpt = load_checkpoint(self.checkpoint_dir, c)
            c.collective(self._check_checkpoint)
            units = Units(*self.ckpt["units"])
            weights = [np.array(w, dtype=float) for w in self.ckpt["weights_el"]]
        else:
            units = None
            if self.cfg.use_old_weights:
                weights = c.collective(self._read_old_weights)
            else:
                weights = initial_weights(self.settings, self.cfg, self.streams.weights)
        self._setup_networks(weights)
        if units is None:
            if self.cfg.normalize_data_set:
                units = self._normalize_data_set()
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
        from hpcnnp.potential import Potential
        self.potential = Potential(_settings_without_normalization(st), self.scaling, None,
                                   directory=self.settings_path.parent)
        self.elements = list(st.elements)
        self.n_el = len(self.elements)
        self.atom_energy = [float(st.atom_energy.get(el, 0.0)) for el in self.elements]
        self.props = self.cfg.property_names
        self.streams = Streams(self.cfg.random_seed, self.comm.rank, self.comm.size)
        self.scale = scale_factors(self.potential)

    def _load_data(self):
        from hpcnnp.predict import count_structures
        c = self.comm
        if not self.data_path.is_file():
            raise InputFileError(self.data_path, None, "file not found")
        n_total = c.bcast(count_structures(self.data_path) if c.rank == 0 else None)
        if n_total == 0:
            raise InputFileError(self.data_path, None, "no structures (no 'begin' line)")
        self.n_structures = n_total
        self.owner = distribute(n_total, c.size, self.streams.distribution)
        u = self.streams.split.random(n_total)
        self.is_train = np.zeros(n_total, dtype=bool)
        self.n_atoms_global = np.zeros(n_total, dtype=np.int64)
        structures = []
        tagged = 0
        index = {el: i for i, el in enumerate(self.elements)}
        for k, atoms in enumerate(n2p2.iter_data(self.data_path, self.elements)):
            if k >= n_total:
                raise InputFileError(self.data_path, None, "structure count changed while "
                                                           "reading")
            tag = atoms.info.get("set")
            if tag is not None:
                tagged += 1
                train = tag == "train"
            else:
                train = not (u[k] < self.cfg.test_fraction)
            self.is_train[k] = train
            self.n_atoms_global[k] = len(atoms)
            if len(atoms) == 0:
                raise InputFileError(self.data_path, atoms.info.get("n2p2_line"),
                                     f"structure {k} has no atoms")
            if self.owner[k] == c.rank:
                elem = [index[s] for s in atoms.get_chemical_symbols()]
                st = TrainStructure(k, len(structures), atoms, elem, train, self.n_el,
                                    self.atom_energy)
                structures.append(st)
        self.tagged = tagged
        if not self.is_train.any():
            raise HpcnnpError(f"{self.data_path}: empty training set ({n_total} structures, "
                              "all in the test set: check test_fraction and set= tags)")
        self.structures = structures
        # neighbour statistics (US_ELEMENT force split, memory estimate); also rejects
        # structures the C core cannot handle (atoms closer than 0.1) before any output
        self.sf = SFCache(self.potential, self.cfg.memorize, self.cache_structures)
        for s in structures:
            try:
                s.nn_per_elem, s.n_pairs = self.sf.neighbour_statistics(s)
            except HpcnnpError as exc:
                raise HpcnnpError(f"{self.data_path}: structure {s.index} (0-based): "
                                  f"{exc}") from None

    def _read_old_weights(self):
        folder = self.settings_path.parent
        out_w = []
        for el in self.elements:
            path = folder / n2p2.weights_filename(el)
            out_w.append(n2p2.read_weights(path, self.settings.n_weights(el)))
        return out_w

    def _check_checkpoint(self):
        st = self.ckpt
        if st["n_structures"] != self.n_structures:
            raise HpcnnpError(f"checkpoint: {st['n_structures']} structures, data has "
                              f"{self.n_structures}")
        if st["data_hash"] != self._data_hash():
            raise HpcnnpError("checkpoint: the data distribution/split differs (other "
                              "input.data or random_seed?)")
        if [len(w) for w in st["weights_el"]] != [self.settings.n_weights(el)
                                                   for el in self.elements]:
            raise HpcnnpError("checkpoint: network sizes differ from input.nn")

    def _data_hash(self):
        h = hashlib.sha256()
        h.update(self.owner.tobytes())
        h.update(self.is_train.tobytes())
        h.update(self.n_atoms_global.tobytes())
        return h.hexdigest()

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

    # ----------------------------------------------------------- normalisation
    def _normalize_data_set(self):
        """n2p2's normalize_data_set (§9.2): statistics of reference data and of the
        initial prediction over all structures; rewrites the settings file."""
        c = self.comm
        mode = self.cfg.normalize_data_set
        e_ref, e_nnp, f_ref, f_nnp = [], [], [], []
        for s in self.structures:
            nl, elem = self.potential.neighbor_list(s.atoms)
            res = _core.energy_forces(self.potential._model, nl, elem, s.n,
                                      forces=self.cfg.use_forces, full=True)
            e_ref.append((s.e_phys - s.offset_sum) / s.n)
            e_nnp.append(float(res["output"].sum()) / s.n)
            f_ref.append(s.f_phys.ravel())
            if self.cfg.use_forces:
                f_nnp.append(res["forces"][:s.n].ravel())
        e_ref, e_nnp = np.array(e_ref), np.array(e_nnp)
        f_ref = np.concatenate(f_ref) if f_ref else np.zeros(0)
        f_nnp = np.concatenate(f_nnp) if f_nnp else np.zeros(0)
        tot = c.allsum(np.array([len(e_ref), e_ref.sum(), e_nnp.sum(), len(f_ref),
                                 f_ref.sum(), f_nnp.sum()]))
        ns, na3 = tot[0], tot[3]
        me_ref, me_nnp = tot[1] / ns, tot[2] / ns
        mf_ref, mf_nnp = tot[4] / na3, tot[5] / na3
        var = c.allsum(np.array([((e_ref - me_ref) ** 2).sum(), ((e_nnp - me_nnp) ** 2).sum(),
                                 ((f_ref - mf_ref) ** 2).sum(),
                                 ((f_nnp - mf_nnp) ** 2).sum() if len(f_nnp) else 0.0]))
        if ns < 2:
            raise HpcnnpError("normalize_data_set needs at least 2 structures")
        s_e_ref, s_e_nnp = math.sqrt(var[0] / (ns - 1)), math.sqrt(var[1] / (ns - 1))
        s_f_ref, s_f_nnp = math.sqrt(var[2] / (na3 - 1)), math.sqrt(var[3] / (na3 - 1))
        self.log("*** DATA SET NORMALIZATION " + "*" * 52 + "\n")
        self.log(f"Total number of structures : {int(ns)}")
        self.log(f"Total number of atoms      : {int(na3 // 3)}")
        self.log("Reference data statistics:")
        self.log("Mean/sigma energy per atom : %16.8E   / %16.8E" % (me_ref, s_e_ref))
        self.log("Mean/sigma force           : %16.8E   / %16.8E" % (mf_ref, s_f_ref))
        self.log("Initial NNP prediction statistics:")
        self.log("Mean/sigma energy per atom : %16.8E   / %16.8E" % (me_nnp, s_e_nnp))
        self.log("Mean/sigma force           : %16.8E   / %16.8E" % (mf_nnp, s_f_nnp))
        if mode == "stats-only":
            norm = self.settings.normalization
            return Units(*norm) if norm else Units()
        if mode == "ref":
            if s_e_ref == 0:
                raise HpcnnpError("normalize_data_set ref: the reference energies per atom "
                                  "have zero spread")
            units = Units(me_ref, 1.0 / s_e_ref,
                          s_f_ref / s_e_ref if self.cfg.use_forces else 1.0)
        else:
            if s_f_ref == 0 or s_f_nnp == 0:
                raise HpcnnpError("normalize_data_set force: zero force spread")
            units = Units(me_ref, s_f_nnp / s_f_ref, s_f_nnp)
        self.log("Final conversion data:")
        self.log("Mean ref. energy per atom = %24.16E" % units.mean_energy)
        self.log("Conversion factor energy  = %24.16E" % units.conv_energy)
        self.log("Conversion factor length  = %24.16E" % units.conv_length)
        if c.rank == 0:
            self._rewrite_settings(units)
        c.barrier()
        return units

    def _rewrite_settings(self, units):
        path = self.settings_path
        backup = path.with_name(path.name + ".bak")
        shutil.copyfile(path, backup)
        new = {"mean_energy": "mean_energy %24.16E # hpcnnp train" % units.mean_energy,
               "conv_energy": "conv_energy %24.16E # hpcnnp train" % units.conv_energy,
               "conv_length": "conv_length %24.16E # hpcnnp train" % units.conv_length}
        lines = list(self.settings.lines)
        replaced = False
        for i, raw in enumerate(lines):
            tok = raw.split("#")[0].split("!")[0].split()
            if tok and tok[0] in new:
                lines[i] = new[tok[0]]
                replaced = True
        if replaced:
            self.log('WARNING: Preexisting normalization data was found and replaced in '
                     f'"{path}".')
        else:
            rule = "#" * 79
            lines = [rule, "# DATA SET NORMALIZATION", rule] + list(new.values()) + \
                    [rule, ""] + lines
        out.write_text(path, [ln + "\n" for ln in lines])
        self.log(f'Backup of the original settings file: "{backup}"; normalization data '
                 f'written to "{path}".')

    # ----------------------------------------------------------- training setup
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
        self.rows = {}
        for p in self.props:
            if cfg.jacobian_mode == 2:
                self.rows[p] = list(self.per_update_all[p])
            else:
                self.rows[p] = [1] * c.size
        self.n_updaters = 1 if cfg.update_strategy == 0 else self.n_el
        self.modes = {p: cfg.properties[p].mode_at(0) for p in self.props}
        self.errors = None
        self.epoch = 0
        self.count_updates = 0
        self.history = {"curve": [], "updater": [[] for _ in range(self.n_updaters)],
                        "timing": [], "total_time": 0.0}

    def _memory_estimate(self):
        """Bytes per rank: SF values, SF derivatives, P block, Jacobian buffers."""
        vals = der = 0
        big_v = big_d = 0
        for s in self.structures:
            v, d = self.sf.estimate_bytes(s)
            vals += v
            der += d
            big_v, big_d = max(big_v, v), max(big_d, d)
        if not self.cfg.memorize:
            k = self.sf.capacity
            vals, der = min(vals, k * big_v), min(der, k * big_d)
        p_bytes = 0
        for (a, b) in self.updater_cols:
            n = b - a
            if self.cfg.updater_type != 1:
                p_bytes += 16 * n if self.cfg.gradient.get("type") == 1 else 0
                continue
            if self.distributed_kalman and self.comm.size > 1:
                offs = row_partition(n, self.comm.size)
                p_bytes += 8 * n * int(offs[self.comm.rank + 1] - offs[self.comm.rank])
            else:
                p_bytes += 8 * n * n
        width = self.n_w_total + self.n_updaters         # packed row: H | xi
        jac = 8 * width * max(self.rows[p][self.comm.rank] + sum(self.rows[p])
                              for p in self.props)
        return {"sf_values": vals, "sf_derivatives": der, "kalman_P": p_bytes,
                "jacobian": jac}

    def _create_updaters(self):
        kcomm = self.comm.kalman_comm
        self.updaters = [make_updater(self.cfg, b - a, max(1, self.n_updates_epoch), kcomm,
                                      self.distributed_kalman, self.fold_every)
                         for (a, b) in self.updater_cols]

    # ======================================================== error evaluation
    def evaluate(self, epoch, write_points=False, write_forces=False, neuron_stats=False,
                 keep_parity=False):
        """Errors of all structures with the current weights (collective).

        Sets ``self.errors`` (training units) and the candidates' error lists, writes
        the comparison files and neuron statistics (rank 0) when asked."""
        c = self.comm
        use_f = self.cfg.use_forces
        inv_cl = 1.0 / self.units.conv_length
        sums = {("energy", True): np.zeros(5), ("energy", False): np.zeros(5),
                ("force", True): np.zeros(3), ("force", False): np.zeros(3)}
        e_err, f_err = [], []
        plines = {True: [], False: []}
        flines = {True: [], False: []}
        parity_e, parity_f = [], []
        nstats = None
        if neuron_stats:
            nstats = []
            for e in range(self.n_el):
                n = sum(self.nets.sizes[e])
                nstats.append([np.zeros(n, dtype=np.int64), np.full(n, np.inf),
                               np.full(n, -np.inf), np.zeros(n), np.zeros(n)])
        model = self.potential._model
        for s in self.structures:
            nl, elem = self.potential.neighbor_list(s.atoms)
            res = _core.energy_forces(model, nl, elem, s.n, forces=use_f, full=True)
            energy = float(res["output"].sum())
            de = s.e_ref - energy
            acc = sums[("energy", s.is_train)]
            acc += (de * de / (s.n * s.n), de * de, abs(de) / s.n, abs(de), 1)
            if s.is_train:
                e_err.append(abs(de) / s.n)
            if write_points:
                plines[s.is_train].append((s.index, "%10d %16.8E %16.8E\n"
                                           % (s.index, s.e_ref / s.n, energy / s.n)))
            if keep_parity:
                parity_e.append((s.index, s.is_train,
                                 self.units.energy_per_atom_phys(s.e_ref / s.n),
                                 self.units.energy_per_atom_phys(energy / s.n)))
            if use_f:
                fn = res["forces"][:s.n] * inv_cl
                df = s.f_ref - fn
                facc = sums[("force", s.is_train)]
                facc += ((df * df).sum(), np.abs(df).sum(), df.size)
                if s.is_train:
                    f_err.append(np.abs(df).ravel())
                if write_forces:
                    txt = "".join("%10d %10d %16.8E %16.8E\n" % (s.index, a, r, q)
                                  for a, r, q in zip(np.repeat(np.arange(s.n), 3),
                                                     s.f_ref.ravel().tolist(),
                                                     fn.ravel().tolist()))
                    flines[s.is_train].append((s.index, txt))
                if keep_parity:
                    parity_f.append((s.index, s.is_train, self.units.force_phys(s.f_ref),
                                     self.units.force_phys(fn)))
            if nstats is not None:
                Gs = res["Gs"]
                for e in range(self.n_el):
                    mask = elem == e
                    if not mask.any():
                        continue
                    gs = Gs[mask][:, :self.sf.nsf[e]]
                    _, xs = self.nets.forward(e, gs, preact=True)
                    vals = np.concatenate([gs] + xs, axis=1)
                    st = nstats[e]
                    st[0] += len(vals)
                    st[1] = np.minimum(st[1], vals.min(axis=0))
                    st[2] = np.maximum(st[2], vals.max(axis=0))
                    st[3] += vals.sum(axis=0)
                    st[4] += (vals * vals).sum(axis=0)
        # candidate errors for SM_SORT (order = candidate order)
        self.cands["energy"].errors = np.array(e_err)
        if use_f:
            self.cands["force"].errors = np.concatenate(f_err) if f_err else np.zeros(0)
        # global metrics
        keys = [("energy", True), ("energy", False)] + ([("force", True), ("force", False)]
                                                          if use_f else [])
        tot = c.allsum(np.concatenate([sums[k] for k in keys]))
        errors = {}
        o = 0
        for p in self.props:
            errors[p] = {}
            for is_train in (True, False):
                n = 5 if p == "energy" else 3
                errors[p]["train" if is_train else "test"] = _metrics(tot[o:o + n], p)
                o += n
        self.errors = errors
        if write_points:
            self._write_gathered(plines, "points", epoch, out.points_header())
        if write_forces:
            self._write_gathered(flines, "forces", epoch, out.forces_header())
        if nstats is not None:
            self._write_neuron_stats(nstats, epoch)
        if keep_parity:
            self.parity_local = (parity_e, parity_f)

    def _write_gathered(self, lines, middle, epoch, header):
        allv = self.comm.gather(lines)
        if self.comm.rank != 0:
            return
        for is_train, name in ((True, "train"), (False, "test")):
            items = sorted((it for part in allv for it in part[is_train]),
                           key=lambda t: t[0])
            path = self.output_dir / f"{name}{middle}.{epoch:06d}.out"
            out.write_text(path, header + [t for _, t in items])

    def _write_neuron_stats(self, nstats, epoch):
        c = self.comm
        merged = []
        for e in range(self.n_el):
            cnt, mn, mx, sm, s2 = nstats[e]
            cnt = c.allsum(cnt.astype(float))
            sm = c.allsum(sm)
            s2 = c.allsum(s2)
            mn_all = c.allgather(mn)
            mx_all = c.allgather(mx)
            merged.append((cnt, np.min(mn_all, axis=0), np.max(mx_all, axis=0), sm, s2))
        if c.rank == 0:
            out.write_text(self.output_dir / f"neuron-stats.short.{epoch:06d}.out",
                           out.neuron_stats_header() + out.neuron_stats_lines(merged))

    # ================================================================= update
    def _candidate_terms(self, p, k):
        """(prediction, grads per element, struct, atom, comp) of candidate k."""
        key = self.cands[p].keys[k]
        s = self.structures[int(key[0])]
        if p == "energy":
            sfe = self.sf.get(s, derivatives=False)
            t0 = time.perf_counter()
            pred, grads = energy_terms(self.nets, sfe)
            self._t_jac += time.perf_counter() - t0
            return pred, grads, s, -1, -1
        a, comp = int(key[1]), int(key[2])
        sfe = self.sf.get(s, derivatives=True)
        t0 = time.perf_counter()
        pred, grads = force_terms(self.nets, sfe, s.elem, a, comp, self.scale,
                                  1.0 / self.units.conv_length, self.sf.nb_sfs)
        self._t_jac += time.perf_counter() - t0
        return pred, grads, s, a, comp

    def _ratio(self, p, s, a, comp, pred):
        tr = self.errors[p]["train"]
        if p == "energy":
            ref = s.e_ref
            denom = s.n * tr["RMSEpa"]
        else:
            ref = s.f_ref[a, comp]
            denom = tr["RMSE"]
        err = abs(ref - pred)
        return err / denom if denom > 0 else math.inf, ref - pred

    def update(self, p):
        """One update of property ``p`` (collective)."""
        cfg, c = self.cfg, self.comm
        tm = self.timers
        t_start = time.perf_counter()
        sf0 = self.sf.time
        self._t_jac = 0.0
        plan, cand = self.plans[p], self.cands[p]
        pcfg = cfg.properties[p]
        mode = self.modes[p]
        batch = plan.per_update
        m_loc = self.rows[p][c.rank]
        width = self.n_w_total + self.n_updaters
        buf = np.zeros((m_loc, width))
        logrows = []
        for b in range(batch):
            trials = pcfg.trials if mode == SM_THRESHOLD else 1
            best = None
            chosen = None
            il = 0
            for il in range(trials):
                k = cand.next()
                pred, grads, s, a, comp = self._candidate_terms(p, k)
                ratio, xi = self._ratio(p, s, a, comp, pred)
                if mode != SM_THRESHOLD or ratio > pcfg.threshold:
                    chosen = (k, pred, grads, s, a, comp, ratio, xi)
                    break
                if best is None or ratio > best[6]:
                    best = (k, pred, grads, s, a, comp, ratio, xi)
            else:
                if mode == SM_THRESHOLD:
                    il = trials
                    chosen = best
            k, pred, grads, s, a, comp, ratio, xi = chosen
            row = b if cfg.jacobian_mode == 2 else 0
            fw = cfg.force_weight if p == "force" else 1.0
            target = buf[row]
            for e, g in enumerate(grads):
                if g is not None:
                    target[self.offsets_el[e]:self.offsets_el[e + 1]] += fw * g
            if self.n_updaters == 1:
                target[self.n_w_total] += fw * xi
            else:
                if p == "energy":
                    frac = s.n_per_elem / s.n
                else:
                    nn = s.nn_per_elem[a]
                    tot = nn.sum()
                    frac = nn / tot if tot > 0 else np.zeros(self.n_el)
                target[self.n_w_total:] += fw * xi * frac
            if cfg.write_trainlog:
                logrows.append((c.rank, il + 1, ratio, s.index, s.local, a, comp))
        t_err = time.perf_counter()
        tm[p + "_sf"] = tm.get(p + "_sf", 0.0) + (self.sf.time - sf0)
        tm[p + "_jac"] = tm.get(p + "_jac", 0.0) + self._t_jac
        # communication: packed rows + errors of all ranks
        if cfg.jacobian_mode == 0:
            G = c.allsum(buf)
        else:
            G = c.allgather_rows(buf, self.rows[p])
        t_com = time.perf_counter()
        for u, (lo, hi) in enumerate(self.updater_cols):
            H = G[:, lo:hi].T
            xi_u = G[:, self.n_w_total + u].copy()
            self.updaters[u].update(self.state[u], H, xi_u)
        self.nets.push()
        self.count_updates += 1
        t_upd = time.perf_counter()
        if cfg.write_trainlog:
            rows = c.gather(logrows)
            if c.rank == 0 and self._trainlog is not None:
                kind = "E" if p == "energy" else "F"
                for part in rows:
                    for (proc, tl, ratio, isg, isl, a, comp) in part:
                        if kind == "E":
                            self._trainlog.write(out.trainlog_line(
                                "E", self.epoch, self.count_updates, proc, tl, ratio, isg,
                                isl))
                        else:
                            self._trainlog.write(out.trainlog_line(
                                "F", self.epoch, self.count_updates, proc, tl, ratio, isg,
                                isl, a, comp))
        t_end = time.perf_counter()
        for name, dt in ((p + "_err", t_err - t_start), (p + "_com", t_com - t_err),
                         (p + "_upd", t_upd - t_com), (p + "_log", t_end - t_upd),
                         (p, t_end - t_start)):
            tm[name] = tm.get(name, 0.0) + dt
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

    # ============================================================ checkpoints
    def _state(self, phase, schedule=None, position=0):
        cands = {p: {"order": self.cands[p].order.copy(), "pos": self.cands[p].pos,
                     "errors": self.cands[p].errors.copy()} for p in self.props}
        ups = []
        for u in self.updaters:
            st = u.state_dict()
            ups.append(st)
        return {
            "phase": phase, "epoch": self.epoch, "count_updates": self.count_updates,
            "units": list(self.units.as_tuple()),
            "weights_el": [np.array(v) for v in self.views],
            "updaters": ups, "streams": self.streams.state(), "candidates": cands,
            "modes": {p: int(self.modes[p]) for p in self.props},
            "errors": self.errors, "history": self.history,
            "schedule": (np.zeros(0, dtype=np.int64) if schedule is None
                         else np.asarray(schedule, dtype=np.int64)),
            "position": int(position),
            "counts": {p: int(self.counts.get(p, 0)) for p in self.props},
            "timers": dict(self.timers), "epoch_t0_elapsed": float(
                time.perf_counter() - self._epoch_t0) if phase == "mid" else 0.0,
            "n_structures": self.n_structures, "data_hash": self._data_hash(),
        }

    def save_checkpoint(self, phase, schedule=None, position=0):
        tl = getattr(self, "_trainlog", None)
        if tl is not None:
            tl.flush()
        if self.checkpoint_dir is None:
            return
        tag = f"{self.epoch:06d}-{self.count_updates:010d}"
        save_checkpoint(self.checkpoint_dir, self.comm, tag,
                        self._state(phase, schedule, position),
                        {"epoch": self.epoch, "phase": phase,
                         "count_updates": self.count_updates})

    def _restore(self):
        st = self.ckpt
        for u, ust in zip(self.updaters, st["updaters"]):
            u.load_state_dict(ust)
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

    # =========================================================== output files
    def _open_outputs(self):
        c = self.comm
        if c.rank == 0:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            mode = "a" if self.restart else "w"
            self._log_file = open(self.output_dir / "nnp-train.log.0000", mode)
            for text in self._pending_log:
                self._log_file.write(text)
            self._pending_log = []
            if self.cfg.write_trainlog:
                path = self.output_dir / "train-log.out"
                if self.restart and path.exists():
                    self._truncate_trainlog(path)
                    self._trainlog = open(path, "a")
                else:
                    self._trainlog = open(path, "w")
                    self._trainlog.writelines(out.trainlog_header())
        c.barrier()

    def _truncate_trainlog(self, path):
        """Drop lines of updates after the checkpoint (count > its count_updates)."""
        last = int(self.ckpt["count_updates"])
        keep = []
        with open(path) as f:
            for line in f:
                tok = line.split()
                if line.startswith("#") or len(tok) < 3 or int(tok[2]) <= last:
                    keep.append(line)
        out.write_text(path, keep)

    def _write_sets(self):
        """train.data / test.data (rank 0 streams input.data again)."""
        if self.comm.rank != 0:
            return
        tr_path = self.output_dir / "train.data"
        te_path = self.output_dir / "test.data"
        tmp_tr = tr_path.with_name(".train.data.tmp")
        tmp_te = te_path.with_name(".test.data.tmp")
        # surrogateescape: comments with non-UTF-8 bytes are copied byte for byte
        with open(tmp_tr, "w", encoding="utf-8", errors="surrogateescape") as ftr, \
                open(tmp_te, "w", encoding="utf-8", errors="surrogateescape") as fte:
            for k, atoms in enumerate(n2p2.iter_data(self.data_path, self.elements)):
                n2p2.write_data(ftr if self.is_train[k] else fte, atoms)
        os.replace(tmp_tr, tr_path)
        os.replace(tmp_te, te_path)

    def _write_epoch_files(self, epoch):
        c = self.comm
        if c.rank != 0:
            return
        if self.cfg.write_weights.due(epoch):
            for e, el in enumerate(self.elements):
                z = atomic_numbers[el]
                n2p2.write_weights(self.output_dir / f"weights.{z:03d}.{epoch:06d}.out",
                                   self.views[e], self.settings.layer_sizes(el))

    def _status_lines(self, epoch):
        # status() of the Kalman filter is collective
        return [u.status_line(epoch) for u in self.updaters]

    def _write_histories(self):
        if self.comm.rank != 0:
            return
        norm = self.units.normalized
        out.write_text(self.output_dir / "learning-curve.out",
                       out.learning_curve_header(self.props, norm) + self.history["curve"])
        for u, lines in enumerate(self.history["updater"]):
            if self.cfg.update_strategy == 0:
                name = "updater.000.out"
            else:
                name = "updater.%03d.out" % atomic_numbers[self.elements[u]]
            out.write_text(self.output_dir / name, self.updaters[u].status_header() + lines)
        if self.history["timing"]:
            out.write_text(self.output_dir / "timing.out",
                           out.timing_header(self.props) + self.history["timing"])

    # ================================================================== loop
    def _epoch_end(self, epoch, t_loop, t_train, t_error):
        """Outputs after the error evaluation of ``epoch`` (rank 0 files)."""
        status = self._status_lines(epoch)
        self.history["curve"].append(out.learning_curve_line(epoch, self.props, self.errors,
                                                             self.units))
        for u, line in enumerate(status):
            self.history["updater"][u].append(line)
        self.history["total_time"] += t_loop
        t = {"loop": t_loop, "train": t_train, "error": t_error,
             "total": self.history["total_time"]}
        for p in self.props:
            for sub in ("", "_err", "_com", "_upd", "_log"):
                t[p + sub] = self.timers.get(p + sub, 0.0)
        if epoch > 0:
            self.history["timing"].append(out.timing_line(epoch, t, self.props))
        self.history.setdefault("timers", []).append(
            dict({k: float(v) for k, v in self.timers.items()}, epoch=epoch, loop=t_loop,
                 train=t_train, error=t_error))
        self._write_epoch_files(epoch)
        self._write_histories()
        for line in out.log_epoch_lines(epoch, self.props, self.counts, self.errors,
                                        self.units, self.cfg, t):
            self.log(line)
        return t

    def _progress_line(self, epoch, t):
        conv = {"energy": self.units.energy_metric_phys,
                "force": self.units.force_metric_phys}
        parts = [f"hpcnnp train: epoch {epoch:4d}/{self.cfg.epochs}"]
        for p in self.props:
            dm = self.cfg.display_metric(p)
            parts.append(f"{p[0].upper()} {dm} train {conv[p](self.errors[p]['train'][dm]):.4E}"
                         f" test {conv[p](self.errors[p]['test'][dm]):.4E}")
        done = [float(line.split()[5]) for line in self.history["timing"]]
        if done:
            per = sum(done) / len(done)
            parts.append(f"{per:.2f} s/epoch")
            parts.append(f"ETA {_hms(per * (self.cfg.epochs - epoch))}")
        self._progress(" | ".join(parts))

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
            return self._run(t_run)

    def _run(self, t_run):
        c, cfg = self.comm, self.cfg
        self._create_updaters_and_report()
        self._open_outputs()
        self._install_sigterm()
        self.counts = {p: 0 for p in self.props}
        phase, schedule, position = "start", None, 0
        if self.restart:
            phase, schedule, position = self._restore()
            self.log(f"\n*** RESTART from checkpoint: epoch {self.epoch}, update "
                     f"{self.count_updates}, phase {phase} ***\n")
            self._write_histories()
            if self.cfg.write_trainlog and c.rank == 0:
                self._trainlog.flush()
        else:
            self._write_sets()
        self.log("*** TRAINING LOOP " + "*" * 61 + "\n")
        for line in out.log_header_lines(self.props, cfg):
            self.log(line)
        if phase == "start":
            self._epoch_t0 = time.perf_counter()
            t0 = time.perf_counter()
            self.evaluate(0, write_points=cfg.properties["energy"].write.due(0),
                          write_forces=("force" in self.props
                                        and cfg.properties["force"].write.due(0)),
                          neuron_stats=cfg.write_neuronstats.due(0),
                          keep_parity=cfg.epochs == 0)
            t_err = time.perf_counter() - t0
            t = self._epoch_end(0, time.perf_counter() - self._epoch_t0, 0.0, t_err)
            self._progress_line(0, t)
            self.save_checkpoint("end")
            phase = "end"
        stopping = False
        while True:
            if phase == "end":
                if self.epoch >= cfg.epochs:
                    break
                if self._stop_requested():           # collective: same on all ranks
                    stopping = True
                    break
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
                schedule = epoch_schedule([self.plans[p].n_updates for p in self.props],
                                          self.streams.schedule)
                position = 0
                t_train_prev = 0.0
            else:          # mid-epoch restart
                self._epoch_t0 = time.perf_counter() - float(self.ckpt.get(
                    "epoch_t0_elapsed", 0.0))
                t_train_prev = sum(self.timers.get(p, 0.0) for p in self.props)
            t_train0 = time.perf_counter()
            while position < len(schedule):
                p = self.props[int(schedule[position])]
                self.update(p)
                self.counts[p] += 1
                position += 1
                if self._stop_requested():
                    self.save_checkpoint("mid", schedule, position)
                    what = ("checkpoint written" if self.checkpoint_dir is not None
                            else "checkpoints are off (--no-checkpoint), nothing saved")
                    self.log(f"SIGTERM: {what} after update {self.count_updates}"
                             f" (epoch {self.epoch}, {position}/{len(schedule)}); exiting.")
                    self._close()
                    raise TrainingInterrupted()
            t_train = time.perf_counter() - t_train0 + t_train_prev
            t0 = time.perf_counter()
            last = self.epoch == cfg.epochs
            self.evaluate(self.epoch,
                          write_points=cfg.properties["energy"].write.due(self.epoch),
                          write_forces=("force" in self.props
                                        and cfg.properties["force"].write.due(self.epoch)),
                          neuron_stats=cfg.write_neuronstats.due(self.epoch),
                          keep_parity=last)
            t_err = time.perf_counter() - t0
            t = self._epoch_end(self.epoch, time.perf_counter() - self._epoch_t0, t_train,
                                t_err)
            self._progress_line(self.epoch, t)
            phase = "end"
            self.save_checkpoint("end")
        if stopping:
            self.log(f"SIGTERM: stopping after epoch {self.epoch} (checkpoint written).")
            self._close()
            raise TrainingInterrupted()
        if not hasattr(self, "parity_local"):
            self.evaluate(self.epoch, keep_parity=True)
        summary = self._finish(time.perf_counter() - t_run)
        self._close()
        return summary

    def _create_updaters_and_report(self):
        c, cfg = self.comm, self.cfg
        mem = self._memory_estimate()
        mems = c.allgather(mem)
        self._create_updaters()
        if self.restart:
            pass
        self.log("*** SETUP: TRAINING " + "*" * 59 + "\n")
        for w in cfg.warnings + self.settings.warnings:
            self.log(w)
        self.log(f"Settings file      : {self.settings_path}")
        self.log(f"Data file          : {self.data_path} ({self.n_structures} structures)")
        self.log(f"Scaling file       : {self.scaling_path}")
        self.log(f"MPI ranks          : {c.size}")
        self.log("Elements           : " + " ".join(f"{e}:{el}" for e, el in
                                                     enumerate(self.elements)))
        self.log("Random numbers     : numpy PCG64 streams from SeedSequence(random_seed "
                 f"= {cfg.random_seed}) (n2p2's GSL streams cannot be reproduced)")
        per_rank = " ".join(str(int((self.owner == r).sum())) for r in range(c.size))
        self.log(f"Structures per rank: {per_rank}")
        for p in self.props:
            n_tr, n_te = self.n_train[p], self.n_test[p]
            self.log(f'Training/test split of data set for property "{p}":')
            self.log(f"- Total    patterns : {n_tr + n_te}")
            self.log(f"- Training patterns : {n_tr}")
            self.log(f"- Test     patterns : {n_te}")
            self.log("- Test set fraction : %f" % (n_te / max(1, n_tr + n_te)))
        if self.tagged:
            self.log(f"{self.tagged} structures have a set= tag in {self.data_path}")
        if self.restart:
            self.log("Weights and filter state: from the checkpoint")
        elif cfg.use_old_weights:
            self.log("Initial weights: read from weights.%03d.data")
        else:
            self.log("Initial weights selected randomly in interval [%f, %f)."
                     % (cfg.weights_min, cfg.weights_max))
            self.log("Weights modified according to Nguyen Widrow scheme." if cfg.nguyen_widrow
                     else "Weights modified accoring to Glorot Bengio scheme.\n"
                          "Biases set to zero.")
        u = self.units
        if u.normalized:
            self.log("Data set normalization: mean_energy %.16E conv_energy %.16E "
                     "conv_length %.16E" % u.as_tuple())
        self.log(f"Forces will be used for training (force_weight {cfg.force_weight:10.2E})."
                 if cfg.use_forces else "Only energies will be used for training.")
        strategy = "combined" if cfg.update_strategy == 0 else "per element"
        self.log(f"Updater: {'Kalman filter' if cfg.updater_type == 1 else 'gradient descent'}"
                 f", jacobian_mode {cfg.jacobian_mode}, update_strategy "
                 f"{cfg.update_strategy} ({strategy}"
                 f", {self.n_updaters} updater(s)), parallel_mode {cfg.parallel_mode} "
                 "(hpcnnp: all ranks update; P "
                 + ("distributed over the ranks)" if self.distributed_kalman and c.size > 1
                    else "replicated)"))
        self.log(f"Total fit parameters: {self.n_w_total} "
                 f"({' + '.join(str(n) for n in self.n_w_el)})")
        for p in self.props:
            pc = cfg.properties[p]
            self.log(f'Selection mode for property "{p}": '
                     + ", ".join(f"from epoch {ep}: {SELECTION_NAMES[m]} ({m})"
                                 for ep, m in sorted(pc.selection.items()))
                     + (f"; threshold {pc.threshold:.2f} * RMSE, {pc.trials} trials"
                        if SM_THRESHOLD in pc.selection.values() else ""))
        for p in self.props:
            pl = self.plans[p]
            self.log(f'Update plan for property "{p}":')
            self.log("- Per-task batch size                          : %d" % pl.batch)
            self.log("- Fraction of patterns used per epoch          : %.6f" % pl.fraction)
            self.log("- Updates per epoch                            : %d" % pl.n_updates)
            self.log("- Patterns used per update (rank %3d / global) : %10d / %d"
                     % (c.rank, pl.per_update, sum(self.per_update_all[p])))
        self.log("Symmetry functions: " + (
            "memorized (memorize_symfunc_results)" if cfg.memorize else
            f"recomputed, at most {self.sf.capacity} structures cached"))
        self.log("Memory estimate per rank (MiB; max over ranks):")
        for key, label in (("sf_values", "SF values"), ("sf_derivatives", "SF derivatives"),
                           ("kalman_P", "Kalman P (block)" if cfg.updater_type == 1
                            else "updater state"), ("jacobian", "Jacobian buffers")):
            self.log("  %-18s: %10.1f" % (label, max(m[key] for m in mems) / _MIB))
        self.log("  %-18s: %10.1f" % ("total", max(sum(m.values()) for m in mems) / _MIB))
        self.log(f"Checkpoints: {self.checkpoint_dir if self.checkpoint_dir else 'off'}")
        self.log("*" * 79 + "\n")

    def _finish(self, elapsed):
        """Final weights, plots, potential files; returns the summary (all ranks)."""
        c, cfg = self.comm, self.cfg
        parity_e, parity_f = self.parity_local
        allp = c.gather((parity_e, parity_f))
        files = []
        if c.rank == 0:
            for e, el in enumerate(self.elements):
                path = self.output_dir / n2p2.weights_filename(el)
                if path.exists() and not path.with_name(path.name + ".bak").exists() and \
                        self.cfg.use_old_weights and \
                        path.resolve().parent == self.settings_path.resolve().parent:
                    shutil.copyfile(path, path.with_name(path.name + ".bak"))
                n2p2.write_weights(path, self.views[e], self.settings.layer_sizes(el))
                files.append(path)
            for src in (self.settings_path, self.scaling_path):
                if src.is_file():
                    dst = self.output_dir / src.name
                    if not dst.exists() or not os.path.samefile(src, dst):
                        shutil.copyfile(src, dst)
                        files.append(dst)
            if self.plots:
                ee = sorted((x for part in allp for x in part[0]), key=lambda t: t[0])
                ff = sorted((x for part in allp for x in part[1]), key=lambda t: t[0])
                parity = {"energy": (np.array([x[0] for x in ee]),
                                     np.array([x[1] for x in ee]),
                                     np.array([x[2] for x in ee]),
                                     np.array([x[3] for x in ee]))}
                if cfg.use_forces and ff:
                    si = np.concatenate([np.full(x[2].size, x[0]) for x in ff])
                    ai = np.concatenate([np.repeat(np.arange(len(x[2])), 3) for x in ff])
                    ci = np.concatenate([np.tile(np.arange(3), len(x[2])) for x in ff])
                    tr = np.concatenate([np.full(x[2].size, x[1]) for x in ff])
                    parity["force"] = (si, ai, ci, tr,
                                       np.concatenate([x[2].ravel() for x in ff]),
                                       np.concatenate([x[3].ravel() for x in ff]))
                curve = np.array([[float(v) for v in line.split()]
                                  for line in self.history["curve"]])
                names = out.learning_curve_names(self.props, self.units.normalized)
                files += out.make_plots(self.output_dir, curve, self.props, names, parity)
        peak = c.allgather(_peak_rss_bytes())
        summary = {"epochs": self.epoch, "updates": self.count_updates,
                   "errors": self.errors, "elapsed": elapsed, "peak_rss": peak,
                   "files": files, "units": self.units.as_tuple()}
        conv = {"energy": self.units.energy_metric_phys,
                "force": self.units.force_metric_phys}
        self.log(f"TIMING Training finished: {elapsed:.2f} seconds.")
        self.log("Final errors (physical units): " + "; ".join(
            f"{p} {self.cfg.display_metric(p)} train "
            f"{conv[p](self.errors[p]['train'][self.cfg.display_metric(p)]):.6E} test "
            f"{conv[p](self.errors[p]['test'][self.cfg.display_metric(p)]):.6E}"
            for p in self.props))
        if self.check_sync:
            self.log(f"Weights compared between the {c.size} ranks after "
                     f"{getattr(self, 'sync_checks', 0)} updates (--check-sync "
                     f"{self.check_sync}): bit-identical on all ranks.")
        self.log("Peak memory (RSS) per rank: " + " ".join(f"{b / _MIB:.0f} MiB" for b in peak))
        self.log("Final weights written to weights.ZZZ.data in " + str(self.output_dir))
        return summary

    def _close(self):
        if self.comm.rank == 0:
            if self._log_file is not None:
                self._log_file.close()
                self._log_file = None
            tl = getattr(self, "_trainlog", None)
            if tl is not None:
                tl.close()
                self._trainlog = None
        if getattr(self, "_old_handler", None) is not None:
            try:
                signal.signal(signal.SIGTERM, self._old_handler)
            except ValueError:
                pass
