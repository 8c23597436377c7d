"""An HDNNP in n2p2's format, evaluated by hpcnnp's C core.

A potential is three kinds of files in one folder (n2p2's layout):
``input.nn`` (elements, symmetry functions, network shape), ``scaling.data``
(SF statistics) and ``weights.ZZZ.data`` (one per element, ZZZ = atomic
number).  :class:`Potential` reads them, builds the compiled model and
evaluates structures given as :class:`ase.Atoms`:

>>> pot = Potential.from_n2p2("pot_dir")                       # doctest: +SKIP
>>> res = pot.compute(atoms)                                   # doctest: +SKIP
>>> res.energy, res.forces, res.stress                         # doctest: +SKIP

Units are the potential's own (n2p2 is unit-agnostic): positions in its
length unit (Å for the LLZO/LCO potentials), energies in its energy unit.
With ``mean_energy``/``conv_energy``/``conv_length`` in ``input.nn`` the
network works in normalised units internally; every number returned here is
in physical units (E = out/conv_energy + mean_energy + atom_energy).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hpcnnp.descriptors import sftypes
from hpcnnp.errors import PotentialError, StructureError

#: n2p2 activation letters -> index in the C core
ACTIVATIONS = {"l": 0, "t": 1, "s": 2, "p": 3, "r": 4, "g": 5, "c": 6, "S": 7, "e": 8, "h": 9}
#: scaling type names (io.n2p2.Settings.scaling_type) -> index in the C core
SCALING_TYPES = {"none": 0, "scale": 1, "center": 2, "scalecenter": 3, "scalesigma": 4}
#: atoms closer than this (potential's length unit) are rejected
MIN_DISTANCE = 0.1


def engine_parameters(sfs, element_index):
    """The C core's parameter table (``_core.SF_PARAM_DTYPE``) of one element's SFs.

    Parameters
    ----------
    sfs : list of hpcnnp.io.n2p2.SymmetryFunction
        In n2p2's sorted order.
    element_index : dict
        Element symbol -> index.
    """
    from hpcnnp import _core

    table = np.zeros(len(sfs), dtype=_core.SF_PARAM_DTYPE)
    for row, sf in zip(table, sfs):
        row["type"] = sf.sftype
        row["e1"] = element_index[sf.e1] if sf.e1 is not None else -1
        row["e2"] = element_index[sf.e2] if sf.e2 is not None else -1
        row["eta"], row["rs"], row["rc"] = sf.eta, sf.rs, sf.rc
        row["lam"] = sf.lam if sf.lam is not None else 0.0
        row["zeta"] = sf.zeta if sf.zeta is not None else 0.0
        if sf.subtype is not None:
            core, asym = sftypes.core_function(sf.subtype)
            row["core"], row["asym"] = _core.CORE_FUNCTIONS[core], asym
            row["rl"] = sf.rl
        if sf.angle_left is not None:
            row["angle_l"], row["angle_r"] = sf.angle_left, sf.angle_right
    return table


@dataclass
class Extrapolation:
    """One symmetry-function value outside the range of the training data."""

    structure: int      # structure index (0-based) or -1
    atom: int           # atom index (0-based)
    element: str
    sf: int             # sorted SF index, 1-based as n2p2 prints it
    sf_type: int
    value: float
    min: float
    max: float

    def n2p2_line(self):
        """The line n2p2 prints for this warning (as n2p2: STRUCTURE and ATOM 0-based,
        i.e. Structure::index and Atom::tag; SYMFUNC 1-based)."""
        return ("### NNP EXTRAPOLATION WARNING ### STRUCTURE: %6d ATOM: %9d ELEMENT: %2s "
                "SYMFUNC: %4d TYPE: %2d VALUE: %10.3E MIN: %10.3E MAX: %10.3E"
                % (max(self.structure, 0), self.atom, self.element, self.sf,
                   self.sf_type, self.value, self.min, self.max))


@dataclass
class Result:
    """What :meth:`Potential.compute` returns (physical units).

    energy : float, total energy (incl. ``atom_energy`` offsets)
    energies : (N,) atomic energies, summing to ``energy``
    nn_energies : (N,) atomic network outputs / conv_energy (n2p2's nnatoms.out)
    forces : (N, 3) or None
    stress : (6,) Voigt (xx yy zz yz xz xy), energy/length^3, periodic only, or None
    dEde : (3, 3) strain derivative of the energy, or None
    n_warnings : int, number of extrapolation warnings (SF values outside scaling range)
    warnings : list[Extrapolation] (at most ``max_warnings`` of them)
    """

    energy: float
    energies: np.ndarray
    nn_energies: np.ndarray
    forces: np.ndarray | None = None
    stress: np.ndarray | None = None
    dEde: np.ndarray | None = None
    n_warnings: int = 0
    warnings: list = field(default_factory=list)
    extra: dict = field(default_factory=dict)


class Potential:
    """A Behler–Parrinello HDNNP with n2p2's conventions.

    Parameters
    ----------
    settings : hpcnnp.io.n2p2.Settings
        Parsed ``input.nn``.
    scaling : dict[str, ndarray (n_sf, 4)] or None
        SF statistics (min, max, mean, sigma) per element; required when the
        settings ask for scaling.
    weights : dict[str, ndarray] or None
        Network connections per element in n2p2's order; without weights the
        object still computes symmetry functions.
    directory : path, optional
        Where the files came from (for messages).
    """

    def __init__(self, settings, scaling=None, weights=None, directory=None):
        from hpcnnp import _core

        from ase.data import atomic_numbers

        settings.nnp_type       # refuses 4G-/Q-HDNNPs before anything else
        self.settings = settings
        self.directory = None if directory is None else Path(directory)
        self.elements = list(settings.elements)
        self.element_index = {el: i for i, el in enumerate(self.elements)}
        self.symmetry_function_list = {el: list(settings.symmetry_functions[el])
                                       for el in self.elements}
        self.scaling = scaling
        self.has_weights = weights is not None
        norm = settings.normalization
        self.mean_energy, self.conv_energy, self.conv_length = norm if norm else (0.0, 1.0, 1.0)
        self.atom_energy = {el: float(settings.atom_energy.get(el, 0.0)) for el in self.elements}

        sftypes.check_evaluated(self.symmetry_function_list,
                                self._where("input.nn") if self.directory else settings.path)
        model = _core.Model(len(self.elements), settings.cutoff_type, settings.cutoff_alpha,
                            bool(settings.normalize_nodes))
        model.set_atomic_numbers([atomic_numbers[el] for el in self.elements])
        scaling_type = SCALING_TYPES[settings.scaling_type]
        for e, el in enumerate(self.elements):
            sfs = self.symmetry_function_list[el]
            try:
                model.set_symmetry_functions(e, engine_parameters(sfs, self.element_index))
                if scaling is not None:
                    stats = np.asarray(scaling[el], dtype=float)
                    model.set_scaling(e, scaling_type, settings.scale_min, settings.scale_max, stats)
                elif scaling_type != 0 and weights is not None:
                    raise PotentialError(
                        f"{self._where('input.nn')}: SF scaling '{settings.scaling_type}' "
                        "needs scaling.data")
                sizes = settings.layer_sizes(el)
                acts = [0] + [ACTIVATIONS[a] for a in settings.activations[el]]
                model.set_network(e, sizes, acts,
                                  None if weights is None else np.asarray(weights[el], float),
                                  1.0 / self.conv_energy,
                                  self.mean_energy + self.atom_energy[el])
            except _core.CoreError as exc:
                raise PotentialError(f"{self._where('input.nn')}: element {el}: {exc}") from None
        self._model = model
        self.cutoff = model.rc_max

    # ------------------------------------------------------------------ I/O
    def _where(self, name):
        return str(self.directory / name) if self.directory else name

    @classmethod
    def from_n2p2(cls, directory, settings="input.nn", scaling="scaling.data",
                  weights="weights.%03d.data", require_weights=True):
        """Read an n2p2 potential folder.

        Parameters
        ----------
        directory : path
            Folder with ``input.nn``, ``scaling.data`` and ``weights.ZZZ.data``.
        settings, scaling, weights : str
            File names inside ``directory`` (``weights`` with a ``%03d`` for Z).
        require_weights : bool
            If False, missing weight files give a descriptor-only potential.
        """
        from ase.data import atomic_numbers

        from hpcnnp.io import n2p2

        directory = Path(directory)
        if not directory.is_dir():
            raise PotentialError(f"{directory}: potential folder not found")
        st = n2p2.read_settings(directory / settings)
        n_sf = {el: len(st.symmetry_functions[el]) for el in st.elements}
        scal = None
        spath = directory / scaling
        if spath.exists():
            scal = n2p2.read_scaling(spath, n_sf, st.elements)
        elif st.scaling_type != "none" and require_weights:
            raise PotentialError(f"{spath}: missing (input.nn asks for SF scaling "
                                 f"'{st.scaling_type}'; run `hpcnnp scale` first)")
        wts = {}
        for el in st.elements:
            wpath = directory / (weights % atomic_numbers[el])
            if not wpath.exists():
                if require_weights:
                    raise PotentialError(f"{wpath}: weights file of element {el} not found")
                wts = None
                break
            wts[el] = n2p2.read_weights(wpath, st.n_weights(el))
        return cls(st, scal, wts, directory=directory)

    def set_weights(self, weights):
        """Replace the network connections (dict element -> array)."""
        for e, el in enumerate(self.elements):
            self._model.set_weights(e, np.asarray(weights[el], dtype=float))
        self.has_weights = True

    # ------------------------------------------------------------ structures
    def _prepare(self, atoms):
        """Element indices and checks of one structure."""
        symbols = atoms.get_chemical_symbols()
        try:
            elem = np.fromiter((self.element_index[s] for s in symbols), dtype=np.int32,
                               count=len(symbols))
        except KeyError as exc:
            raise StructureError(
                f"element {exc.args[0]} is not part of the potential "
                f"(elements: {' '.join(self.elements)})") from None
        pbc = np.asarray(atoms.get_pbc(), dtype=bool)
        if pbc.any() and not pbc.all():
            raise StructureError("mixed periodicity is not supported (as in n2p2): "
                                 "use pbc=True with a vacuum gap for slabs")
        pos = np.asarray(atoms.get_positions(), dtype=float)
        if not np.isfinite(pos).all():
            bad = int(np.argwhere(~np.isfinite(pos))[0, 0])
            raise StructureError(f"atom {bad + 1} has a non-finite position")
        return elem, bool(pbc.all()), pos

    def neighbor_list(self, atoms, cutoff=None):
        """The C core's neighbour list of ``atoms`` (all images within the cutoff)."""
        from hpcnnp import _core

        elem, periodic, pos = self._prepare(atoms)
        nl = _core.NeighborList()
        cell = np.asarray(atoms.get_cell(), dtype=float) if periodic else np.eye(3)
        try:
            nl.build(pos, cell, periodic, elem, len(self.elements),
                     self.cutoff if cutoff is None else cutoff, MIN_DISTANCE)
        except _core.CoreError as exc:
            raise StructureError(str(exc)) from None
        return nl, elem

    def symmetry_functions(self, atoms, scaled=False):
        """SF values per atom in n2p2's sorted order.

        Returns a list of 1-D arrays (one per atom, length = SFs of its element);
        raw values unless ``scaled`` (the network inputs).
        """
        from hpcnnp import _core

        nl, elem = self.neighbor_list(atoms)
        G = _core.symmetry_functions(self._model, nl, elem)
        n_sf = [len(self.symmetry_function_list[el]) for el in self.elements]
        if scaled:
            if self.scaling is None and self.settings.scaling_type != "none":
                raise PotentialError("scaled SFs need scaling.data")
            G = self._scale(G, elem)
        return [G[i, :n_sf[e]].copy() for i, e in enumerate(elem)]

    def _scale(self, G, elem):
        out = np.empty_like(G)
        for e, el in enumerate(self.elements):
            mask = elem == e
            if not mask.any():
                continue
            n = len(self.symmetry_function_list[el])
            out[mask, :n] = self._scaled_block(el, G[mask, :n])
        return out

    def _scaled_block(self, el, G):
        st = self.settings.scaling_type
        if st == "none":
            return G
        gmin, gmax, gmean, gsig = np.asarray(self.scaling[el], dtype=float).T
        smin, smax = self.settings.scale_min, self.settings.scale_max
        if st == "center":
            return G - gmean
        with np.errstate(divide="ignore", invalid="ignore"):
            factor = (smax - smin) / (gsig if st == "scalesigma" else gmax - gmin)
        factor = np.where(np.isfinite(factor), factor, 0.0)   # zero spread: as the C core
        return smin + factor * (G - (gmin if st == "scale" else gmean))

    def symmetry_function_derivatives(self, atoms, compact=False):
        """Raw SFs and their Cartesian derivatives dG/dr (1/length), per atom.

        Parameters
        ----------
        compact : bool
            False: a list, per atom i, of ``(G_i, slots_i, dG_i)`` with
            ``slots_i`` the atom indices of the derivative slots (slot 0 = i
            itself, then every neighbour image) and ``dG_i`` of shape
            (n_slots, n_sf, 3): dG_i,s / dr_slot.
            True: a list, per atom i, of ``(G_i, dG_self, blocks)``:
            ``dG_self`` (n_sf, 3) = dG_i/dr_i and ``blocks`` a list of
            ``(neighbour_atoms, sf_indices, dG)`` per neighbour element, with
            dG of shape (n_neighbours, len(sf_indices), 3): only the SFs that
            depend on that element are stored (the C core's layout, about a
            third of the dense size for the LLZO/LCO set).
        """
        from hpcnnp import _core

        nl, elem = self.neighbor_list(atoms)
        G, dg, off = _core.symmetry_functions(self._model, nl, elem, derivatives=True)
        start, idx, _, _ = nl.arrays()
        ne = len(self.elements)
        nbsf = [[self._model.neighbor_sfs(e, q) for q in range(ne)] for e in range(ne)]
        out = []
        for i, e in enumerate(elem):
            nsf = len(self.symmetry_function_list[self.elements[e]])
            nb = idx[start[i]:start[i + 1]]
            nbel = elem[nb]
            flat = dg[off[i]:off[i + 1]]
            dself = flat[:3 * nsf].reshape(nsf, 3)
            pos = 3 * nsf
            blocks = []
            for q in range(ne):
                atoms_q = nb[nbel == q]
                cnt, width = len(atoms_q), len(nbsf[e][q])
                blk = flat[pos:pos + 3 * cnt * width].reshape(cnt, width, 3)
                pos += 3 * cnt * width
                if cnt:
                    blocks.append((atoms_q, nbsf[e][q], blk))
            if compact:
                out.append((G[i, :nsf].copy(), dself, blocks))
                continue
            dense = np.zeros((1 + len(nb), nsf, 3))
            dense[0] = dself
            row = 1
            for atoms_q, sfs, blk in blocks:
                dense[row:row + len(atoms_q)][:, sfs] = blk
                row += len(atoms_q)
            out.append((G[i, :nsf].copy(), np.concatenate(([i], nb)), dense))
        return out

    # -------------------------------------------------------------- energies
    def compute(self, atoms, forces=True, stress=True, full=False, max_warnings=10000,
                structure_index=-1):
        """Energy, atomic energies, forces and stress of one structure.

        Parameters
        ----------
        atoms : ase.Atoms
        forces, stress : bool
            Compute forces (energy/length) and, for periodic cells, the
            stress (energy/length^3, ASE's sign and Voigt order).
        full : bool
            Also return raw/scaled SFs and dE/dG in ``Result.extra``.
        max_warnings : int
            At most this many extrapolation warnings are returned in detail
            (all are counted).
        """
        from hpcnnp import _core

        if not self.has_weights:
            raise PotentialError("the potential has no weights (weights.ZZZ.data) to evaluate")
        nl, elem = self.neighbor_list(atoms)
        want_f = bool(forces or stress)
        res = _core.energy_forces(self._model, nl, elem, len(elem), forces=want_f, full=full,
                                  ew_capacity=max_warnings)
        e_at = res["energies"]
        nn_e = res["output"] / self.conv_energy
        warnings = [self._warning(w, elem, structure_index) for w in res["warnings"]]
        out = Result(energy=float(e_at.sum()), energies=e_at, nn_energies=nn_e,
                     n_warnings=res["n_warnings"], warnings=warnings)
        if forces:
            out.forces = res["forces"]
        if want_f:
            out.dEde = 0.5 * (res["dEde"] + res["dEde"].T)
        if stress and np.asarray(atoms.get_pbc()).all() and want_f:
            vol = abs(np.linalg.det(np.asarray(atoms.get_cell())))
            s = out.dEde / vol
            out.stress = np.array([s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]])
        if full:
            out.extra = {k: res[k] for k in ("G", "Gs", "dEdGs", "output")}
        else:
            out.extra = {"output": res["output"]}
        return out

    def _warning(self, w, elem, structure_index):
        e = int(elem[w["atom"]])
        el = self.elements[e]
        sf = int(w["sf"])
        return Extrapolation(structure_index, int(w["atom"]), el, sf + 1,
                             self.symmetry_function_list[el][sf].sftype,
                             float(w["value"]), float(w["min"]), float(w["max"]))

    def __repr__(self):
        n_sf = ", ".join(f"{el}:{len(self.symmetry_function_list[el])}" for el in self.elements)
        where = f" from {self.directory}" if self.directory else ""
        return f"<Potential{where}: elements {self.elements}, SFs {n_sf}, r_c {self.cutoff:g}>"


def potential_path(path):
    """Normalise a potential folder argument (str or Path) and check it exists."""
    p = Path(os.path.expanduser(str(path)))
    if not p.is_dir():
        raise PotentialError(f"{p}: potential folder not found")
    return p
