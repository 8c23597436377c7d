"""``hpcnnp predict``: evaluate a data set, writing n2p2's nnp-dataset/nnp-predict files.

See :mod:`hpcnnp.predict` for the library function and the exact file conventions
(n2p2-formats.md §1, §9, §13).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hpcnnp import mpi
from hpcnnp.commands._options import add_n2p2_files
from hpcnnp.errors import HpcnnpError, InputFileError
from hpcnnp.io.n2p2 import count_structures
from hpcnnp.potential import Potential
from hpcnnp.predict import predict_dataset
from hpcnnp.progress import Progress

_EPILOG = """\
files written into --output-dir (each replaced atomically at the end of the run):
  energy.comp        index N Eref_phys Ennp_phys [Eref_int Ennp_int]  (nnp-dataset)
  forces.comp        index_s index_a Fref_phys Fnnp_phys [Fref_int Fnnp_int], with forces
  output.data        the structures with NNP energy and forces (n2p2's format, periodic
                     positions wrapped into the cell)
  extrapolation.csv  structure,atom,element,sf,type,value,min,max (indices as in n2p2's
                     warning lines: structure and atom 0-based, SF 1-based)
  with --per-structure (nnp-predict's formats, one line per structure/atom, conf =
  1-based structure index):
  energy.out  nnatoms.out  nnforces.out

MPI: mpiexec -n P hpcnnp predict ... evaluates structure k on rank k % P; rank 0
writes every file (identical to a serial run's).  The ranks first compare the
potential files, the data and the options and stop with an error naming the rank
that differs.  The output folder is locked while the run writes into it.

examples:
  hpcnnp predict                                  # potential and input.data in .
  hpcnnp predict --potential pot --data test.data --output-dir pred --per-structure
  mpiexec -n 4 hpcnnp predict --data big.data --output-dir pred
"""


def register(subparsers):
    """Add the ``predict`` parser to the ``hpcnnp`` sub-command parsers."""
    p = subparsers.add_parser(
        "predict",
        help="predict energies/forces of all structures of an input.data "
        "(n2p2's nnp-dataset + nnp-predict)",
        description="Evaluate every structure of an n2p2 input.data with an HDNNP\n"
        "(streamed, one structure in memory at a time) and write n2p2's output files,\n"
        "the error metrics vs the reference energies/forces and an extrapolation\n"
        "summary.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--potential", "-p", metavar="DIR", default=".",
                   help="potential folder with input.nn, scaling.data and "
                   "weights.ZZZ.data (default: the current folder, like n2p2's tools)")
    add_n2p2_files(p)
    forces = p.add_mutually_exclusive_group()
    forces.add_argument("--forces", dest="forces", action="store_true", default=None,
                        help="predict forces (forces.comp, forces in output.data); "
                        "default: as nnp-dataset, when input.nn has use_short_forces, "
                        "or with --per-structure")
    forces.add_argument("--no-forces", dest="forces", action="store_false",
                        help="energies only (no forces.comp, zero forces in "
                        "output.data, no nnforces.out)")
    p.add_argument("--per-structure", action="store_true",
                   help="also write nnp-predict's energy.out, nnatoms.out and "
                   "nnforces.out (all structures in one file each, column conf = "
                   "1-based structure index)")
    p.add_argument("--show-warnings", action="store_true",
                   help="print every extrapolation warning as n2p2's "
                   "'### NNP EXTRAPOLATION WARNING ###' line to stderr (default: "
                   "only count them; all are written to extrapolation.csv)")
    p.add_argument("--top", type=int, default=10, metavar="N",
                   help="symmetry functions listed in the extrapolation summary "
                   "(default: 10)")
    p.add_argument("--progress-every", type=int, default=100, metavar="N",
                   help="print a progress line every N structures (0: never; "
                   "default: 100)")
    p.add_argument("--progress-seconds", type=float, default=10.0, metavar="S",
                   help="... and at least every S seconds (0: never; default: 10)")
    p.add_argument("--no-count", action="store_true",
                   help="do not count the structures first (progress then shows "
                   "the rate without percentage and ETA)")
    p.add_argument("--quiet", "-q", action="store_true",
                   help="no progress lines (the final summary is still printed)")
    p.add_argument("--no-fma", dest="contract", action="store_false",
                   help="reproduce n2p2's reference arithmetic (cell wrapping, unit "
                   "conversions) without fused multiply-adds, i.e. as an n2p2 built "
                   "without -march=native (default: with, as n2p2's default build)")
    p.set_defaults(func=run)
    return p


def _check(args):
    if args.top < 0:
        raise HpcnnpError("--top must be >= 0")
    if args.progress_every < 0:
        raise HpcnnpError("--progress-every must be >= 0")
    if not args.progress_seconds >= 0:
        raise HpcnnpError("--progress-seconds must be >= 0")


def run(args):
    """Execute ``hpcnnp predict``; returns the exit code (0)."""
    comm = mpi.world()
    return mpi.run_collectively(comm, "hpcnnp predict", _run, args, comm)


def _inputs(args):
    """What every MPI rank must agree on: the potential's files, the data, options."""
    pot = Path(args.potential)
    items = mpi.options_items(args)          # file contents below: same key wins
    items.update({name: mpi.FileDigest(str(pot / name))
                  for name in ("input.nn", "scaling.data")})
    items.update({p.name: mpi.FileDigest(str(p)) for p in sorted(pot.glob("weights.*.data"))})
    items["--data"] = mpi.FileDigest(str(args.data))
    return items


def _run(args, comm):
    rank = mpi.rank_size(comm)[0]
    _check(args)
    mpi.check_consistency(comm, _inputs(args))
    potential = Potential.from_n2p2(args.potential)
    data = Path(args.data)
    progress = None
    if rank == 0 and not args.quiet and (args.progress_every or args.progress_seconds):
        total = None
        if not args.no_count and data.is_file():
            try:
                total = count_structures(data)
            except OSError as exc:
                raise InputFileError(data, None, f"cannot read: {exc.strerror}") from None
        progress = Progress("hpcnnp predict", total, unit="structures", out=sys.stderr,
                            every=args.progress_every,
                            interval=args.progress_seconds or float("inf"))
    summary = predict_dataset(potential, data, args.output_dir, forces=args.forces,
                              per_structure=args.per_structure,
                              show_warnings=args.show_warnings and rank == 0,
                              progress=progress, contract=args.contract, comm=comm)
    if rank == 0:
        _report(summary, potential, args, mpi.rank_size(comm)[1])
    return 0


def _report(summary, potential, args, ranks):
    out = sys.stdout
    rate = summary.n_structures / summary.elapsed if summary.elapsed > 0 else 0.0
    out.write(f"hpcnnp predict: {summary.n_structures} structures, {summary.n_atoms} "
              f"atoms in {summary.elapsed:.2f} s ({rate:.2f} structures/s, "
              f"{summary.n_atoms / summary.elapsed if summary.elapsed > 0 else 0:.0f} "
              f"atoms/s{f' on {ranks} MPI ranks' if ranks > 1 else ''}); "
              f"{'energies and forces' if summary.forces else 'energies only'}\n")
    out.write("Error metrics for energies" + (" and forces" if summary.forces else "")
              + " (reference columns of the input):\n")
    out.write(summary.errors.table(forces=summary.forces) + "\n")
    out.write(summary.extrapolation.table(potential.elements, top=args.top) + "\n")
    out.write("Files: " + " ".join(str(p) for p in summary.files) + "\n")
    out.flush()


__all__ = ["register", "run"]
