"""Small synthetic potentials and labelled data for the validation tests.

"Reference": a random HDNNP (small SF set, forces scaled to ~1 eV/Å);
"ML": the same network with perturbed weights, so that errors are non-zero and
known-ish.  Data sets are rattled LLZO/LCO cells labelled with the reference.
"""
from pathlib import Path

import numpy as np

from hpcnnp.descriptors.sfgen import SymFuncConfig, SymFuncSet
from hpcnnp.io import n2p2

ELEMENTS = ("Li", "La", "Zr", "O", "Co")
SMALL_SF = SymFuncConfig(ELEMENTS, (
    SymFuncSet("radial", "imbalzano2018", "shift", 3, 5.0),
    SymFuncSet("angular_narrow", "gastegger2018", "center", 2, 5.0, r_lower=1.5,
               r_upper=5.0, zetas=(1,)),
))


def _weights(folder):
    st = n2p2.read_settings(Path(folder) / "input.nn")
    return st, {el: n2p2.read_weights(Path(folder) / n2p2.weights_filename(el),
                                      st.n_weights(el)) for el in st.elements}


def _write_weights(folder, st, w):
    for el in st.elements:
        n2p2.write_weights(Path(folder) / n2p2.weights_filename(el), w[el],
                           st.layer_sizes(el))


def scale_output(folder, factor):
    """Multiply the output-layer connections (and bias) by ``factor`` (E, F scale by it)."""
    st, w = _weights(folder)
    for el in st.elements:
        sizes = st.layer_sizes(el)
        n_last = sizes[-2] * sizes[-1] + sizes[-1]
        w[el][-n_last:] *= factor
    _write_weights(folder, st, w)


def perturbed_copy(src, dst, rel=0.05, seed=1):
    """Copy a potential folder with weights w (1 + rel N(0,1))."""
    import shutil
    dst = Path(dst)
    shutil.copytree(src, dst, dirs_exist_ok=True)
    st, w = _weights(dst)
    rng = np.random.default_rng(seed)
    for el in st.elements:
        w[el] = w[el] * (1.0 + rel * rng.standard_normal(w[el].shape))
    _write_weights(dst, st, w)
    return dst


def cells():
    """Cubic LLZO, tetragonal LLZO and a 2x2x1 LCO supercell (builders' classes)."""
    from hpcnnp.structures import lco, llzo_cubic, llzo_tetragonal
    return [llzo_cubic(), llzo_tetragonal(), lco().repeat((2, 2, 1))]


def make_potentials(root, rel=0.05):
    """(reference folder, ML folder) of small synthetic 5-element potentials."""
    from hpcnnp import Potential
    from hpcnnp.testing import synthetic_potential
    root = Path(root)
    ref = synthetic_potential(root / "ref", sf_sets=SMALL_SF, hidden=(8,),
                              activations="tl", seed=3, structures=cells())
    pot = Potential.from_n2p2(ref)
    f = np.concatenate([pot.compute(a).forces.ravel() for a in cells()])
    scale_output(ref, 1.0 / max(np.sqrt(np.mean(f ** 2)), 1e-12))
    ml = perturbed_copy(ref, root / "ml", rel=rel)
    return ref, ml


def labelled_set(path, pot_dir, specs, seed=0, comment_class=True):
    """Write an n2p2 data file of rattled cells labelled with the potential ``pot_dir``.

    specs : list of (atoms, n_structures, rattle Å, class name or None)
    """
    from ase.calculators.singlepoint import SinglePointCalculator

    from hpcnnp import Potential
    pot = Potential.from_n2p2(pot_dir)
    rng = np.random.default_rng(seed)
    out = []
    for atoms, n, rattle, cls in specs:
        for k in range(n):
            a = atoms.copy()
            a.positions += rng.normal(0.0, rattle, a.positions.shape)
            strain = np.eye(3) + rng.normal(0.0, 0.01, (3, 3))
            a.set_cell(a.cell.array @ strain, scale_atoms=True)
            res = pot.compute(a, stress=False)
            a.calc = SinglePointCalculator(a, energy=res.energy, forces=res.forces)
            name = cls or atoms.info.get("structure_class")
            a.info = {"comment": (f'structure_class="{name}" rattle={rattle}'
                                  if comment_class else f"{name} rattle={rattle}")}
            out.append(a)
    n2p2.write_data(path, out)
    return path
