"""Amorphous / mixed structures: packings, melt-quench, LLZO-LCO mixtures,
Co-doped LLZO.

Densities
=========
Crystal (X-ray) densities of the builders' own unit cells (:func:`mass_density`):
cubic LLZO (a = 12.97 Å, Z = 8) 5.11 g/cm^3, LiCoO2 (a = 2.8156 Å,
c = 14.0542 Å, Z = 3) 5.05 g/cm^3.  Mixtures use ideal volume additivity
(harmonic mean by mass fraction), with the "LCO" mass fraction
w = n_Co M(LiCoO2) / M_total (capped at 1):
1/rho = w / 5.05 + (1 - w) / 5.11, giving 5.08-5.09 g/cm^3 for the five
models.  Amorphous phases are usually a few percent less dense than the
crystal; pass ``density=`` to override.

Packings versus melt-quench
===========================
Without a ``labeler`` (an ASE calculator) every "amorphous" builder returns a
**random packing** (``info["method"] == "random packing"``): right
composition, density and minimum distances, but no chemical short-range
order.  It is a start structure for a melt-quench, not a glass.  With a
labeler, :func:`amorphous` runs Langevin NVT MD at ``temperature`` and
quenches linearly to ``final_temperature`` (``info["method"] ==
"melt-quench"``).
"""

from __future__ import annotations

import numpy as np
from ase import Atoms

from hpcnnp.units import AMU_G_CM3, atomic_mass

from ._common import (ELEMENT_ORDER, FORMAL_CHARGES, composition, formula,
                      provenance, set_formal_charges, total_charge)
from .crystals import llzo_cubic, supercell
from .packing import PACK_MIN_DIST, random_packing

__all__ = ["MIXTURE_MODELS", "mixture", "co_doped_llzo", "co_doped_amorphous",
           "amorphous", "mass_density"]

#: sites of LLZO that Co substitutes (co_doped_llzo, co_doped_amorphous)
DOPANT_SITES = ("La", "Zr", "Li")

#: LLZO-LCO mixture compositions (models #1-#5, as specified for the project).
MIXTURE_MODELS = {
    1: {"Li": 42, "La": 12, "Zr": 4, "Co": 18, "O": 74},
    2: {"Li": 43, "La": 13, "Zr": 6, "Co": 22, "O": 86},
    3: {"Li": 29, "La": 10, "Zr": 5, "Co": 14, "O": 64},
    4: {"Li": 39, "La": 12, "Zr": 8, "Co": 26, "O": 98},
    5: {"Li": 32, "La": 13, "Zr": 6, "Co": 22, "O": 86},
}

RHO_LLZO = 5.11  # g/cm^3, X-ray density of llzo_cubic() (a = 12.97 Å)
RHO_LCO = 5.05   # g/cm^3, X-ray density of lco()


def _mass(comp):
    return float(sum(atomic_mass(e) * n for e, n in comp.items()))


def mass_density(atoms):
    """Mass density in g/cm^3."""
    return float(atoms.get_masses().sum() * AMU_G_CM3 / atoms.get_volume())


def _symbols(comp, k=1):
    out = []
    for e in list(ELEMENT_ORDER) + sorted(set(comp) - set(ELEMENT_ORDER)):
        out += [e] * (comp.get(e, 0) * k)
    return out


def _charge_balance(comp, k, rng):
    """Co oxidation states that make ``comp`` neutral (Li+ La3+ Zr4+ O2-).

    Returns (per-Co charges array, description dict).  All Co3+ if neutral;
    otherwise the smallest number of Co4+ (or Co2+) that compensates.
    """
    q3 = sum(FORMAL_CHARGES[e] * n for e, n in comp.items())
    nco = comp.get("Co", 0)
    if q3 == 0:
        return np.full(nco * k, 3.0), dict(assumption="all Co3+", n_Co3=nco, n_Co4=0, n_Co2=0,
                                           net_charge_all_Co3=0, mean_Co_oxidation=3.0)
    if q3 < 0 and -q3 <= nco:
        n4 = -q3
        desc = dict(assumption=f"{n4} Co4+ + {nco - n4} Co3+ per model cell", n_Co3=nco - n4,
                    n_Co4=n4, n_Co2=0)
        per = np.array([4.0] * n4 + [3.0] * (nco - n4))
    elif q3 > 0 and q3 <= nco:
        n2 = q3
        desc = dict(assumption=f"{n2} Co2+ + {nco - n2} Co3+ per model cell", n_Co3=nco - n2,
                    n_Co4=0, n_Co2=n2)
        per = np.array([2.0] * n2 + [3.0] * (nco - n2))
    else:
        raise ValueError(f"composition {comp} cannot be balanced by Co2+/3+/4+")
    desc["net_charge_all_Co3"] = q3
    desc["mean_Co_oxidation"] = float(per.mean())
    charges = np.concatenate([rng.permutation(per) for _ in range(k)])
    return charges, desc


