r"""Structure and dynamics: partial g(r), MSD and diffusivity, vibrational DOS.

Radial distribution function
============================
The partial pair distribution function of species A and B,

.. math::

    g_{AB}(r) = \frac{V}{N_A N_B'} \,
    \frac{\langle n_{AB}(r, r + \Delta r) \rangle}{\tfrac{4\pi}{3}
    \left[(r + \Delta r)^3 - r^3\right]},
    \qquad N_B' = N_B - \delta_{AB},

counts the ordered pairs (i in A, j in B, i != j) at distance r (minimum image)
and divides by the ideal-gas count of a uniform density: g = 1 for an ideal gas and
at large r in a liquid.  With a fluctuating volume (NPT) the normalisation uses
:math:`\sum_t 1/V_t`, which is exact for the ideal gas.  The running coordination
number :math:`n_{AB}(r)` is the mean number of B atoms within r of an A atom.

Pitfall: r_max must not exceed half the smallest perpendicular width of the cell
(beyond it an atom sees its own images and minimum-image distances are wrong); this
is checked, also in every frame.

Mean-squared displacement and diffusivity
=========================================
.. math::

    \mathrm{MSD}(\tau) = \big\langle |\mathbf r_i(t+\tau) - \mathbf r_i(t)|^2
    \big\rangle_{i,t}, \qquad D = \lim_{\tau\to\infty} \frac{\mathrm{MSD}(\tau)}{6\tau}.

**MSD needs unwrapped coordinates**: positions wrapped into the cell jump by a cell
vector when an atom crosses the boundary.  The unwrapped position is
``position + image @ box`` (image flags stored in the H5MD file); without image flags
``unwrap="nojump"`` rebuilds continuous paths from minimum-image displacements
between consecutive frames (valid when no atom moves half a cell between frames:
do not use large ``step`` with it).

The average over all time origins t is computed with the FFT algorithm (Kneller et
al., Comput. Phys. Commun. 91, 191 (1995); Calandrini et al., Collection SFN 12,
201 (2011), doi:10.1051/sfn/201112010): :math:`\mathrm{MSD}(m) = S_1(m) - 2 S_2(m)`
with :math:`S_2` the position autocorrelation (by FFT, zero-padded to 2T) and
:math:`S_1` a running sum, O(T log T) instead of O(T^2) per atom.

:class:`Diffusivity` fits :math:`\mathrm{MSD} = 6 D \tau + c` over a stated window
of lag times, by default 10 %-50 % of the longest lag (the short-time ballistic and
caged regime is left out, and so are the long lags with few time origins).  Its
uncertainty is a **block** estimate, the larger of two:

* atom groups: the atoms are split into ``n_blocks`` groups, D is fitted to each
  group's MSD over the same window, and the error is their standard error (D of the
  whole set is exactly the atom-weighted mean of the group values);
* time blocks: the trajectory is cut into ``n_blocks`` consecutive parts and D is
  fitted in each (same fractions of the block length); this catches drifts and
  correlated (concerted) motion that atom groups miss, but fits shorter lags.

The fit standard error is reported as well; it ignores the correlation between MSD
points and is much too small as an error bar.  :func:`arrhenius` fits
:math:`D = D_0 \exp(-E_a / k_B T)` over temperatures.

Units: Å, fs; D in Å²/fs (1 Å²/fs = 0.1 cm²/s) and cm²/s.

Vibrational density of states
=============================
.. math::

    g_\alpha(\nu) \propto \int \langle \mathbf v_i(0)\cdot\mathbf v_i(t)
    \rangle_{i\in\alpha}\, e^{-2\pi i \nu t}\,\mathrm{d}t
    \;=\; \frac{1}{T}\Big\langle \big|\tilde{\mathbf v}_i(\nu)\big|^2\Big\rangle

(Wiener-Khinchin: the Fourier transform of the velocity autocorrelation function is
the power spectrum of the velocities).  Each species' spectrum is normalised to
:math:`\int g_\alpha\,\mathrm d\nu = 3 N_\alpha` and the total is their sum
(:math:`3N`); frequencies in THz (1/ps).  A Hann window on v(t) reduces spectral
leakage (``window=None`` for the raw periodogram).  Resolution is 1/(T dt): 2 ps of
trajectory resolve 0.5 THz; the Nyquist frequency 1/(2 dt) must exceed the highest
phonon (~25 THz for O in oxides: dt <= 20 fs between stored velocities).

Parallel runs
=============
RDF splits the frames over MPI ranks (integer pair counts: bit-identical results).
MSD and vDOS need whole time series, so they split the atoms; partial sums over
fixed blocks of 16 atoms are added in block order, so the results do not depend on
the number of ranks either.
"""

from __future__ import annotations

import warnings

import numpy as np

from hpcnnp.io.trajectory import ArrayTrajectory, unwrap_images, unwrap_nojump
from hpcnnp.units import A2_PER_FS_TO_CM2_PER_S, KB_EV

