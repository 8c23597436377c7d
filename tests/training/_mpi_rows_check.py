"""Run under ``mpiexec -n 2``: the update rows of a multi-rank training run.

Used by ``test_train.py::test_two_rank_update_rows_equal_serial_recomputation``.

Usage: ``_mpi_rows_check.py FOLDER [FOLDER ...]``; every folder holds input.nn,
input.data and scaling.data of one configuration (``selection_mode 0``: the
candidate computed is the candidate used).  For every folder a
:class:`~hpcnnp.training.trainer.Trainer` trains on all ranks (MPI), and before
every update each rank records which candidates it picked (global structure
index, atom, component) and the weights; the (H, xi) that reach every updater
are captured.  Rank 0 recomputes each picked candidate from scratch with a
*serial* trainer that holds all structures (its own SF cache, structure
indices, normalisation statistics and the weights of that moment), packs the
rows as n2p2-formats.md §10.5 says (force_weight on row and error; JM_SUM: one
row, JM_TASK: one row per rank, JM_FULL: one per candidate, rank order;
US_ELEMENT: error split by atom / neighbour fraction) and compares.  Also
checks that the serial and the MPI data-set normalisation agree.

Prints ``MPI-ROWS-OK <updates checked>`` on rank 0 if everything passed;
exits with 1 otherwise.
"""

import shutil
import sys
from pathlib import Path

import numpy as np
from mpi4py import MPI

from hpcnnp.training.comm import Comm
from hpcnnp.training.jacobian import energy_terms, force_terms
from hpcnnp.training.trainer import Trainer

comm = MPI.COMM_WORLD
rank = comm.Get_rank()
failures = []


class RecordingTrainer(Trainer):
    """Trainer that records the picked candidates, the weights before every update
    and the (H, xi) handed to the updaters, and checks them (rank 0) with
    ``checker``."""

    ref_folder = None
    checker = None

    def _create_updaters(self):
        super()._create_updaters()
        for u, upd in enumerate(self.updaters):
            orig = upd.update

            def wrapped(w, H, xi, u=u, orig=orig):
                self._seen.append((u, np.array(H, copy=True), np.array(xi, copy=True)))
                orig(w, H, xi)

            upd.update = wrapped

    def _create_updaters_and_report(self):
        super()._create_updaters_and_report()
        terms = self.step.candidate_terms

        def recorded(p, k):
            res = terms(p, k)
            _, _, s, a, c = res
            self._picked.append((int(s.index), int(a), int(c)))
            return res

        self.step.candidate_terms = recorded

    def update(self, p):
        self._picked, self._seen = [], []
        w_before = [np.array(v, copy=True) for v in self.views]
        super().update(p)
        picked = self.comm.allgather(self._picked)      # collective, every update
        if self.comm.rank == 0:
            if self.checker is None:
                self.checker = Checker(self, self.ref_folder)
            self.checker(self, p, w_before, picked, self._seen)