def _replicas(natoms, n_unit):
    if natoms is None:
        return 1
    return max(1, int(np.ceil(natoms / n_unit - 1e-9)))


def _apply_charges(atoms, co_charges=None, overrides=None):
    set_formal_charges(atoms)
    q = atoms.get_initial_charges()
    if co_charges is not None:
        co = np.flatnonzero(np.array(atoms.get_chemical_symbols()) == "Co")
        q[co] = co_charges
    atoms.set_initial_charges(q)


def mixture(model=3, density=None, seed=0, natoms=None, table=None):
    """Random packing of the LLZO-LCO mixture model #1-#5.

    Compositions (per model cell): #1 Li42La12Zr4O74Co18 (150 atoms),
    #2 Li43La13Zr6O86Co22 (170), #3 Li29La10Zr5O64Co14 (122),
    #4 Li39La12Zr8O98Co26 (183), #5 Li32La13Zr6O86Co22 (159).

    Charge balance with Li+ La3+ Zr4+ O2-: #1 and #2 are neutral with Co3+;
    #3 needs 7 Co4+ + 7 Co3+, #4 11 Co4+ + 15 Co3+, #5 11 Co4+ + 11 Co3+
    (mean Co oxidation state 3.5, 3.42, 3.5).  The Co4+ are assigned to
    random Co atoms (seeded) in ``atoms.get_initial_charges()``;
    ``info["charge_balance"]`` states the assumption.

    Parameters
    ----------
    model : int, 1..5
    density : float, optional
        g/cm^3; default: volume-additive mix of LLZO 5.11 and LCO 5.05
        (module docstring).
    seed : int
    natoms : int, optional
        Production size: the model composition is repeated k times,
        k = ceil(natoms / n_model) (smallest multiple >= natoms), in one cubic
        box.  Default: one model cell (122-183 atoms, AIMD size).
    table : dict, optional
        Packing minimum distances (default :data:`PACK_MIN_DIST`).
    """
    if model not in MIXTURE_MODELS:
        raise ValueError("model must be 1..5")
    comp = MIXTURE_MODELS[model]
    n_unit = sum(comp.values())
    k = _replicas(natoms, n_unit)
    mass = _mass(comp)
    w_lco = min(1.0, comp["Co"] * _mass({"Li": 1, "Co": 1, "O": 2}) / mass)
    rho_default = 1.0 / (w_lco / RHO_LCO + (1 - w_lco) / RHO_LLZO)
    rho = rho_default if density is None else float(density)
    vol = k * mass * AMU_G_CM3 / rho
    L = vol ** (1 / 3)
    rng = np.random.default_rng(seed)
    co_q, desc = _charge_balance(comp, k, rng)
    atoms = random_packing(_symbols(comp, k), np.eye(3) * L, seed=seed, table=table)
    pack = atoms.info.pop("packing")
    _apply_charges(atoms, co_q)
    assert abs(total_charge(atoms)) < 1e-9
    provenance(
        atoms, builder="mixture",
        parameters=dict(model=model, density=density, seed=seed, natoms=natoms),
        reference=("LLZO-LCO mixture models #1-#5 (project specification); density from "
                   "volume-additive mixing of the X-ray densities of cubic LLZO (5.11 g/cm^3, "
                   "Geiger et al. 2011 cell) and LiCoO2 (5.05 g/cm^3, Akimoto et al. 1998)"),
        structure_class=f"mixture #{model}",
        method="random packing",
        note="random packing, not a melt-quench: pass the result to amorphous(..., labeler=...)",
        model_composition=formula(comp), replicas=k, density_g_cm3=float(mass_density(atoms)),
        density_source="user" if density is not None else "volume-additive LLZO 5.11 / LCO 5.05",
        lco_mass_fraction=w_lco, charge_balance=desc, packing=pack,
    )
    return atoms