from ._output import new_figure, save_figure, write_csv
from ._pbc import pairs_within, perpendicular_widths
from .base import (ATOM_BLOCK, AnalysisBase, AnalysisError, NotComputedError, Results,
                   frame_blocks, species_order)
from .convergence import diffusion_convergence

__all__ = ["RDF", "MinimumDistance", "MSD", "Diffusivity", "arrhenius", "ArrheniusFit",
           "VDOS", "msd_fft", "msd_direct", "KB_EV", "continuous_positions"]


# ======================================================================================
# RDF
# ======================================================================================

class RDF(AnalysisBase):
    """Partial radial distribution functions g_AB(r) (periodic, any cell shape).

    Parameters
    ----------
    trajectory : H5MDTrajectory, path, list of ase.Atoms or ArrayTrajectory
    pairs : list of (str, str), optional
        Species pairs, e.g. ``[("Li", "O"), ("Co", "O")]``; default all pairs
        (A <= B in the order Li La Zr Co O, then A-Z).
    r_max : float, Å
        Largest distance; at most half the smallest perpendicular cell width.
    nbins : int
        Number of bins on [0, r_max].
    """

    _fields = ("position",)

    def __init__(self, trajectory, pairs=None, r_max=6.0, nbins=120):
        super().__init__(trajectory)
        traj = self.trajectory
        order = species_order(traj.species)
        if pairs is None:
            pairs = [(a, b) for k, a in enumerate(order) for b in order[k:]]
        pairs = [tuple(p) for p in pairs]
        for p in pairs:
            if len(p) != 2:
                raise AnalysisError(f"RDF: a pair needs two species, got {p!r}")
            for s in p:
                self._species_indices(s, "species of pair " + "-".join(p))
        if len(set(frozenset(p) for p in pairs)) != len(pairs):
            raise AnalysisError(f"RDF: duplicate pairs in {pairs}")
        self.pairs = pairs
        self.r_max = float(r_max)
        self.nbins = int(nbins)
        if not (self.r_max > 0 and self.nbins >= 1):
            raise AnalysisError("RDF: r_max must be > 0 Å and nbins >= 1")
        self._check_rmax(traj.first_frame(0)["box"], 0)
        involved = sorted({s for p in pairs for s in p}, key=order.index)
        self._involved = np.flatnonzero(np.isin(traj.species, involved))
        code = {s: k for k, s in enumerate(involved)}
        self._code = np.array([code[s] for s in traj.species[self._involved]])
        table = np.full((len(involved), len(involved)), -1, dtype=np.int64)
        for k, (a, b) in enumerate(pairs):
            table[code[a], code[b]] = table[code[b], code[a]] = k
        self._table = table
        self._n = {s: int(np.sum(traj.species == s)) for s in involved}
        self.bin_edges = np.linspace(0.0, self.r_max, self.nbins + 1)

    def _check_rmax(self, box, index):
        w = perpendicular_widths(box).min()
        if self.r_max > 0.5 * w * (1 + 1e-12):
            raise AnalysisError(f"RDF: r_max = {self.r_max} Å exceeds half the smallest "
                                f"cell width ({0.5 * w:.4f} Å) in frame {index}")

    def _prepare(self):
        self._counts = self._add_sum("counts", (len(self.pairs), self.nbins), np.int64)
        self._inv_vol = self._add_series("inv_volume", (), np.float64)

    def _single_frame(self, frame):
        self._check_rmax(frame.box, frame.index)
        self._inv_vol[frame.row] = 1.0 / abs(np.linalg.det(frame.box))
        i, j, d = pairs_within(frame.box, self.r_max, frame.position[self._involved])
        t = self._table[self._code[i], self._code[j]]
        b = (d * (self.nbins / self.r_max)).astype(np.int64)
        ok = (t >= 0) & (b < self.nbins)
        self._counts += np.bincount(t[ok] * self.nbins + b[ok],
                                    minlength=len(self.pairs) * self.nbins).reshape(
                                        len(self.pairs), self.nbins)

    def _conclude(self):
        r = self.results
        e = self.bin_edges
        shell = 4.0 / 3.0 * np.pi * np.diff(e**3)
        sum_inv_v = self._series["inv_volume"].sum()
        counts = self._sums["counts"].copy()
        rdf, cn = {}, {}
        g = np.empty((len(self.pairs), self.nbins))
        for k, (a, b) in enumerate(self.pairs):
            na, nb = self._n[a], self._n[b]
            ordered = counts[k] * (2 if a == b else 1)     # ordered pairs A -> B
            nbp = nb - 1 if a == b else nb
            with np.errstate(invalid="ignore", divide="ignore"):
                g[k] = ordered / (na * nbp * shell * sum_inv_v)
            rdf[f"{a}-{b}"] = g[k]
            cn[f"{a}-{b}"] = np.cumsum(ordered) / (self.n_frames * na)
        r.bin_edges, r.bins = e, 0.5 * (e[1:] + e[:-1])
        r.rdf, r.g, r.cn, r.pairs = rdf, g, cn, [f"{a}-{b}" for a, b in self.pairs]
        r.counts = counts
        r.n_frames = self.n_frames

    def to_csv(self, path):
        r = self.results
        cols = {"r_A": r.bins}
        for p in r.pairs:
            cols[f"g_{p}"] = r.rdf[p]
            cols[f"cn_{p}"] = r.cn[p]
        return write_csv(path, cols, f"partial g(r), {r.n_frames} frames; cn = running "
                                     "coordination number (B atoms within r of an A atom)")

    def plot(self, path):
        r = self.results
        fig = new_figure(figsize=(6.4, 4.2))
        ax = fig.add_subplot()
        for p in r.pairs:
            ax.plot(r.bins, r.rdf[p], lw=1.2, label=p)
        ax.axhline(1.0, color="0.5", lw=0.8, ls=":")
        ax.set_xlabel("r (Å)")
        ax.set_ylabel("g(r)")
        ax.set_xlim(0, self.r_max)
        ax.legend(fontsize=8, ncol=2 if len(r.pairs) > 6 else 1)
        sc = self.trajectory.metadata.get("structure_class", "")
        ax.set_title(f"Partial radial distribution functions {sc} ({r.n_frames} frames)",
                     fontsize=10)
        return save_figure(fig, path)


