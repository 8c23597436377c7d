"""The ``training:`` section of a project: n2p2 training keywords of ``input.nn``.

The keys are n2p2's own keyword names (``epochs: 8``, ``force_weight: 1.0``,
``use_short_forces: true``); the main job writes them into ``input.nn`` on top of
:data:`TRAINING_DEFAULTS`.  The n2p2 file itself keeps n2p2's reader
(:mod:`hpcnnp.io.n2p2`); here each keyword hpcnnp knows is type-checked when the
project is read (:data:`TRAINING_KEYWORDS`, kinds from
:mod:`hpcnnp.training.config`), an unknown one is refused with the closest
known name, and the whole set is run through :func:`hpcnnp.training.config.
training_config` -- the code ``hpcnnp train`` runs -- so that a combination
``hpcnnp train`` would refuse (e.g. gradient descent with ``jacobian_mode 1``)
stops the project before any work, naming the key.
"""

from __future__ import annotations

from hpcnnp.config.base import KeyProblem, suggest
from hpcnnp.errors import InputFileError
from hpcnnp.io.n2p2 import Settings
from hpcnnp.training.config import _DEFAULTS as _TRAIN_DEFAULTS
from hpcnnp.training.config import training_config

__all__ = ["TRAINING_KEYWORDS", "TRAINING_DEFAULTS", "TRAINING_SCHEMA", "FLAG", "INT", "FLOAT",
           "TEXT",
           "check_training", "input_nn_keywords", "training_keyword_lines"]

FLAG, INT, FLOAT, TEXT = "flag", "int", "float", "text"

#: n2p2 training keywords hpcnnp reads -> kind (flag: present or not; text: n2p2's own
#: syntax, e.g. ``selection_mode 2 10 1``); the kinds of the keywords with defaults
#: come from hpcnnp.training.config
TRAINING_KEYWORDS = {
    **{key: kind for key, (_, kind) in _TRAIN_DEFAULTS.items()},
    "epochs": INT, "use_short_forces": FLAG, "force_weight": FLOAT,
    "force_energy_ratio": FLOAT, "short_energy_fraction": FLOAT,
    "short_force_fraction": FLOAT, "short_energy_error_threshold": FLOAT,
    "short_force_error_threshold": FLOAT,
    "rmse_threshold": FLOAT, "rmse_threshold_energy": FLOAT, "rmse_threshold_force": FLOAT,
    "rmse_threshold_trials": INT, "rmse_threshold_trials_energy": INT,
    "rmse_threshold_trials_force": INT,
    "selection_mode": TEXT, "selection_mode_energy": TEXT, "selection_mode_force": TEXT,
    "write_trainpoints": TEXT, "write_trainforces": TEXT, "write_weights_epoch": TEXT,
    "write_neuronstats": TEXT, "write_trainlog": FLAG,
    "normalize_data_set": TEXT, "main_error_metric": TEXT,
    "kalman_etatau": FLOAT, "kalman_etamax": FLOAT, "kalman_lambda_short": FLOAT,
    "kalman_nue_short": FLOAT, "kalman_decoupling": TEXT,
    "use_old_weights_short": FLAG, "nguyen_widrow_weights_short": FLAG,
    "memorize_symfunc_results": FLAG, "repeated_energy_update": FLAG,
    "precondition_weights": FLAG,
}

_KIND_SCHEMA = {INT: {"type": "integer"}, FLOAT: {"type": "number"},
                FLAG: {"type": ["boolean", "string", "null"]},
                TEXT: {"type": ["string", "number"]}}

#: JSON Schema of the ``training:`` section
TRAINING_SCHEMA = {"type": "object", "additionalProperties": False,
                   "description": "n2p2 training keywords of input.nn",
                   "properties": {k: dict(_KIND_SCHEMA[kind]) for k, kind in
                                  sorted(TRAINING_KEYWORDS.items())}}

#: training keywords the main job writes unless the project overrides them
#: (n2p2 names; the Kalman settings of n2p2's examples except kalman_epsilon)
TRAINING_DEFAULTS = {
    "epochs": 10,
    "random_seed": 12345,
    "test_fraction": 0.1,
    "use_short_forces": "",
    "updater_type": 1,
    "parallel_mode": 0,
    "jacobian_mode": 1,
    "update_strategy": 0,
    "selection_mode": 2,
    "task_batch_size_energy": 1,
    "task_batch_size_force": 1,
    "memorize_symfunc_results": "",
    "short_energy_fraction": 1.0,
    "short_force_fraction": 0.05,
    "short_energy_error_threshold": 0.0,
    "short_force_error_threshold": 1.0,
    "rmse_threshold_trials": 3,
    # n2p2's examples use 10: more accurate when it converges, but with the examples'
    # P0 = 100 I the force RMSE diverges on a third of the seeds, in n2p2 and hpcnnp
    # alike (issue #12; benchmarks/compare_training_n2p2.py, tests/training/test_recipe.py)
    "force_weight": 1.0,
    "weights_min": -1.0,
    "weights_max": 1.0,
    "normalize_data_set": "ref",
    "write_weights_epoch": 1,
    "write_trainpoints": 1,
    "write_trainforces": 1,
    "kalman_type": 0,
    # P0 = I/epsilon.  n2p2's examples: 0.01 (P0 = 100 I), whose first updates fit single
    # force components almost exactly and make the force RMSE seed-dependent or divergent
    # (both codes); 1.0 converged monotonically on every seed tried (issue #12)
    "kalman_epsilon": 1.0,
    "kalman_q0": 0.01,
    "kalman_qtau": 2.302,
    "kalman_qmin": 1.0e-6,
    "kalman_eta": 0.01,
    "kalman_etatau": 2.302,
    "kalman_etamax": 1.0,
}


