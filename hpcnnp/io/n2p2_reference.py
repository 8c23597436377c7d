"""n2p2's structure arithmetic, reproduced operation by operation.

Every *reference* number n2p2 prints (``energy.comp``, ``forces.comp``,
``output.data``, ``energy.out`` ...) went through n2p2's own arithmetic: wrapping of
periodic positions into the cell, removal and re-addition of the ``atom_energy``
offsets, conversion to the normalised units of ``mean_energy``/``conv_energy``/
``conv_length`` and back.  :class:`N2p2Structure` repeats it so that these columns
come out bit-identical to n2p2's files (n2p2-formats.md §1, §9, §13).  n2p2's default
build (``-O3 -march=native`` on an FMA-capable x86-64, as for ``shared/refdata``) lets
GCC contract ``a*b + c`` into fused multiply-adds; the emulation does the same
(``contract=True``, correctly rounded :func:`fma`).

Used by :mod:`hpcnnp.predict`; :mod:`hpcnnp.io.n2p2_output` writes the results.
"""

from __future__ import annotations

import math
import struct
from collections import Counter
from dataclasses import dataclass

import numpy as np

__all__ = ["fma", "n2p2_inverse_box", "n2p2_remap", "N2p2Structure"]

# ---------------------------------------------------------------------------------------
# Correctly rounded fused multiply-add (Python < 3.13 has no math.fma)
# ---------------------------------------------------------------------------------------
#
# Boldo & Melquiond, "Emulation of FMA and correctly rounded sums: proved algorithms
# using rounding to odd", IEEE Trans. Comput. 57, 462 (2008): with the exact product
# a*b = uh + ul (Dekker/Veltkamp) and c + uh = th + tl (Knuth's TwoSum),
# RN(th + RO(tl + ul)) is the correctly rounded a*b + c (no overflow/underflow).

_SPLITTER = 134217729.0          # 2**27 + 1


def _two_sum(a, b):
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def _two_prod(a, b):
    p = a * b
    c = _SPLITTER * a
    ah = c - (c - a)
    al = a - ah
    c = _SPLITTER * b
    bh = c - (c - b)
    bl = b - bh
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


def _fma_scalar(a, b, c):
    uh, ul = _two_prod(a, b)
    th, tl = _two_sum(c, uh)
    v, e = _two_sum(tl, ul)
    if e != 0.0 and not struct.unpack("<q", struct.pack("<d", v))[0] & 1:
        v = math.nextafter(v, math.inf if e > 0.0 else -math.inf)
    return th + v


def fma(a, b, c):
    """Correctly rounded ``a*b + c`` (one rounding), for floats or numpy arrays.

    Exact as long as nothing overflows and ``a*b`` is not subnormal (always the case
    for positions, cells and energies).
    """
    if all(isinstance(x, float) for x in (a, b, c)):
        return _fma_scalar(a, b, c)
    a, b, c = np.broadcast_arrays(*(np.asarray(x, dtype=np.float64) for x in (a, b, c)))
    uh, ul = _two_prod(a, b)
    th, tl = _two_sum(c, uh)
    v, e = _two_sum(tl, ul)
    even = (v.view(np.int64) & 1) == 0
    v = np.where((e != 0.0) & even, np.nextafter(v, np.where(e > 0.0, np.inf, -np.inf)), v)
    return th + v


def _madd(a, b, c, contract):
    """``a*b + c`` as n2p2 computes it (fused when compiled with FMA contraction)."""
    return fma(a, b, c) if contract else a * b + c


# ---------------------------------------------------------------------------------------
# n2p2's structure arithmetic
# ---------------------------------------------------------------------------------------

