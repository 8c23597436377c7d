"""hpcnnp engine demo (the main job `hpcnnp run` is built stage by stage).

What it does, in a folder ``quickstart/``:
1. builds cubic and tetragonal LLZO, LCO, an LLZO-LCO mixture (published model
   #3) and a 4Co_La-doped amorphous LLZO cell (hpcnnp.structures);
2. writes the published LLZO/LCO symmetry-function set (225 SFs per element:
   radial imbalzano2018 shift ×9, narrow angular gastegger2018 center ×3,
   ζ = 1, 6, λ = ±1, r_c = 6 Å) into input.nn (`hpcnnp sfgen`);
3. computes the SF statistics over the structures (`hpcnnp scale`) ->
   scaling.data;
4. draws random network weights (20-20 tanh, n2p2's Glorot scheme) -> a
   complete n2p2 potential folder (not a trained potential: energies are
   meaningless, the point is the engine and the formats);
5. evaluates energies, forces, stress and extrapolation warnings of a
   1,536-atom cubic LLZO supercell with the C core and prints the throughput.

Run: ``python examples/quickstart.py`` (about a minute on 2 cores).
"""

import sys
import time
from pathlib import Path

import numpy as np


def main(out="quickstart"):
    from hpcnnp import Potential
    from hpcnnp import structures as st
    from hpcnnp.cli import main as hpcnnp
    from hpcnnp.io.n2p2 import read_settings, write_data, write_weights
    from hpcnnp.testing import glorot_weights

    out = Path(out)
    out.mkdir(exist_ok=True)
    t0 = time.perf_counter()
    print("1. structures")
    cells = [st.llzo_cubic(), st.llzo_tetragonal(), st.supercell(st.lco(), natoms=150),
             st.mixture(model=3), st.co_doped_amorphous(n=4, site="La")]
    for a in cells:
        print(f"   {a.info['structure_class']:<18s} {a.get_chemical_formula():<22s} {len(a):4d} atoms")
    write_data(out / "input.data", cells)

    print("2. symmetry functions (hpcnnp sfgen --preset llzo-lco)")
    header = ("number_of_elements 5\nelements Li La Zr O Co\ncutoff_type 6 0.0\n"
              "scale_symmetry_functions\ncenter_symmetry_functions\n"
              "scale_min_short -1.0\nscale_max_short 1.0\n"
              "global_hidden_layers_short 2\nglobal_nodes_short 20 20\n"
              "global_activation_short t t l\nuse_short_forces\n")
    (out / "input.nn").write_text(header)
    if hpcnnp(["sfgen", "--preset", "llzo-lco", "--append-to", str(out / "input.nn")]) != 0:
        sys.exit(1)

    print("3. SF statistics (hpcnnp scale)")
    if hpcnnp(["scale", "--settings", str(out / "input.nn"), "--data", str(out / "input.data"),
               "--output-dir", str(out), "--no-histograms", "-q", "100"]) != 0:
        sys.exit(1)

    print("4. random weights -> n2p2 potential folder")
    settings = read_settings(out / "input.nn")
    rng = np.random.default_rng(7)
    from ase.data import atomic_numbers
    for el in settings.elements:
        sizes = settings.layer_sizes(el)
        write_weights(out / f"weights.{atomic_numbers[el]:03d}.data",
                      0.1 * glorot_weights(sizes, rng), sizes)
    pot = Potential.from_n2p2(out)
    print(f"   {pot}")

    print("5. energies and forces of a 1,536-atom cubic LLZO supercell (2x2x2, 1% noise)")
    atoms = st.supercell(st.llzo_cubic(), repeat=(2, 2, 2))
    atoms.rattle(0.02, seed=3)
    pot.compute(atoms)                       # warm-up
    t = time.perf_counter()
    res = pot.compute(atoms)
    dt = time.perf_counter() - t
    print(f"   E = {res.energy:.4f} eV, max|F| = {np.abs(res.forces).max():.3f} eV/Å, "
          f"stress xx = {res.stress[0]:.5f} eV/Å³")
    print(f"   {dt / len(atoms) * 1e3:.3f} ms/atom for energy+forces+stress "
          f"(n2p2: ~0.49 ms/atom), {res.n_warnings} extrapolation warnings "
          "(SF statistics from only 5 cells)")
    print(f"done in {time.perf_counter() - t0:.1f} s; files in {out}/")


if __name__ == "__main__":
    main(*sys.argv[1:])
