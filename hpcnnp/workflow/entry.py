"""The front door of a stage that runs as its own (MPI) process.

``hpcnnp run`` starts each MPI stage as ``<launcher> python -m hpcnnp.<stage>
CONFIG`` (``hpcnnp.descriptors`` scaling, ``hpcnnp.training``, ``hpcnnp.md``).
Each of those ``__main__`` modules reads its typed configuration and calls the
library through :func:`stage_main`, which gives all of them the same rules:

* the MPI world from :func:`hpcnnp.mpi.world` and hpcnnp's collective error
  handling (:func:`hpcnnp.mpi.run_collectively`): no hang, no wall of MPI text;
* SIGTERM ends the stage cleanly (:func:`hpcnnp.signals.terminate_gracefully`);
* a failure is one line on stderr *and* a final event ``{"kind": "end", "ok":
  false, "msg": ...}`` in ``$HPCNNP_EVENTS``, which the driver shows as the
  stage's error; exit status 2 for bad input, 1 otherwise.
"""

from __future__ import annotations

import sys

from hpcnnp import mpi
from hpcnnp.errors import HpcnnpError
from hpcnnp.progress import event
from hpcnnp.signals import exit_status, terminate_gracefully

__all__ = ["stage_main"]


def stage_main(command, body):
    """Run ``body(comm)`` as the process of one stage; returns the exit status."""
    comm = mpi.world()
    rank = 0 if comm is None else comm.Get_rank()
    try:
        with terminate_gracefully(command):
            result = mpi.run_collectively(comm, command, body, comm)
    except HpcnnpError as exc:
        if rank == 0:
            print(f"{command}: error: {exc}", file=sys.stderr, flush=True)
            event("end", command, ok=False, msg=str(exc))
        return 2
    except KeyboardInterrupt as exc:
        if rank == 0:
            print(f"{command}: stopped", file=sys.stderr, flush=True)
            event("end", command, ok=False, msg="stopped by a signal")
        return exit_status(exc)
    if isinstance(result, int) and result:       # a rank whose error rank 0 reported
        return result
    return 0