def n2p2_inverse_box(cell, contract=True):
    """n2p2's ``Structure::calculateInverseBox`` (rows of ``cell`` = lattice vectors).

    Returns the (3, 3) inverse with n2p2's operation order (cofactors ``a*b - c*d``,
    a determinant from six triple products), so that :func:`n2p2_remap` reproduces
    n2p2's wrapped positions bit for bit.
    """
    b = [[float(x) for x in row] for row in np.asarray(cell, dtype=float)]

    def cof(p, q, r, s):                        # p*q - r*s
        return _madd(-r, s, p * q, contract)

    t = [(b[0][0] * b[1][1], b[2][2], 1.0), (b[1][0] * b[2][1], b[0][2], 1.0),
         (b[2][0] * b[0][1], b[1][2], 1.0), (b[2][0] * b[1][1], b[0][2], -1.0),
         (b[0][0] * b[2][1], b[1][2], -1.0), (b[1][0] * b[0][1], b[2][2], -1.0)]
    det = t[0][0] * t[0][1]
    for m, z, sign in t[1:]:
        det = _madd(sign * m, z, det, contract)
    inv = 1.0 / det
    ib = [[cof(b[1][1], b[2][2], b[2][1], b[1][2]), cof(b[2][1], b[0][2], b[0][1], b[2][2]),
           cof(b[0][1], b[1][2], b[1][1], b[0][2])],
          [cof(b[2][0], b[1][2], b[1][0], b[2][2]), cof(b[0][0], b[2][2], b[2][0], b[0][2]),
           cof(b[1][0], b[0][2], b[0][0], b[1][2])],
          [cof(b[1][0], b[2][1], b[2][0], b[1][1]), cof(b[2][0], b[0][1], b[0][0], b[2][1]),
           cof(b[0][0], b[1][1], b[1][0], b[0][1])]]
    return np.array(ib) * inv


def _combine(coef, vectors, contract):
    """sum_k coef[:, k] * vectors[k] in n2p2's order ((c0 v0 + c1 v1) + c2 v2)."""
    v = np.asarray(vectors, dtype=float)
    out = coef[:, 0:1] * v[0]
    out = _madd(coef[:, 1:2], v[1], out, contract)
    return _madd(coef[:, 2:3], v[2], out, contract)


def n2p2_remap(positions, cell, contract=True):
    """Wrap positions into the cell exactly as n2p2's ``Structure::remap`` does.

    Fractional coordinates f = r · invbox are mapped to [0, 1) (``f -= (int) f`` above
    1, ``f += 1 - (int) f`` below 0, 1 -> 0) and converted back, r = f · box.
    """
    pos = np.asarray(positions, dtype=float).reshape(-1, 3)
    if len(pos) == 0:
        return pos.copy()
    frac = _combine(pos, n2p2_inverse_box(cell, contract), contract)
    frac = np.where(frac > 1.0, frac - np.trunc(frac), frac)
    frac = np.where(frac < 0.0, frac + (1.0 - np.trunc(frac)), frac)
    frac = np.where(frac == 1.0, 0.0, frac)
    return _combine(frac, np.asarray(cell, dtype=float), contract)


