"""``hpcnnp train``: fit an HDNNP with n2p2's training algorithm (nnp-train).

Run in a folder with ``input.nn``, ``input.data`` and ``scaling.data`` (n2p2's
layout), serially or with ``mpiexec -n N hpcnnp train``.  See
:mod:`hpcnnp.training.trainer` for the algorithm and the parallel scheme.
"""

from __future__ import annotations

import argparse
import errno
import os
import shutil
import subprocess
import sys
from pathlib import Path

from hpcnnp import mpi
from hpcnnp.commands._options import add_n2p2_files
from hpcnnp.errors import HpcnnpError, InputFileError
from hpcnnp.fileio import folder_lock, output_error

_EPILOG = """\
files written into --output-dir (n2p2's names and formats, n2p2-formats.md §12):
  nnp-train.log.0000              log (also on the screen): setup, ENERGY/FORCE/TIMING
                                  lines per epoch
  learning-curve.out              errors per epoch (13 columns; 25 with normalisation)
  updater.000.out                 Kalman filter / gradient descent status per epoch
                                  (update_strategy 1: updater.ZZZ.out per element Z)
  timing.out                      time per epoch and its split
  trainpoints/testpoints.NNNNNN.out, trainforces/testforces.NNNNNN.out
                                  (write_trainpoints / write_trainforces)
  weights.ZZZ.NNNNNN.out          (write_weights_epoch)
  neuron-stats.short.NNNNNN.out   (write_neuronstats)
  train-log.out                   (write_trainlog)
  train.data, test.data           the split data set
  weights.ZZZ.data                final weights (n2p2 writes only the epoch files);
                                  with input.nn and scaling.data copied beside them the
                                  output folder is a complete potential
  learning-curve.png/.csv, parity-energy.png/.csv, parity-forces.png/.csv
  checkpoint/                     restart files (every --checkpoint-every epochs, after the
                                  last one and on SIGTERM; one valid checkpoint: meta.json,
                                  per rank a state file and the stored triangle of P)

keywords of input.nn beyond n2p2's (n2p2 ignores them with a warning):
  kalman_decoupling none|element|layer
                                  decoupled Kalman filter: P block-diagonal per element
                                  network or per layer of each network (memory and work
                                  ~1/5 resp. ~1/6 of the global filter for 5 elements);
                                  the blocks share the innovation A (hpcnnp.training.
                                  decoupled); default none = n2p2's global filter

memory: before the filter is allocated every rank estimates its peak memory (printed in
the log); the run stops with one message when the ranks of a node need more than the
node has available (--no-memory-check to try anyway).  SF derivatives are recomputed per
update candidate (--cache-structures, --sf-cache-mb) unless memorize_symfunc_results.

the output folder is locked while training writes into it (a second hpcnnp train in
the same folder stops at once, naming the first); under MPI the ranks first compare
input.nn, input.data, scaling.data, the weights beside input.nn and the options, and
stop with an error naming the rank that differs.

examples:
  hpcnnp train
  mpiexec -n 2 hpcnnp train --output-dir run1
  mpiexec -n 2 hpcnnp train --output-dir run1 --restart     # after a kill / SIGTERM
  hpcnnp train --engine n2p2                                 # run n2p2's nnp-train
"""


