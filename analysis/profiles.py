r"""Interdiffusion: number-density profiles of every species along the interface normal.

Physics
=======
At an LLZO|LCO interface, cations (Co, La, Zr) interdiffuse at high temperature and
form reaction layers.  The number density of each species in slabs parallel to the
interface,

.. math::

    n_\alpha(x) = \frac{\langle N_\alpha(x, x + \Delta x) \rangle}{A\,\Delta x},

taken in consecutive time windows, shows the interfaces broaden (and which species
move) as the run goes on.

Method
======
Atoms are binned by their fractional coordinate along the cell vector that crosses
the planes (the normal must be perpendicular to the other two cell vectors), so the
bins follow the cell in NPT runs; :math:`A\Delta x = V/n_\mathrm{bins}` per frame.
The normal comes from the trajectory's metadata (``planes[0]["normal"]``, written by
hpcnnp's interface and grain-boundary builders) or is given; the default is z.

Pitfalls
========
* Profiles are in the cell frame: a drift of the whole system along the normal
  shifts them; compare windows of the same run.
* Each window should hold many frames (the densities of single frames are noisy).
"""

from __future__ import annotations

import numpy as np

from ._output import new_figure, save_figure, write_csv
from ._pbc import normal_axis
from .base import AnalysisBase, AnalysisError, species_order

__all__ = ["InterdiffusionProfiles"]