class MinimumDistance(AnalysisBase):
    """Smallest interatomic distance in every frame (minimum image, any cell shape).

    The check "no pair of atoms closer than d in any frame" of production MD: a
    potential that lets atoms collapse onto each other shows it here first.

    Parameters
    ----------
    trajectory : H5MDTrajectory, path, list of ase.Atoms or ArrayTrajectory
    r_search : float, Å
        Neighbour-search radius (capped at half the smallest cell width); frames
        with no pair closer report ``r_search`` (a lower bound).

    Results
    -------
    d_min (n_frames,) Å; pair (n_frames, 2) atom indices of the closest pair;
    pair_species (list of "A-B"); overall (the smallest over all frames, Å);
    overall_frame (its frame index).
    """

    _fields = ("position",)

    def __init__(self, trajectory, r_search=2.5):
        super().__init__(trajectory)
        self.r_search = float(r_search)
        if not self.r_search > 0:
            raise AnalysisError("MinimumDistance: r_search must be > 0 Å")

    def _prepare(self):
        self._d = self._add_series("d_min", (), np.float64)
        self._pair = self._add_series("pair", (2,), np.int64)

    def _single_frame(self, frame):
        r = min(self.r_search, 0.5 * perpendicular_widths(frame.box).min())
        i, j, d = pairs_within(frame.box, r, frame.position)
        if len(d):
            k = int(np.argmin(d))
            self._d[frame.row], self._pair[frame.row] = d[k], (i[k], j[k])
        else:
            self._d[frame.row], self._pair[frame.row] = r, (-1, -1)

    def _conclude(self):
        r = self.results
        r.d_min = self._series["d_min"]
        r.pair = self._series["pair"]
        sp = self.trajectory.species
        r.pair_species = [f"{sp[a]}-{sp[b]}" if a >= 0 else "none" for a, b in r.pair]
        k = int(np.argmin(r.d_min))
        r.overall, r.overall_frame = float(r.d_min[k]), int(self.frames[k])
        r.n_frames = self.n_frames


# ======================================================================================
# MSD
# ======================================================================================

def msd_fft(x):
    """MSD over all time origins by FFT, per atom and Cartesian component.

    Parameters
    ----------
    x : (T, ..., 3) array, unwrapped positions

    Returns
    -------
    (T, ..., 3) array: MSD component by component for lags 0..T-1 (Å²); sum the last
    axis for the 3-D MSD.
    """
    x = np.asarray(x, dtype=np.float64)
    T = x.shape[0]
    f = np.fft.rfft(x, n=2 * T, axis=0)
    s2 = np.fft.irfft(f * f.conj(), n=2 * T, axis=0)[:T]
    norm = (T - np.arange(T)).reshape((T,) + (1,) * (x.ndim - 1))
    s2 /= norm
    d = x * x
    front = np.concatenate([np.zeros((1,) + d.shape[1:]), np.cumsum(d, axis=0)[:-1]])
    back = np.concatenate([np.zeros((1,) + d.shape[1:]),
                           np.cumsum(d[::-1], axis=0)[:-1]])
    s1 = (2.0 * d.sum(axis=0) - front - back) / norm
    out = s1 - 2.0 * s2
    out[0] = 0.0                       # exactly, instead of FFT round-off
    return out


def msd_direct(x):
    """Reference O(T^2) MSD (same output as :func:`msd_fft`)."""
    x = np.asarray(x, dtype=np.float64)
    T = x.shape[0]
    out = np.zeros_like(x)
    for m in range(1, T):
        out[m] = ((x[m:] - x[:-m]) ** 2).mean(axis=0)
    return out