def register(subparsers):
    """Add the ``train`` parser to the ``hpcnnp`` sub-command parsers."""
    p = subparsers.add_parser(
        "train",
        help="train an HDNNP with the (multi-stream) Kalman filter of n2p2's nnp-train",
        description="Train the networks of an n2p2 potential on input.data: Kalman\n"
        "filter (or gradient descent) with n2p2's update schedule, selection modes and\n"
        "output files; MPI-parallel (mpiexec -n N), checkpoint/restart.",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_n2p2_files(p, settings="settings file (default: input.nn); weights.ZZZ.data for "
                   "use_old_weights_short are read from its folder",
                   output_dir="folder for all output files (default: .)")
    p.add_argument("--scaling", default="scaling.data", metavar="FILE",
                   help="SF scaling statistics (default: scaling.data)")
    p.add_argument("--restart", action="store_true",
                   help="continue from the checkpoint (same inputs and number of ranks); "
                   "gives the same weights as an uninterrupted run")
    p.add_argument("--checkpoint", metavar="DIR", default=None,
                   help="checkpoint folder (default: OUTPUT_DIR/checkpoint)")
    p.add_argument("--no-checkpoint", action="store_true",
                   help="do not write checkpoints")
    p.add_argument("--checkpoint-every", type=int, default=1, metavar="N",
                   help="checkpoint every N epochs and after the last one (default 1; "
                   "the covariance P is written in the background, only its stored "
                   "triangle, one checkpoint is kept)")
    p.add_argument("--epochs", type=int, default=None, metavar="N",
                   help="override 'epochs' of the settings file")
    p.add_argument("--replicated-kalman", action="store_true",
                   help="every rank holds the full covariance P (default: P distributed "
                   "over the ranks by rows)")
    p.add_argument("--fold-every", type=int, default=16, metavar="N",
                   help="Kalman filter: fold deferred covariance corrections every N "
                   "updates (default 16; 1 = plain algorithm)")
    p.add_argument("--check-sync", type=int, default=0, metavar="N",
                   help="debug: every N updates check that all ranks hold bit-identical "
                   "weights (hash comparison; 0 = off)")
    p.add_argument("--cache-structures", type=int, default=2, metavar="N",
                   help="without memorize_symfunc_results: keep SFs and derivatives of "
                   "at most N structures (default 2)")
    p.add_argument("--sf-cache-mb", type=float, default=256, metavar="MIB",
                   help="without memorize_symfunc_results: SF/derivative cache limit in "
                   "MiB (default 256)")
    p.add_argument("--no-memory-check", action="store_true",
                   help="start even if the memory estimate exceeds the memory available "
                   "on the node")
    p.add_argument("--blas-threads", type=int, default=None, metavar="N",
                   help="BLAS threads per rank for the Kalman filter (default: 1 for "
                   "fewer than 4000 weights per updater, else cores/ranks; an explicit "
                   "OPENBLAS_NUM_THREADS/OMP_NUM_THREADS is respected)")
    p.add_argument("--no-plots", action="store_true",
                   help="do not write the PNG plots and their CSV files")
    p.add_argument("--quiet", "-q", action="store_true",
                   help="nothing on the screen except errors (the log file is written)")
    p.add_argument("--engine", choices=("hpcnnp", "n2p2"), default="hpcnnp",
                   help="n2p2: run n2p2's nnp-train (must be on PATH) on the same inputs "
                   "in OUTPUT_DIR and plot its learning curve")
    p.add_argument("--n2p2-ranks", type=int, default=1, metavar="N",
                   help="MPI ranks for --engine n2p2 (default 1)")
    p.set_defaults(func=run)
    return p


def run(args):
    """Execute ``hpcnnp train``; returns the exit code."""
    if args.engine == "n2p2":
        return run_n2p2(args)
    for name in ("fold_every", "cache_structures", "checkpoint_every"):
        if getattr(args, name) < 1:
            raise HpcnnpError(f"--{name.replace('_', '-')} must be >= 1")
    if args.blas_threads is not None and args.blas_threads < 1:
        raise HpcnnpError("--blas-threads must be >= 1")
    if args.check_sync < 0:
        raise HpcnnpError("--check-sync must be >= 0")
    if args.sf_cache_mb <= 0:
        raise HpcnnpError("--sf-cache-mb must be > 0")
    # imported here, not at the top: ``hpcnnp --help`` and the other sub-commands do
    # not pay for numpy/scipy/ASE/MPI start-up
    from hpcnnp.training.comm import get_comm

    comm = get_comm()
    return mpi.run_collectively(comm.comm, "hpcnnp train", _train, args, comm)


def _input_files(args):
    """The input files; a folder or a missing file is an error naming it."""
    files = {"--settings": Path(args.settings), "--data": Path(args.data),
             "--scaling": Path(args.scaling)}
    for option, path in files.items():
        if path.is_dir():
            raise InputFileError(path, None, f"is a folder, not a file (give the file, "
                                             f"e.g. {option} {path / path.name})"
                                 if option == "--data" else
                                 f"is a folder, not a file ({option} names a file)")
    return files


def _consistency_items(args, files):
    """What every MPI rank must agree on: inputs (content), weights, options."""
    items = mpi.options_items(args)
    items.update({option: mpi.FileDigest(str(path)) for option, path in files.items()})
    for path in sorted(files["--settings"].parent.glob("weights.*.data")):
        items[path.name] = mpi.FileDigest(str(path))
    return items


def _train(args, comm):
    from hpcnnp.training.trainer import EXIT_SIGTERM, Trainer, TrainingInterrupted

    files = _input_files(args)
    mpi.check_consistency(comm.comm, _consistency_items(args, files))
    with folder_lock(args.output_dir, "hpcnnp train", comm.comm):
        try:
            trainer = Trainer(settings=args.settings, data=args.data, scaling=args.scaling,
                              output_dir=args.output_dir, comm=comm, restart=args.restart,
                              checkpoint_dir=False if args.no_checkpoint else args.checkpoint,
                              distributed_kalman=not args.replicated_kalman,
                              check_sync=args.check_sync, epochs=args.epochs,
                              fold_every=args.fold_every, plots=not args.no_plots,
                              stream=None if args.quiet else sys.stdout,
                              cache_structures=args.cache_structures,
                              blas_threads=args.blas_threads,
                              checkpoint_every=args.checkpoint_every,
                              sf_cache_mb=args.sf_cache_mb,
                              memory_check=not args.no_memory_check)
            trainer.run()
        except TrainingInterrupted:
            return EXIT_SIGTERM
        except OSError as exc:
            raise _io_error(exc, args.output_dir) from None
    return 0


def _io_error(exc, output_dir):
    """One clear line for an OSError escaping the trainer (full disk, read-only ...)."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM):
        return output_error(exc.filename or output_dir, exc)
    return HpcnnpError(f"{exc.filename or output_dir}: {exc.strerror or exc}")


def run_n2p2(args):
    """``--engine n2p2``: run nnp-train on the same inputs, then plot its learning curve."""
    exe = shutil.which("nnp-train")
    if exe is None:
        raise HpcnnpError("--engine n2p2: n2p2 is not installed (nnp-train not found on "
                          "PATH); install n2p2 (https://github.com/CompPhysVienna/n2p2) "
                          "or use the default --engine hpcnnp")
    out_dir = Path(args.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for src, name in ((args.settings, "input.nn"), (args.data, "input.data"),
                      (args.scaling, "scaling.data")):
        src = Path(src)
        if not src.is_file():
            raise HpcnnpError(f"{src}: file not found")
        dst = out_dir / name
        if not (dst.exists() and os.path.samefile(src, dst)):
            shutil.copyfile(src, dst)
    cmd = [exe]
    if args.n2p2_ranks > 1:
        mpiexec = shutil.which("mpiexec") or str(Path(sys.executable).parent / "mpiexec")
        cmd = [mpiexec, "-n", str(args.n2p2_ranks), exe]
    proc = subprocess.run(cmd, cwd=out_dir)
    if proc.returncode != 0:
        raise HpcnnpError(f"nnp-train failed with exit code {proc.returncode} (see "
                          f"{out_dir}/nnp-train.log.0000)")
    curve = out_dir / "learning-curve.out"
    if not args.no_plots and curve.is_file():
        import numpy as np

        from hpcnnp.training.outputs import make_plots
        data = np.loadtxt(curve, comments="#", ndmin=2)
        props = ["energy"] + (["force"] if data.shape[1] in (13, 25) else [])
        names = [f"c{i + 1}" for i in range(data.shape[1])]
        make_plots(out_dir, data, props, names, None, title="n2p2 nnp-train")
    return 0


__all__ = ["register", "run"]
