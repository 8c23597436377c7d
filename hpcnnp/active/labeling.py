"""Labelling selected frames with the campaign's reference calculator.

A labeler is any factory ``(**options) -> ase calculator``.  :func:`make_labeler`
looks the name up in this order:

1. ``"module:function"`` — that function (e.g. ``mypkg.dft:cp2k_pbe``);
2. :data:`LABELERS` — labelers defined here (``hdnnp``: an n2p2 potential, for
   distillation from a larger model and for tests with a known "teacher");
3. :func:`hpcnnp.sampling.labelers.get_labeler` — the project's table of
   reference methods (CHGNet, xTB, CP2K, ...).

A frame whose calculation raises, or returns non-finite energies or forces, is
recorded as a failure (with the message) and never added to the data set.
"""

from __future__ import annotations

import importlib

import numpy as np

from hpcnnp.errors import HpcnnpError
from hpcnnp.fileio import write_atomic

__all__ = ["LABELERS", "make_labeler", "label_batch", "label_batch_to_file"]


def _hdnnp(potential, **options):
    """An n2p2 potential folder as reference (``options: {potential: DIR}``)."""
    from hpcnnp.calculator import HDNNPCalculator

    return HDNNPCalculator(str(potential), **options)


#: labelers defined in this module: name -> factory(**options) -> ASE calculator
LABELERS = {"hdnnp": _hdnnp}


def make_labeler(name, options=None, directory=None):
    """An ASE calculator for labelling (see the module docstring for the lookup).

    ``directory``: working folder of file-based programs (CP2K, VASP; passed to
    :func:`hpcnnp.sampling.labelers.get_labeler`, default a temporary folder).

    Raises
    ------
    HpcnnpError
        Unknown name, an import that fails, or options the factory rejects.
    """
    options = dict(options or {})
    if ":" in name:
        module, _, attr = name.partition(":")
        try:
            factory = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise HpcnnpError(f"labeler '{name}': cannot import ({exc})") from None
    elif name in LABELERS:
        factory = LABELERS[name]
    else:
        try:
            from hpcnnp.sampling.labelers import get_labeler
        except ImportError:
            raise HpcnnpError(f"unknown labeler '{name}' (hpcnnp.sampling.labelers is not "
                              f"available; known here: {', '.join(LABELERS)} or "
                              "'module:function')") from None
        return get_labeler(name, directory=directory, **options)
    try:
        return factory(**options)
    except TypeError as exc:
        raise HpcnnpError(f"labeler '{name}': {exc}") from None


def _failure_types():
    try:
        from hpcnnp.sampling.labelers import LabelingError
        return (LabelingError, Exception)
    except ImportError:
        return (Exception,)


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
    from ase.calculators.singlepoint import SinglePointCalculator

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
        except _failure_types() as exc:
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
    import json
    from pathlib import Path

    from hpcnnp.io import n2p2

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