# --------------------------------------------------------------------------
# Co-doped LLZO
# --------------------------------------------------------------------------
def _doping_composition(n, site, compensation, co_oxidation):
    comp = {"Li": 56, "La": 24, "Zr": 16, "Co": 0, "O": 96}
    if not 1 <= n <= 6:
        raise ValueError("n must be 1..6 (Co per 192-atom LLZO cell)")
    site = site.capitalize()
    comp["Co"] = n
    if site == "La":
        qco = 3 if co_oxidation is None else co_oxidation
        comp["La"] -= n
        host = 3
    elif site == "Zr":
        qco = 3 if co_oxidation is None else co_oxidation
        comp["Zr"] -= n
        host = 4
    elif site == "Li":
        qco = 2 if co_oxidation is None else co_oxidation
        comp["Li"] -= n
        host = 1
    else:
        raise ValueError(f"site must be one of {', '.join(DOPANT_SITES)}")
    excess = n * (qco - host)  # charge added by the substitution
    if excess == 0:
        comp_rule = "none (isovalent)"
    elif excess < 0:
        deficit = -excess
        if compensation in (None, "li_interstitial"):
            comp["Li"] += deficit
            comp_rule = f"{deficit} Li interstitial(s)"
        elif compensation == "o_vacancy":
            nov = (deficit + 1) // 2
            comp["O"] -= nov
            comp_rule = f"{nov} O vacanc(ies)"
            if deficit % 2:
                comp["Li"] -= 1
                comp_rule += " + 1 Li vacancy"
        else:
            raise ValueError("compensation for an acceptor: 'li_interstitial' or 'o_vacancy'")
    else:
        if compensation in (None, "li_vacancy"):
            comp["Li"] -= excess
            comp_rule = f"{excess} extra Li vacanc(ies)"
        else:
            raise ValueError("compensation for a donor: 'li_vacancy'")
    return comp, site, qco, comp_rule


def co_doped_llzo(n=4, site="La", seed=0, compensation=None, co_oxidation=None,
                  ordering="search"):
    """Crystalline cubic LLZO (192-atom cell) with ``n`` Co substituted.

    Co replaces n randomly chosen (seeded) La, Zr or Li atoms.  Charge
    compensation (formal charges Li+ La3+ Zr4+ O2-):

    * ``site="La"``: Co3+ on La3+, isovalent, Li56La(24-n)Co(n)Zr16O96.
    * ``site="Zr"``: Co3+ on Zr4+ (acceptor): ``compensation="li_interstitial"``
      (default, +n Li, inserted by the packer into the fixed La/Zr/O framework,
      host Li displaced as needed to keep Li-Li >= 1.9 Å) or
      ``"o_vacancy"`` (ceil(n/2) O removed, + 1 Li removed if n is odd).
      ``co_oxidation=4`` makes it isovalent.
    * ``site="Li"``: Co2+ on Li+ (donor, default ``co_oxidation=2``): n extra
      Li vacancies (Li(56-2n)); with ``co_oxidation=3``: 2n extra vacancies.
    """
    comp, site, qco, rule = _doping_composition(n, site, compensation, co_oxidation)
    rng = np.random.default_rng(seed)
    base = llzo_cubic(ordering=ordering, seed=seed)
    sym = np.array(base.get_chemical_symbols(), dtype=object)
    host_idx = np.flatnonzero(sym == site)
    sub = rng.choice(host_idx, n, replace=False)
    sym[sub] = "Co"
    remove = []
    # vacancies: Li or O chosen at random among the remaining ones
    for el in ("Li", "O"):
        have = int(np.sum(sym == el))
        if have > comp[el]:
            cand = np.flatnonzero(sym == el)
            remove += list(rng.choice(cand, have - comp[el], replace=False))
    keep = np.setdiff1d(np.arange(len(sym)), remove)
    atoms = Atoms(list(sym[keep]), positions=base.positions[keep], cell=base.cell, pbc=True)
    n_int = comp["Li"] - atoms.get_chemical_symbols().count("Li")
    if n_int > 0:
        syms = list(atoms.get_chemical_symbols()) + ["Li"] * n_int
        pos = np.vstack([atoms.positions, rng.random((n_int, 3)) @ atoms.cell.array])
        # framework fixed; host Li may move aside (every exclusion-free 56-Li
        # arrangement is maximal, so an interstitial needs the Li to relax)
        fixed = np.r_[np.array(atoms.get_chemical_symbols()) != "Li", np.zeros(n_int, bool)]
        atoms = random_packing(syms, atoms.cell.array, seed=seed, positions=pos,
                               fixed=fixed, table=_relaxed_table_for_crystal())
        atoms.info.pop("packing")
    order = np.argsort([ELEMENT_ORDER.index(s) for s in atoms.get_chemical_symbols()],
                       kind="stable")
    atoms = atoms[order]
    _apply_charges(atoms, np.full(n, float(qco)))
    assert composition(atoms) == {e: c for e, c in comp.items() if c}, composition(atoms)
    assert abs(total_charge(atoms)) < 1e-9, total_charge(atoms)
    provenance(
        atoms, builder="co_doped_llzo",
        parameters=dict(n=n, site=site, seed=seed, compensation=compensation,
                        co_oxidation=co_oxidation, ordering=ordering),
        reference="host: cubic LLZO (Geiger et al., Inorg. Chem. 50, 1089 (2011))",
        structure_class=f"{n}Co_{site} crystal", material="LLZO",
        dopant=dict(element="Co", n=n, site=site, oxidation_state=qco),
        charge_compensation=rule,
    )
    return atoms