def continuous_positions(analysis, chunk, need, local):
    """Continuous positions of the ``local`` atoms of a chunk (Å), by the analysis'
    ``unwrap`` rule, minus the centre of mass of all atoms if ``remove_drift``.

    ``need`` is the atom selection to unwrap (all atoms when the centre of mass is
    removed); the nojump state is kept in ``analysis._prev`` between chunks.
    """
    pos = chunk["position"][:, need].astype(np.float64)
    if analysis.unwrap == "image":
        pos = unwrap_images(pos, chunk["image"][:, need], chunk["box"])
    elif analysis.unwrap == "nojump":
        pos, analysis._prev = unwrap_nojump(pos, chunk["box"], analysis._prev)
    if getattr(analysis, "remove_drift", False):
        m = analysis.trajectory.masses
        com = np.einsum("fnc,n->fc", pos, m) / m.sum()
        return pos[:, local] - com[:, None, :]
    return pos if need is local else pos[:, local]


class _AtomSplit(AnalysisBase):
    """Shared by MSD and VDOS: whole time series of the local atoms, split in blocks."""

    _split = "atoms"

    def _local_atoms(self):
        n = len(self._sel)
        nblk = -(-n // ATOM_BLOCK)
        lo, hi = frame_blocks(nblk, self._comm.size)[self._comm.rank]
        self._blk = (lo, hi)
        return self._sel[lo * ATOM_BLOCK:min(hi * ATOM_BLOCK, n)]

    def _per_block(self, fn, x):
        """``fn`` applied to each fixed atom block of x (T, n_local, ...) separately.

        The same array shapes reach the FFT whatever the number of ranks, so the
        results are bit-identical for any rank count.
        """
        n = x.shape[1]
        if n == 0:
            return fn(x)
        return np.concatenate([fn(x[:, lo:lo + ATOM_BLOCK])
                               for lo in range(0, n, ATOM_BLOCK)], axis=1)

    def _block_sums(self, per_atom):
        """Sum per_atom (n_local, ...) over each fixed block of ATOM_BLOCK atoms."""
        n = len(per_atom)
        starts = np.arange(0, n, ATOM_BLOCK)
        if n == 0:
            return np.zeros((0,) + per_atom.shape[1:])
        return np.add.reduceat(per_atom, starts, axis=0)


class MSD(_AtomSplit):
    """Mean-squared displacement of one species (all time origins).

    Parameters
    ----------
    trajectory : H5MDTrajectory, path, list of ase.Atoms or ArrayTrajectory
    species : str
        Element (e.g. ``"Li"``).
    fft : bool
        FFT algorithm (default) or the direct O(T^2) double loop.
    unwrap : {"auto", "image", "nojump", "none"}
        How to get continuous positions: image flags, minimum-image steps between
        consecutive frames, or positions as stored.  ``"auto"``: image flags when
        the trajectory has them, else positions as stored for in-memory arrays and
        "nojump" (with a warning) for files.
    n_blocks : int
        Time blocks for the error of :class:`Diffusivity` (per-block MSDs are kept).
    remove_drift : bool
        Subtract the mass-weighted centre of mass of *all* atoms in every frame
        (thermostats and round-off let the whole cell drift; a drift adds a
        spurious ballistic term to the MSD).

    Notes
    -----
    Frames must be equally spaced in time (the lag axis is ``times - times[0]``).
    Memory: T x N_species x 3 floats per rank.
    """

    _fields = ("position", "image")

    def __init__(self, trajectory, species="Li", fft=True, unwrap="auto", n_blocks=10,
                 remove_drift=False):
        super().__init__(trajectory)
        traj = self.trajectory
        self.species = species
        self._sel = self._species_indices(species)
        self.fft = bool(fft)
        if unwrap not in ("auto", "image", "nojump", "none"):
            raise AnalysisError(f"MSD: unwrap must be auto, image, nojump or none, "
                                f"got {unwrap!r}")
        has_image = "image" in traj.fields
        if unwrap == "auto":
            if has_image:
                unwrap = "image"
            elif isinstance(traj.source, ArrayTrajectory):
                unwrap = "none"
            else:
                warnings.warn(f"{traj.name}: no image flags; MSD unwraps by minimum-image "
                              "steps between frames (unwrap='nojump')", stacklevel=2)
                unwrap = "nojump"
        if unwrap == "image" and not has_image:
            raise AnalysisError(f"{traj.name}: MSD with unwrap='image' needs image flags, "
                                "the trajectory has none (MSD needs unwrapped coordinates: "
                                "use unwrap='nojump', or 'none' if positions are continuous)")
        self.unwrap = unwrap
        self._fields = ("position", "image") if unwrap == "image" else ("position",)
        self.n_blocks = int(n_blocks)
        self.remove_drift = bool(remove_drift)

    def _prepare(self):
        self._local = self._local_atoms()
        self._x = np.empty((self._n_local_rows, len(self._local), 3))
        self._prev = None
        # the centre of mass needs every atom; otherwise only the local ones
        self._need = slice(None) if self.remove_drift else self._local

    def _chunk(self, chunk):
        self._x[chunk["rows"]] = continuous_positions(self, chunk, self._need,
                                                      self._local)

    def _finish_local(self):
        x = self._x
        T = len(x)
        f = msd_fft if self.fft else msd_direct
        m = self._per_block(f, x)                               # (T, n_loc, 3)
        self._series["msd_blocks"] = self._block_sums(np.moveaxis(m, 1, 0))  # (b, T, 3)
        self._series["block_atoms"] = self._block_sums(np.ones(len(self._local)))
        nb = self.n_blocks if T // max(self.n_blocks, 1) >= 4 else 0
        self._tb = []
        if nb:
            parts = []
            for lo, hi in frame_blocks(T, nb):
                mb = self._per_block(f, x[lo:hi])
                parts.append(self._block_sums(np.moveaxis(mb, 1, 0).sum(axis=-1))
                             [:, :T // nb])
                self._tb.append(hi - lo)
            self._series["time_blocks"] = np.stack(parts, axis=1)  # (b, nb, T//nb)
        del self._x

    def _conclude(self):
        r = self.results
        n = len(self._sel)
        m = self._series["msd_blocks"].sum(axis=0) / n          # (T, 3), block order
        t = self.times - self.times[0]
        dt = np.diff(t)
        if len(dt) and not np.allclose(dt, dt[0], rtol=1e-6, atol=1e-9):
            raise AnalysisError(f"{self.trajectory.name}: MSD needs equally spaced frames")
        r.lagtimes = t
        r.msd_xyz = m
        r.msd = m.sum(axis=1)
        r.species, r.n_atoms, r.n_frames = self.species, n, self.n_frames
        r.unwrap = self.unwrap
        # atom groups: consecutive fixed atom blocks (independent of the rank count)
        blocks = self._series["msd_blocks"].sum(axis=-1)        # (n_atom_blocks, T)
        natoms = self._series["block_atoms"]
        G = min(self.n_blocks, len(blocks))
        groups = frame_blocks(len(blocks), G) if G >= 2 else []
        r.group_msd = np.array([blocks[lo:hi].sum(axis=0) / natoms[lo:hi].sum()
                                for lo, hi in groups]).reshape(len(groups), len(m))
        r.group_atoms = np.array([natoms[lo:hi].sum() for lo, hi in groups])
        if "time_blocks" in self._series:
            tb = self._series["time_blocks"].sum(axis=0) / n      # (nb, Tb)
            r.block_msd = tb
            r.block_lagtimes = t[:tb.shape[1]]
        else:
            r.block_msd = np.zeros((0, 0))
            r.block_lagtimes = np.zeros(0)

    def to_csv(self, path):
        r = self.results
        return write_csv(path, {"lag_fs": r.lagtimes, "msd_A2": r.msd,
                                "msd_x": r.msd_xyz[:, 0], "msd_y": r.msd_xyz[:, 1],
                                "msd_z": r.msd_xyz[:, 2]},
                         f"MSD of {r.species} ({r.n_atoms} atoms, {r.n_frames} frames, "
                         f"unwrap={r.unwrap})")

    def plot(self, path, diffusivity=None):
        r = self.results
        fig = new_figure(figsize=(6.4, 4.2))
        ax = fig.add_subplot()
        t = r.lagtimes / 1000.0
        ax.plot(t, r.msd, color="k", lw=1.6, label="MSD (x+y+z)")
        for k, c in enumerate("xyz"):
            ax.plot(t, 3 * r.msd_xyz[:, k], lw=0.8, label=f"3 × MSD$_{c}$")
        if diffusivity is not None:
            d = diffusivity.results
            tt = np.linspace(d.fit_window[0], d.fit_window[1], 50)
            ax.plot(tt / 1000.0, d.slope * tt + d.intercept, "r--", lw=1.5,
                    label=f"fit: D = {d.D_cm2_s:.3g} ± {d.D_err_cm2_s:.2g} cm²/s")
            ax.axvspan(d.fit_window[0] / 1000, d.fit_window[1] / 1000, color="r",
                       alpha=0.06)
        ax.set_xlabel("lag time τ (ps)")
        ax.set_ylabel(f"{r.species} MSD (Å²)")
        ax.legend(fontsize=8)
        ax.set_title(f"Mean-squared displacement of {r.species} ({r.n_atoms} atoms, "
                     f"{r.n_frames} frames)", fontsize=10)
        return save_figure(fig, path)


def _linfit(x, y):
    """Least-squares line y = a x + b; returns a, b, standard error of a."""
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    n = len(x)
    A = np.column_stack([x, np.ones(n)])
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    res = y - A @ coef
    if n > 2:
        s2 = res @ res / (n - 2)
        cov = s2 * np.linalg.inv(A.T @ A)
        se = float(np.sqrt(cov[0, 0]))
    else:
        se = np.nan
    return float(coef[0]), float(coef[1]), se


class Diffusivity:
    """Tracer diffusion coefficient D = slope / 6 of the MSD over a fitting window.

    Parameters
    ----------
    msd : MSD (run) or trajectory
        A finished :class:`MSD`, or a trajectory (then :meth:`run` computes the MSD
        of ``species`` first).
    species : str
        Element when ``msd`` is a trajectory.
    fit_window : (float, float), fs, optional
        Lag-time window of the fit; default 10 %-50 % of the longest lag.  The block
        fits use the same fractions of the block length.
    n_blocks : int
        Time blocks of the uncertainty (when ``msd`` is a trajectory).

    Results
    -------
    D, D_err (block standard error, see the module docstring; the fit standard error
    when there are too few frames and atoms for blocks), D_err_atom_groups,
    D_err_time_blocks, D_fit_stderr (Å²/fs); D_cm2_s, D_err_cm2_s; slope,
    intercept; fit_window (fs); D_blocks (time blocks), D_groups (atom groups).
    """

    def __init__(self, msd, species="Li", fit_window=None, n_blocks=10):
        self._msd = msd if isinstance(msd, MSD) else None
        self._source = None if isinstance(msd, MSD) else msd
        self.species = species
        self.fit_window = fit_window
        self.n_blocks = n_blocks
        self._results = None
        if self._msd is not None and self._msd._results is not None:
            self._fit()

    @property
    def results(self):
        if self._results is None:
            raise NotComputedError("Diffusivity.results: no results yet; call run() first "
                                   "(or pass an MSD that has been run)")
        return self._results

    def run(self, start=None, stop=None, step=None, comm=None, progress=False):
        if self._msd is None:
            self._msd = MSD(self._source, self.species, n_blocks=self.n_blocks)
        if self._msd._results is None or start is not None or stop is not None \
                or step is not None:
            self._msd.run(start, stop, step, comm=comm, progress=progress)
        self._fit()
        return self

    def _window(self, t, frac=None):
        tmax = t[-1]
        if frac is not None:
            return frac[0] * tmax, frac[1] * tmax
        if self.fit_window is None:
            return 0.1 * tmax, 0.5 * tmax
        return float(self.fit_window[0]), float(self.fit_window[1])

    def _fit(self):
        m = self._msd.results
        t = m.lagtimes
        if len(t) < 4:
            raise AnalysisError(f"Diffusivity: {len(t)} frames are too few for a fit")
        t0, t1 = self._window(t)
        sel = (t >= t0) & (t <= t1)
        if sel.sum() < 3:
            raise AnalysisError(f"Diffusivity: the fit window {t0:g}-{t1:g} fs holds "
                                f"{sel.sum()} lag times (need >= 3)")
        slope, icpt, se = _linfit(t[sel], m.msd[sel])
        D = slope / 6.0
        frac = (t0 / t[-1], t1 / t[-1])
        Db = []
        for bm in m.block_msd:
            tb = m.block_lagtimes
            b0, b1 = frac[0] * tb[-1], frac[1] * tb[-1]
            s = (tb >= b0) & (tb <= b1)
            if s.sum() >= 3:
                Db.append(_linfit(tb[s], bm[s])[0] / 6.0)
        Db = np.array(Db)
        Dg = np.array([_linfit(t[sel], gm[sel])[0] / 6.0 for gm in m.group_msd])
        r = Results()
        r.D = D
        r.D_fit_stderr = se / 6.0
        errs = []
        if len(Db) >= 2:
            r.D_err_time_blocks = float(Db.std(ddof=1) / np.sqrt(len(Db)))
            errs.append((r.D_err_time_blocks, f"{len(Db)} time blocks"))
        if len(Dg) >= 2:
            w = m.group_atoms / m.group_atoms.sum()
            G = len(Dg)
            r.D_err_atom_groups = float(np.sqrt(G / (G - 1) * np.sum(w**2 * (Dg - D) ** 2)))
            errs.append((r.D_err_atom_groups, f"{G} atom groups"))
        if errs:
            r.D_err, what = max(errs)
            r.error_method = ("block standard error (larger of " +
                              " and ".join(e[1] for e in errs) + f": {what})")
        else:
            r.D_err = r.D_fit_stderr
            r.error_method = "fit standard error (too few frames and atoms for blocks)"
        r.D_blocks = Db
        r.D_groups = Dg
        r.slope, r.intercept = slope, icpt
        r.fit_window = (t0, t1)
        r.D_cm2_s = D * A2_PER_FS_TO_CM2_PER_S
        r.D_err_cm2_s = r.D_err * A2_PER_FS_TO_CM2_PER_S
        r.species = m.species
        r.simulated_time = float(t[-1])
        r.convergence = diffusion_convergence(t, m.msd, (t0, t1), D, r.D_err)
        r.converged = r.convergence.converged
        self._results = r
        return r


class ArrheniusFit(Results):
    """Result of :func:`arrhenius` (a :class:`Results`); calling it gives D(T)."""

    def __call__(self, temperature):
        """D0 exp(-Ea / (kB T)) at ``temperature`` (K), in the unit of D0."""
        return self.D0 * np.exp(-self.Ea / (KB_EV * np.asarray(temperature, dtype=float)))


def arrhenius(temperatures, D, D_err=None):
    """Fit D(T) = D0 exp(-Ea / (kB T)) by weighted least squares of ln D on 1/(kB T).

    Parameters
    ----------
    temperatures : array, K
        At least two different temperatures.
    D : array
        Diffusivities (> 0, any unit; D0 comes in the same unit).
    D_err : array, optional
        Uncertainties of D: weights 1/σ² of ln D with σ = D_err / D.

    Returns
    -------
    ArrheniusFit
        ``Ea``, ``Ea_err`` (eV), ``D0``, ``D0_err``, ``lnD0``, ``lnD0_err`` and the fit
        arrays ``T``, ``D``, ``inv_kT``; callable as D(T).

    Notes
    -----
    Errors: with ``D_err`` the covariance of the weighted fit, scaled by the reduced
    χ² when that exceeds 1 (Birge ratio: the points scatter more than their error
    bars say; needs three or more temperatures); without, the covariance from the
    scatter of the points (NaN for two temperatures, where a line fits exactly).
    """
    T = np.asarray(temperatures, dtype=np.float64)
    D = np.asarray(D, dtype=np.float64)
    if T.shape != D.shape or len(T) < 2 or len(np.unique(T)) < 2:
        raise AnalysisError("arrhenius: need diffusivities at two or more temperatures "
                            "(equal-length arrays)")
    if np.any(D <= 0) or np.any(T <= 0):
        raise AnalysisError("arrhenius: D and T must be positive (got D = "
                            f"{', '.join(f'{d:.3g}' for d in D)})")
    x = 1.0 / (KB_EV * T)
    y = np.log(D)
    known = D_err is not None and np.all(np.asarray(D_err, dtype=float) > 0)
    w = (D / np.asarray(D_err, dtype=float)) ** 2 if known else np.ones_like(y)
    A = np.column_stack([-x, np.ones_like(x)])
    Aw = A * w[:, None]
    cov = np.linalg.inv(A.T @ Aw)
    coef = cov @ (Aw.T @ y)
    dof = len(T) - 2
    chi2 = float(np.sum(w * (y - A @ coef) ** 2)) / dof if dof > 0 else None
    if known:
        cov = cov * max(chi2, 1.0) if chi2 is not None else cov
    else:
        cov = cov * chi2 if chi2 is not None else np.full((2, 2), np.nan)
    fit = ArrheniusFit()
    fit.Ea, fit.lnD0 = float(coef[0]), float(coef[1])
    fit.Ea_err, fit.lnD0_err = float(np.sqrt(cov[0, 0])), float(np.sqrt(cov[1, 1]))
    fit.D0 = float(np.exp(coef[1]))
    fit.D0_err = fit.D0 * fit.lnD0_err
    fit.T, fit.D, fit.inv_kT = T, D, x
    return fit


# ======================================================================================
# VDOS
# ======================================================================================

class VDOS(_AtomSplit):
    """Vibrational density of states per species from the velocity autocorrelation.

    Parameters
    ----------
    trajectory : trajectory or (T, N, 3) array of velocities (Å/fs)
    species : str or list of str, optional
        Species to include (default all).  With an array, ``atom_species`` names
        the species of every atom (default all ``"X"``).
    dt : float, fs, optional
        Time between frames (default from the trajectory's times; required with an
        array).
    window : "hann" or None
        Window on v(t) before the transform.
    atom_species : list of str
        Species of the atoms when ``trajectory`` is a velocity array.

    Notes
    -----
    Without velocities in the trajectory, they are central differences of the
    unwrapped positions (with a warning; needs frames every few fs).
    """

    def __init__(self, trajectory, species=None, dt=None, window="hann",
                 atom_species=None):
        if isinstance(trajectory, np.ndarray):
            v = trajectory
            if v.ndim != 3 or v.shape[2] != 3:
                raise AnalysisError(f"VDOS: velocities must be (T, N, 3), got {v.shape}")
            if dt is None:
                raise AnalysisError("VDOS: dt (fs) is required with a velocity array")
            sp = atom_species if atom_species is not None else ["X"] * v.shape[1]
            trajectory = ArrayTrajectory(np.zeros_like(v), np.eye(3) * 1e3, sp,
                                         velocities=v, dt=dt, name="<velocity array>")
        super().__init__(trajectory)
        traj = self.trajectory
        order = species_order(traj.species)
        if species is None:
            species = order
        elif isinstance(species, str):
            species = [species]
        for s in species:
            self._species_indices(s)
        self.species = list(species)
        self._sel = np.flatnonzero(np.isin(traj.species, self.species))
        code = {s: k for k, s in enumerate(self.species)}
        self._code_all = np.array([code.get(s, -1) for s in traj.species])
        self.dt = dt
        if window not in ("hann", None):
            raise AnalysisError(f"VDOS: window must be 'hann' or None, got {window!r}")
        self.window = window
        if "velocity" in traj.fields:
            self._fields = ("velocity",)
            self._from_positions = False
        else:
            warnings.warn(f"{traj.name}: no velocities; vDOS from central differences of "
                          "the unwrapped positions", stacklevel=2)
            self._fields = ("position", "image") if "image" in traj.fields else ("position",)
            self.unwrap = "image" if "image" in traj.fields else "nojump"
            self._from_positions = True

    def _prepare(self):
        self._local = self._local_atoms()
        self._v = np.empty((self._n_local_rows, len(self._local), 3))
        self._prev = None

    def _chunk(self, chunk):
        rows = chunk["rows"]
        if self._from_positions:
            self._v[rows] = continuous_positions(self, chunk, self._local, self._local)
        else:
            self._v[rows] = chunk["velocity"][:, self._local]

    def _dt(self):
        if self.dt is not None:
            return float(self.dt)
        t = self.times
        if len(t) < 2:
            raise AnalysisError("VDOS: needs at least 2 frames")
        d = np.diff(t)
        if not np.allclose(d, d[0], rtol=1e-6):
            raise AnalysisError(f"{self.trajectory.name}: VDOS needs equally spaced frames")
        return float(d[0])

    def _finish_local(self):
        v = self._v
        T = len(v)
        if T < 4:
            raise AnalysisError(f"VDOS: {T} frames are too few")
        dt = self._dt()
        if self._from_positions:
            v = np.gradient(v, dt, axis=0)
        w = np.hanning(T)[:, None, None] if self.window == "hann" else 1.0

        def power(x):
            return (np.abs(np.fft.rfft(x * w, axis=0)) ** 2).sum(axis=-1)

        def autocorrelation(x):
            f2 = np.fft.rfft(x, n=2 * T, axis=0)
            return np.fft.irfft(f2 * f2.conj(), n=2 * T, axis=0)[:T].sum(axis=-1)

        spec = self._per_block(power, v)                     # (nf, n_loc)
        acf = self._per_block(autocorrelation, v)            # (T, n_loc)
        S = len(self.species)
        code = self._code_all[self._local]
        onehot = np.zeros((len(self._local), S))
        onehot[np.arange(len(self._local)), code] = 1.0
        # per-atom spectra weighted into species columns, summed per fixed atom block
        self._series["spec"] = self._block_sums(spec.T[:, None, :] * onehot[:, :, None])
        self._series["acf"] = self._block_sums(acf.T[:, None, :] * onehot[:, :, None])
        del self._v

    def _conclude(self):
        r = self.results
        T = self.n_frames
        dt = self._dt()
        spec = self._series["spec"].sum(axis=0)                 # (S, nf)
        acf = self._series["acf"].sum(axis=0)                   # (S, T)
        nu = np.fft.rfftfreq(T, d=dt) * 1000.0                  # THz
        dnu = nu[1] - nu[0]
        counts = np.array([np.sum(self.trajectory.species[self._sel] == s)
                           for s in self.species])
        dos = np.empty_like(spec)
        for k in range(len(self.species)):
            integral = spec[k].sum() * dnu
            dos[k] = 3 * counts[k] * spec[k] / integral if integral > 0 else 0.0
        r.frequencies = nu
        r.vdos = {s: dos[k] for k, s in enumerate(self.species)}
        r.vdos_array = dos
        r.total = dos.sum(axis=0)
        r.species = self.species
        r.n_atoms = {s: int(c) for s, c in zip(self.species, counts)}
        r.vacf = {s: acf[k] / (T - np.arange(T)) for k, s in enumerate(self.species)}
        r.vacf_times = np.arange(T) * dt
        r.peak_frequency = {s: float(nu[1:][np.argmax(dos[k, 1:])])
                            for k, s in enumerate(self.species)}
        r.dt, r.n_frames, r.window = dt, T, self.window

    def to_csv(self, path):
        r = self.results
        cols = {"nu_THz": r.frequencies, "total": r.total}
        cols.update({f"vdos_{s}": r.vdos[s] for s in r.species})
        return write_csv(path, cols, f"vDOS (states/THz, integral = 3 N per species), dt = "
                                     f"{r.dt} fs, {r.n_frames} frames, window {r.window}")

    def plot(self, path):
        r = self.results
        fig = new_figure(figsize=(6.4, 4.2))
        ax = fig.add_subplot()
        if len(r.species) > 1:
            ax.fill_between(r.frequencies, r.total, color="0.85", lw=0, label="total")
        for s in r.species:
            ax.plot(r.frequencies, r.vdos[s], lw=1.2, label=f"{s} ({r.n_atoms[s]} atoms)")
        ax.set_xlabel("frequency ν (THz)")
        ax.set_ylabel("vDOS (states / THz)")
        # up to where 99.9 % of the states are (not the Nyquist frequency)
        cum = np.cumsum(r.total)
        top = r.frequencies[min(np.searchsorted(cum, 0.999 * cum[-1]), len(cum) - 1)]
        ax.set_xlim(0, min(r.frequencies[-1], max(1.25 * top, 5.0)))
        ax.legend(fontsize=8)
        ax.set_title(f"Vibrational density of states ({r.n_frames} frames, dt = {r.dt:g} fs)",
                     fontsize=10)
        return save_figure(fig, path)
