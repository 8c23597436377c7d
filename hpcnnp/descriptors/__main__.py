"""``python -m hpcnnp.descriptors CONFIG.json``: the SF statistics (``scaling.data``)
of a data set as the main job computes them, under the site's MPI launcher
(:mod:`hpcnnp.workflow.entry`).  ``hpcnnp scale`` is the same for people.

CONFIG keys: ``settings`` (input.nn), ``data`` (input.data), ``output_dir``, and
optionally ``nbins`` (default 100) and the options of
:class:`hpcnnp.descriptors.scaling.ScalingRun` (``histograms``, ``neighbors_out``).
"""

from __future__ import annotations

import json
import sys

from hpcnnp.descriptors.scaling import run_scaling
from hpcnnp.workflow.entry import stage_main


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m hpcnnp.descriptors CONFIG.json", file=sys.stderr)
        return 2
    with open(argv[0]) as f:
        cfg = json.load(f)

    def body(comm):
        options = {k: v for k, v in cfg.items()
                   if k not in ("settings", "data", "output_dir", "nbins")}
        run_scaling(cfg["settings"], cfg["data"], cfg["output_dir"],
                    nbins=cfg.get("nbins", 100), comm=comm, **options)

    return stage_main("hpcnnp.descriptors", body)


if __name__ == "__main__":
    sys.exit(main())
