r"""Cluster-size distribution of one species (e.g. Co clustering in doped LLZO).

Physics
=======
Two atoms of the species belong to the same cluster when they are closer than
``cutoff`` (periodic, minimum image), and clusters are the connected components of
that neighbour graph.  The distribution :math:`n(s)` (mean number of clusters with
:math:`s` atoms per frame) and its moments follow precipitation: isolated dopants
(:math:`s = 1`) turn into dimers, trimers and finally a second phase.

Quantities: the atom fraction in clusters of size :math:`s`,
:math:`P(s) = s\,n(s)/N`; the number-average size :math:`N / N_\mathrm{clusters}`;
the weight-average size :math:`\sum_s s^2 n(s) / N` (the size the average *atom*
is in); the largest cluster per frame.

Method
======
Per frame: minimum-image pairs within the cutoff by a k-d tree (scipy's cKDTree;
periodic box for orthorhombic cells, ghost images for triclinic ones), then
``scipy.sparse.csgraph.connected_components``.  Linear in N; 17,000-atom frames take
milliseconds for a few hundred dopants.

Pitfalls
========
* The cutoff decides everything; take it from the first minimum of the
  species-species g(r) (:class:`~hpcnnp.analysis.structure.RDF`).
* ``cutoff`` must be below half the smallest cell width.
"""

from __future__ import annotations

import numpy as np

from ._output import new_figure, save_figure, write_csv
from ._pbc import pairs_within, perpendicular_widths
from .base import AnalysisBase, AnalysisError

__all__ = ["ClusterSizes"]


class ClusterSizes(AnalysisBase):
    """Cluster-size distribution of one species vs time.

    Parameters
    ----------
    trajectory : H5MDTrajectory, path, list of ase.Atoms or ArrayTrajectory
    species : str
        Element (default ``"Co"``).
    cutoff : float, Å
        Bond distance of the cluster criterion.
    windows : int
        Number of consecutive time windows with their own distribution.
    """

    _fields = ("position",)

    def __init__(self, trajectory, species="Co", cutoff=3.0, windows=5):
        super().__init__(trajectory)
        self.species = species
        self._sel = self._species_indices(species)
        self.cutoff = float(cutoff)
        if not self.cutoff > 0:
            raise AnalysisError(f"ClusterSizes: cutoff must be > 0 Å, got {cutoff}")
        w = perpendicular_widths(self.trajectory.first_frame(0)["box"]).min()
        if self.cutoff > 0.5 * w:
            raise AnalysisError(f"ClusterSizes: cutoff {self.cutoff} Å exceeds half the "
                                f"smallest cell width ({0.5 * w:.3f} Å)")
        self.windows = int(windows)

    def _prepare(self):
        n = len(self._sel)
        self._hist = self._add_series("hist", n + 1, np.int32)

    def _single_frame(self, frame):
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        pos = frame.position[self._sel]
        n = len(pos)
        if self.cutoff > 0.5 * perpendicular_widths(frame.box).min():
            raise AnalysisError(f"ClusterSizes: frame {frame.index}: the cell became "
                                f"narrower than 2 x cutoff")
        i, j, _ = pairs_within(frame.box, self.cutoff, pos)
        g = coo_matrix((np.ones(len(i), dtype=np.int8), (i, j)), shape=(n, n))
        _, labels = connected_components(g, directed=False)
        sizes = np.bincount(labels)
        self._hist[frame.row] = np.bincount(sizes, minlength=n + 1)

    def _conclude(self):
        r = self.results
        h = self._series["hist"].astype(np.int64)            # (F, N+1)
        n = len(self._sel)
        s = np.arange(n + 1)
        r.sizes = s[1:]
        r.hist = h[:, 1:]
        r.size_distribution = h[:, 1:].mean(axis=0)         # clusters of size s / frame
        r.atom_fraction = s[1:] * r.size_distribution / n
        r.n_clusters = h.sum(axis=1)
        r.mean_size = n / r.n_clusters
        r.weight_mean_size = (h * s**2).sum(axis=1) / n
        r.largest = np.array([np.flatnonzero(row)[-1] for row in h])
        r.times = self.times
        wins = self._block_slices(self.n_frames, min(self.windows, self.n_frames), "windows")
        r.window_atom_fraction = np.array([s[1:] * h[w, 1:].mean(axis=0) / n for w in wins])
        r.window_times = np.array([self.times[w].mean() for w in wins])
        r.species, r.cutoff, r.n_atoms, r.n_frames = self.species, self.cutoff, n, self.n_frames

    def to_csv(self, path):
        """Per-frame table: time, number of clusters, mean, weight-mean, largest size."""
        r = self.results
        return write_csv(path, {"time_fs": r.times, "n_clusters": r.n_clusters,
                                "mean_size": r.mean_size,
                                "weight_mean_size": r.weight_mean_size,
                                "largest": r.largest},
                         f"{self.species} clusters, cutoff {self.cutoff} A, "
                         f"{r.n_atoms} atoms")

    def plot(self, path):
        import matplotlib

        r = self.results
        fig = new_figure(figsize=(10, 4), layout="constrained")
        a1, a2 = fig.subplots(1, 2)
        t = r.times / 1000.0
        a1.plot(t, r.mean_size, label="number-average size")
        a1.plot(t, r.weight_mean_size, label="weight-average size")
        a1.plot(t, r.largest, label="largest cluster")
        a1.set_xlabel("time (ps)")
        a1.set_ylabel(f"{self.species} cluster size (atoms)")
        a1.legend(fontsize=8)
        cmap = matplotlib.colormaps["viridis"]
        nw = len(r.window_atom_fraction)
        smax = int(max(np.flatnonzero(r.window_atom_fraction.sum(axis=0))[-1] + 1, 2))
        for w in range(nw):
            y = np.where(r.window_atom_fraction[w, :smax] > 0,
                         r.window_atom_fraction[w, :smax], np.nan)     # log axis: no 0
            a2.plot(r.sizes[:smax], y, "o", ms=4, alpha=0.8,
                    color=cmap(w / max(nw - 1, 1)),
                    label=f"t ≈ {r.window_times[w] / 1000:.3g} ps")
        a2.set_xlabel("cluster size s (atoms)")
        a2.set_ylabel("fraction of atoms in clusters of size s")
        a2.set_yscale("log")
        a2.legend(fontsize=8)
        fig.suptitle(f"{self.species} clusters (cutoff {self.cutoff} Å, {r.n_atoms} atoms, "
                     f"{r.n_frames} frames)", fontsize=10)
        return save_figure(fig, path)
