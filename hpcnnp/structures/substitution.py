"""Substitutional doping of a built structure: ``count`` host atoms -> a dopant."""

from __future__ import annotations

import numpy as np

from hpcnnp.errors import StructureError

__all__ = ["substitute"]


def substitute(atoms, element="Co", site="La", count=1, seed=0):
    """Replace ``count`` randomly chosen (seeded) ``site`` atoms by ``element`` in place.

    Uniform over the whole cell, so a segregation profile measured afterwards comes
    from the MD and not from the start structure.  Meant for isovalent substitution
    (Co3+ on La3+, the default): charge neutrality is the caller's business.  The
    substitution is recorded in ``atoms.info["substitution"]``.

    Parameters
    ----------
    atoms : ase.Atoms
        Changed in place (and returned).
    element, site : str
        Dopant and host element symbols.
    count : int
        Number of host atoms replaced, 1 .. number of ``site`` atoms.
    seed : int

    Raises
    ------
    StructureError
        The cell has no ``site`` atoms, or fewer than ``count``.
    """
    sym = np.array(atoms.get_chemical_symbols(), dtype=object)
    hosts = np.flatnonzero(sym == site)
    count = int(count)
    if len(hosts) == 0:
        raise StructureError(f"substitution of {site} by {element}: the cell "
                             f"({atoms.get_chemical_formula()}) has no {site} atoms")
    if not 0 < count <= len(hosts):
        raise StructureError(f"substitution of {site} by {element}: count {count} must be "
                             f"1..{len(hosts)} (number of {site} atoms in the cell)")
    chosen = np.random.default_rng(seed).choice(hosts, count, replace=False)
    sym[chosen] = element
    atoms.set_chemical_symbols(list(sym))
    atoms.info["substitution"] = f"{count} {element} on {site} (random, seed {seed})"
    return atoms
