"""A driver under DriverGuard that starts detached workers (own session, like Parsl's
LocalProvider) and a worker that ignores SIGTERM; used by tests/hpc/test_reaper.py.

usage: _guarded_driver.py READY_FILE [normal]
"""

import signal
import subprocess
import sys
import time
from pathlib import Path

from hpcnnp.hpc.reaper import DriverGuard
from hpcnnp.signals import Terminated, exit_status

SLEEPER = "import time\nwhile True: time.sleep(0.1)"
STUBBORN = ("import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            "while True: time.sleep(0.1)")


def main():
    ready = Path(sys.argv[1])
    normal = len(sys.argv) > 2
    try:
        with DriverGuard("hpcnnp testdriver", grace=1.0):
            procs = [subprocess.Popen([sys.executable, "-c", SLEEPER], start_new_session=True),
                     subprocess.Popen([sys.executable, "-c", STUBBORN],
                                      start_new_session=True),
                     # a double fork: the grandchild is re-parented at once
                     subprocess.Popen(["bash", "-c", f"{sys.executable} -c '{SLEEPER}' & "
                                       "disown; exit 0"], start_new_session=True)]
            time.sleep(0.5)
            ready.write_text(" ".join(str(p.pid) for p in procs))
            if normal:
                return 0
            while True:
                time.sleep(0.1)
    except Terminated as exc:
        return exit_status(exc)


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.exit(main())
