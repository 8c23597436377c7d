"""``python -m hpcnnp.md PROTOCOL.yaml [--resume] [--until-ns T]``: one MD run as
the main job starts it (under the site's MPI launcher; progress as events, see
:mod:`hpcnnp.workflow.entry`).  ``hpcnnp md`` is the same run for people."""

from __future__ import annotations

import argparse
import sys

from hpcnnp.md.driver import run_protocol
from hpcnnp.md.protocol import load_protocol
from hpcnnp.workflow.entry import stage_main


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m hpcnnp.md", description=__doc__)
    p.add_argument("protocol")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--until-ns", type=float, default=None)
    args = p.parse_args(argv)

    def body(comm):
        run_protocol(load_protocol(args.protocol), resume=args.resume, comm=comm,
                     until_ns=args.until_ns)

    return stage_main("hpcnnp.md", body)


if __name__ == "__main__":
    sys.exit(main())
