"""Labelling selected frames with the campaign's reference calculator.

The labeler is looked up in the one table of reference methods,
:data:`hpcnnp.sampling.labelers.LABELERS` (CHGNet, xTB, CP2K, ..., and ``hdnnp``:
an n2p2 potential, for distillation from a larger model and for tests with a
known "teacher"); a name ``"module:function"`` is short for the ``python``
labeler with that factory (e.g. ``mypkg.dft:cp2k_pbe``; the options are its
keyword arguments).

A frame whose calculation raises, or returns non-finite energies or forces, is
recorded as a failure (with the message) and never added to the data set.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from ase.calculators.singlepoint import SinglePointCalculator

from hpcnnp.errors import HpcnnpError
from hpcnnp.fileio import write_atomic
from hpcnnp.io import n2p2
from hpcnnp.sampling.labelers import LABELERS, get_labeler

__all__ = ["LABELERS", "make_labeler", "labeler_spec", "label_batch", "label_batch_to_file"]


def labeler_spec(name, options=None):
    """``(table name, options)`` of a labeler as named in a campaign file: a name of
    :data:`~hpcnnp.sampling.labelers.LABELERS`, or ``"module:function"`` (the
    ``python`` labeler with that factory and *options* as its keyword arguments)."""
    options = dict(options or {})
    if ":" in str(name):
        return "python", {"factory": str(name), "kwargs": options}
    return str(name), options


def make_labeler(name, options=None, directory=None):
    """The ASE calculator of a labeler (see :func:`labeler_spec` for the names).

    ``directory``: working folder of file-based programs (CP2K, VASP; default a
    temporary folder).  The calculator is the table's checked
    :class:`~hpcnnp.sampling.labelers.LabelerCalculator` (``.inner`` is the
    program's own ASE calculator).

    Raises
    ------
    HpcnnpError
        Unknown name, an import that fails, or options the labeler rejects.
    """
    table_name, options = labeler_spec(name, options)
    return get_labeler(table_name, directory=directory, **options)


def label_batch(name, options, frames, directory=None):
    """Label frames (a task body).

    Parameters
    ----------
    name, options, directory :
        The labeler (:func:`make_labeler`).
    frames : list of ase.Atoms

    Returns
    -------
    list of (ase.Atoms or None, str or None)
        Per frame: the labelled copy (SinglePointCalculator with energy, forces and,
        when the labeler gives it, stress) and None, or None and the failure message.
    """
    calc = make_labeler(name, options, directory)
    out = []
    for atoms in frames:
        a = atoms.copy()
        a.info = dict(atoms.info)
        a.calc = calc
        try:
            energy = float(a.get_potential_energy())
            forces = np.array(a.get_forces(), dtype=float)
            if not (np.isfinite(energy) and np.isfinite(forces).all()):
                raise HpcnnpError("non-finite energy or forces")
            if forces.shape != (len(a), 3):
                raise HpcnnpError(f"forces of shape {forces.shape}")
        except Exception as exc:            # LabelingError, or anything the program raises
            out.append((None, f"{type(exc).__name__}: {exc}".strip()))
            continue
        results = {"energy": energy, "forces": forces}
        stress = calc.results.get("stress") if hasattr(calc, "results") else None
        a.calc = SinglePointCalculator(a, **results,
                                       **({"stress": np.array(stress)} if stress is not None
                                          else {}))
        out.append((a, None))
    return out


def label_batch_to_file(name, options, frames, output):
    """Label a batch and write ``output``.data (n2p2 input.data of the labelled
    frames) and then ``output``.json (frame ids, failures; written last, so a
    finished batch is skipped when the step is re-run).  A task body.

    Every frame needs ``info["id"]`` (a string naming it, e.g. ``run_002/frame_7``);
    ``info["comment"]`` becomes the input.data comment.
    """
    output = Path(output)
    marker = output.with_suffix(".json")
    if marker.is_file():
        return json.loads(marker.read_text())
    results = label_batch(name, options, frames,
                          directory=output.with_name(output.name + ".work"))
    good = [a for a, _ in results if a is not None]
    for a in good:
        a.info = {"comment": a.info.get("comment", a.info.get("id", ""))}
    n2p2.write_data(output.with_suffix(".data"), good)
    info = {"labelled": [f.info["id"] for f, (a, _) in zip(frames, results) if a is not None],
            "failures": [{"id": f.info["id"], "error": err}
                         for f, (a, err) in zip(frames, results) if a is None]}
    write_atomic(marker, json.dumps(info, indent=1))
    return info
