"""Property quality factor Q of a potential against a reference calculator.

Each property p is computed twice, with the potential (p_ML) and with the reference
labeler (p_ref, any ASE calculator: CHGNet, xTB, DFT, ...), each at its *own*
equilibrium (the bulk is relaxed with each calculator first), and

    Q = sqrt( mean_p ((p_ML - p_ref) / p_ref)² )

is the root-mean-square relative error over all properties (Q = 0.1: 10 % typical
error).  Properties (units):

lattice constants (Å)
    Cell and positions relaxed together (:class:`ase.filters.FrechetCellFilter`, BFGS,
    ``fmax`` eV/Å, zero pressure); one value per group of cell vectors that are equal
    in the start structure (cubic: a; tetragonal/hexagonal: a, c; else a, b, c).
C11, C12, C44 (GPa)
    Finite strains ±δ (default δ = 0.5 %) of the relaxed cell in each of the six Voigt
    directions, ions relaxed at fixed strained cell ("relaxed-ion" constants),
    C_ij = (σ_i(+δ_j) - σ_i(-δ_j)) / (2δ) with ASE's stress sign (tension > 0) and
    engineering shear strains; reported as cubic averages C11 = <C11, C22, C33>,
    C12 = <C12, C13, C23>, C44 = <C44, C55, C66> (exact for cubic crystals; the full
    6x6 matrix is kept in ``details``).
Li vacancy formation energy (eV)
    E_f = E(N-1) - E(N) + μ_Li, neutral vacancy (one Li atom removed), positions
    relaxed at the fixed bulk cell.  μ_Li, the chemical potential of the removed
    atom, is by default the energy per atom of bcc Li metal relaxed with the *same*
    calculator (Li-rich limit, so that each calculator's energy zero cancels);
    ``mu="removal"`` uses μ = 0 (only meaningful when both calculators share the energy
    zero, e.g. a potential trained on this labeler's data) and a number is taken as μ
    in eV.  The HDNNP needs Li metal in its training data for the bcc reference to be
    trusted: say so when you report it.
surface energy (J/m²)
    γ = (E_slab - N_slab E_bulk/atom) / (2A) of a stoichiometric slab built by
    :func:`hpcnnp.structures.slab` from the relaxed bulk (two equivalent surfaces of
    area A each), positions relaxed at fixed cell.

Relative errors of properties with p_ref = 0 are undefined and left out of Q (they
are listed with "n/a").
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from ase.build import bulk
from ase.data import atomic_numbers, reference_states
from ase.filters import FrechetCellFilter
from ase.optimize import BFGS

from hpcnnp.errors import HpcnnpError
from hpcnnp.structures import slab
from hpcnnp.units import EV_A2_JM2, EV_A3_GPA, FORMAL_CHARGES

__all__ = ["quality_factor", "relax", "lattice_constants", "elastic_constants",
           "vacancy_formation_energy", "surface_energy", "compute_properties",
           "compare_properties", "QualityTable", "PropertyRow", "EV_A3_GPA",
           "EV_A2_JM2", "PROPERTIES"]

#: property groups computed by :func:`compute_properties`, in this order
PROPERTIES = ("lattice", "elastic", "vacancy", "surface")


def quality_factor(p_ml, p_ref):
    """Q = sqrt(mean(((p_ml - p_ref) / p_ref)²)) over pairs with p_ref != 0 and finite."""
    p_ml = np.asarray(p_ml, dtype=float)
    p_ref = np.asarray(p_ref, dtype=float)
    ok = np.isfinite(p_ml) & np.isfinite(p_ref) & (p_ref != 0)
    if not ok.any():
        return float("nan")
    rel = (p_ml[ok] - p_ref[ok]) / p_ref[ok]
    return float(np.sqrt(np.mean(rel ** 2)))


# ---------------------------------------------------------------------------------------
# building blocks (one calculator)
# ---------------------------------------------------------------------------------------

def relax(atoms, calculator, cell=True, fmax=0.01, steps=300, pressure=0.0):
    """Relax positions (and the cell with ``cell=True``); returns (atoms, converged).

    ``fmax`` in eV/Å (the cell filter scales stresses to the same unit), ``pressure``
    in GPa.
    """
    a = atoms.copy()
    a.calc = calculator
    target = FrechetCellFilter(a, scalar_pressure=pressure / EV_A3_GPA) if cell else a
    opt = BFGS(target, logfile=None)
    converged = bool(opt.run(fmax=fmax, steps=int(steps))) if steps > 0 else False
    return a, converged


def _length_groups(cell, tol=1e-3):
    lengths = np.linalg.norm(np.asarray(cell), axis=1)
    groups = []
    for k in range(3):
        for g in groups:
            if abs(lengths[g[0]] - lengths[k]) <= tol * lengths[g[0]]:
                g.append(k)
                break
        else:
            groups.append([k])
    return groups


def lattice_constants(relaxed, groups):
    """Mean cell-vector length (Å) of each group of cell vectors: {"a": .., "c": ..}."""
    lengths = np.linalg.norm(relaxed.cell.array, axis=1)
    names = {1: ["a"], 2: ["a", "c"], 3: ["a", "b", "c"]}[len(groups)]
    return {n: float(lengths[g].mean()) for n, g in zip(names, groups)}


def _voigt_strain(j, delta):
    e = np.zeros((3, 3))
    pairs = {0: (0, 0), 1: (1, 1), 2: (2, 2), 3: (1, 2), 4: (0, 2), 5: (0, 1)}
    p, q = pairs[j]
    if p == q:
        e[p, p] = delta
    else:
        e[p, q] = e[q, p] = 0.5 * delta         # engineering shear strain delta
    return e


def elastic_constants(relaxed, calculator, delta=0.005, relax_ions=True, fmax=0.01,
                      steps=200, directions=range(6)):
    """Elastic tensor C (6x6, GPa, Voigt) by central finite differences of the stress.

    Parameters
    ----------
    relaxed : ase.Atoms
        Structure at zero stress (relaxed with the same calculator).
    delta : float
        Strain amplitude (dimensionless).
    relax_ions : bool
        Relax positions in each strained cell (relaxed-ion constants).
    directions : iterable of int
        Voigt strain directions to apply (columns of C computed); others stay NaN.
    """
    C = np.full((6, 6), np.nan)
    cell0 = relaxed.cell.array.copy()
    for j in directions:
        sig = []
        for sign in (+1, -1):
            a = relaxed.copy()
            a.set_cell(cell0 @ (np.eye(3) + sign * _voigt_strain(j, delta)).T,
                       scale_atoms=True)
            a.calc = calculator
            if relax_ions and len(a) > 1 and steps > 0:
                a, _ = relax(a, calculator, cell=False, fmax=fmax, steps=steps)
            sig.append(np.asarray(a.get_stress(voigt=True)))
        C[:, j] = (sig[0] - sig[1]) / (2.0 * delta) * EV_A3_GPA
    return C


def cubic_averages(C):
    """C11, C12, C44 (GPa) as averages over the cubic-equivalent components."""
    return {"C11": float(np.nanmean([C[0, 0], C[1, 1], C[2, 2]])),
            "C12": float(np.nanmean([C[0, 1], C[0, 2], C[1, 2],
                                     C[1, 0], C[2, 0], C[2, 1]])),
            "C44": float(np.nanmean([C[3, 3], C[4, 4], C[5, 5]]))}


def _bcc_metal(element, calculator, fmax, steps):
    ref = reference_states[atomic_numbers[element]] or {}
    a0 = ref.get("a", 3.5) if ref.get("symmetry") == "bcc" else 3.44
    metal = bulk(element, "bcc", a=a0, cubic=True)
    relaxed, _ = relax(metal, calculator, cell=True, fmax=fmax, steps=steps)
    return relaxed.get_potential_energy() / len(relaxed)


def vacancy_formation_energy(relaxed, calculator, element="Li", index=None, mu="bcc",
                             fmax=0.01, steps=200):
    """Neutral vacancy formation energy (eV) and the μ used (see module docstring).

    Returns
    -------
    (E_f, details dict: index, mu, mu_reference, E_perfect, E_defect)
    """
    symbols = np.array(relaxed.get_chemical_symbols())
    candidates = np.flatnonzero(symbols == element)
    if not len(candidates):
        raise HpcnnpError(f"vacancy: no {element} atom in the structure")
    index = int(candidates[0] if index is None else index)
    if symbols[index] != element:
        raise HpcnnpError(f"vacancy: atom {index} is {symbols[index]}, not {element}")
    perfect = relaxed.copy()
    perfect.calc = calculator
    e_perfect = perfect.get_potential_energy()
    defect = relaxed.copy()
    del defect[index]
    defect, _ = relax(defect, calculator, cell=False, fmax=fmax, steps=steps)
    e_defect = defect.get_potential_energy()
    if isinstance(mu, str):
        if mu == "bcc":
            mu_val, mu_ref = _bcc_metal(element, calculator, fmax, steps), \
                f"bcc {element} metal (relaxed, same calculator)"
        elif mu == "removal":
            mu_val, mu_ref = 0.0, "0 (removal energy)"
        else:
            raise HpcnnpError(f"vacancy: unknown chemical potential {mu!r} "
                              "(bcc, removal or a number in eV)")
    else:
        mu_val, mu_ref = float(mu), f"{float(mu):g} eV (given)"
    return e_defect - e_perfect + mu_val, {"index": index, "mu": mu_val,
                                           "mu_reference": mu_ref,
                                           "E_perfect": e_perfect, "E_defect": e_defect}


def surface_energy(relaxed, calculator, hkl=(0, 0, 1), layers=None, vacuum=15.0,
                   relax_slab=True, fmax=0.02, steps=200):
    """Surface energy (J/m²) of a stoichiometric (hkl) slab of the relaxed bulk."""
    unknown = sorted(set(relaxed.get_chemical_symbols()) - set(FORMAL_CHARGES))
    if unknown and not np.any(relaxed.get_initial_charges()):
        raise HpcnnpError(f"surface energy: the slab builder chooses terminations by "
                          f"formal charges, known for {' '.join(FORMAL_CHARGES)} only; "
                          f"set initial charges for {' '.join(unknown)}")
    bulk = relaxed.copy()
    bulk.calc = calculator
    e_bulk = bulk.get_potential_energy() / len(bulk)
    s = slab(relaxed, tuple(hkl), layers=layers, vacuum=vacuum)
    area = float(s.info.get("surface_area", np.linalg.norm(np.cross(s.cell[0], s.cell[1]))))
    if relax_slab and steps > 0:
        s, _ = relax(s, calculator, cell=False, fmax=fmax, steps=steps)
    else:
        s.calc = calculator
    e_slab = s.get_potential_energy()
    gamma = (e_slab - len(s) * e_bulk) / (2.0 * area) * EV_A2_JM2
    return gamma, {"n_atoms": len(s), "area_A2": area, "E_slab": e_slab,
                   "E_bulk_per_atom": e_bulk, "hkl": tuple(int(x) for x in hkl)}


# ---------------------------------------------------------------------------------------
# all properties, both calculators
# ---------------------------------------------------------------------------------------

def compute_properties(bulk, calculator, properties=PROPERTIES, fmax=0.01, steps=300,
                       delta=0.005, vacancy_element="Li", vacancy_index=None, mu="bcc",
                       surface_hkl=(0, 0, 1), surface_layers=None, log=None):
    """All requested properties of one structure with one calculator.

    Returns
    -------
    values : dict name -> (value, unit)
    details : dict with the relaxed bulk, C matrix, vacancy and slab details
    """
    say = log or (lambda msg: None)
    values, details = {}, {}
    groups = _length_groups(bulk.cell.array)
    say("relaxing the bulk (cell + positions)")
    relaxed, conv = relax(bulk, calculator, cell=True, fmax=fmax, steps=steps)
    details["relaxed"] = relaxed
    details["bulk_converged"] = conv
    if "lattice" in properties:
        for k, v in lattice_constants(relaxed, groups).items():
            values[k] = (v, "Å")
    if "elastic" in properties:
        say("elastic constants (12 strained cells)")
        C = elastic_constants(relaxed, calculator, delta=delta, fmax=fmax, steps=steps)
        details["C"] = C
        for k, v in cubic_averages(C).items():
            values[k] = (v, "GPa")
    if "vacancy" in properties:
        say(f"{vacancy_element} vacancy")
        ef, det = vacancy_formation_energy(relaxed, calculator, vacancy_element,
                                           vacancy_index, mu, fmax=fmax, steps=steps)
        details["vacancy"] = det
        values[f"E_vac({vacancy_element})"] = (ef, "eV")
    if "surface" in properties:
        hkl = "".join(str(int(x)) for x in surface_hkl)
        say(f"({hkl}) surface")
        gamma, det = surface_energy(relaxed, calculator, surface_hkl, surface_layers,
                                    fmax=max(fmax, 0.02), steps=steps)
        details["surface"] = det
        values[f"gamma({hkl})"] = (gamma, "J/m²")
    return values, details


@dataclass
class PropertyRow:
    """One property: value with the potential and with the reference, relative error."""

    name: str
    unit: str
    ml: float
    ref: float

    @property
    def rel_error(self):
        if not (np.isfinite(self.ml) and np.isfinite(self.ref)) or self.ref == 0:
            return float("nan")
        return (self.ml - self.ref) / self.ref


@dataclass
class QualityTable:
    """Property rows and the quality factor Q (see the module docstring)."""

    rows: list
    structure: str = ""
    notes: list = field(default_factory=list)
    details_ml: dict = field(default_factory=dict)
    details_ref: dict = field(default_factory=dict)

    @property
    def Q(self):
        return quality_factor([r.ml for r in self.rows], [r.ref for r in self.rows])

    def csv(self):
        lines = ["property,unit,p_ML,p_ref,relative_error"]
        for r in self.rows:
            lines.append(f"{r.name},{r.unit},{r.ml:.8g},{r.ref:.8g},{r.rel_error:.6g}")
        lines.append(f"Q,,,,{self.Q:.6g}")
        return "\n".join(lines) + "\n"

    def markdown(self):
        out = ["| property | unit | p_ML | p_ref | relative error |",
               "|---|---|---:|---:|---:|"]
        for r in self.rows:
            rel = "n/a" if not np.isfinite(r.rel_error) else f"{100 * r.rel_error:+.1f} %"
            out.append(f"| {r.name} | {r.unit} | {r.ml:.4g} | {r.ref:.4g} | {rel} |")
        out.append(f"| **Q** | | | | **{self.Q:.3f}** |")
        return "\n".join(out) + "\n"


def compare_properties(bulk, ml_calculator, ref_calculator, log=None, **options):
    """Properties with the potential and the reference and their Q.

    ``options`` go to :func:`compute_properties` (``properties``, ``fmax``, ``steps``,
    ``delta``, ``mu``, ``surface_hkl``, ...).
    """
    say = log or (lambda msg: None)
    say("potential:")
    ml, det_ml = compute_properties(bulk, ml_calculator, log=say, **options)
    say("reference:")
    ref, det_ref = compute_properties(bulk, ref_calculator, log=say, **options)
    rows = [PropertyRow(k, ml[k][1], ml[k][0], ref[k][0]) for k in ml if k in ref]
    notes = []
    for name, det in (("potential", det_ml), ("reference", det_ref)):
        if not det.get("bulk_converged", True):
            notes.append(f"bulk relaxation with the {name} did not converge within the "
                         "step limit")
    if "vacancy" in det_ml:
        notes.append(f"vacancy chemical potential: {det_ml['vacancy']['mu_reference']}")
    return QualityTable(rows, structure=bulk.info.get("structure_class",
                                                      bulk.get_chemical_formula()),
                        notes=notes, details_ml=det_ml, details_ref=det_ref)
