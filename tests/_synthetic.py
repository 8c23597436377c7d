"""Helpers shared by the engine tests: small synthetic n2p2 potentials and random
periodic structures (kept out of conftest.py so that test folders with their own
conftest.py do not shadow them)."""

# ---------------------------------------------------------------------------------------
# Small synthetic potentials written in n2p2's format (for derivative, invariance,
# calculator and error tests).  Units: Å and eV (ASE units).
# ---------------------------------------------------------------------------------------

import numpy as np

SYNTH_ELEMENTS = ("Li", "O")


def synth_symfunctions(elements=SYNTH_ELEMENTS, rc=6.0):
    """``symfunction_short`` argument strings: types 2, 3 and 9 on two elements, r_s = 0
    and r_s != 0, zeta 1, 2 and 4.5 (non-integer), lambda +1 and -1, several r_c."""
    a, b = elements
    lines = []
    for c in elements:
        lines += [
            f"{c} 2 {a} 0.5 0.0 {rc}",
            f"{c} 2 {b} 1.0 1.5 {rc - 0.5}",
            f"{c} 2 {a} 0.2 2.0 {rc - 1.5}",
            f"{c} 2 {b} 0.3 0.8 {rc}",
            f"{c} 3 {a} {b} 0.1 1 1.0 {rc}",
            f"{c} 3 {a} {a} 0.05 -1 2.0 {rc - 0.5} 0.5",
            f"{c} 3 {b} {b} 0.02 1 4.5 {rc}",
            f"{c} 9 {a} {b} 0.1 -1 4.5 {rc} 1.0",
            f"{c} 9 {a} {a} 0.03 1 2.0 {rc - 1.0}",
            f"{c} 9 {b} {b} 0.05 -1 1.0 {rc}",
        ]
    return lines


def synth_cutoffs(elements=SYNTH_ELEMENTS, rc=6.0):
    """The distinct r_c values of :func:`synth_symfunctions`."""
    return sorted({rc, rc - 0.5, rc - 1.0, rc - 1.5})


def weighted_symfunctions(elements=SYNTH_ELEMENTS, rc=6.0):
    """Element-weighted types 12 (``Ec 12 eta rs rc``) and 13 (``Ec 13 eta rs lambda
    zeta rc``): r_s = 0 and != 0, zeta 1, 2, 4.5, lambda +-1, the r_c values of
    :func:`synth_cutoffs`."""
    lines = []
    for c in elements:
        lines += [
            f"{c} 12 0.5 0.0 {rc}",
            f"{c} 12 1.0 1.5 {rc - 0.5}",
            f"{c} 12 0.2 2.0 {rc - 1.5}",
            f"{c} 13 0.1 0.0 1 1.0 {rc}",
            f"{c} 13 0.05 0.5 -1 2.0 {rc - 0.5}",
            f"{c} 13 0.02 0.0 1 4.5 {rc}",
            f"{c} 13 0.03 1.0 -1 1.0 {rc - 1.0}",
        ]
    return lines


def compact_symfunctions(subtype, elements=SYNTH_ELEMENTS, rc=6.0):
    """Polynomial SFs 20-25 with compact-function core *subtype* (p1..p4, p1a..p4a, e):
    radial intervals centred at 0 (cutoff-like, r_l = -r_c) and bumps with r_l >= 0,
    angle intervals inside [0, 180] and centred at 0 and 180 (reaching beyond)."""
    a, b = elements
    s = subtype
    lines = []
    for c in elements:
        lines += [
            f"{c} 20 {a} {-rc} {rc} {s}", f"{c} 20 {b} 0.0 {rc - 1.0} {s}",
            f"{c} 20 {a} 1.5 4.5 {s}",
            f"{c} 21 {a} {b} {-rc} {rc} 0.0 180.0 {s}",
            f"{c} 21 {a} {a} 0.5 5.5 -90.0 90.0 {s}",
            f"{c} 21 {b} {b} -5.0 5.0 90.0 270.0 {s}",
            f"{c} 22 {a} {b} {-rc} {rc} 60.0 180.0 {s}",
            f"{c} 22 {a} {a} 1.0 {rc} 49.1 169.1 {s}",
            f"{c} 22 {b} {b} -5.5 5.5 -90.0 90.0 {s}",
            f"{c} 23 {-rc} {rc} {s}", f"{c} 23 1.0 5.0 {s}",
            f"{c} 24 {-rc} {rc} 0.0 120.0 {s}", f"{c} 24 0.5 5.5 90.0 270.0 {s}",
            f"{c} 25 {-rc} {rc} -90.0 90.0 {s}", f"{c} 25 1.0 5.5 60.0 180.0 {s}",
        ]
    return lines


