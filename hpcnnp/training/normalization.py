"""n2p2's ``normalize_data_set`` (n2p2-formats.md §9.2): training units from the
statistics of the reference data and of the initial prediction."""

from __future__ import annotations

import math
import shutil

import numpy as np

from hpcnnp import _core
from hpcnnp.errors import HpcnnpError
from hpcnnp.training import outputs as out
from hpcnnp.training.dataset import Units

__all__ = ["normalize_data_set"]


def _statistics(structures, potential, use_forces, comm):
    """(N structures, N force components, mean/σ of E/atom ref and NNP, of F ref and
    NNP) over all ranks (σ with n − 1)."""
    e_ref, e_nnp, f_ref, f_nnp = [], [], [], []
    for s in structures:
        nl, elem = potential.neighbor_list(s.atoms)
        res = _core.energy_forces(potential._model, nl, elem, s.n, forces=use_forces,
                                  full=True)
        e_ref.append((s.e_phys - s.offset_sum) / s.n)
        e_nnp.append(float(res["output"].sum()) / s.n)
        f_ref.append(s.f_phys.ravel())
        if use_forces:
            f_nnp.append(res["forces"][:s.n].ravel())
    e_ref, e_nnp = np.array(e_ref), np.array(e_nnp)
    f_ref = np.concatenate(f_ref) if f_ref else np.zeros(0)
    f_nnp = np.concatenate(f_nnp) if f_nnp else np.zeros(0)
    tot = comm.allsum(np.array([len(e_ref), e_ref.sum(), e_nnp.sum(), len(f_ref),
                                f_ref.sum(), f_nnp.sum()]))
    ns, na3 = tot[0], tot[3]
    means = (tot[1] / ns, tot[2] / ns, tot[4] / na3, tot[5] / na3)
    var = comm.allsum(np.array([((e_ref - means[0]) ** 2).sum(),
                                ((e_nnp - means[1]) ** 2).sum(),
                                ((f_ref - means[2]) ** 2).sum(),
                                ((f_nnp - means[3]) ** 2).sum() if len(f_nnp) else 0.0]))
    if ns < 2:
        raise HpcnnpError("normalize_data_set needs at least 2 structures")
    sig = (math.sqrt(var[0] / (ns - 1)), math.sqrt(var[1] / (ns - 1)),
           math.sqrt(var[2] / (na3 - 1)), math.sqrt(var[3] / (na3 - 1)))
    return ns, na3, means, sig


def normalize_data_set(tr):
    """Statistics, log lines and the new units of trainer ``tr`` (collective); rank 0
    rewrites the settings file (backup ``input.nn.bak``) unless ``stats-only``."""
    c, cfg = tr.comm, tr.cfg
    ns, na3, (me_ref, me_nnp, mf_ref, mf_nnp), (s_e_ref, s_e_nnp, s_f_ref, s_f_nnp) = \
        _statistics(tr.structures, tr.potential, cfg.use_forces, c)
    tr.log("*** DATA SET NORMALIZATION " + "*" * 52 + "\n")
    tr.log(f"Total number of structures : {int(ns)}")
    tr.log(f"Total number of atoms      : {int(na3 // 3)}")
    tr.log("Reference data statistics:")
    tr.log("Mean/sigma energy per atom : %16.8E   / %16.8E" % (me_ref, s_e_ref))
    tr.log("Mean/sigma force           : %16.8E   / %16.8E" % (mf_ref, s_f_ref))
    tr.log("Initial NNP prediction statistics:")
    tr.log("Mean/sigma energy per atom : %16.8E   / %16.8E" % (me_nnp, s_e_nnp))
    tr.log("Mean/sigma force           : %16.8E   / %16.8E" % (mf_nnp, s_f_nnp))
    mode = cfg.normalize_data_set
    if mode == "stats-only":
        norm = tr.settings.normalization
        return Units(*norm) if norm else Units()
    if mode == "ref":
        if s_e_ref == 0:
            raise HpcnnpError("normalize_data_set ref: the reference energies per atom "
                              "have zero spread")
        units = Units(me_ref, 1.0 / s_e_ref, s_f_ref / s_e_ref if cfg.use_forces else 1.0)
    else:
        if s_f_ref == 0 or s_f_nnp == 0:
            raise HpcnnpError("normalize_data_set force: zero force spread")
        units = Units(me_ref, s_f_nnp / s_f_ref, s_f_nnp)
    tr.log("Final conversion data:")
    tr.log("Mean ref. energy per atom = %24.16E" % units.mean_energy)
    tr.log("Conversion factor energy  = %24.16E" % units.conv_energy)
    tr.log("Conversion factor length  = %24.16E" % units.conv_length)
    if c.rank == 0:
        _rewrite_settings(tr.settings_path, tr.settings, units, tr.log)
    c.barrier()
    return units


def _rewrite_settings(path, settings, units, log):
    backup = path.with_name(path.name + ".bak")
    shutil.copyfile(path, backup)
    new = {"mean_energy": "mean_energy %24.16E # hpcnnp train" % units.mean_energy,
           "conv_energy": "conv_energy %24.16E # hpcnnp train" % units.conv_energy,
           "conv_length": "conv_length %24.16E # hpcnnp train" % units.conv_length}
    lines = list(settings.lines)
    replaced = False
    for i, raw in enumerate(lines):
        tok = raw.split("#")[0].split("!")[0].split()
        if tok and tok[0] in new:
            lines[i] = new[tok[0]]
            replaced = True
    if replaced:
        log('WARNING: Preexisting normalization data was found and replaced in '
            f'"{path}".')
    else:
        rule = "#" * 79
        lines = [rule, "# DATA SET NORMALIZATION", rule] + list(new.values()) + \
                [rule, ""] + lines
    out.write_text(path, [ln + "\n" for ln in lines])
    log(f'Backup of the original settings file: "{backup}"; normalization data '
        f'written to "{path}".')
