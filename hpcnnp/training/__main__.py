"""``python -m hpcnnp.training CONFIG.json``: a training as the main job starts it,
on every rank of the site's MPI launcher (:mod:`hpcnnp.workflow.entry`: collective
errors, SIGTERM writes the checkpoint and stops, progress as events).  ``hpcnnp
train`` is the same training for people.

CONFIG keys: ``settings`` (input.nn), ``data`` (input.data), ``scaling``
(scaling.data), ``output_dir``; optionally ``restart`` (continue from the
checkpoint in ``output_dir/checkpoint``), ``keep_checkpoint`` (default true; a
finished training inside a workflow drops it: 8·N_w² bytes), ``epochs``.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from hpcnnp.training.comm import Comm
from hpcnnp.training.trainer import EXIT_SIGTERM, Trainer, TrainingInterrupted
from hpcnnp.workflow.entry import stage_main


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m hpcnnp.training CONFIG.json", file=sys.stderr)
        return 2
    cfg = json.loads(Path(argv[0]).read_text())

    def body(comm):
        trainer = Trainer(settings=cfg["settings"], data=cfg["data"], scaling=cfg["scaling"],
                          output_dir=cfg["output_dir"], comm=Comm(comm),
                          restart=bool(cfg.get("restart")), epochs=cfg.get("epochs"),
                          stream=None)
        try:
            trainer.run()
        except TrainingInterrupted:
            return EXIT_SIGTERM
        if not cfg.get("keep_checkpoint", True) and (comm is None or comm.Get_rank() == 0):
            shutil.rmtree(Path(cfg["output_dir"]) / "checkpoint", ignore_errors=True)
        return 0

    return stage_main("hpcnnp.training", body)


if __name__ == "__main__":
    sys.exit(main())