@dataclass
class N2p2Structure:
    """One structure of ``input.data`` after n2p2's reading and unit round trip.

    Built by :meth:`from_atoms`; the attributes are what n2p2 prints as reference
    values (physical units unless named ``*_int``).

    Attributes
    ----------
    index : int
        0-based structure index in the file.
    symbols : list of str
    numbers : ndarray (N,) of int
    periodic : bool
    positions : ndarray (N, 3)
        Wrapped into the cell (periodic), as the NNP is evaluated.
    positions_out, cell_out : ndarray
        As n2p2 writes them (after the round trip through normalised units).
    cell : ndarray (3, 3)
    comment : str
    charges_ref : ndarray (N,)
        Atomic reference charges (column 5 of the atom lines).
    energy_ref_int : float
        Reference energy without offsets in internal units (= physical without
        normalisation).
    energy_ref_predict : float
        Reference energy as nnp-predict prints it (``energy.out``, offsets added).
    energy_ref_dataset : float
        Reference energy as nnp-dataset prints it (``energy.comp``, offsets added).
    offset : float
        Sum of the atomic energy offsets (``E_offset``).
    forces_ref, forces_ref_int : ndarray (N, 3)
        Reference forces (physical after the round trip; internal units).
    """

    index: int
    line: int
    symbols: list
    numbers: np.ndarray
    periodic: bool
    positions: np.ndarray
    positions_out: np.ndarray
    cell: np.ndarray
    cell_out: np.ndarray
    comment: str
    charges_ref: np.ndarray
    energy_ref_int: float
    energy_ref_predict: float
    energy_ref_dataset: float
    offset: float
    forces_ref: np.ndarray
    forces_ref_int: np.ndarray

    @classmethod
    def from_atoms(cls, atoms, potential, index=None, contract=True):
        """Prepare an :class:`ase.Atoms` from :func:`hpcnnp.io.n2p2.iter_data`.

        ``potential`` supplies elements, ``atom_energy`` offsets and normalisation.
        """
        info = atoms.info
        index = info.get("n2p2_index", 0) if index is None else index
        symbols = atoms.get_chemical_symbols()
        n = len(symbols)
        periodic = bool(np.asarray(atoms.get_pbc()).all())
        pos = np.array(atoms.get_positions(), dtype=float)
        cell = np.array(atoms.get_cell(), dtype=float)
        if periodic:
            pos = n2p2_remap(pos, cell, contract)
        results = getattr(atoms.calc, "results", None) or {}
        e_file = float(results.get("energy", 0.0) or 0.0)
        f_file = results.get("forces")
        f_file = np.zeros((n, 3)) if f_file is None else np.array(f_file, dtype=float)

        counts = Counter(symbols)
        offsets = [(float(counts.get(el, 0)), potential.atom_energy[el])
                   for el in potential.elements]
        e_ref = e_file                                  # removeEnergyOffset
        for cnt, off in offsets:
            e_ref = _madd(-cnt, off, e_ref, contract)
        offset = 0.0                                    # getEnergyOffset
        for cnt, off in offsets:
            offset = _madd(cnt, off, offset, contract)

        norm = potential.settings.normalization
        pos_out, cell_out, f_ref, f_int = pos, cell, f_file, f_file
        if norm:
            mu, c_e, c_l = norm
            e_int = _madd(-float(n), mu, e_ref, contract) * c_e
            e_phys = _madd(float(n), mu, e_int / c_e, contract)
            a = c_e / c_l
            f_int = f_file * a
            f_ref = f_int * (1.0 / a)
            pos_out = (pos * c_l) * (1.0 / c_l)
            cell_out = (cell * c_l) * (1.0 / c_l) if periodic else cell
            e_dataset = e_phys + offset
        else:
            e_int = e_phys = e_ref
            e_dataset = None
        e_predict = e_phys                              # addEnergyOffset(ref)
        for cnt, off in offsets:
            e_predict = _madd(cnt, off, e_predict, contract)
        if e_dataset is None:                           # getEnergyWithOffset
            e_dataset = e_predict
        return cls(index=index, line=info.get("n2p2_line", 0), symbols=symbols,
                   numbers=np.asarray(atoms.get_atomic_numbers()), periodic=periodic,
                   positions=pos, positions_out=pos_out, cell=cell, cell_out=cell_out,
                   comment=str(info.get("comment", "")),
                   charges_ref=np.asarray(atoms.get_initial_charges(), dtype=float),
                   energy_ref_int=e_int, energy_ref_predict=e_predict,
                   energy_ref_dataset=e_dataset, offset=offset,
                   forces_ref=f_ref, forces_ref_int=f_int)

    def atoms(self):
        """The structure to evaluate (:class:`ase.Atoms`, wrapped positions)."""
        from ase import Atoms
        return Atoms(symbols=self.symbols, positions=self.positions,
                     cell=self.cell if self.periodic else np.zeros((3, 3)),
                     pbc=self.periodic)