class InterdiffusionProfiles(AnalysisBase):
    """Number density of every species along the interface normal, per time window.

    Parameters
    ----------
    trajectory : H5MDTrajectory, path, list of ase.Atoms or ArrayTrajectory
    normal : (3,) floats, optional
        Interface normal; default ``metadata["planes"][0]["normal"]``, else (0, 0, 1).
    bin_width : float, Å
        Target bin width (the period along the normal of the first frame is split
        into a whole number of bins).
    windows : int
        Number of consecutive time windows.
    species : list of str, optional
        Species to profile (default: all, in the order Li La Zr Co O, then A-Z).
    """

    _fields = ("position",)

    def __init__(self, trajectory, normal=None, bin_width=0.5, windows=5, species=None):
        super().__init__(trajectory)
        traj = self.trajectory
        if normal is None:
            planes = traj.metadata.get("planes") or []
            normal = planes[0]["normal"] if planes else (0.0, 0.0, 1.0)
            self.planes = planes
        else:
            self.planes = traj.metadata.get("planes") or []
        box0 = traj.first_frame(0)["box"]
        try:
            self._axis, proj, self._normal = normal_axis(box0, normal)
        except ValueError as exc:
            raise AnalysisError(f"{traj.name}: {exc}") from None
        if not bin_width > 0:
            raise AnalysisError("InterdiffusionProfiles: bin_width must be > 0 Å")
        self.nbins = max(1, int(round(abs(proj) / bin_width)))
        self._proj0 = proj
        if species is None:
            species = species_order(traj.species)
        for s in species:
            self._species_indices(s)
        self.species = list(species)
        code = np.full(traj.n_atoms, -1, dtype=np.int64)
        for k, s in enumerate(self.species):
            code[traj.species == s] = k
        self._code = code
        self.windows = int(windows)
        if self.windows < 1:
            raise AnalysisError("InterdiffusionProfiles: windows must be >= 1")

    def _prepare(self):
        S = len(self.species)
        self._counts = self._add_series("counts", (S, self.nbins), np.int32)
        self._volume = self._add_series("volume", (), np.float64)
        self._period = self._add_series("period", (), np.float64)

    def _chunk(self, chunk):
        pos, box, rows = chunk["position"], chunk["box"], chunk["rows"]
        k = self._axis
        inv = np.linalg.inv(box)
        s = np.einsum("fni,fi->fn", pos, inv[:, :, k])
        s -= np.floor(s)
        if self._proj0 < 0:                      # bins in the direction of the normal
            s = (1.0 - s) % 1.0
        b = np.minimum((s * self.nbins).astype(np.int64), self.nbins - 1)
        S, nb = len(self.species), self.nbins
        ok = self._code >= 0
        local = (rows - rows[0])[:, None]
        flat = (local * S + self._code[None, :]) * nb + b
        cnt = np.bincount(flat[:, ok].ravel(), minlength=len(rows) * S * nb)
        self._counts[rows] = cnt.reshape(len(rows), S, nb)
        self._volume[rows] = np.abs(np.linalg.det(box))
        self._period[rows] = np.abs(box[:, k, :] @ self._normal)

    def _density(self, sl):
        c = self._series["counts"][sl].sum(axis=0).astype(np.float64)
        return c * self.nbins / self._series["volume"][sl].sum()

    def _conclude(self):
        r = self.results
        F = self.n_frames
        period = self._series["period"].mean()
        r.bin_edges = np.linspace(0.0, period, self.nbins + 1)
        r.bin_centers = 0.5 * (r.bin_edges[1:] + r.bin_edges[:-1])
        r.species = self.species
        r.density = self._density(slice(0, F))                   # (S, nb) 1/Å^3
        wins = self._block_slices(F, self.windows, "windows")
        r.window_density = np.array([self._density(s) for s in wins])
        r.window_times = np.array([self.times[s].mean() for s in wins])
        r.window_frames = np.array([[s.start, s.stop] for s in wins])
        r.n_frames = F
        r.normal = self._normal
        r.plane_positions = [float(p["position"]) for p in self.planes]

    def to_csv(self, path):
        r = self.results
        cols = {"x_A": r.bin_centers}
        for w in range(len(r.window_density)):
            for k, s in enumerate(self.species):
                cols[f"{s}_w{w}"] = r.window_density[w, k]
        head = (f"number density (1/A^3) along normal {np.round(r.normal, 4).tolist()}; "
                f"windows: " + ", ".join(f"w{w}: t = {t:.6g} fs"
                                         for w, t in enumerate(r.window_times)))
        return write_csv(path, cols, head)

    def plot(self, path):
        """One panel per species, one line per time window (colour = time)."""
        import matplotlib
        from matplotlib.cm import ScalarMappable
        from matplotlib.colors import Normalize

        r = self.results
        S = len(self.species)
        ncol = 2 if S > 1 else 1
        nrow = int(np.ceil(S / ncol))
        fig = new_figure(figsize=(5.2 * ncol, 2.6 * nrow + 0.6), layout="constrained")
        axes = np.atleast_1d(fig.subplots(nrow, ncol, sharex=True)).ravel()
        cmap = matplotlib.colormaps["viridis"]
        t_ps = r.window_times / 1000.0
        norm = Normalize(t_ps.min(), t_ps.max() if t_ps.max() > t_ps.min() else t_ps.min() + 1)
        for k, (ax, s) in enumerate(zip(axes, self.species)):
            for w in range(len(r.window_density)):
                ax.plot(r.bin_centers, r.window_density[w, k], color=cmap(norm(t_ps[w])),
                        lw=1.1)
            for z in r.plane_positions:
                ax.axvline(z, color="0.5", ls="--", lw=0.8)
            ax.set_ylabel(f"n({s}) (Å⁻³)")
            ax.set_title(s, fontsize=10, loc="left")
        for ax in axes[S:]:
            ax.set_visible(False)
        for ax in axes[max(S - ncol, 0):S]:       # bottom panel of every column
            ax.set_xlabel("position along interface normal (Å)")
            ax.tick_params(labelbottom=True)
        sm = ScalarMappable(norm=norm, cmap=cmap)
        fig.colorbar(sm, ax=axes[:S].tolist(), label="time (ps)", shrink=0.8)
        sc = self.trajectory.metadata.get("structure_class", "")
        fig.suptitle(f"Number-density profiles {sc} ({len(r.window_density)} time windows, "
                     f"{r.n_frames} frames; dashed: interface planes)", fontsize=10)
        return save_figure(fig, path)