def _relaxed_table_for_crystal():
    """Packing table for inserting interstitials into a fixed crystal.

    Crystal Li-Li distances go down to 2.36 Å and Li-O to 1.83 Å, so the
    inserted Li only needs r >= these table values with respect to the fixed
    atoms; fixed-fixed pairs are never moved.
    """
    t = {k: (dict(v) if isinstance(v, dict) else v) for k, v in PACK_MIN_DIST.items()}
    t["cation-O"]["Li"] = 1.7
    t["Li-Li"] = 1.9
    t["Li-M"] = 2.3
    t["O-O"] = 2.2
    t["M-M"] = 2.8
    return t


def co_doped_amorphous(n=4, site="La", seed=0, natoms=None, compensation=None,
                       co_oxidation=None, density=None, labeler=None, **md):
    """Amorphous Co-doped LLZO ("<n>Co_<site>"), n = 1..6 Co per 192-atom cell.

    Composition and charge compensation as in :func:`co_doped_llzo`
    (``info["charge_compensation"]``).  The structure is a random packing in
    the volume of the parent LLZO cell(s) (i.e. LLZO atomic number density;
    ``info["density_g_cm3"]`` gives the resulting mass density) unless
    ``density`` (g/cm^3) is given.  With ``labeler`` (ASE calculator) the
    packing is melt-quenched by :func:`amorphous` (``**md`` forwarded).

    ``natoms``: production size, the doped 192-atom composition is repeated
    k = ceil(natoms / n_cell) times (e.g. 17,000 -> k = 89 -> ~17,100 atoms).
    """
    cryst = co_doped_llzo(n=n, site=site, seed=seed, compensation=compensation,
                          co_oxidation=co_oxidation)
    k = _replicas(natoms, len(cryst))
    comp = composition(cryst)
    vol = k * cryst.get_volume()
    if density is not None:
        vol = k * _mass(comp) * AMU_G_CM3 / float(density)
    L = vol ** (1 / 3)
    qco = cryst.info["dopant"]["oxidation_state"]
    atoms = random_packing(_symbols(comp, k), np.eye(3) * L, seed=seed)
    pack = atoms.info.pop("packing")
    _apply_charges(atoms, np.full(comp["Co"] * k, float(qco)))
    assert abs(total_charge(atoms)) < 1e-9
    info = dict(cryst.info)
    provenance(
        atoms, builder="co_doped_amorphous",
        parameters=dict(n=n, site=site, seed=seed, natoms=natoms, compensation=compensation,
                        co_oxidation=co_oxidation, density=density),
        reference=info["reference"],
        structure_class=f"{n}Co_{info['dopant']['site']}",
        material="LLZO", method="random packing", amorphous=True,
        note="random packing at LLZO number density, not a melt-quench"
             if labeler is None else "melt-quenched",
        dopant=info["dopant"], charge_compensation=info["charge_compensation"],
        replicas=k, cell_composition=formula(comp),
        density_g_cm3=mass_density(atoms), packing=pack,
    )
    if labeler is not None:
        out = amorphous(atoms, labeler=labeler, seed=seed, start="input", **md)
        for key in ("structure_class", "dopant", "charge_compensation", "replicas",
                    "cell_composition"):
            out.info[key] = atoms.info[key]
        return out
    return atoms


