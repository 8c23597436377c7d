"""Synthetic potentials and structures for tests and benchmarks.

Two building blocks, reused by the test suite and the benchmarks (descriptors,
prediction, training):

:func:`llzo_like_cell`
    A periodic cubic box of random atoms at the number density and composition of
    cubic LLZO (Li56La24Zr16O96 in a 12.97 Å cell), built by random sequential
    insertion with a minimum interatomic distance.  Not a physical structure (no
    chemical order), but it has LLZO's neighbour counts (~80 neighbours within 6 Å),
    which is what sets the cost of symmetry functions and forces.

:func:`synthetic_potential`
    Writes a complete n2p2 potential folder (``input.nn``, ``scaling.data``,
    ``weights.ZZZ.data``) with the published LLZO/LCO symmetry-function set by
    default, SF scaling statistics computed from given structures and random
    (Glorot-uniform) weights.  n2p2 and hpcnnp can both read it.

>>> from hpcnnp.testing import llzo_like_cell, synthetic_potential      # doctest: +SKIP
>>> atoms = llzo_like_cell(2000, seed=1)
>>> folder = synthetic_potential("pot", structures=[atoms])
>>> from hpcnnp import Potential
>>> Potential.from_n2p2(folder).compute(atoms).energy

Everything is deterministic for a given ``seed``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from hpcnnp.descriptors.sfgen import LLZO_LCO_DEFAULT, SymFuncConfig

__all__ = ["LLZO_CELL", "LLZO_FORMULA", "LLZO_NUMBER_DENSITY", "llzo_like_cell",
           "synthetic_potential", "glorot_weights", "scaling_statistics",
           "repulsive_potential", "rocksalt_cell", "pruned_potential",
           "KALMAN_TRAINING", "with_training_settings", "label_with_potential"]

#: cubic LLZO conventional cell: edge (Å) and content (Li56La24Zr16O96, 192 atoms)
LLZO_CELL = 12.97
LLZO_FORMULA = {"Li": 56, "La": 24, "Zr": 16, "O": 96}
#: atoms per Å^3 of cubic LLZO (192 / 12.97^3 = 0.0880)
LLZO_NUMBER_DENSITY = sum(LLZO_FORMULA.values()) / LLZO_CELL**3


def _composition(n_atoms, formula):
    """Integer counts proportional to ``formula`` summing to n_atoms (largest remainder)."""
    total = sum(formula.values())
    exact = {el: n_atoms * c / total for el, c in formula.items()}
    counts = {el: int(math.floor(x)) for el, x in exact.items()}
    rest = n_atoms - sum(counts.values())
    for el in sorted(exact, key=lambda e: (counts[e] - exact[e], e))[:rest]:
        counts[el] += 1
    return counts


def llzo_like_cell(n_atoms, seed=0, min_distance=1.7, density=LLZO_NUMBER_DENSITY,
                   formula=None, max_attempts=200):
    """A periodic random cell with LLZO's number density and composition.

    Parameters
    ----------
    n_atoms : int
        Number of atoms (any value >= 1; fine for 200, 2,000 or 17,000 atoms).
    seed : int
        Seed of numpy's default_rng: same seed, same structure.
    min_distance : float
        Minimum distance (Å) between any two atoms, all periodic images included.
    density : float
        Number density in atoms/Å^3 (default: cubic LLZO, 192 / 12.97^3).
    formula : dict, optional
        Element -> relative amount; default Li56La24Zr16O96.  Counts are rounded by
        largest remainder so that they sum to ``n_atoms``.
    max_attempts : int
        Random trial positions per atom before giving up.

    Returns
    -------
    ase.Atoms
        Cubic cell of edge (n_atoms / density)^(1/3), pbc=True, species randomly
        distributed over the sites; ``info["comment"]`` describes it.

    Notes
    -----
    Random sequential insertion: uniform trial positions, accepted when no earlier
    atom is closer than ``min_distance``, checked with a cell list (O(1) per
    trial).  At LLZO's density and 1.7 Å the packing fraction is 0.23, well below
    the RSA jamming limit (0.38), so few trials are rejected.
    """
    from ase import Atoms

    n_atoms = int(n_atoms)
    if n_atoms < 1:
        raise ValueError("llzo_like_cell: n_atoms must be >= 1")
    if not (density > 0 and min_distance >= 0):
        raise ValueError("llzo_like_cell: density must be > 0 and min_distance >= 0")
    rng = np.random.default_rng(seed)
    length = (n_atoms / density) ** (1.0 / 3.0)
    if min_distance > 0 and n_atoms * (math.pi / 6) * min_distance**3 > 0.35 * length**3:
        raise ValueError("llzo_like_cell: min_distance too large for this density "
                         "(random insertion would jam)")
    pos = np.empty((n_atoms, 3))
    m = max(int(length // min_distance), 1) if min_distance > 0 else 1
    use_grid = m >= 3
    if use_grid:
        side = length / m
        capacity = 8
        grid = np.full((m, m, m, capacity), -1, dtype=np.int64)
        fill = np.zeros((m, m, m), dtype=np.int64)
        offsets = np.array([(a, b, c) for a in (-1, 0, 1) for b in (-1, 0, 1)
                            for c in (-1, 0, 1)])
    d2min = min_distance * min_distance
    placed = 0
    attempts = 0
    while placed < n_atoms:
        trial = rng.random(3) * length
        attempts += 1
        if min_distance > 0 and placed:
            if use_grid:
                cell = np.minimum((trial / side).astype(np.int64), m - 1)
                cells = (cell + offsets) % m
                idx = grid[cells[:, 0], cells[:, 1], cells[:, 2]].ravel()
                idx = idx[idx >= 0]
            else:
                idx = np.arange(placed)
            if len(idx):
                d = pos[idx] - trial
                d -= length * np.round(d / length)
                if np.einsum("ij,ij->i", d, d).min() < d2min:
                    if attempts > max_attempts * (placed + 1):
                        raise RuntimeError("llzo_like_cell: random insertion failed "
                                           f"after {attempts} trials ({placed} atoms)")
                    continue
        pos[placed] = trial
        if use_grid:
            cx, cy, cz = np.minimum((trial / side).astype(np.int64), m - 1)
            k = fill[cx, cy, cz]
            if k == grid.shape[3]:                     # grow the slots (rare)
                grid = np.concatenate([grid, np.full(grid.shape[:3] + (capacity,), -1,
                                                     dtype=np.int64)], axis=3)
            grid[cx, cy, cz, k] = placed
            fill[cx, cy, cz] = k + 1
        placed += 1
    counts = _composition(n_atoms, LLZO_FORMULA if formula is None else formula)
    symbols = np.array([el for el, c in counts.items() for _ in range(c)])
    rng.shuffle(symbols)
    atoms = Atoms(symbols=list(symbols), positions=pos, cell=[length] * 3, pbc=True)
    atoms.info["comment"] = (f"llzo_like_cell n_atoms={n_atoms} seed={seed} "
                             f"density={density:.5f}/A^3 min_distance={min_distance}")
    return atoms


# ---------------------------------------------------------------------------------------
# Synthetic potentials
# ---------------------------------------------------------------------------------------

def glorot_weights(layer_sizes, rng):
    """Connections of one network in n2p2's order with Glorot-uniform weights.

    Per layer: weights U(-a, a), a = sqrt(6 / (n_in + n_out)), start neuron outer and
    end neuron inner loop, then the biases (zero), as ``weights.ZZZ.data`` stores them.
    """
    out = []
    for n_in, n_out in zip(layer_sizes[:-1], layer_sizes[1:]):
        a = math.sqrt(6.0 / (n_in + n_out))
        out.append(rng.uniform(-a, a, size=n_in * n_out))
        out.append(np.zeros(n_out))
    return np.concatenate(out)


def scaling_statistics(potential, structures):
    """SF statistics (min, max, mean, sigma with n-1) per element, n2p2's way.

    Parameters
    ----------
    potential : hpcnnp.potential.Potential
        Only its symmetry functions are used (no weights or scaling needed).
    structures : iterable of ase.Atoms

    Returns
    -------
    dict element -> ndarray (n_sf, 4), raw SF values.  Elements without atoms and
    SFs with a zero range get min/max = value -/+ 0.5 (and sigma 1) so that the
    scaled values stay finite; sigma is 1 when fewer than two atoms were seen.
    """
    return _sf_statistics(_raw_sf_arrays(potential, structures),
                          {el: len(potential.symmetry_function_list[el])
                           for el in potential.elements})


def _sf_statistics(raw, n_sf):
    """:func:`scaling_statistics` from raw SF arrays (element -> (n_atoms, n_sf);
    elements without atoms may be missing) for the elements and SF counts ``n_sf``."""
    stats = {}
    for el, n in n_sf.items():
        G = raw.get(el)
        if G is not None and len(G):
            gmin, gmax, gmean = G.min(axis=0), G.max(axis=0), G.mean(axis=0)
            gsig = G.std(axis=0, ddof=1) if len(G) > 1 else np.ones(n)
        else:
            gmin = gmax = gmean = np.zeros(n)
            gsig = np.ones(n)
        flat = gmax - gmin <= 0
        gmin = np.where(flat, gmean - 0.5, gmin)
        gmax = np.where(flat, gmean + 0.5, gmax)
        gsig = np.where(gsig > 0, gsig, 1.0)
        stats[el] = np.stack([gmin, gmax, gmean, gsig], axis=1)
    return stats


def _default_structures(elements, seed):
    """Two 192-atom LLZO-like cells; species relabelled so that every element occurs."""
    rng = np.random.default_rng(seed + 7919)
    out = []
    for k in range(2):
        atoms = llzo_like_cell(192, seed=seed + k)
        sym = np.array(atoms.get_chemical_symbols(), dtype=object)
        foreign = ~np.isin(sym, list(elements))
        sym[foreign] = rng.choice(list(elements), int(foreign.sum()))
        per_missing = max(1, len(sym) // (4 * len(elements)))
        for el in elements:
            if el not in sym:
                sym[rng.choice(len(sym), per_missing, replace=False)] = el
        atoms.set_chemical_symbols(list(sym))
        out.append(atoms)
    return out


def synthetic_potential(directory, elements=("Li", "La", "Zr", "O", "Co"),
                        sf_sets=LLZO_LCO_DEFAULT, hidden=(20, 20), activations="ttl",
                        cutoff_type=6, seed=0, structures=None, atom_energy=None):
    """Write an n2p2 potential folder with random weights.

    Parameters
    ----------
    directory : path
        Folder (created if missing); ``input.nn``, ``scaling.data`` and one
        ``weights.ZZZ.data`` per element are (over)written.
    elements : sequence of str
        Element symbols (any order; n2p2 sorts them by atomic number).
    sf_sets : SymFuncConfig or sequence of SymFuncSet
        Symmetry-function sets (:mod:`hpcnnp.descriptors.sfgen`); only the sets
        are used, with ``elements``.  Default: the published LLZO/LCO set, 225 SFs
        per element for 5 elements (r_c = 6 Å).
    hidden : sequence of int
        Hidden-layer sizes (default 20-20).
    activations : str
        n2p2 activation letters, one per hidden layer plus the output (``"ttl"``).
    cutoff_type : int
        n2p2 cutoff function type (6 = polynomial 2), alpha 0.
    seed : int
        Seeds the weights (Glorot-uniform, element by element in n2p2's order) and
        the default structures.
    structures : iterable of ase.Atoms, optional
        Structures whose raw SFs give ``scaling.data`` (min, max, mean, sigma with
        n - 1, as nnp-scaling); default: two 192-atom :func:`llzo_like_cell` boxes
        with atoms relabelled so that every element occurs.
    atom_energy : dict, optional
        ``atom_energy`` offsets per element (default: none).

    Returns
    -------
    pathlib.Path
        The folder; load it with ``Potential.from_n2p2(path)``.

    Notes
    -----
    The settings are those of the published LLZO/LCO potentials (and refdata's
    synth5_A): ``scale_symmetry_functions`` + ``center_symmetry_functions`` with
    ``scale_min_short -1`` / ``scale_max_short 1``, i.e. G_s = -1 + 2 (G - G_mean) /
    (G_max - G_min): for the given structures every SF spans an interval of width
    2 around a value near 0 (no extrapolation warnings for them);
    ``use_short_forces``; no normalisation.
    """
    from hpcnnp.io import n2p2
    from hpcnnp.potential import Potential

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    elements = tuple(elements)
    sets = sf_sets.sets if isinstance(sf_sets, SymFuncConfig) else tuple(sf_sets)
    config = SymFuncConfig(elements, sets)
    hidden = [int(h) for h in hidden]
    if len(activations) != len(hidden) + 1:
        raise ValueError(f"synthetic_potential: {len(hidden) + 1} activation letters "
                         f"needed (hidden layers + output), got {activations!r}")
    lines = [
        "# n2p2 potential written by hpcnnp.testing.synthetic_potential "
        f"(seed {seed}; random weights)",
        f"number_of_elements {len(elements)}",
        f"elements {' '.join(elements)}",
    ]
    for el, e0 in (atom_energy or {}).items():
        lines.append(f"atom_energy {el} {float(e0)!r}")
    lines += [
        f"cutoff_type {int(cutoff_type)} 0.0",
        "scale_symmetry_functions",
        "center_symmetry_functions",
        "scale_min_short -1.0",
        "scale_max_short 1.0",
        f"global_hidden_layers_short {len(hidden)}",
        f"global_nodes_short {' '.join(map(str, hidden))}",
        f"global_activation_short {' '.join(activations)}",
        "use_short_forces",
        f"random_seed {int(seed)}",
        "",
    ]
    text = "\n".join(lines) + "\n" + config.generate()
    nn_path = directory / "input.nn"
    nn_path.write_text(text)
    settings = n2p2.read_settings(nn_path)

    sf_only = Potential(settings, scaling=None, weights=None, directory=directory)
    if structures is None:
        structures = _default_structures(elements, seed)
    stats = scaling_statistics(sf_only, structures)
    n2p2.write_scaling(directory / "scaling.data", settings.elements, stats)

    rng = np.random.default_rng(seed)
    for el in settings.elements:
        sizes = settings.layer_sizes(el)
        n2p2.write_weights(directory / n2p2.weights_filename(el),
                           glorot_weights(sizes, rng), sizes)
    return directory


def repulsive_potential(directory, structures=None, elements=("Li", "La", "Zr", "O", "Co"),
                        r_cut=5.0, strength=1.0):
    """Write an n2p2 potential that is a smooth pair repulsion (for MD tests).

    Random-weight potentials (:func:`synthetic_potential`) attract some pairs of
    atoms until they meet, and atoms that come close reach symmetry-function values
    far outside ``scaling.data`` (huge forces), so MD with them fails after a few
    hundred steps.  This potential cannot do that: per element, one r_s = 0 radial
    SF per neighbour element (eta = 1 Å^-2) and two angular SFs feed a linear
    1-hidden-layer network (2 nodes), so that

        E_i = strength * sum_j exp(-r_ij^2) f_c(r_ij) + small angular terms,

    a monotonic, bounded repulsion (2 * strength eV for two atoms on top of each
    other).  It is cheap (12 SFs per element) and exercises the radial and angular
    kernels, the cutoff function and the network code.

    Parameters
    ----------
    directory : path
        Folder for ``input.nn``, ``scaling.data``, ``weights.ZZZ.data``.
    structures : iterable of ase.Atoms, optional
        Structures for ``scaling.data`` (default: two 192-atom LLZO-like cells).
    elements : sequence of str
    r_cut : float, Å
        Cutoff radius of all SFs (cutoff type 6, polynomial).
    strength : float, eV

    Returns
    -------
    pathlib.Path
    """
    from hpcnnp.io import n2p2
    from hpcnnp.potential import Potential

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    elements = tuple(elements)
    a, b = ("O", "Li") if {"O", "Li"} <= set(elements) else (elements[0], elements[-1])
    lines = [f"number_of_elements {len(elements)}", "elements " + " ".join(elements),
             "cutoff_type 6 0.0", "global_hidden_layers_short 1", "global_nodes_short 2",
             "global_activation_short l l", "use_short_forces"]
    for c in elements:
        lines += [f"symfunction_short {c} 2 {e} 1.0 0.0 {r_cut}" for e in elements]
        lines += [f"symfunction_short {c} 3 {a} {a} 0.1 1 1.0 {r_cut}",
                  f"symfunction_short {c} 3 {b} {a} 0.2 -1 2.0 {r_cut}"]
    (directory / "input.nn").write_text("\n".join(lines) + "\n")
    settings = n2p2.read_settings(directory / "input.nn")
    if structures is None:
        structures = _default_structures(elements, 0)
    stats = scaling_statistics(Potential(settings), structures)
    n2p2.write_scaling(directory / "scaling.data", settings.elements, stats)
    for el in settings.elements:
        sfs = settings.symmetry_functions[el]
        w1 = np.zeros((len(sfs), 2))
        for m, sf in enumerate(sfs):
            w1[m] = (strength, 0.1) if sf.sftype == 2 else (0.02, -0.05)
        w = np.concatenate([w1.ravel(), [0.0, 0.0], [1.0, 0.5], [0.0]])
        n2p2.write_weights(directory / n2p2.weights_filename(el), w,
                           settings.layer_sizes(el))
    return directory


# ---------------------------------------------------------------------------------------
# A teacher from the reference potential synth5_A (training recovery)
# ---------------------------------------------------------------------------------------

def rocksalt_cell(rng, a_range=(4.1, 4.3), noise=(0.05, 0.15), shear=0.02,
                  cations=("Li", "La", "Zr", "Co"), weights=(17, 3, 4, 8)):
    """A 64-atom 2×2×2 rock-salt cell like structure 1 of refdata's synth5_A.

    O on the anion sites, ``cations`` drawn with relative ``weights`` on the cation
    sites (default: the proportions of synth5_A's structure 1), lattice constant
    uniform in ``a_range`` (Å), Gaussian displacements with a standard deviation
    uniform in ``noise`` (Å), every cell-matrix element strained by up to ±``shear``.
    ``rng``: a numpy Generator or a seed.
    """
    from ase import Atoms

    rng = np.random.default_rng(rng)
    a = rng.uniform(*a_range)
    frac = np.array([(i / 4, j / 4, k / 4) for i in range(4) for j in range(4)
                     for k in range(4)])
    anion = (np.round(frac * 4).sum(axis=1) % 2).astype(bool)
    p = np.asarray(weights, float)
    symbols = np.full(len(frac), "O", dtype=object)
    symbols[~anion] = rng.choice(list(cations), size=int((~anion).sum()), p=p / p.sum())
    cell = 2 * a * (np.eye(3) + rng.uniform(-shear, shear, (3, 3)))
    atoms = Atoms(symbols=list(symbols), scaled_positions=frac, cell=cell, pbc=True)
    atoms.positions += rng.normal(0.0, rng.uniform(*noise), (len(atoms), 3))
    atoms.info["comment"] = f"rocksalt 2x2x2 a={a:.3f}"
    return atoms


def _raw_sf_arrays(potential, structures):
    per_el = {el: [] for el in potential.elements}
    for atoms in structures:
        for sym, g in zip(atoms.get_chemical_symbols(),
                          potential.symmetry_functions(atoms)):
            per_el[sym].append(g)
    return {el: np.array(v) for el, v in per_el.items() if v}


def pruned_potential(source, directory, structures, threshold=1e-4, max_tail=None):
    """An n2p2 potential restricted to the SFs that vary on ``structures``.

    A potential's ``scaling.data`` belongs to the data it was fitted on: refdata's
    synth5_A was scaled on three structures, and 154 of its 1125 SFs have a range
    below 1e-3 there (down to 3e-54), i.e. scaling factors up to ~1e53 -- on any
    other structure it extrapolates hundreds of times per cell and its forces reach
    hundreds of eV/Å.  This does what an n2p2 user does before training (nnp-scaling,
    nnp-prune range): SFs whose range over ``structures`` is below ``threshold`` are
    commented out of ``input.nn`` and ``scaling.data`` is recomputed on
    ``structures``; the networks keep every weight of ``source`` except the
    first-layer rows of the pruned inputs.

    ``max_tail``: also prune rare-event SFs, (G_max − G_mean)/σ_G > max_tail on
    ``structures`` (:func:`hpcnnp.descriptors.prune.prune_by_tail`).  synth5_A's
    weights are not fitted to any physics, so its response to the few atoms that
    light up such an SF is an arbitrary near-step; see benchmarks/recover_synth5.py.

    Returns the folder (input.nn, scaling.data, weights.ZZZ.data, and pruned.txt
    with the SFs kept per element).
    """
    from hpcnnp.descriptors.prune import prune_by_range, prune_by_tail
    from hpcnnp.io import n2p2
    from hpcnnp.potential import Potential

    source, directory = Path(source), Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    structures = list(structures)
    nn = directory / "input.nn"
    nn.write_text((source / "input.nn").read_text())
    full = n2p2.read_settings(nn)
    raw = _raw_sf_arrays(Potential(full, scaling=None, weights=None, directory=directory),
                         structures)
    stats = {}
    for el in full.elements:
        n_sf = len(full.symmetry_functions[el])
        G = raw.get(el, np.zeros((1, n_sf)))
        stats[el] = np.stack([G.min(0), G.max(0), G.mean(0), G.std(0)], axis=1)
    n2p2.write_scaling(directory / "scaling.data", full.elements, stats)
    prune_by_range(nn, directory / "scaling.data", threshold)

    def columns(settings, el):
        """Indices of the SFs of ``settings`` among those of ``full`` (same lines)."""
        lines = {sf.line for sf in settings.symmetry_functions[el]}
        return [i for i, sf in enumerate(full.symmetry_functions[el]) if sf.line in lines]

    def write_statistics():
        """scaling.data of the SFs now in input.nn, from the raw values above."""
        kept = n2p2.read_settings(nn)
        n2p2.write_scaling(directory / "scaling.data", kept.elements, _sf_statistics(
            {el: G[:, columns(kept, el)] for el, G in raw.items()},
            {el: len(kept.symmetry_functions[el]) for el in kept.elements}))
        return kept

    if max_tail is not None:                   # needs the statistics of the kept SFs
        write_statistics()
        prune_by_tail(nn, directory / "scaling.data", max_tail)
    pruned = write_statistics()
    report = []
    for el in full.elements:
        keep = columns(pruned, el)
        sizes = full.layer_sizes(el)
        name = n2p2.weights_filename(el)
        w = n2p2.read_weights(source / name, n2p2._n_connections(sizes))
        first = w[:sizes[0] * sizes[1]].reshape(sizes[0], sizes[1])
        new = np.concatenate([first[keep].ravel(), w[sizes[0] * sizes[1]:]])
        n2p2.write_weights(directory / name, new, pruned.layer_sizes(el))
        report.append(f"{el} {len(keep)}/{sizes[0]}")
    (directory / "pruned.txt").write_text(
        f"SFs kept with range >= {threshold:g}"
        + ("" if max_tail is None else f" and (max - mean)/sigma <= {max_tail:g}")
        + f" on {len(structures)} structures\n"
        + "\n".join(report) + "\n")
    return directory


def label_with_potential(structures, potential, data_file=None):
    """Label ``structures`` with a potential (the teacher of a synthetic data set).

    Parameters
    ----------
    structures : list of ase.Atoms
        Labelled in place: a ``SinglePointCalculator`` with the potential's energy
        (eV) and forces (eV/Å) is attached to each.
    potential : path
        n2p2 potential folder.
    data_file : path, optional
        Also write the labelled structures there in n2p2's ``input.data`` format.

    Returns
    -------
    list of ase.Atoms
        ``structures``.
    """
    from ase.calculators.singlepoint import SinglePointCalculator

    from hpcnnp.io import n2p2
    from hpcnnp.potential import Potential

    pot = Potential.from_n2p2(potential)
    for atoms in structures:
        res = pot.compute(atoms)
        atoms.calc = SinglePointCalculator(atoms, energy=res.energy, forces=res.forces)
    if data_file is not None:
        n2p2.write_data(data_file, structures)
    return structures


#: n2p2 training keywords of the synth5_A reference run (n2p2's example Kalman settings)
#: with the recipe that converges on LLZO/LCO-like data (force_weight 1, see README)
KALMAN_TRAINING = {
    "normalize_data_set": "ref", "use_short_forces": "", "random_seed": 7, "epochs": 10,
    "updater_type": 1, "parallel_mode": 0, "jacobian_mode": 1, "update_strategy": 0,
    "selection_mode": 2, "task_batch_size_energy": 1, "task_batch_size_force": 1,
    "test_fraction": 0.1, "force_weight": 1.0, "short_energy_fraction": 1.0,
    "short_force_fraction": 0.02, "short_energy_error_threshold": 0.0,
    "short_force_error_threshold": 1.0, "rmse_threshold_trials": 3,
    "weights_min": -1.0, "weights_max": 1.0, "nguyen_widrow_weights_short": "",
    "main_error_metric": "RMSEpa", "kalman_type": 0, "kalman_epsilon": 1.0e-2,
    "kalman_q0": 0.01, "kalman_qtau": 2.302, "kalman_qmin": 1.0e-6, "kalman_eta": 0.01,
    "kalman_etatau": 2.302, "kalman_etamax": 1.0,
}

#: training keywords of a settings file that ``with_training_settings`` replaces
_TRAINING_KEYS = set(KALMAN_TRAINING) | {"memorize_symfunc_results", "write_weights_epoch"}


def with_training_settings(nn_text, **changes):
    """``input.nn`` text with its training keywords replaced by :data:`KALMAN_TRAINING`
    updated with ``changes`` (value None drops a keyword, "" writes a flag)."""
    keep = [ln for ln in nn_text.splitlines()
            if not (ln.split() and ln.split()[0] in _TRAINING_KEYS)]
    settings = dict(KALMAN_TRAINING, **changes)
    block = [f"{k} {v}".rstrip() for k, v in settings.items() if v is not None]
    return "\n".join(keep + [""] + block) + "\n"
