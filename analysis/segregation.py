r"""Segregation of a species to grain boundaries and interfaces.

Physics
=======
Dopants and impurities (Co in LLZO) may accumulate at a grain boundary (GB) or a
hetero-interface.  The profile of the species' number density :math:`n(x)` against
the signed distance :math:`x` from the nearest boundary plane shows where they go;
normalised by the bulk density it is the enrichment :math:`c(x)/c_\mathrm{bulk}`
(1 in the bulk, > 1 where the species accumulates).

The **Gibbs excess** per unit boundary area is

.. math::

    \Gamma = \int_{-w}^{w} \left[ n(x) - n_\mathrm{bulk} \right] \mathrm{d}x
    \qquad [\text{atoms}/\text{Å}^2]

with an integration window :math:`|x| < w` that contains the boundary region, and
:math:`n_\mathrm{bulk}` the mean density at :math:`w \le |x| \le r_\mathrm{max}`
(``reference="bulk"``) or the cell average :math:`N/V` (``reference="mean"``).
:math:`\Gamma \cdot A` is the number of extra atoms at one boundary of area A.

Geometry
========
A boundary plane is ``{"normal": (nx, ny, nz), "position": p}`` (hpcnnp's builders
store them in ``atoms.info["planes"]``, which MD writes to the H5MD metadata): the
plane :math:`\mathbf{r}\cdot\hat n = p` (Å).  The normal must be perpendicular to two
cell vectors (the planes contain them), so the planes are periodic; the distance of
an atom is measured along :math:`\hat n` with the minimum-image wrap of that period
(any triclinic cell).  Plane positions are converted to fractions of the period
using the first frame of the trajectory, so under NPT they move with the cell.

Every atom belongs to its nearest plane.  A periodic bicrystal has two boundaries
and the grains alternate along the normal; ``fold=True`` flips the sign of every
second plane (in order along the normal) so that positive :math:`x` always points
into the same grain, and adds the planes into one profile.  For an LLZO|LCO
interface built by :func:`hpcnnp.structures.interface` positive :math:`x` is then
the film (LCO) side.

Error bars and time dependence
==============================
Frames are correlated in time; the errors are **block averages**: the frames are cut
into ``n_blocks`` contiguous blocks, profile and :math:`\Gamma` are computed per
block, and the error is the standard error of the block values
(:math:`s/\sqrt{n_\mathrm{blocks}}`).  Blocks must be longer than the correlation
time for this to be honest.  ``windows=k`` also reports the profile and
:math:`\Gamma` of k consecutive time windows (slow segregation kinetics).

Pitfalls
========
* ``r_max`` cannot exceed half the smallest plane separation: beyond it atoms belong
  to the other plane (and the default is exactly that).
* The window ``w`` must end inside the bulk: a too small bulk region makes
  :math:`n_\mathrm{bulk}` noisy; the default is :math:`w = r_\mathrm{max}/2`.
* Bins are ``bin_width`` wide, symmetric around the plane; ``r_max`` is rounded
  down to a whole number of bins.

Example
=======
>>> seg = Segregation("traj.h5", species="Co", bin_width=0.2).run()   # doctest: +SKIP
>>> seg.results.excess, seg.results.excess_err          # atoms / Å^2
>>> seg.plot("co_segregation.png"); seg.to_csv("co_segregation.csv")
"""

from __future__ import annotations

import numpy as np

from hpcnnp.io.trajectory import unwrap_images

from ._output import new_figure, save_figure, write_csv
from ._pbc import normal_axis
from .base import AnalysisBase, AnalysisError
from .convergence import segregation_convergence

__all__ = ["Segregation", "planes_from_metadata"]