def _value_problem(kind, value):
    """Message for a keyword value of the wrong kind, or None."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == INT and not (number and float(value).is_integer()):
        return "must be a whole number"
    if kind == FLOAT and not number:
        return "must be a number"
    if kind == FLAG and value not in ("", None, True, False):
        return "is a flag: true (written), false (left out) or empty"
    if kind == TEXT and (isinstance(value, (dict, list, bool)) or value is None):
        return "must be a value in n2p2's syntax (e.g. '2 10 1')"
    return None


def _text(kind, value):
    if kind == INT:
        return str(int(value))
    if kind == FLAG:
        return ""
    return str(value)


def _spellings(keyword):
    """The default keywords that are *keyword* under another n2p2 spelling
    (``energy_fraction`` = ``short_energy_fraction``), by n2p2's own alias rules."""
    probe = Settings.from_text(f"number_of_elements 1\nelements H\n{keyword}\n")
    return [k for k in TRAINING_DEFAULTS if k != keyword and k in probe]


def training_keyword_lines(training, seed=None):
    """``[(keyword, argument text)]`` the main job writes: :data:`TRAINING_DEFAULTS`,
    ``random_seed`` = *seed*, then the project's keywords (which replace a default
    of the same meaning under another n2p2 spelling; a flag set to false is left
    out, as n2p2 reads a flag by its presence)."""
    merged = dict(TRAINING_DEFAULTS)
    if seed is not None:
        merged["random_seed"] = seed
    for key in training:
        for other in _spellings(key):
            merged.pop(other, None)
    merged.update(training)
    out = []
    for key, value in merged.items():
        kind = TRAINING_KEYWORDS.get(key, TEXT)
        if kind == FLAG and value is False:
            continue
        out.append((key, _text(kind, value)))
    return out


def input_nn_keywords(elements, hidden, activation, training, seed=None):
    """``[(keyword, argument text)]`` of the ``input.nn`` the main job writes before
    the symmetry functions: elements, scaling, network and training keywords."""
    return [("number_of_elements", str(len(elements))), ("elements", " ".join(elements)),
            ("cutoff_type", "6 0.0"), ("scale_symmetry_functions", ""),
            ("center_symmetry_functions", ""), ("scale_min_short", "-1.0"),
            ("scale_max_short", "1.0"), ("global_hidden_layers_short", str(len(hidden))),
            ("global_nodes_short", " ".join(map(str, hidden))),
            ("global_activation_short", activation)] + training_keyword_lines(training, seed)


def check_training(training, elements, hidden, activation, seed=None):
    """Check the ``training:`` keywords; raise :class:`KeyProblem` naming the keyword.

    Each keyword must be one hpcnnp knows (:data:`TRAINING_KEYWORDS`) with a value of
    its kind; then the whole ``input.nn`` the main job would write goes through
    :func:`hpcnnp.training.config.training_config`, the check of ``hpcnnp train``.
    """
    for key, value in training.items():
        kind = TRAINING_KEYWORDS.get(key)
        if kind is None:
            hint = suggest(key, TRAINING_KEYWORDS) or \
                " (known: " + ", ".join(sorted(TRAINING_KEYWORDS)) + ")"
            raise KeyProblem((key,), "unknown n2p2 training keyword" + hint, show_value=False)
        problem = _value_problem(kind, value)
        if problem:
            raise KeyProblem((key,), problem)
    pairs = input_nn_keywords(elements, hidden, activation, training, seed)
    text = "\n".join(f"{k} {v}".rstrip() for k, v in pairs) + "\n"
    try:
        training_config(Settings.from_text(text, "input.nn"))
    except InputFileError as exc:
        key, value = pairs[exc.line - 1] if exc.line else (None, None)
        if key in training:
            raise KeyProblem((key,), exc.message) from None
        hint = (f" ({key} {value} is hpcnnp's default: set training.{key} to change it)"
                if key else "")
        raise KeyProblem((), f"hpcnnp train would refuse: {exc.message}{hint}",
                         show_value=False) from None
