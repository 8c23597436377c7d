"""Validation of an HDNNP: errors per structure class, property benchmarks against
reference trajectories, the LLZO tetragonal -> cubic transition and the property
quality factor Q.

The stage answers four questions, each a module:

How large are the errors, and where?  (:mod:`.dataset`, :mod:`.metrics`, :mod:`.classes`)
    Energy RMSE per atom (meV/atom) and force-component RMSE (eV/Å), MAE and R², per
    structure class ("LLZO cubic", "mixture #3", "GB Σ5", ...) of the training, test
    and unseen sets, as a table in the published format
    (class | energy RMSE (R²) | force RMSE (R²)), and parity plots per class.

Does MD with the potential reproduce the reference dynamics?  (:mod:`.benchmarks`, :mod:`.trajectory`, :mod:`.criteria`, :mod:`.teacher`)
    Partial RDFs, the vDOS (Fourier transform of the velocity autocorrelation) and the
    Li MSD / tracer diffusivity with its uncertainty, reference trajectories (AIMD or
    any labeler) against MD with the potential at the same temperature, and the
    Arrhenius activation energy over temperatures -- each computed by
    :mod:`hpcnnp.analysis`.  :func:`.teacher.validate_against_teacher` is the
    library entry point of the main job: teacher MD and potential MD on held-out
    cells, judged with stated thresholds (:mod:`.criteria`).

Does it get the phase transition?  (:mod:`.transition`)
    a, c and c/a of tetragonal LLZO in an NPT heating ramp and the transition
    temperature where c/a -> 1 (sigmoid midpoint; threshold criterion beside it).

How good are derived properties?  (:mod:`.quality`)
    Lattice constants, C11/C12/C44, the Li vacancy formation energy and a surface
    energy with the potential and the reference labeler, and
    Q = sqrt(mean(((p_ML - p_ref)/p_ref)²)).

:func:`.runner.run_validation` runs any subset and writes tables (CSV, Markdown),
plots (PNG) and ``validation.md``; ``hpcnnp validate`` is its command line.

>>> from hpcnnp import Potential                                    # doctest: +SKIP
>>> from hpcnnp.validation import evaluate_dataset, error_table
>>> pot = Potential.from_n2p2("pot")
>>> sets = [evaluate_dataset(pot, "train.data", "train"),
...         evaluate_dataset(pot, "test.data", "test")]
>>> print(error_table(sets).markdown())
>>> from hpcnnp.validation import compare_properties
>>> table = compare_properties(bulk, HDNNPCalculator(pot), reference_calculator)
>>> table.Q
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "rmse": "metrics", "mae": "metrics", "r2": "metrics", "error_stats": "metrics",
    "ErrorStats": "metrics",
    "ClassResolver": "classes",
    "evaluate_dataset": "dataset", "error_table": "dataset", "ErrorTable": "dataset",
    "DataSetResult": "dataset",
    "read_trajectory": "trajectory", "run_md": "trajectory", "md_settings": "trajectory",
    "partial_rdfs": "benchmarks", "vdos_spectra": "benchmarks", "diffusion": "benchmarks",
    "Thresholds": "criteria", "rdf_distance": "criteria", "spectral_overlap": "criteria",
    "first_peak": "criteria", "min_distance": "criteria",
    "validate_against_teacher": "teacher", "HeldOutCell": "teacher",
    "TeacherProtocol": "teacher",
    "npt_ramp": "transition", "analyse_ramp": "transition",
    "transition_from_curve": "transition", "lattice_parameters": "transition",
    "quality_factor": "quality", "compare_properties": "quality",
    "compute_properties": "quality", "elastic_constants": "quality",
    "ValidationConfig": "runner", "run_validation": "runner",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    # submodules import matplotlib/scipy/ase lazily; load them on first use
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