# --------------------------------------------------------------------------
# generic amorphisation
# --------------------------------------------------------------------------
def amorphous(atoms, temperature=4000.0, labeler=None, steps=2000, quench_steps=None,
              final_temperature=300.0, timestep=1.0, friction=0.02, seed=0,
              density=None, start="packing", natoms=None, table=None):
    """Amorphous structure of the same composition (and density) as ``atoms``.

    Without ``labeler``: a **random packing** (not a melt-quench!) of the
    composition of ``atoms`` into its cell (scaled isotropically if
    ``density`` in g/cm^3 is given); formal charges are carried over per atom.

    With ``labeler`` (an ASE calculator, e.g. DFT or a preliminary potential):
    melt-quench at constant volume: start from the packing
    (``start="packing"``, default) or from ``atoms`` (``start="input"``),
    Langevin MD (ASE) at ``temperature`` for ``steps`` steps of ``timestep``
    fs, then a linear quench to ``final_temperature`` in ``quench_steps``
    steps (default ``steps``), temperature updated every 10 steps.

    ``natoms``: repeat ``atoms`` first (near-cubic, :func:`supercell`).
    """
    src = atoms
    if natoms is not None and natoms > len(atoms):
        src = supercell(atoms, natoms=natoms)
    cell = np.array(src.cell)
    if density is not None:
        scale = (mass_density(src) / float(density)) ** (1 / 3)
        cell = cell * scale
    q = src.get_initial_charges()
    if not np.any(q):
        q = np.array([FORMAL_CHARGES[s] for s in src.get_chemical_symbols()], float)
    material = src.info.get("material", formula(src))
    if start == "packing":
        out = random_packing(src.get_chemical_symbols(), cell, seed=seed, table=table)
        pack = out.info.pop("packing")
    elif start == "input":
        out = Atoms(src.numbers, positions=src.positions, cell=src.cell, pbc=True)
        out.set_cell(cell, scale_atoms=True)
        pack = None
    else:
        raise ValueError("start must be 'packing' or 'input'")
    out.set_initial_charges(q)
    md_info = None
    if labeler is not None:
        md_info = _melt_quench(out, labeler, temperature, steps, quench_steps,
                               final_temperature, timestep, friction, seed)
    params = dict(temperature=temperature, labeler=None if labeler is None else
                  type(labeler).__name__, steps=steps, quench_steps=quench_steps,
                  final_temperature=final_temperature, timestep=timestep, friction=friction,
                  seed=seed, density=density, start=start, natoms=natoms)
    parent_class = src.info.get("structure_class", "")
    provenance(
        out, builder="amorphous", parameters=params,
        reference=src.info.get("reference", ""),
        structure_class=f"amorphous {material}",
        material=material,
        method="random packing" if labeler is None else "melt-quench",
        note=("random packing at the composition and density of the input; NOT a "
              "melt-quench (no labeler given)") if labeler is None else
             "Langevin NVT melt at T, linear quench",
        parent_structure_class=parent_class, density_g_cm3=mass_density(out),
        packing=pack, md=md_info,
    )
    return out


def _melt_quench(atoms, calc, T, steps, quench_steps, T_end, dt, friction, seed):
    from ase import units
    from ase.md.langevin import Langevin
    from ase.md import velocitydistribution as vd
    rng = np.random.default_rng(seed)
    atoms.calc = calc
    if hasattr(vd, "thermalize_momenta"):  # ASE >= 3.28
        vd.thermalize_momenta(atoms, temperature_K=T, rng=rng)
    else:  # pragma: no cover
        vd.MaxwellBoltzmannDistribution(atoms, temperature_K=T, rng=rng)
    vd.Stationary(atoms)
    dyn = Langevin(atoms, dt * units.fs, temperature_K=T, friction=friction / units.fs,
                   fixcm=False, rng=rng)
    dyn.run(steps)
    qs = steps if quench_steps is None else quench_steps
    done = 0
    while done < qs:
        chunk = min(10, qs - done)
        done += chunk
        dyn.set_temperature(temperature_K=T + (T_end - T) * done / max(qs, 1))
        dyn.run(chunk)
    ekin = atoms.get_kinetic_energy()
    epot = float(atoms.get_potential_energy())
    atoms.calc = None
    return dict(melt_steps=steps, quench_steps=qs, timestep_fs=dt, T_melt=T, T_final=T_end,
                final_epot_eV=epot, final_ekin_eV=float(ekin))
