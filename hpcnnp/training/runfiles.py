"""The files of a training run in its output folder (rank 0 writes them).

n2p2's names and formats (n2p2-formats.md §12, :mod:`~hpcnnp.training.outputs`):
the log ``nnp-train.log.0000`` (also on the screen), ``train-log.out``,
``train.data``/``test.data``, ``weights.ZZZ.NNNNNN.out``, ``learning-curve.out``,
``updater.*.out``, ``timing.out``; hpcnnp's additions: the final
``weights.ZZZ.data`` with copies of input.nn and scaling.data (a complete
potential) and the plots.  Nothing is written before every input is known to be
good: log lines wait in memory until :meth:`RunFiles.open`.
"""

from __future__ import annotations

import os
import shutil

import numpy as np
from ase.data import atomic_numbers

from hpcnnp.fileio import AtomicFiles
from hpcnnp.io import n2p2
from hpcnnp.training import outputs as out

__all__ = ["RunFiles"]


class RunFiles:
    """Output files of trainer ``tr`` (see the module docstring)."""

    def __init__(self, tr, stream):
        self.tr = tr
        self.rank0 = tr.comm.rank == 0
        self.stream = stream if self.rank0 else None
        self.log_file = None
        self.trainlog = None
        self._pending = []

    # ------------------------------------------------------------------- log
    def log(self, text=""):
        """Rank 0: log file + screen."""
        if not self.rank0:
            return
        if not text.endswith("\n"):
            text += "\n"
        if self.log_file is not None:
            self.log_file.write(text)
            self.log_file.flush()
        else:
            self._pending.append(text)
        if self.stream is not None:
            self.stream.write(text)
            self.stream.flush()

    def progress(self, text):
        if self.stream is not None:
            self.stream.write(text + "\n")
            self.stream.flush()

    def open(self, restart, last_update=None):
        """Create the folder, the log (appended on restart) and train-log.out
        (truncated to ``last_update`` on restart); collective."""
        tr = self.tr
        if self.rank0:
            tr.output_dir.mkdir(parents=True, exist_ok=True)
            self.log_file = open(tr.output_dir / "nnp-train.log.0000", "a" if restart else "w")
            self.log_file.writelines(self._pending)
            self._pending = []
            if tr.cfg.write_trainlog:
                path = tr.output_dir / "train-log.out"
                if restart and path.exists():
                    _truncate_trainlog(path, last_update)
                    self.trainlog = open(path, "a")
                else:
                    self.trainlog = open(path, "w")
                    self.trainlog.writelines(out.trainlog_header())
        tr.comm.barrier()

    def flush_trainlog(self):
        if self.trainlog is not None:
            self.trainlog.flush()

    def close(self):
        for f in (self.log_file, self.trainlog):
            if f is not None:
                f.close()
        self.log_file = self.trainlog = None

    # ------------------------------------------------------------ data files
    def write_sets(self):
        """train.data / test.data (rank 0 streams input.data again)."""
        tr = self.tr
        if not self.rank0:
            return
        with AtomicFiles(tr.output_dir) as files:
            # surrogateescape: comments with non-UTF-8 bytes are copied byte for byte
            ftr, fte = (files.open(name, errors="surrogateescape")
                        for name in ("train.data", "test.data"))
            for k, atoms in enumerate(n2p2.iter_data(tr.data_path, tr.elements)):
                n2p2.write_data(ftr if tr.is_train[k] else fte, atoms)

    def write_epoch_weights(self, epoch):
        tr = self.tr
        if not self.rank0 or not tr.cfg.write_weights.due(epoch):
            return
        for e, el in enumerate(tr.elements):
            z = atomic_numbers[el]
            n2p2.write_weights(tr.output_dir / f"weights.{z:03d}.{epoch:06d}.out",
                               tr.views[e], tr.settings.layer_sizes(el))

    def write_histories(self):
        """learning-curve.out, updater.*.out and timing.out from the run's history."""
        tr = self.tr
        if not self.rank0:
            return
        h = tr.history
        out.write_text(tr.output_dir / "learning-curve.out",
                       out.learning_curve_header(tr.props, tr.units.normalized) + h["curve"])
        for u, lines in enumerate(h["updater"]):
            name = ("updater.000.out" if tr.cfg.update_strategy == 0 else
                    "updater.%03d.out" % atomic_numbers[tr.elements[u]])
            out.write_text(tr.output_dir / name, tr.updaters[u].status_header() + lines)
        if h["timing"]:
            out.write_text(tr.output_dir / "timing.out",
                           out.timing_header(tr.props) + h["timing"])

    def write_potential(self):
        """weights.ZZZ.data and copies of input.nn / scaling.data (rank 0)."""
        tr = self.tr
        files = []
        for e, el in enumerate(tr.elements):
            path = tr.output_dir / n2p2.weights_filename(el)
            if path.exists() and not path.with_name(path.name + ".bak").exists() and \
                    tr.cfg.use_old_weights and \
                    path.resolve().parent == tr.settings_path.resolve().parent:
                shutil.copyfile(path, path.with_name(path.name + ".bak"))
            n2p2.write_weights(path, tr.views[e], tr.settings.layer_sizes(el))
            files.append(path)
        for src in (tr.settings_path, tr.scaling_path):
            if src.is_file():
                dst = tr.output_dir / src.name
                if not dst.exists() or not os.path.samefile(src, dst):
                    shutil.copyfile(src, dst)
                    files.append(dst)
        return files

    def plots(self, allp):
        """learning-curve and parity plots (PNG + CSV) from the gathered parity data."""
        tr = self.tr
        ee = sorted((x for part in allp for x in part[0]), key=lambda t: t[0])
        ff = sorted((x for part in allp for x in part[1]), key=lambda t: t[0])
        parity = {"energy": tuple(np.array([x[k] for x in ee]) for k in range(4))}
        if tr.cfg.use_forces and ff:
            parity["force"] = (
                np.concatenate([np.full(x[2].size, x[0]) for x in ff]),
                np.concatenate([np.repeat(np.arange(len(x[2])), 3) for x in ff]),
                np.concatenate([np.tile(np.arange(3), len(x[2])) for x in ff]),
                np.concatenate([np.full(x[2].size, x[1]) for x in ff]),
                np.concatenate([x[2].ravel() for x in ff]),
                np.concatenate([x[3].ravel() for x in ff]))
        curve = np.array([[float(v) for v in line.split()] for line in tr.history["curve"]])
        names = out.learning_curve_names(tr.props, tr.units.normalized)
        return out.make_plots(tr.output_dir, curve, tr.props, names, parity)


def _truncate_trainlog(path, last):
    """Drop lines of updates after the checkpoint (count > ``last``)."""
    keep = []
    with open(path) as f:
        for line in f:
            tok = line.split()
            if line.startswith("#") or len(tok) < 3 or int(tok[2]) <= last:
                keep.append(line)
    out.write_text(path, keep)