def compact_boundaries(rc=6.0):
    """The positive interval ends r_l, r_c of :func:`compact_symfunctions` (where the
    p1 core has a jump of its second derivative)."""
    return sorted({rc, rc - 1.0, 1.5, 4.5, 0.5, 5.5, 5.0, 1.0})


def write_synthetic_potential(folder, structures, *, elements=SYNTH_ELEMENTS,
                              symfunctions=None, cutoff_type=6, cutoff_alpha=0.0,
                              nodes=(6, 5), activations=("t", "t", "l"),
                              scaling="scalecenter", scale_min=-1.0, scale_max=1.0,
                              normalize_nodes=False, normalization=None, atom_energy=None,
                              weight_scale=1.0, output_scale=1.0, seed=0):
    """Write input.nn, scaling.data and weights.ZZZ.data of a random HDNNP into *folder*.

    The SF statistics (min, max, mean, sigma) are those of *structures* (ase.Atoms),
    computed with the potential's own (descriptor-only) SF code, so that the scaled
    network inputs are O(1).  Weights are N(0, weight_scale^2 / fan_in); the output
    layer is additionally multiplied by *output_scale*.  Returns the folder.
    """
    from pathlib import Path

    from hpcnnp.io import n2p2
    from hpcnnp.potential import Potential

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    sfs = synth_symfunctions(elements) if symfunctions is None else symfunctions
    flags = {"none": [], "scale": ["scale_symmetry_functions"],
             "center": ["center_symmetry_functions"],
             "scalecenter": ["scale_symmetry_functions", "center_symmetry_functions"],
             "scalesigma": ["scale_symmetry_functions_sigma"]}[scaling]
    text = [f"number_of_elements {len(elements)}", "elements " + " ".join(elements),
            f"cutoff_type {cutoff_type} {cutoff_alpha!r}"]
    text += flags + [f"scale_min_short {scale_min!r}", f"scale_max_short {scale_max!r}"]
    text += [f"global_hidden_layers_short {len(nodes)}",
             "global_nodes_short " + " ".join(str(n) for n in nodes),
             "global_activation_short " + " ".join(activations)]
    if normalize_nodes:
        text.append("normalize_nodes")
    if normalization is not None:
        text += [f"mean_energy {normalization[0]!r}", f"conv_energy {normalization[1]!r}",
                 f"conv_length {normalization[2]!r}"]
    for el, e0 in (atom_energy or {}).items():
        text.append(f"atom_energy {el} {e0!r}")
    text += ["symfunction_short " + s for s in sfs]
    (folder / "input.nn").write_text("\n".join(text) + "\n")

    settings = n2p2.read_settings(folder / "input.nn")
    descriptor = Potential(settings)
    values = {el: [] for el in settings.elements}
    for atoms in structures:
        for sym, g in zip(atoms.get_chemical_symbols(), descriptor.symmetry_functions(atoms)):
            values[sym].append(g)
    stats = {}
    for el in settings.elements:
        n_sf = settings.n_sf(el)
        g = np.array(values[el]) if values[el] else np.zeros((0, n_sf))
        if len(g) >= 2:
            gmin, gmax, mean, sigma = g.min(0), g.max(0), g.mean(0), g.std(0, ddof=1)
        else:
            gmin, gmax, mean, sigma = (np.zeros(n_sf), np.ones(n_sf), np.full(n_sf, 0.5),
                                       np.ones(n_sf))
        flat = gmax - gmin < 1e-8        # SFs that never vary: give them a unit range
        gmin, gmax = np.where(flat, gmin - 0.5, gmin), np.where(flat, gmax + 0.5, gmax)
        sigma = np.where(sigma < 1e-8, 1.0, sigma)
        stats[el] = np.column_stack([gmin, gmax, mean, sigma])
    n2p2.write_scaling(folder / "scaling.data", settings.elements, stats)

    rng = np.random.default_rng(seed)
    for el in settings.elements:
        sizes = settings.layer_sizes(el)
        w = []
        for k, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            scale = weight_scale / np.sqrt(n_in) * (output_scale if k == len(sizes) - 2 else 1)
            w.append(rng.normal(0.0, scale, n_in * n_out))
            w.append(rng.normal(0.0, 0.1 * weight_scale, n_out))
        n2p2.write_weights(folder / n2p2.weights_filename(el), np.concatenate(w), sizes)
    return folder


