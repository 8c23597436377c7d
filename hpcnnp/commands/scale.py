"""``hpcnnp scale``: symmetry-function statistics (scaling.data), like n2p2's nnp-scaling.

See :mod:`hpcnnp.descriptors.scaling` for the files, the statistics and the MPI
scheme (n2p2-formats.md §7, §13).
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings

from hpcnnp import mpi
from hpcnnp.commands._options import add_n2p2_files, add_progress_interval
from hpcnnp.descriptors import scaling
from hpcnnp.errors import HpcnnpError
from hpcnnp.fileio import folder_lock

_EPILOG = f"""\
files written into --output-dir (default: the current folder), each replaced
atomically after the whole data set has been processed (only MPI rank 0 writes):
  scaling.data          min max mean sigma of every raw SF (n2p2's format; sigma with n-1)
  sf.ZZZ.SSSS.histo     SF histograms (Z, 1-based sorted SF index), n2p2's format and
                        binning (NBINS bins of width (max-min)/(NBINS-1) from min);
                        none for SFs with min == max (a warning lists those)
  neighbors.histo       neighbour-count histogram (n2p2's 3 columns + one per element)
  neighbors.out         neighbours per atom: struct atom Z neigh neigh_El... (0-based)
  function.data         with --function-data: n2p2's RuNNer-style SF file
  {scaling.LOG_FILE:<21} the log printed on standard output

Pass 1 builds only neighbour lists: it checks every structure and prints the
neighbour statistics and the memory estimate of training with
memorize_symfunc_results BEFORE pass 2 computes the symmetry functions.
Progress lines go to standard error every --progress-interval seconds.

MPI: mpiexec -n P hpcnnp scale ... evaluates structure k on rank k % P (every rank
reads the file); min/max/histograms are reduced exactly, mean/sigma with Chan's
formula in rank order (agree with a serial run to a few ulp).  The ranks first
compare input.nn, input.data and the options (NBINS included) and stop with an error
naming the rank that differs.  The output folder is locked during the run.

examples:
  hpcnnp scale 500                       # ./input.nn + ./input.data -> ./scaling.data ...
  hpcnnp scale --settings pot/input.nn --data train.data --output-dir pot
  mpiexec -n 8 hpcnnp scale 500 --no-histograms
  hpcnnp scale --dry-run                 # only check the data + memory estimate
"""


def register(subparsers):
    """Add the ``scale`` parser to the ``hpcnnp`` sub-command parsers."""
    p = subparsers.add_parser(
        "scale",
        help="symmetry-function statistics scaling.data + histograms "
        "(n2p2's nnp-scaling)",
        description="Compute min, max, mean and sigma of every symmetry function over\n"
        "all atoms of an input.data (n2p2's nnp-scaling), with SF and neighbour\n"
        "histograms, neighbour statistics and a training memory estimate.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("nbins", nargs="?", default=str(scaling.DEFAULT_NBINS), metavar="NBINS",
                   help="number of SF histogram bins, >= 2 (n2p2's argument; "
                   f"default: {scaling.DEFAULT_NBINS})")
    add_n2p2_files(p, settings="n2p2 settings with the symmetry functions "
                   "(default: input.nn)")
    p.add_argument("--no-histograms", action="store_true",
                   help="do not write the sf.ZZZ.SSSS.histo files (saves the memory "
                   "for the SF values, see the log)")
    p.add_argument("--no-neighbors-out", action="store_true",
                   help="do not write neighbors.out (one line per atom)")
    p.add_argument("--function-data", action="store_true",
                   help="also write function.data (n2p2's RuNNer-style file of all SF "
                   "values, %%14.10f; large)")
    p.add_argument("--dry-run", action="store_true",
                   help="only pass 1: check all structures, print the neighbour "
                   "statistics and the memory estimate; write nothing")
    add_progress_interval(p, 10.0, "on stderr", zero="none")
    p.add_argument("--cache-limit", type=float, default=scaling.DEFAULT_CACHE_LIMIT / 2**20,
                   metavar="MIB",
                   help="MiB of SF values a rank keeps in memory for the histograms; "
                   "the rest goes to a temporary file (default: "
                   f"{scaling.DEFAULT_CACHE_LIMIT // 2**20})")
    p.add_argument("--spill-dir", metavar="DIR", default=None,
                   help="folder for those temporary files (default: $TMPDIR or /tmp)")
    p.add_argument("--quiet", "-q", action="store_true",
                   help="no log on standard output (the log file is still written)")
    p.set_defaults(func=run)
    return p


def _nbins(text):
    try:
        value = int(text)
    except (TypeError, ValueError):
        raise HpcnnpError(f"NBINS must be an integer >= 2, got {text!r}") from None
    if value < 2:
        raise HpcnnpError(f"NBINS must be an integer >= 2, got {value}")
    return value


def run(args):
    """Execute ``hpcnnp scale``; returns the exit code."""
    comm = mpi.world()
    return mpi.run_collectively(comm, "hpcnnp scale", _checked_run, args, comm)


def _checked_run(args, comm):
    mpi.check_consistency(comm, {**mpi.options_items(args),
                                 "--settings": mpi.FileDigest(args.settings),
                                 "--data": mpi.FileDigest(args.data)})
    rank = mpi.rank_size(comm)[0]
    if args.dry_run:
        return _run(args, comm, rank)
    with folder_lock(args.output_dir, "hpcnnp scale", comm):
        return _run(args, comm, rank)


def _run(args, comm, rank):
    nbins = _nbins(args.nbins)
    if args.cache_limit < 0:
        raise HpcnnpError("--cache-limit must be >= 0")
    out = sys.stdout

    def log(line):
        if not args.quiet:
            out.write(line + "\n")
            out.flush()

    def progress(line):
        sys.stderr.write(line + "\n")
        sys.stderr.flush()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", scaling.ScalingWarning)
        result = scaling.run_scaling(
            args.settings, args.data, args.output_dir, nbins=nbins, comm=comm,
            dry_run=args.dry_run, histograms=not args.no_histograms,
            neighbors_out=not args.no_neighbors_out, function_data=args.function_data,
            cache_limit=int(args.cache_limit * 2**20), spill_dir=args.spill_dir,
            progress_interval=args.progress_interval, log=log, progress=progress)
    if rank == 0:
        for w in caught:
            if issubclass(w.category, scaling.ScalingWarning):
                print(f"hpcnnp scale: warning: {w.message}", file=sys.stderr)
        if args.dry_run:
            print("hpcnnp scale: dry run: nothing written", file=sys.stderr)
        else:
            print(f"hpcnnp scale: {result.n_structures} structures, "
                  f"{sum(result.n_atoms.values())} atoms -> "
                  f"{os.path.join(args.output_dir, scaling.SCALING_FILE)}", file=sys.stderr)
    return 0


__all__ = ["register", "run"]
