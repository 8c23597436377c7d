"""Run under ``mpiexec -n 2`` by tests/test_mpi.py: one scenario of hpcnnp.mpi per call.

usage: _mpi_module_check.py SCENARIO [FILE]
"""

import sys

from hpcnnp import mpi
from hpcnnp.errors import HpcnnpError


def body(scenario, path):
    comm = mpi.world()
    rank = comm.Get_rank()
    if scenario == "ok":
        mpi.check_consistency(comm, {"input.nn": mpi.FileDigest(path), "--epochs": 3})
        comm.bcast(None)
        print(f"rank {rank} OK", flush=True)
    elif scenario == "option":
        mpi.check_consistency(comm, {"--epochs": 3 + rank})
    elif scenario == "file":          # rank 1 reads another file under the same name
        mpi.check_consistency(comm, {"input.nn": mpi.FileDigest(path + (".other" if rank
                                                                         else ""))})
    elif scenario == "all":           # every rank finds the same input error
        raise HpcnnpError("input.data:7: bad atom line")
    elif scenario == "one":           # rank 1 fails while rank 0 waits in a collective
        if rank == 1:
            raise HpcnnpError("input.data:7: bad atom line")
        comm.bcast(None)
    elif scenario == "bug":
        if rank == 1:
            raise RuntimeError("injected bug")
        comm.bcast(None)
    elif scenario == "agree":         # one rank's error, collected at a sync point
        err = HpcnnpError("cannot read weights.003.data") if rank == 1 else None
        mpi.agree(comm, err)
    return 0


def main():
    scenario = sys.argv[1]
    path = sys.argv[2] if len(sys.argv) > 2 else __file__
    comm = mpi.world()
    assert comm is not None and comm.Get_size() == 2
    try:
        return mpi.run_collectively(comm, "hpcnnp check", body, scenario, path, grace=3.0)
    except HpcnnpError as exc:
        print(f"hpcnnp check: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
