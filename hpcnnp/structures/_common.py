"""Shared helpers: formal charges, provenance, composition, distance checks."""

from __future__ import annotations

from collections import Counter

import numpy as np

__all__ = [
    "FORMAL_CHARGES", "set_formal_charges", "total_charge", "provenance",
    "composition", "formula", "min_distance", "short_pairs",
]

#: Formal oxidation states used unless a builder states otherwise
#: (per-atom values are stored as ``atoms.get_initial_charges()``).
FORMAL_CHARGES = {"Li": 1, "La": 3, "Zr": 4, "Co": 3, "O": -2}

#: Order of elements in formulas.
ELEMENT_ORDER = ("Li", "La", "Zr", "Co", "O")


def set_formal_charges(atoms, overrides=None):
    """Store formal charges as initial charges (``overrides``: index -> q)."""
    q = np.array([FORMAL_CHARGES[s] for s in atoms.get_chemical_symbols()], float)
    if overrides:
        for i, v in overrides.items():
            q[i] = v
    atoms.set_initial_charges(q)
    return atoms


def total_charge(atoms):
    """Sum of the formal charges (per-atom initial charges if set)."""
    q = atoms.get_initial_charges()
    if len(q) and np.any(q != 0):
        return float(q.sum())
    return float(sum(FORMAL_CHARGES[s] for s in atoms.get_chemical_symbols()))


def composition(atoms):
    """Element -> count (dict, ordered Li La Zr Co O then others)."""
    c = Counter(atoms.get_chemical_symbols())
    out = {e: c[e] for e in ELEMENT_ORDER if c.get(e)}
    out.update({e: n for e, n in sorted(c.items()) if e not in out})
    return out


def formula(atoms_or_comp):
    comp = atoms_or_comp if isinstance(atoms_or_comp, dict) else composition(atoms_or_comp)
    return "".join(f"{e}{n}" for e, n in comp.items() if n)


def provenance(atoms, builder, parameters, reference, structure_class, **extra):
    """Record how a structure was made in ``atoms.info``."""
    info = atoms.info
    parent = {k: info[k] for k in ("builder", "structure_class") if k in info}
    for k in list(info):
        if k not in ("supercell",):
            del info[k]
    info["builder"] = builder
    info["parameters"] = {k: (list(v) if isinstance(v, tuple) else v)
                          for k, v in parameters.items()}
    info["reference"] = reference
    info["structure_class"] = structure_class
    info["formula"] = formula(atoms)
    info["natoms"] = len(atoms)
    info["formal_charge_total"] = total_charge(atoms)
    if parent:
        info["parent"] = parent
    info.update(extra)
    return atoms


def _nl(atoms, cutoff):
    from ase.neighborlist import neighbor_list
    return neighbor_list("ijd", atoms, float(cutoff), self_interaction=False)


def min_distance(atoms, cutoff=3.0):
    """Smallest interatomic distance (periodic, cell list); inf if > cutoff."""
    i, j, d = _nl(atoms, cutoff)
    return float(d.min()) if len(d) else float("inf")


def short_pairs(atoms, rmin):
    """Pairs (i < j) closer than ``rmin`` (Å), with their distances."""
    i, j, d = _nl(atoms, rmin)
    m = i < j
    return i[m], j[m], d[m]


def min_distance_by_pair(atoms, cutoff=3.0):
    """{(el1, el2): smallest distance} for element pairs found within cutoff."""
    i, j, d = _nl(atoms, cutoff)
    sym = np.array(atoms.get_chemical_symbols())
    out = {}
    for a, b, r in zip(sym[i], sym[j], d):
        key = tuple(sorted((a, b)))
        if r < out.get(key, np.inf):
            out[key] = float(r)
    return out


def is_cation(sym):
    return FORMAL_CHARGES.get(sym, 0) > 0


def unique_periodic(frac, numbers, tol=1e-3):
    """Indices of the unique atoms among fractional coords (periodic, same species).

    ``tol`` is in fractional units.  Positions are wrapped into [0, 1).
    """
    from scipy.spatial import cKDTree
    f = np.mod(np.asarray(frac, float), 1.0)
    f[f > 1 - 1e-12] = 0.0
    keep = np.ones(len(f), bool)
    tree = cKDTree(f, boxsize=1.0 + 1e-12)
    for i, j in sorted(tree.query_pairs(tol)):
        if keep[i] and keep[j] and numbers[i] == numbers[j]:
            keep[j] = False
    return np.flatnonzero(keep)
