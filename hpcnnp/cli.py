"""The ``hpcnnp`` command: one sub-command per pipeline stage.

Each sub-command lives in its own module under :mod:`hpcnnp.commands` and
provides ``register(subparsers)`` (adds its parser and sets ``func``).  The
table :data:`COMMANDS` is the one place a new stage is added.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from hpcnnp import __version__
from hpcnnp.errors import HpcnnpError
from hpcnnp.mpi import launcher_rank
from hpcnnp.signals import Terminated, exit_status, terminate_gracefully

#: sub-command name -> module in hpcnnp.commands (imported when the CLI starts)
COMMANDS = {
    "run": "hpcnnp.commands.run",
    "sample": "hpcnnp.commands.sample",
    "dataset": "hpcnnp.commands.dataset",
    "sfgen": "hpcnnp.commands.sfgen",
    "scale": "hpcnnp.commands.scale",
    "train": "hpcnnp.commands.train",
    "predict": "hpcnnp.commands.predict",
    "validate": "hpcnnp.commands.validate",
    "active": "hpcnnp.commands.active",
    "md": "hpcnnp.commands.md",
    "analyze": "hpcnnp.commands.analyze",
    "jobs": "hpcnnp.commands.jobs",
    "config": "hpcnnp.commands.config",
}


def build_parser():
    parser = argparse.ArgumentParser(
        prog="hpcnnp",
        description="Behler-Parrinello HDNNP workflow (n2p2-compatible): "
        "symmetry functions, prediction, training, sampling, MD and analysis.",
    )
    parser.add_argument("--version", action="version", version=f"hpcnnp {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, module in COMMANDS.items():
        importlib.import_module(module).register(sub)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with terminate_gracefully(f"hpcnnp {args.command}"):
            return int(args.func(args) or 0)
    except HpcnnpError as exc:
        # an error raised on every MPI rank (hpcnnp.mpi) is printed once, by rank 0
        if not getattr(exc, "collective", False) or launcher_rank() == 0:
            print(f"hpcnnp {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except Terminated as exc:       # the signal handler printed the line
        return exit_status(exc)
    except KeyboardInterrupt:
        print(f"hpcnnp {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
