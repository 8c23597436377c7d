"""Error evaluation of all structures with the current weights (n2p2-formats.md §10.6).

After every epoch every rank evaluates its structures (energies and forces from the
C core, training units), the error sums are reduced over the ranks in rank order
(same bits everywhere) into n2p2's metrics, and the comparison files
(train/testpoints, train/testforces) and neuron statistics are written by rank 0.
The absolute errors of the training candidates feed SM_SORT.
"""

from __future__ import annotations

import math

import numpy as np

from hpcnnp import _core
from hpcnnp.training import outputs as out

__all__ = ["Evaluator", "metrics"]


def metrics(sums, prop):
    """Error metrics from sums (sq_pa, sq, abs_pa, abs, count) or (sq, abs, count)."""
    if prop == "energy":
        sq_pa, sq, ab_pa, ab, n = sums
        if n == 0:
            return {m: float("nan") for m in out.ENERGY_METRICS}
        return {"RMSEpa": math.sqrt(sq_pa / n), "RMSE": math.sqrt(sq / n),
                "MAEpa": ab_pa / n, "MAE": ab / n}
    sq, ab, n = sums
    if n == 0:
        return {m: float("nan") for m in out.FORCE_METRICS}
    return {"RMSE": math.sqrt(sq / n), "MAE": ab / n}


class _NeuronStats:
    """count/min/max/sum/sum² of the pre-activations of every neuron, per element."""

    def __init__(self, nets, n_el):
        self.nets = nets
        self.stats = []
        for e in range(n_el):
            n = sum(nets.sizes[e])
            self.stats.append([np.zeros(n, dtype=np.int64), np.full(n, np.inf),
                               np.full(n, -np.inf), np.zeros(n), np.zeros(n)])

    def add(self, Gs, elem, nsf):
        for e, st in enumerate(self.stats):
            mask = elem == e
            if not mask.any():
                continue
            gs = Gs[mask][:, :nsf[e]]
            _, xs = self.nets.forward(e, gs, preact=True)
            vals = np.concatenate([gs] + xs, axis=1)
            st[0] += len(vals)
            st[1] = np.minimum(st[1], vals.min(axis=0))
            st[2] = np.maximum(st[2], vals.max(axis=0))
            st[3] += vals.sum(axis=0)
            st[4] += (vals * vals).sum(axis=0)

    def merged(self, comm):
        merged = []
        for cnt, mn, mx, sm, s2 in self.stats:
            merged.append((comm.allsum(cnt.astype(float)), np.min(comm.allgather(mn), axis=0),
                           np.max(comm.allgather(mx), axis=0), comm.allsum(sm),
                           comm.allsum(s2)))
        return merged


class Evaluator:
    """Evaluates the structures of one rank (see the module docstring).

    Parameters
    ----------
    tr : Trainer
        Supplies comm, cfg, potential, nets, units, structures, SF cache and the
        output folder.
    """

    def __init__(self, tr):
        self.tr = tr

    def evaluate(self, epoch, write_points=False, write_forces=False, neuron_stats=False,
                 keep_parity=False):
        """Errors of all structures (collective).  Returns (errors, energy candidate
        errors, force candidate errors, parity or None)."""
        tr = self.tr
        use_f = tr.cfg.use_forces
        inv_cl = 1.0 / tr.units.conv_length
        sums = {("energy", True): np.zeros(5), ("energy", False): np.zeros(5),
                ("force", True): np.zeros(3), ("force", False): np.zeros(3)}
        e_err, f_err = [], []
        plines, flines = {True: [], False: []}, {True: [], False: []}
        parity_e, parity_f = [], []
        nstats = _NeuronStats(tr.nets, tr.n_el) if neuron_stats else None
        model = tr.potential._model
        for s in tr.structures:
            nl, elem = tr.potential.neighbor_list(s.atoms)
            res = _core.energy_forces(model, nl, elem, s.n, forces=use_f, full=True)
            energy = float(res["output"].sum())
            de = s.e_ref - energy
            sums[("energy", s.is_train)] += (de * de / (s.n * s.n), de * de, abs(de) / s.n,
                                             abs(de), 1)
            if s.is_train:
                e_err.append(abs(de) / s.n)
            if write_points:
                plines[s.is_train].append((s.index, "%10d %16.8E %16.8E\n"
                                           % (s.index, s.e_ref / s.n, energy / s.n)))
            if keep_parity:
                parity_e.append((s.index, s.is_train,
                                 tr.units.energy_per_atom_phys(s.e_ref / s.n),
                                 tr.units.energy_per_atom_phys(energy / s.n)))
            if use_f:
                fn = res["forces"][:s.n] * inv_cl
                df = s.f_ref - fn
                sums[("force", s.is_train)] += ((df * df).sum(), np.abs(df).sum(), df.size)
                if s.is_train:
                    f_err.append(np.abs(df).ravel())
                if write_forces:
                    flines[s.is_train].append((s.index, _force_lines(s, fn)))
                if keep_parity:
                    parity_f.append((s.index, s.is_train, tr.units.force_phys(s.f_ref),
                                     tr.units.force_phys(fn)))
            if nstats is not None:
                nstats.add(res["Gs"], elem, tr.sf.nsf)
        errors = self._reduce(sums, use_f)
        if write_points:
            self._write_gathered(plines, "points", epoch, out.points_header())
        if write_forces:
            self._write_gathered(flines, "forces", epoch, out.forces_header())
        if nstats is not None:
            merged = nstats.merged(tr.comm)
            if tr.comm.rank == 0:
                out.write_text(tr.output_dir / f"neuron-stats.short.{epoch:06d}.out",
                               out.neuron_stats_header() + out.neuron_stats_lines(merged))
        f_err = (np.concatenate(f_err) if f_err else np.zeros(0)) if use_f else None
        return errors, np.array(e_err), f_err, ((parity_e, parity_f) if keep_parity
                                                 else None)

    def _reduce(self, sums, use_f):
        tr = self.tr
        keys = [("energy", True), ("energy", False)] + ([("force", True), ("force", False)]
                                                          if use_f else [])
        tot = tr.comm.allsum(np.concatenate([sums[k] for k in keys]))
        errors = {}
        o = 0
        for p in tr.props:
            errors[p] = {}
            for is_train in (True, False):
                n = 5 if p == "energy" else 3
                errors[p]["train" if is_train else "test"] = metrics(tot[o:o + n], p)
                o += n
        return errors

    def _write_gathered(self, lines, middle, epoch, header):
        tr = self.tr
        allv = tr.comm.gather(lines)
        if tr.comm.rank != 0:
            return
        for is_train, name in ((True, "train"), (False, "test")):
            items = sorted((it for part in allv for it in part[is_train]),
                           key=lambda t: t[0])
            path = tr.output_dir / f"{name}{middle}.{epoch:06d}.out"
            out.write_text(path, header + [t for _, t in items])


def _force_lines(s, fn):
    return "".join("%10d %10d %16.8E %16.8E\n" % (s.index, a, r, q)
                   for a, r, q in zip(np.repeat(np.arange(s.n), 3),
                                      s.f_ref.ravel().tolist(), fn.ravel().tolist()))
