"""``hpcnnp md``: run an MD protocol with LAMMPS and the hpcnnp pair style.

See :mod:`hpcnnp.md.protocol` for the protocol file and :mod:`hpcnnp.md.driver`
for segments, restart files, the trajectory and ``--resume``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hpcnnp import mpi
from hpcnnp.commands._options import add_progress_interval
from hpcnnp.errors import HpcnnpError
from hpcnnp.fileio import folder_lock

_EPILOG = """\
run folder ('output' of the protocol; default: <protocol name> beside the file):
  traj.h5md    H5MD trajectory: positions (wrapped), image flags, box, optional
               velocities/forces, observables (energies, T, P, V, extrapolation
               warnings) every dump_stride steps
  state.json   last complete segment; restart/  LAMMPS restart files
  log.lammps   LAMMPS log;  data.lammps  starting structure

the run folder is locked while the run writes into it; under MPI the ranks first
compare the protocol, the structure, the potential files and the options and stop
with an error naming the rank that differs.  --resume checks that the trajectory
still holds the frames state.json records, and continues with stages appended to
the protocol after the run had finished.

examples:
  hpcnnp md protocol.yaml
  mpiexec -n 64 hpcnnp md protocol.yaml --resume     # continue a killed run
  hpcnnp md protocol.yaml --engine n2p2              # write in.lammps for pair_style hdnnp
"""


def register(subparsers):
    """Add the ``md`` parser to the ``hpcnnp`` sub-command parsers."""
    p = subparsers.add_parser(
        "md",
        help="run an MD protocol (minimise, heat, NVT/NPT) with LAMMPS in segments",
        description="Run the stages of an MD protocol with LAMMPS and the hpcnnp\n"
        "plugin pair style (MPI: mpiexec -n N hpcnnp md ...), writing an H5MD\n"
        "trajectory, a restart file after every segment and a progress line per\n"
        "segment.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("protocol", metavar="PROTOCOL.yaml", help="the protocol file")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in the protocol's output folder from its last "
                   "complete segment (starts from the beginning if there is none)")
    p.add_argument("--engine", choices=("hpcnnp", "n2p2"), default="hpcnnp",
                   help="hpcnnp (default): run now; n2p2: only write data.lammps and "
                   "in.lammps for a LAMMPS with n2p2's pair_style hdnnp")
    p.add_argument("--until-ns", type=float, default=None, metavar="T",
                   help="stop at the end of the segment that reaches simulated time T (ns); "
                   "with --resume each chained batch job advances the run by its share "
                   "(hpcnnp jobs render); the run is complete only when its last stage ends")
    add_progress_interval(p, 10.0, "within a segment")
    p.set_defaults(func=run)
    return p


def run(args):
    """Execute ``hpcnnp md``; returns the exit code."""
    comm = mpi.world() if args.engine == "hpcnnp" else None
    return mpi.run_collectively(comm, "hpcnnp md", _run, args, comm)


def _consistency_items(args, protocol):
    """Protocol, structure and potential files and the options, compared across ranks."""
    items = mpi.options_items(args)
    items["protocol"] = mpi.FileDigest(str(args.protocol))
    items["structure"] = mpi.FileDigest(str(protocol.structure))
    pot = Path(protocol.potential)
    for path in [pot / "input.nn", pot / "scaling.data"] + sorted(pot.glob("weights.*.data")):
        items[path.name] = mpi.FileDigest(str(path))
    return items


def _run(args, comm):
    from hpcnnp.md.protocol import load_protocol

    mpi.check_consistency(comm, {**mpi.options_items(args),
                                 "protocol": mpi.FileDigest(str(args.protocol))})
    protocol = load_protocol(args.protocol)
    if args.engine == "n2p2":
        from hpcnnp.md.driver import write_lammps_input
        path = write_lammps_input(protocol, engine="n2p2")
        print(f"hpcnnp md: wrote {path} and {path.with_name('data.lammps')} "
              f"(pair_style hdnnp); run it there with a LAMMPS built with ML-HDNNP, "
              "e.g. mpirun -n N lmp -in in.lammps", file=sys.stderr)
        return 0
    from hpcnnp.md.driver import MDAbort, run_protocol
    mpi.check_consistency(comm, _consistency_items(args, protocol))
    if args.until_ns is not None and args.until_ns <= 0:
        raise HpcnnpError("--until-ns must be > 0")
    # one run per output folder (chained segment jobs of one run never overlap)
    with folder_lock(protocol.output, "hpcnnp md", comm):
        try:
            run_protocol(protocol, resume=args.resume, comm=comm,
                         progress_interval=args.progress_interval, until_ns=args.until_ns)
        except MDAbort as exc:
            if comm is not None:
                # raised on one rank only: the others wait inside LAMMPS
                mpi.abort_job(comm, "hpcnnp md", exc)
            raise
    return 0


__all__ = ["register", "run"]