def random_structure(rng, n_atoms, *, cell=None, periodic=True, symbols=SYNTH_ELEMENTS,
                     min_distance=1.3, avoid=(), avoid_tolerance=2e-4, max_tries=2000):
    """Random structure with all (image) distances >= *min_distance* and none within
    *avoid_tolerance* of a value in *avoid* (e.g. the SF cutoffs, for the HARD cutoff).

    cell: 3x3 array (rows = lattice vectors) for periodic structures; for clusters
    the atoms fill a sphere of radius ~ (n_atoms)^(1/3) * 1.4 Å around the origin.
    """
    from ase import Atoms
    from ase.neighborlist import neighbor_list

    species = [symbols[k % len(symbols)] for k in range(n_atoms)]
    rng.shuffle(species)
    reach = max([min_distance] + [a + 2 * avoid_tolerance for a in avoid])
    for _ in range(max_tries):
        if periodic:
            frac = rng.random((n_atoms, 3))
            atoms = Atoms(species, scaled_positions=frac, cell=cell, pbc=True)
        else:
            radius = 1.4 * n_atoms ** (1 / 3)
            pts = rng.normal(size=(n_atoms, 3))
            pts *= (radius * rng.random(n_atoms) ** (1 / 3) / np.linalg.norm(pts, axis=1))[:, None]
            atoms = Atoms(species, positions=pts, pbc=False)
        d = neighbor_list("d", atoms, reach, self_interaction=False)
        if len(d) and d.min() < min_distance:
            continue
        if any(np.any(np.abs(d - a) < avoid_tolerance) for a in avoid):
            continue
        return atoms
    raise RuntimeError("random_structure: no acceptable structure found")


def triclinic_cell(rng, lengths=(6.0, 6.5, 7.0), skew=0.25):
    """A random triclinic cell: diagonal *lengths* plus random off-diagonal shear."""
    cell = np.diag(lengths).astype(float)
    cell += skew * np.mean(lengths) * np.triu(rng.uniform(-1, 1, (3, 3)), 1)
    cell += 0.05 * np.mean(lengths) * np.tril(rng.uniform(-1, 1, (3, 3)), -1)
    return cell


#: number density of the random training structures (atoms/Å^3)
TRAINING_DENSITY = 0.035


def random_cubic_structures(rng, count, n_min, n_max, *, density=TRAINING_DENSITY,
                            min_distance=1.4):
    """``count`` random periodic structures of ``n_min``..``n_max`` atoms (inclusive),
    each in a cube at ``density`` atoms/Å^3 with distances >= ``min_distance`` Å."""
    structures = []
    for _ in range(count):
        n = int(rng.integers(n_min, n_max + 1))
        edge = (n / density) ** (1.0 / 3.0)
        structures.append(random_structure(rng, n, cell=np.diag([edge] * 3),
                                           min_distance=min_distance))
    return structures
