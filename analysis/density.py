r"""Li probability density on a 3-D grid (conduction pathways, site occupation).

Physics
=======
The time-averaged positional probability density of the mobile ions,

.. math::

    \rho(\mathbf{r}) = \Big\langle \sum_{i \in \mathrm{Li}}
    \delta(\mathbf{r} - \mathbf{r}_i(t)) \Big\rangle_t ,
    \qquad \int_\mathrm{cell} \rho \, \mathrm{d}V = \langle N_\mathrm{Li} \rangle ,

shows the Li sites (maxima) and the pathways between them (the connected
low-density channels): the 24d/96h network of garnet LLZO, its disruption at grain
boundaries, Li depletion at an LLZO|LCO interface.

Method
======
Histogram of the **fractional** coordinates :math:`s = \mathbf{r} B^{-1}` on an
``nx x ny x nz`` grid of the cell, so the grid follows the cell in NPT runs and
works for any triclinic cell.  The density of voxel :math:`(i,j,k)` is
``counts / (n_frames * V_voxel)`` with :math:`V_\mathrm{voxel} = |\det \bar B|/(n_x
n_y n_z)` of the mean cell :math:`\bar B` (the cell written to the cube file); the
sum over voxels times :math:`V_\mathrm{voxel}` is exactly the mean number of Li atoms.
Counts are integers, so results are bit-identical for
any number of MPI ranks.

Output
======
* :meth:`LiDensity.write_cube`: Gaussian cube file (VESTA, OVITO, VMD), grid vectors
  = cell vectors / n, values at voxel centres, in bohr\ :sup:`-3` (cube files are in
  atomic units; 1 Å\ :sup:`-3` = 0.148185 bohr\ :sup:`-3`), with the atoms of the
  first analysed frame.
* :meth:`LiDensity.plot`: 2-D projection (integral along one cell vector, Li/Å²) or
  one slice (Li/Å³) as PNG in Cartesian Å, plus the numbers as ``.npy`` beside it.

Pitfalls
========
* Grid spacing: 0.2-0.3 Å resolves sites but needs many frames for smooth maps
  (each voxel needs counts); 0.5 Å (the default) is a good first look.
* The map is an average in the *cell frame*: if the whole crystal drifts or a GB
  slides, sites smear out.  Remove centre-of-mass drift before if needed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hpcnnp.fileio import atomic_open
from hpcnnp.units import BOHR

from ._output import new_figure, save_figure
from .base import AnalysisBase, AnalysisError

__all__ = ["LiDensity", "BOHR"]



class LiDensity(AnalysisBase):
    """Positional probability density of one species on a fractional 3-D grid.

    Parameters
    ----------
    trajectory : H5MDTrajectory, path, list of ase.Atoms or ArrayTrajectory
    species : str
        Element (default ``"Li"``).
    grid : (int, int, int), optional
        Voxels along the three cell vectors; default from ``spacing``.
    spacing : float, Å
        Target voxel edge when ``grid`` is not given (cell lengths of the first
        frame / spacing, rounded).
    """

    _fields = ("position",)

    def __init__(self, trajectory, species="Li", grid=None, spacing=0.5):
        super().__init__(trajectory)
        self.species = species
        self._sel = self._species_indices(species)
        if grid is None:
            if not spacing > 0:
                raise AnalysisError(f"LiDensity: spacing must be > 0 Å, got {spacing}")
            lengths = np.linalg.norm(self.trajectory.first_frame(0)["box"], axis=1)
            grid = tuple(max(1, int(round(L / spacing))) for L in lengths)
        grid = tuple(int(g) for g in grid)
        if len(grid) != 3 or min(grid) < 1:
            raise AnalysisError(f"LiDensity: grid must be three positive integers, got {grid}")
        self.grid = grid

    def _prepare(self):
        self._counts = self._add_sum("counts", self.grid, np.int64)
        self._box = self._add_series("box", (3, 3), np.float64)

    def _chunk(self, chunk):
        pos = chunk["position"][:, self._sel]
        box = chunk["box"]
        self._box[chunk["rows"]] = box
        s = np.einsum("fni,fij->fnj", pos, np.linalg.inv(box))
        s -= np.floor(s)
        n = np.asarray(self.grid)
        ijk = np.minimum((s * n).astype(np.int64), n - 1)
        flat = (ijk[..., 0] * n[1] + ijk[..., 1]) * n[2] + ijk[..., 2]
        self._counts += np.bincount(flat.ravel(), minlength=int(np.prod(n))).reshape(
            self.grid)

    def _conclude(self):
        r = self.results
        boxes = self._series["box"]
        mean_box = boxes.mean(axis=0)
        vol = abs(np.linalg.det(mean_box))     # the cell of the cube file and maps
        nvox = int(np.prod(self.grid))
        counts = self._sums["counts"]
        r.counts = counts
        r.grid = np.array(self.grid)
        r.box = mean_box
        r.voxel_volume = vol / nvox
        r.density = counts / (self.n_frames * r.voxel_volume)           # 1/Å^3
        r.probability = counts / counts.sum()
        r.n_mean = counts.sum() / self.n_frames
        r.n_frames = self.n_frames
        r.species = self.species
        r.first_frame = int(self.frames[0])

    # ------------------------------------------------------------------ output
    def write_cube(self, path, atoms="first"):
        """Write the density as a Gaussian cube file (bohr, values in 1/bohr^3).

        Parameters
        ----------
        path : str or Path
        atoms : "first" or None
            Include the atoms of the first analysed frame (wrapped into the cell), or
            none.
        """
        r = self.results
        box = r.box / BOHR
        n = r.grid
        vox = box / n[:, None]
        origin = 0.5 * vox.sum(axis=0)                  # values at voxel centres
        if atoms == "first":
            fr = self.trajectory.first_frame(r.first_frame)
            b = fr["box"]
            s = fr["position"] @ np.linalg.inv(b)
            s -= np.floor(s)
            xyz = (s @ r.box) / BOHR
            from ase.data import atomic_numbers
            z = [atomic_numbers.get(sym, 0) for sym in self.trajectory.species]
        else:
            xyz, z = np.zeros((0, 3)), []
        lines = [f"{self.species} probability density (hpcnnp.analysis.LiDensity), "
                 f"{r.n_frames} frames, mean N = {r.n_mean:.4f}",
                 "values: number density in 1/bohr^3 at voxel centres; grid = cell / n",
                 f"{len(z):5d} {origin[0]:12.6f} {origin[1]:12.6f} {origin[2]:12.6f}"]
        for i in range(3):
            lines.append(f"{n[i]:5d} {vox[i, 0]:12.6f} {vox[i, 1]:12.6f} {vox[i, 2]:12.6f}")
        for zi, p in zip(z, xyz):
            lines.append(f"{zi:5d} {0.0:12.6f} {p[0]:12.6f} {p[1]:12.6f} {p[2]:12.6f}")
        values = (r.density * BOHR**3).reshape(-1, n[2])
        path = Path(path)
        with atomic_open(path) as fh:
            fh.write("\n".join(lines) + "\n")
            full, rest = divmod(int(n[2]), 6)
            for row in values:
                if full:
                    np.savetxt(fh, row[:6 * full].reshape(full, 6), fmt="%13.5e")
                if rest:
                    np.savetxt(fh, row[6 * full:][None], fmt="%13.5e")
        return path

    def map2d(self, axis=2, slice=None):
        """2-D map: projection along cell vector ``axis`` (Li/Å²) or one slice (Li/Å³).

        Returns
        -------
        data : (n_u, n_v) array
        X, Y : (n_u + 1, n_v + 1) arrays of voxel corner coordinates (Å) in the plane
            of the two other cell vectors (x along the first of them).
        (u, v) : indices of the two other cell vectors
        """
        r = self.results
        if axis not in (0, 1, 2):
            raise AnalysisError(f"LiDensity.plot: axis must be 0, 1 or 2, got {axis}")
        u, v = [i for i in range(3) if i != axis]
        n = r.grid
        if slice is None:
            area = np.linalg.norm(np.cross(r.box[u], r.box[v]))
            data = r.counts.sum(axis=axis) / (r.n_frames * area / (n[u] * n[v]))
        else:
            if not 0 <= int(slice) < n[axis]:
                raise AnalysisError(f"LiDensity.plot: slice {slice} outside 0..{n[axis] - 1}")
            data = np.take(r.density, int(slice), axis=axis)
        e1 = r.box[u] / np.linalg.norm(r.box[u])
        w = r.box[v] - (r.box[v] @ e1) * e1
        e2 = w / np.linalg.norm(w)
        iu = np.arange(n[u] + 1)[:, None] / n[u]
        iv = np.arange(n[v] + 1)[None, :] / n[v]
        P = iu[..., None] * r.box[u] + iv[..., None] * r.box[v]
        return data, P @ e1, P @ e2, (u, v)

    def plot(self, path, axis=2, slice=None, cmap="magma"):
        """PNG of :meth:`map2d` with colourbar, axes in Å; the map also as ``.npy``."""
        r = self.results
        data, X, Y, (u, v) = self.map2d(axis, slice)
        names = "abc"
        fig = new_figure(figsize=(6.4, 5.4))
        ax = fig.add_subplot()
        m = ax.pcolormesh(X, Y, data, cmap=cmap, shading="flat", rasterized=True)
        ax.set_aspect("equal")
        ax.set_xlabel(f"x along {names[u]} (Å)")
        ax.set_ylabel(f"y in the {names[u]}{names[v]} plane (Å)")
        cb = fig.colorbar(m, ax=ax, shrink=0.85)
        if slice is None:
            cb.set_label(f"{self.species} density projected along {names[axis]} (atoms/Å²)")
            what = f"projected along {names[axis]}"
        else:
            s = (int(slice) + 0.5) / r.grid[axis]
            cb.set_label(f"{self.species} density (atoms/Å³)")
            what = f"slice {slice} of {r.grid[axis]} at {names[axis]} = {s:.3f}"
        sc = self.trajectory.metadata.get("structure_class", "")
        ax.set_title(f"{self.species} probability density {sc}\n{what}, "
                     f"{r.n_frames} frames, mean N = {r.n_mean:.1f}", fontsize=10)
        path = Path(path)
        save_figure(fig, path)
        np.save(path.with_suffix(".npy"), data)
        return path
