"""Small synthetic potentials and labelled data for the validation tests.

"Reference": a random HDNNP (small SF set, forces scaled to ~1 eV/Å);
"ML": the same network with perturbed weights, so that errors are non-zero and
known-ish.  Data sets are rattled LLZO/LCO cells labelled with the reference.
"""
import functools
from pathlib import Path

import numpy as np

from hpcnnp.io import n2p2

ELEMENTS = ("Li", "La", "Zr", "O", "Co")
#: (eta 1/Å², r_s Å, coefficient sign) of the radial SFs: r_s = 0 Gaussians repel,
#: the shifted one attracts (a well near 2.6 Å), r_c = 4.5 Å
RADIAL = ((0.8, 0.0, 1.0), (2.0, 0.0, 1.0), (1.0, 2.6, -0.3))
RC = 4.5


def _input_nn():
    lines = [f"number_of_elements {len(ELEMENTS)}", "elements " + " ".join(ELEMENTS),
             "cutoff_type 6 0.0", "scale_symmetry_functions", "center_symmetry_functions",
             "scale_min_short -1.0", "scale_max_short 1.0", "global_hidden_layers_short 1",
             "global_nodes_short 2", "global_activation_short l l", "use_short_forces"]
    for c in ELEMENTS:
        for n in ELEMENTS:
            for eta, rs, _ in RADIAL:
                lines.append(f"symfunction_short {c} 2 {n} {eta} {rs} {RC}")
        for lam in (-1, 1):
            lines.append(f"symfunction_short {c} 3 O O 0.2 {lam} 1.0 {RC}")
    return "\n".join(lines) + "\n"


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


@functools.lru_cache(maxsize=1)
def _cells():
    from hpcnnp.structures import lco, llzo_cubic, llzo_tetragonal
    return (llzo_cubic(), llzo_tetragonal(), lco().repeat((2, 2, 1)))


def cells():
    """Cubic LLZO, tetragonal LLZO and a 2x2x1 LCO supercell (builders' classes)."""
    return [a.copy() for a in _cells()]


def rattled(atoms, amplitude, rng):
    a = atoms.copy()
    a.positions += rng.normal(0.0, amplitude, a.positions.shape)
    return a


def make_potentials(root, rel=0.05):
    """(reference folder, ML folder) of small synthetic 5-element potentials.

    Linear networks ("l l"): E_i = sum_k c_k G_s,k with c > 0 on the r_s = 0 radial
    SFs (short-range repulsion, so that MD does not collapse), c < 0 on the shifted
    radial SF (a well, so that relaxations find a cell) and small random c on two
    angular SFs.  SF scaling statistics come from rattled cells (perfect crystals give
    SFs with a zero range up to rounding).  Forces are scaled to ~1 eV/Å.
    """
    from hpcnnp import Potential
    from hpcnnp.testing import scaling_statistics
    root = Path(root)
    ref = root / "ref"
    ref.mkdir(parents=True, exist_ok=True)
    (ref / "input.nn").write_text(_input_nn())
    st = n2p2.read_settings(ref / "input.nn")
    rng = np.random.default_rng(11)
    scal = [rattled(a, 0.15, rng) for a in cells() for _ in range(2)]
    n2p2.write_scaling(ref / "scaling.data", st.elements,
                       scaling_statistics(Potential(st), scal))
    w = {}
    for el in st.elements:
        sfs = st.symmetry_functions[el]
        sign = {(eta, rs): c for eta, rs, c in RADIAL}
        coef = np.array([sign[(sf.eta, sf.rs)] if sf.sftype == 2
                         else 0.05 * rng.standard_normal() for sf in sfs])
        layer1 = np.zeros((len(sfs), 2))
        layer1[:, 0] = coef
        layer1[:, 1] = 0.05 * rng.standard_normal(len(sfs))
        w[el] = np.concatenate([layer1.ravel(), np.zeros(2), [1.0, 0.2], [0.0]])
    _write_weights(ref, st, w)
    pot = Potential.from_n2p2(ref)
    f = np.concatenate([pot.compute(a).forces.ravel() for a in scal])
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