class Checker:
    def __init__(self, tr, ref_folder):
        self.tr = tr
        ref = Trainer(settings=ref_folder / "input.nn", data=ref_folder / "input.data",
                      scaling=ref_folder / "scaling.data", output_dir=ref_folder / "out",
                      comm=Comm(None), stream=None, plots=False, checkpoint_dir=False)
        ref.setup()
        # the normalisation of the MPI run (statistics over the structures of all
        # ranks) must be the serial one
        if not np.allclose(tr.units.as_tuple(), ref.units.as_tuple(), rtol=1e-12, atol=0):
            failures.append(f"{ref_folder.parent.name}: units {tr.units.as_tuple()} of the "
                            f"MPI run, serial {ref.units.as_tuple()}")
        ref.units = tr.units
        for s in ref.structures:
            s.set_units(tr.units)
        self.ref = ref
        self.checked = 0
        self.max_err = 0.0

    def __call__(self, tr, p, w_before, picked, seen):
        ref, cfg = self.ref, tr.cfg
        for v, w in zip(ref.views, w_before):
            v[:] = w
        ref.nets.push()
        fw = cfg.force_weight if p == "force" else 1.0
        nw, nu = tr.n_w_total, tr.n_updaters
        rows = []                       # one packed row per candidate, rank order
        owner = []
        for r, part in enumerate(picked):
            for (index, a, c) in part:
                s = ref.structures[index]
                if p == "energy":
                    pred, grads = energy_terms(ref.nets, ref.sf.get(s, derivatives=False))
                    xi = s.e_ref - pred
                    frac = s.n_per_elem / s.n
                else:
                    pred, grads = force_terms(ref.nets, ref.sf.atom(s, a), c, ref.scale,
                                              1.0 / ref.units.conv_length)
                    xi = s.f_ref[a, c] - pred
                    nn = s.nn_per_elem[a]
                    frac = nn / nn.sum() if nn.sum() > 0 else np.zeros(tr.n_el)
                row = np.zeros(nw + nu)
                for e, g in enumerate(grads):
                    if g is not None:
                        row[ref.offsets_el[e]:ref.offsets_el[e + 1]] = fw * g
                row[nw:] = fw * xi * (frac if nu > 1 else 1.0)
                rows.append(row)
                owner.append(r)
        rows, owner = np.array(rows), np.array(owner)
        if cfg.jacobian_mode == 0:
            G = rows.sum(axis=0, keepdims=True)
        elif cfg.jacobian_mode == 1:
            G = np.array([rows[owner == r].sum(axis=0) if (owner == r).any()
                          else np.zeros(nw + nu) for r in range(len(picked))])
        else:
            G = rows
        tag = f"{tr.settings_path.parent.name}: update {tr.count_updates} ({p})"
        if [u for u, _, _ in seen] != list(range(nu)):
            failures.append(f"{tag}: updaters called {[u for u, _, _ in seen]}")
            return
        for u, H, xi in seen:
            lo, hi = tr.updater_cols[u]
            H = H.reshape(hi - lo, -1)
            exp_H, exp_xi = G[:, lo:hi].T, G[:, nw + u]
            if H.shape != exp_H.shape or xi.shape != exp_xi.shape:
                failures.append(f"{tag}: updater {u}: H {H.shape} xi {xi.shape}, "
                                f"expected {exp_H.shape} {exp_xi.shape}")
                continue
            scale_h = max(1.0, float(np.abs(exp_H).max()))
            scale_x = max(1.0, float(np.abs(exp_xi).max()))
            err = max(float(np.abs(H - exp_H).max()) / scale_h,
                      float(np.abs(xi - exp_xi).max()) / scale_x)
            self.max_err = max(self.max_err, err)
            if err > 1e-9:
                failures.append(f"{tag}: updater {u}: packed rows differ from the serial "
                                f"recomputation (relative error {err:.3g}; xi {xi} "
                                f"expected {exp_xi})")
        self.checked += 1


total = 0
for arg in sys.argv[1:]:
    folder = Path(arg)
    ref_folder = folder / "serial-reference"
    if rank == 0:                      # before the MPI run rewrites input.nn
        ref_folder.mkdir(exist_ok=True)
        for name in ("input.nn", "input.data", "scaling.data"):
            shutil.copy(folder / name, ref_folder / name)
    comm.Barrier()
    tr = RecordingTrainer(settings=folder / "input.nn", data=folder / "input.data",
                          scaling=folder / "scaling.data", output_dir=folder / "out",
                          comm=Comm(comm), stream=None, plots=False, checkpoint_dir=False)
    tr.ref_folder = ref_folder
    tr.run()
    if rank == 0:
        checker = tr.checker
        checked = 0 if checker is None else checker.checked
        if checked != tr.count_updates or tr.count_updates == 0:
            failures.append(f"{folder.name}: checked {checked} of "
                            f"{tr.count_updates} updates")
        if checker is not None:
            total += checked
            print(f"{folder.name}: {checked} updates checked, max relative "
                  f"error {checker.max_err:.2e}", flush=True)

failures = comm.bcast(failures if rank == 0 else None, root=0)
if failures:
    if rank == 0:
        print("\n".join(failures[:20]), flush=True)
    sys.exit(1)
if rank == 0:
    print(f"MPI-ROWS-OK {total}", flush=True)