def planes_from_metadata(trajectory, planes=None):
    """Boundary planes given, else ``metadata["planes"]`` (clear error when none).

    Returns a list of dicts with ``normal`` (3 floats) and ``position`` (Å).
    """
    if planes is None:
        planes = trajectory.metadata.get("planes")
        if not planes:
            raise AnalysisError(
                f"{trajectory.name}: no grain-boundary/interface planes: the metadata "
                "(/parameters/hpcnnp) has no 'planes' entry; pass planes=[{'normal': "
                "(0, 0, 1), 'position': z}, ...] (Å)")
    out = []
    for k, p in enumerate(planes):
        try:
            normal = [float(x) for x in p["normal"]]
            position = float(p["position"])
        except (KeyError, TypeError, ValueError):
            raise AnalysisError(f"{trajectory.name}: plane {k} must be a dict with "
                                f"'normal' (3 numbers) and 'position' (Å), got {p!r}") \
                from None
        if len(normal) != 3:
            raise AnalysisError(f"{trajectory.name}: plane {k}: normal needs 3 numbers")
        out.append({"normal": normal, "position": position,
                    **{k2: v for k2, v in p.items() if k2 not in ("normal", "position")}})
    return out


class Segregation(AnalysisBase):
    """Concentration profile and Gibbs excess of a species at boundary planes.

    Parameters
    ----------
    trajectory : H5MDTrajectory, path, list of ase.Atoms or ArrayTrajectory
    species : str
        Element whose segregation is measured (e.g. ``"Co"``).
    planes : list of dict, optional
        ``{"normal": (x, y, z), "position": p}`` (Å along the normal); default
        ``metadata["planes"]`` of the trajectory.  All normals must be parallel.
    bin_width : float, Å
        Width of the distance bins.
    r_max : float, Å, optional
        Largest |distance| binned; default and maximum: half the smallest plane
        separation (rounded down to whole bins).
    fold : bool
        Fold all planes onto one signed-distance axis (every second plane mirrored);
        otherwise one profile per plane.
    reference : {"bulk", "mean"}
        Bulk density from the region ``window <= |x| <= r_max`` or the cell average.
    window : float, Å, optional
        Half width w of the integration window of the excess (default r_max/2,
        rounded to whole bins).
    n_blocks : int
        Number of frame blocks of the error bars.
    windows : int
        Number of consecutive time windows with their own profile and excess.
    """

    _fields = ("position",)

    def __init__(self, trajectory, species="Co", planes=None, bin_width=0.2, r_max=None,
                 fold=True, reference="bulk", window=None, n_blocks=5, windows=1):
        super().__init__(trajectory)
        traj = self.trajectory
        self.species = species
        self._sel = self._species_indices(species)
        if "image" in traj.fields:          # for the species' displacement (convergence)
            self._fields = ("position", "image")
        self.planes = planes_from_metadata(traj, planes)
        if reference not in ("bulk", "mean"):
            raise AnalysisError(f"Segregation: reference must be 'bulk' or 'mean', "
                                f"got {reference!r}")
        self.reference = reference
        self.fold = bool(fold)
        self.n_blocks = int(n_blocks)
        self.windows = int(windows)
        if self.windows < 1:
            raise AnalysisError("Segregation: windows must be >= 1")
        if not bin_width > 0:
            raise AnalysisError(f"Segregation: bin_width must be > 0 Å, got {bin_width}")
        self.bin_width = float(bin_width)
        self._geometry(r_max)
        self._set_window(window)

    def _geometry(self, r_max):
        """Plane positions as fractions of the period, orientations, bins."""
        traj = self.trajectory
        box0 = traj.first_frame(0)["box"]
        try:
            k, proj, n = normal_axis(box0, self.planes[0]["normal"])
        except ValueError as exc:
            raise AnalysisError(f"{traj.name}: plane 0: {exc}") from None
        for i, p in enumerate(self.planes[1:], 1):
            m = np.asarray(p["normal"], float)
            if abs(abs(m @ n) / np.linalg.norm(m) - 1) > 1e-6:
                raise AnalysisError(f"{traj.name}: plane {i} is not parallel to plane 0 "
                                    f"(normals {p['normal']} and {self.planes[0]['normal']})")
        self._axis, self._normal = k, n
        # plane positions as fractions of the period (signs of the normals made equal)
        s = []
        for p in self.planes:
            sign = np.sign(np.asarray(p["normal"], float) @ n)
            s.append((sign * p["position"] / proj) % 1.0)
        order = np.argsort(s, kind="stable")
        self._s_planes = np.asarray(s)
        n_pl = len(self.planes)
        self._orient = np.ones(n_pl, dtype=int)
        if self.fold and n_pl > 1:
            if n_pl % 2:
                raise AnalysisError(
                    f"Segregation: fold=True needs one plane or an even number of planes "
                    f"(alternating grains of a periodic bicrystal), got {n_pl}; use "
                    "fold=False")
            self._orient[order[1::2]] = -1
        period = abs(proj)
        ss = np.sort(self._s_planes)
        gaps = np.diff(np.r_[ss, ss[0] + 1.0]) * period
        half_gap = 0.5 * float(gaps.min())
        if half_gap <= 0:
            raise AnalysisError(f"{traj.name}: two boundary planes at the same position")
        if r_max is None:
            r_max = half_gap
        elif r_max > half_gap * (1 + 1e-9):
            raise AnalysisError(f"Segregation: r_max = {r_max} Å exceeds half the smallest "
                                f"plane separation ({half_gap:.3f} Å)")
        nb_half = int(np.floor(float(r_max) / self.bin_width + 1e-9))
        if nb_half < 1:
            raise AnalysisError(f"Segregation: r_max = {r_max} Å is smaller than one bin "
                                f"({self.bin_width} Å)")
        self.r_max = nb_half * self.bin_width
        self._nb = 2 * nb_half
        self.bin_edges = np.linspace(-self.r_max, self.r_max, self._nb + 1)
        self.bin_centers = 0.5 * (self.bin_edges[1:] + self.bin_edges[:-1])

    def _set_window(self, window):
        """Integration window of the excess (whole bins) and the species mask."""
        traj = self.trajectory
        nb_half = self._nb // 2
        if window is None:
            window = 0.5 * self.r_max
        nw = int(round(float(window) / self.bin_width))
        if not 1 <= nw < nb_half:
            raise AnalysisError(f"Segregation: window = {window} Å must be at least one "
                                f"bin and smaller than r_max = {self.r_max:.3f} Å")
        self.window = nw * self.bin_width
        self._in_window = np.abs(self.bin_centers) < self.window
        self._species_mask = np.zeros(traj.n_atoms, dtype=bool)
        self._species_mask[self._sel] = True

    def _prepare(self):
        P, nb = len(self.planes), self._nb
        self._counts = self._add_series("counts", (P, nb), np.int32)
        self._counts_all = self._add_series("counts_all", (P, nb), np.int32)
        self._area = self._add_series("area", (), np.float64)
        self._volume = self._add_series("volume", (), np.float64)
        if "image" in self._fields:
            self._spos = self._add_series("species_unwrapped", (len(self._sel), 3))

    def _chunk(self, chunk):
        pos, box, rows = chunk["position"], chunk["box"], chunk["rows"]
        if "image" in chunk:
            self._spos[rows] = unwrap_images(pos[:, self._sel], chunk["image"][:, self._sel],
                                             box)
        k, n = self._axis, self._normal
        P, nb = len(self.planes), self._nb
        inv = np.linalg.inv(box)                                   # (f, 3, 3)
        frac = np.einsum("fni,fi->fn", pos, inv[:, :, k])          # s_k of every atom
        proj = box[:, k, :] @ n                                    # (f,)
        vol = np.abs(np.linalg.det(box))
        self._volume[rows] = vol
        self._area[rows] = vol / np.abs(proj)
        best_d = np.full(frac.shape, np.inf)
        best_p = np.zeros(frac.shape, dtype=np.int64)
        for p, sp in enumerate(self._s_planes):
            x = frac - sp
            x -= np.round(x)
            d = x * proj[:, None]
            closer = np.abs(d) < np.abs(best_d)
            best_d = np.where(closer, d, best_d)
            best_p = np.where(closer, p, best_p)
        b = np.floor((best_d + self.r_max) / self.bin_width).astype(np.int64)
        ok = (b >= 0) & (b < nb)
        local = (rows - rows[0])[:, None]
        flat = (local * P + best_p) * nb + b
        size = len(rows) * P * nb
        all_counts = np.bincount(flat[ok], minlength=size).reshape(len(rows), P, nb)
        okc = ok & self._species_mask[None, :]
        sp_counts = np.bincount(flat[okc], minlength=size).reshape(len(rows), P, nb)
        self._counts_all[rows] = all_counts
        self._counts[rows] = sp_counts

    # ----------------------------------------------------------------- conclude
    def _oriented(self, counts):
        """Counts with every mirrored plane's bins reversed (x -> -x)."""
        out = counts.astype(np.int64, copy=True)
        for p, o in enumerate(self._orient):
            if o < 0:
                out[:, p] = out[:, p, ::-1]
        return out

    def _profiles(self, sl):
        """Density, enrichment, fraction and excess for the frames ``sl``."""
        c = self._oc[sl].sum(axis=0)            # (P, nb)
        ca = self._oca[sl].sum(axis=0)
        area = self._series["area"][sl].sum()   # Σ_t A_t
        vol = self._series["volume"][sl].sum()
        dens_pl = c / (area * self.bin_width)  # (P, nb), atoms/Å^3
        if self.fold:
            dens = c.sum(axis=0) / (area * self.bin_width * len(self.planes))
            call = ca.sum(axis=0)
            cs = c.sum(axis=0)
        else:
            dens, call, cs = dens_pl, ca, c
        bulk = ~self._in_window
        if self.reference == "bulk":
            n_bulk = dens[..., bulk].mean(axis=-1)
            n_bulk_pl = dens_pl[:, bulk].mean(axis=-1)
            frac_bulk = cs[..., bulk].sum(axis=-1) / np.maximum(call[..., bulk].sum(axis=-1), 1)
        else:
            mean = len(self._sel) * self._nframes(sl) / vol
            n_bulk = np.full(dens.shape[:-1], mean)
            n_bulk_pl = np.full(len(self.planes), mean)
            frac_bulk = np.full(dens.shape[:-1], len(self._sel) / self.trajectory.n_atoms)
        nb = np.asarray(n_bulk)
        with np.errstate(invalid="ignore", divide="ignore"):
            profile = dens / nb[..., None]
            fraction = np.where(call > 0, cs / np.maximum(call, 1), np.nan)
            fraction_ratio = fraction / np.asarray(frac_bulk)[..., None]
        w = self._in_window
        excess = ((dens[..., w] - nb[..., None]).sum(axis=-1) * self.bin_width)
        excess_pl = ((dens_pl[:, w] - n_bulk_pl[:, None]).sum(axis=-1) * self.bin_width)
        return dict(density=dens, profile=profile, fraction=fraction,
                    fraction_ratio=fraction_ratio, bulk_density=nb, excess=excess,
                    excess_per_plane=excess_pl)

    def _nframes(self, sl):
        return len(range(self.n_frames)[sl])

    def _conclude(self):
        self._oc = self._oriented(self._series["counts"])
        self._oca = self._oriented(self._series["counts_all"])
        F = self.n_frames
        full = self._profiles(slice(0, F))
        r = self.results
        r.update(full)
        r.bin_edges, r.bin_centers = self.bin_edges, self.bin_centers
        r.window, r.r_max, r.species = self.window, self.r_max, self.species
        r.reference, r.fold, r.planes = self.reference, self.fold, self.planes
        r.area = float(self._series["area"].mean())
        r.n_frames = F
        r.times = self.times
        nbk = min(self.n_blocks, F)
        slices = self._block_slices(F, nbk, "blocks") if nbk >= 2 else []
        blocks = [self._profiles(s) for s in slices]
        for key in ("density", "profile", "fraction", "excess", "excess_per_plane"):
            if blocks:
                vals = np.array([b[key] for b in blocks])
                r[key + "_err"] = vals.std(axis=0, ddof=1) / np.sqrt(nbk)
            else:
                r[key + "_err"] = np.full(np.shape(full[key]), np.nan)
        r.n_blocks = nbk
        self._verdict(r, slices, blocks)
        wins = self._block_slices(F, self.windows, "windows")
        wres = [self._profiles(s) for s in wins]
        r.window_profiles = np.array([w["profile"] for w in wres])
        r.window_density = np.array([w["density"] for w in wres])
        r.window_excess = np.array([w["excess"] for w in wres])
        r.window_times = np.array([self.times[s].mean() for s in wins])
        r.window_frames = np.array([[s.start, s.stop] for s in wins])
        r.counts = self._oc.sum(axis=0)
        del self._oc, self._oca

    def _verdict(self, r, slices, blocks):
        """``r.convergence`` (see :mod:`.convergence`), ``r.simulated_time`` (fs)."""
        r.simulated_time = float(self.times[-1] - self.times[0])
        r.block_times = np.array([self.times[s].mean() for s in slices])
        r.block_excess = np.array([np.mean(b["excess"]) for b in blocks])
        rms = None
        if "species_unwrapped" in self._series:
            x = self._series["species_unwrapped"]
            rms = float(np.sqrt(np.mean(np.sum((x[-1] - x[0]) ** 2, axis=-1))))
        r.rms_displacement = rms
        r.convergence = segregation_convergence(r.block_times, r.block_excess, self.window,
                                                rms, r.simulated_time)
        r.converged = r.convergence.converged

    # ----------------------------------------------------------------- output
    def to_csv(self, path):
        """Profile table: distance, density, enrichment, fraction (+ errors)."""
        r = self.results
        cols = {"distance_A": r.bin_centers}
        if self.fold:
            cols.update(density_per_A3=r.density, density_err=r.density_err,
                        c_over_cbulk=r.profile, c_over_cbulk_err=r.profile_err,
                        atomic_fraction=r.fraction)
            for w in range(len(r.window_profiles)):
                if len(r.window_profiles) > 1:
                    cols[f"c_over_cbulk_window{w}"] = r.window_profiles[w]
        else:
            for p in range(len(self.planes)):
                cols[f"density_plane{p}"] = r.density[p]
                cols[f"c_over_cbulk_plane{p}"] = r.profile[p]
                cols[f"c_over_cbulk_err_plane{p}"] = r.profile_err[p]
        ex = np.atleast_1d(r.excess)
        exe = np.atleast_1d(r.excess_err)
        header = (f"Segregation of {self.species}: {r.n_frames} frames, bin {self.bin_width} "
                  f"A, fold={self.fold}, reference={self.reference}\n"
                  f"excess Gamma = {', '.join(f'{a:.6g} +- {b:.2g}' for a, b in zip(ex, exe))}"
                  f" atoms/A^2 (|x| < {self.window:g} A), bulk density "
                  f"{np.atleast_1d(r.bulk_density)[0]:.6g} /A^3, plane area {r.area:.4g} A^2")
        return write_csv(path, cols, header)

    def plot(self, path, title=None):
        """Enrichment c(x)/c_bulk vs distance with block errors (PNG)."""
        r = self.results
        fig = new_figure(figsize=(6.4, 4.2))
        ax = fig.add_subplot()
        x = r.bin_centers
        if self.fold:
            curves = [(r.profile, r.profile_err, "all frames")]
        else:
            curves = [(r.profile[p], r.profile_err[p], f"plane {p} at "
                       f"{self.planes[p]['position']:.2f} Å") for p in range(len(self.planes))]
        if len(r.window_profiles) > 1:
            import matplotlib
            cmap = matplotlib.colormaps["viridis"]
            nw = len(r.window_profiles)
            for w, prof in enumerate(r.window_profiles):
                y = prof if self.fold else prof[0]
                ax.plot(x, y, color=cmap(w / max(nw - 1, 1)), lw=0.9, alpha=0.8,
                        label=f"t ≈ {r.window_times[w] / 1000:.3g} ps")
        for y, e, lab in curves:
            ax.plot(x, y, color="k" if self.fold else None, lw=1.6, label=lab)
            ax.fill_between(x, y - e, y + e, alpha=0.25, color="k" if self.fold else None,
                            lw=0)
        ax.axhline(1.0, color="0.5", lw=0.8, ls=":")
        ax.axvline(0.0, color="0.5", lw=0.8, ls="--")
        ax.axvspan(-self.window, self.window, color="tab:orange", alpha=0.08,
                   label=f"excess window |x| < {self.window:g} Å")
        ax.set_xlabel("signed distance from boundary plane x (Å)")
        ax.set_ylabel(f"{self.species} enrichment c(x) / c$_{{bulk}}$")
        ex = np.atleast_1d(r.excess)[0]
        exe = np.atleast_1d(r.excess_err)[0]
        sc = self.trajectory.metadata.get("structure_class", "")
        ax.set_title(title or f"{self.species} segregation {sc}\n"
                     f"Γ = {ex:.3g} ± {exe:.2g} atoms/Å² ({r.n_frames} frames)",
                     fontsize=10)
        ax.legend(fontsize=8, loc="best")
        return save_figure(fig, path)
