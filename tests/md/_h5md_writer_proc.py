"""Write frames to an H5MD file forever (until killed); used by test_h5md.py.

Frame k holds the value k in every position (and -k in every velocity, k in the
image flags, 10 + k on the box diagonal), so a reader can tell a complete frame
from a mixed one.  Prints "ready" after the first frames.

usage: python _h5md_writer_proc.py FILE N_ATOMS [append]
"""
import sys

import numpy as np
from ase import Atoms

from hpcnnp.io import h5md

path, n = sys.argv[1], int(sys.argv[2])
mode = "a" if len(sys.argv) > 3 else "w"
atoms = Atoms(f"Li{n}", positions=np.zeros((n, 3)), cell=[10, 10, 10], pbc=True)
w = h5md.H5MDWriter(path, atoms, fields=("position", "image", "velocity"),
                    observables=("temperature",), mode=mode)
k = 0 if w.last_step is None else w.last_step + 1
first = k
while True:
    w.write_frame(k, 0.001 * k, np.full((n, 3), float(k)), np.eye(3) * (10 + k),
                  image=np.full((n, 3), k), velocity=np.full((n, 3), -float(k)),
                  observables={"temperature": float(k)})
    if k == first + 3:
        print("ready", flush=True)
    k += 1
