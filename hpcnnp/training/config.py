"""Training keywords of ``input.nn`` (n2p2-formats.md §2.2), parsed and validated.

:func:`training_config` turns a :class:`hpcnnp.io.n2p2.Settings` into a
:class:`TrainConfig`.  Every problem is an :class:`~hpcnnp.errors.InputFileError`
naming the file and line, raised before anything is computed or written.

Defaults: where n2p2 stops with "keyword not found" for a missing training keyword,
hpcnnp uses the value of n2p2's example ``input.nn`` files and records a warning in
``TrainConfig.warnings`` (printed to the log), except for ``epochs`` which is required.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hpcnnp.errors import InputFileError

__all__ = ["TrainConfig", "training_config", "SM_RANDOM", "SM_SORT", "SM_THRESHOLD",
           "SELECTION_NAMES", "PROPERTIES"]

SM_RANDOM, SM_SORT, SM_THRESHOLD = 0, 1, 2
SELECTION_NAMES = {SM_RANDOM: "SM_RANDOM", SM_SORT: "SM_SORT", SM_THRESHOLD: "SM_THRESHOLD"}
#: training properties in n2p2's order (pk)
PROPERTIES = ("energy", "force")

# keyword -> (default, kind) for keywords with a default (warning when absent)
_DEFAULTS = {
    "random_seed": (12345, "int"),
    "test_fraction": (0.1, "float"),
    "updater_type": (1, "int"),
    "parallel_mode": (0, "int"),
    "jacobian_mode": (1, "int"),
    "update_strategy": (0, "int"),
    "task_batch_size_energy": (1, "int"),
    "task_batch_size_force": (1, "int"),
    "energy_fraction": (1.0, "float"),
    "force_fraction": (0.02315, "float"),
    "weights_min": (-1.0, "float"),
    "weights_max": (1.0, "float"),
    "kalman_type": (0, "int"),
    "kalman_epsilon": (1.0e-2, "float"),
    "kalman_q0": (0.01, "float"),
    "kalman_qtau": (2.302, "float"),
    "kalman_qmin": (1.0e-6, "float"),
    "kalman_eta": (0.01, "float"),
    "gradient_type": (1, "int"),
    "gradient_eta": (1.0e-5, "float"),
    "gradient_adam_eta": (1.0e-3, "float"),
    "gradient_adam_beta1": (0.9, "float"),
    "gradient_adam_beta2": (0.999, "float"),
    "gradient_adam_epsilon": (1.0e-8, "float"),
}


@dataclass
class WriteSchedule:
    """``write_X n [m]``: every n epochs (0 = never) and at every epoch <= m."""

    every: int = 0
    always: int = 0

    def due(self, epoch):
        return self.every > 0 and (epoch % self.every == 0 or epoch <= self.always)


@dataclass
class PropertyConfig:
    """Per-property training settings (n2p2's Training::Property)."""

    name: str
    fraction: float = 1.0
    batch: int = 1                           # task_batch_size_<p> (0 = whole set)
    selection: dict = field(default_factory=lambda: {0: SM_RANDOM})   # epoch -> mode
    threshold: float = 0.0                   # rmse_threshold_<p>
    trials: int = 0                          # rmse_threshold_trials_<p>
    write: WriteSchedule = field(default_factory=WriteSchedule)

    def mode_at(self, epoch):
        """Selection mode in force at ``epoch`` (schedule applied up to it)."""
        mode = self.selection[0]
        for ep in sorted(self.selection):
            if ep <= epoch:
                mode = self.selection[ep]
        return mode


@dataclass
class TrainConfig:
    """All training settings of one run (n2p2-formats.md §2.2)."""

    use_forces: bool
    force_weight: float
    random_seed: int
    epochs: int
    test_fraction: float
    updater_type: int                        # 0 GD, 1 KF
    parallel_mode: int
    jacobian_mode: int                       # 0 sum, 1 task, 2 full
    update_strategy: int                     # 0 combined, 1 element
    properties: dict                         # name -> PropertyConfig
    force_energy_ratio: float | None
    memorize: bool
    weights_min: float
    weights_max: float
    nguyen_widrow: bool
    use_old_weights: bool
    normalize_data_set: str | None
    main_error_metric: str
    kalman: dict
    gradient: dict
    kalman_decoupling: str                   # hpcnnp keyword: none | element | layer
    write_weights: WriteSchedule
    write_neuronstats: WriteSchedule
    write_trainlog: bool
    warnings: list = field(default_factory=list)

    @property
    def property_names(self):
        return [p for p in PROPERTIES if p in self.properties]

    def display_metric(self, prop):
        """Metric of the screen/log lines (n2p2's displayMetric)."""
        m = self.main_error_metric
        if prop == "energy":
            return m
        return "MAE" if m.startswith("MAE") else "RMSE"


def _schedule(settings, keyword):
    line = settings.line_of(keyword)
    text = settings.get(keyword, "")
    tokens = text.split()
    if not tokens:
        return WriteSchedule(1, 0)
    if len(tokens) > 2:
        raise InputFileError(settings.path, line, f"{keyword} takes 'n [m]' (every n epochs, "
                                                  "always up to epoch m)")
    vals = []
    for t in tokens:
        try:
            v = int(t)
        except ValueError:
            raise InputFileError(settings.path, line,
                                 f"{keyword}: {t!r} is not an integer") from None
        if v < 0:
            raise InputFileError(settings.path, line, f"{keyword}: values must be >= 0")
        vals.append(v)
    return WriteSchedule(vals[0], vals[1] if len(vals) == 2 else 0)


def _selection_schedule(settings, keyword):
    line = settings.line_of(keyword)
    tokens = settings.get(keyword).split()
    if len(tokens) % 2 != 1:
        raise InputFileError(settings.path, line,
                             f"{keyword} needs an odd number of integers: 'mode [epoch mode "
                             "...]' (n2p2: incorrect selection mode format)")
    try:
        vals = [int(t) for t in tokens]
    except ValueError:
        raise InputFileError(settings.path, line, f"{keyword}: integers expected, got "
                                                  f"{' '.join(tokens)!r}") from None
    sched = {0: vals[0]}
    for i in range(1, len(vals), 2):
        if vals[i] < 0:
            raise InputFileError(settings.path, line, f"{keyword}: epochs must be >= 0")
        sched[vals[i]] = vals[i + 1]
    for mode in sched.values():
        if mode not in SELECTION_NAMES:
            raise InputFileError(settings.path, line,
                                 f"{keyword}: unknown selection mode {mode} (0 = random, "
                                 "1 = sort, 2 = threshold)")
    return sched


class _Reader:
    """Typed access to the keywords of a Settings with n2p2's defaults (a warning
    each) and errors naming the file and line."""

    def __init__(self, settings):
        self.s = settings
        self.warnings = []

    def value(self, key, default=None, kind=None):
        s = self.s
        if key in s:
            return s.get_int(key) if kind == "int" else s.get_float(key)
        if key in _DEFAULTS:
            default, kind = _DEFAULTS[key]
            self.warnings.append(f"WARNING: keyword '{key}' not found, using default "
                                 f"{default}")
            return default
        return default

    def check(self, cond, key, msg):
        if not cond:
            raise InputFileError(self.s.path, self.s.line_of(key), msg)

    def fail(self, key, msg):
        raise InputFileError(self.s.path, self.s.line_of(key) if key else None, msg)


def _basics(r):
    """epochs, forces, seed, test fraction (dict of TrainConfig fields)."""
    s = r.s
    if "epochs" not in s:
        r.fail(None, "keyword 'epochs' missing (number of training epochs)")
    epochs = s.get_int("epochs")
    r.check(epochs >= 0, "epochs", "epochs must be >= 0")
    use_forces = s.get_flag("use_short_forces")
    if use_forces and "force_weight" not in s:
        r.warnings.append("WARNING: Force weight not set, using default value (1.0).")
    seed = r.value("random_seed", kind="int")
    if seed == 0:
        r.warnings.append("WARNING: random_seed 0 (n2p2/GSL would use its default seed)")
    test_fraction = r.value("test_fraction", kind="float")
    r.check(0.0 <= test_fraction <= 1.0, "test_fraction", "test_fraction must be in [0, 1]")
    return dict(epochs=epochs, use_forces=use_forces,
                force_weight=s.get_float("force_weight", 1.0), random_seed=seed,
                test_fraction=test_fraction)


def _modes(r):
    """updater_type, parallel_mode, jacobian_mode, update_strategy (+ n2p2's refusals)."""
    s = r.s
    updater_type = r.value("updater_type", kind="int")
    if updater_type == 2:
        r.fail("updater_type", "updater_type 2 (Levenberg-Marquardt) is not implemented "
                               "(as in n2p2)")
    r.check(updater_type in (0, 1), "updater_type", "unknown updater_type (0 = gradient "
                                                    "descent, 1 = Kalman filter)")
    parallel_mode = r.value("parallel_mode", kind="int")
    r.check(parallel_mode in (0, 1), "parallel_mode", "unknown parallel_mode (0 or 1)")
    jacobian_mode = r.value("jacobian_mode", kind="int")
    r.check(jacobian_mode in (0, 1, 2), "jacobian_mode",
            "unknown jacobian_mode (0 = sum, 1 = per task, 2 = full)")
    if updater_type == 0 and jacobian_mode != 0:
        r.fail("jacobian_mode", "gradient descent (updater_type 0) can only be combined "
                                "with jacobian_mode 0 (as in n2p2)")
    update_strategy = r.value("update_strategy", kind="int")
    r.check(update_strategy in (0, 1), "update_strategy",
            "unknown update_strategy (0 = combined, 1 = per element)")
    if s.get_flag("repeated_energy_update") and s.get_flag("use_short_forces"):
        r.fail("repeated_energy_update", "repeated_energy_update cannot be combined with "
                                         "forces (n2p2: not correctly implemented)")
    if s.get_flag("precondition_weights"):
        if s.get_flag("nguyen_widrow_weights_short"):
            r.fail("precondition_weights", "Nguyen Widrow and preconditioning weights "
                                           "initialization are incompatible")
        r.fail("precondition_weights", "precondition_weights: preconditioning of weights "
                                       "is not implemented (n2p2 stops here too)")
    return dict(updater_type=updater_type, parallel_mode=parallel_mode,
                jacobian_mode=jacobian_mode, update_strategy=update_strategy)


def _property(r, name, global_sel, glob_thr, glob_trials):
    s = r.s
    pc = PropertyConfig(name)
    pc.batch = r.value(f"task_batch_size_{name}", kind="int")
    r.check(pc.batch >= 0, f"task_batch_size_{name}", "batch sizes must be >= 0")
    pc.fraction = r.value(f"{name}_fraction", kind="float")
    r.check(pc.fraction >= 0, f"{name}_fraction", "fractions must be >= 0")
    if global_sel is not None:
        pc.selection = dict(global_sel)
    if f"selection_mode_{name}" in s:
        pc.selection = _selection_schedule(s, f"selection_mode_{name}")
    if glob_thr is not None:
        pc.threshold = glob_thr
    if f"rmse_threshold_{name}" in s:
        pc.threshold = s.get_float(f"rmse_threshold_{name}")
    if glob_trials is not None:
        pc.trials = glob_trials
    if f"rmse_threshold_trials_{name}" in s:
        pc.trials = s.get_int(f"rmse_threshold_trials_{name}")
    if SM_THRESHOLD in pc.selection.values() and pc.trials < 1:
        key = (f"rmse_threshold_trials_{name}" if f"rmse_threshold_trials_{name}" in s
               else "rmse_threshold_trials")
        raise InputFileError(s.path, s.line_of(key) or s.line_of("selection_mode"),
                             f"selection mode 2 (threshold) for {name} needs "
                             "rmse_threshold_trials >= 1")
    key = {"energy": "write_trainpoints", "force": "write_trainforces"}[name]
    if key in s:
        pc.write = _schedule(s, key)
    return pc


def _properties(r, use_forces):
    """Per-property settings and force_energy_ratio."""
    s = r.s
    global_sel = _selection_schedule(s, "selection_mode") if "selection_mode" in s else None
    glob_thr = s.get_float("rmse_threshold") if "rmse_threshold" in s else None
    glob_trials = s.get_int("rmse_threshold_trials") if "rmse_threshold_trials" in s else None
    props = {name: _property(r, name, global_sel, glob_thr, glob_trials)
             for name in ["energy"] + (["force"] if use_forces else [])}
    ratio = None
    if use_forces and "force_energy_ratio" in s:
        ratio = s.get_float("force_energy_ratio")
        r.check(ratio >= 0, "force_energy_ratio", "force_energy_ratio must be >= 0")
        if "force_fraction" in s:
            r.warnings.append("WARNING: Given force fraction is ignored because "
                              "force/energy ratio is provided.")
    return dict(properties=props, force_energy_ratio=ratio)


def _errors_and_units(r, use_forces):
    """normalize_data_set and main_error_metric."""
    s = r.s
    norm = s.get("normalize_data_set") if "normalize_data_set" in s else None
    if norm is not None:
        norm = norm.split()[0] if norm.split() else ""
        r.check(norm in ("ref", "force", "stats-only"), "normalize_data_set",
                "normalize_data_set must be ref, force or stats-only")
        if norm == "force" and not use_forces:
            r.fail("normalize_data_set", "normalize_data_set force is only possible with "
                                         "forces (use_short_forces)")
    metric = s.get("main_error_metric", "RMSEpa").split()[0] \
        if "main_error_metric" in s else "RMSEpa"
    r.check(metric in ("RMSEpa", "RMSE", "MAEpa", "MAE"), "main_error_metric",
            "unknown main_error_metric (RMSEpa, RMSE, MAEpa or MAE)")
    return dict(normalize_data_set=norm, main_error_metric=metric)


def _kalman(r):
    s = r.s
    ktype = r.value("kalman_type", kind="int")
    r.check(ktype in (0, 1), "kalman_type", "unknown kalman_type (0 standard, 1 fading "
                                            "memory)")
    kalman = {"kalman_type": ktype,
              "epsilon": r.value("kalman_epsilon", kind="float"),
              "q0": r.value("kalman_q0", kind="float"),
              "qtau": r.value("kalman_qtau", kind="float"),
              "qmin": r.value("kalman_qmin", kind="float")}
    r.check(kalman["epsilon"] > 0, "kalman_epsilon", "kalman_epsilon must be > 0")
    if ktype == 0:
        kalman["eta"] = r.value("kalman_eta", kind="float")
        r.check(kalman["eta"] > 0, "kalman_eta", "kalman_eta must be > 0")
        both = "kalman_etatau" in s and "kalman_etamax" in s
        kalman["etatau"] = s.get_float("kalman_etatau") if both else None
        kalman["etamax"] = s.get_float("kalman_etamax") if both else None
    else:
        for key in ("kalman_lambda_short", "kalman_nue_short"):
            if key not in s:
                r.fail(None, f"fading-memory Kalman filter (kalman_type 1) needs '{key}'")
        kalman["lambda_"] = s.get_float("kalman_lambda_short")
        kalman["nu"] = s.get_float("kalman_nue_short")
    return kalman


def _updater(r, updater_type):
    """Kalman or gradient-descent parameters and ``kalman_decoupling`` (hpcnnp)."""
    s = r.s
    decoupling = "none"
    if "kalman_decoupling" in s:
        decoupling = (s.get("kalman_decoupling").split() or [""])[0]
        r.check(decoupling in ("none", "element", "layer"), "kalman_decoupling",
                "kalman_decoupling must be none, element or layer")
        r.check(updater_type == 1, "kalman_decoupling",
                "kalman_decoupling needs the Kalman filter (updater_type 1)")
    if updater_type == 1:
        return dict(kalman=_kalman(r), gradient={}, kalman_decoupling=decoupling)
    gtype = r.value("gradient_type", kind="int")
    r.check(gtype in (0, 1), "gradient_type", "unknown gradient_type (0 fixed, 1 Adam)")
    gradient = {"type": gtype}
    if gtype == 0:
        gradient["eta"] = r.value("gradient_eta", kind="float")
    else:
        for key in ("eta", "beta1", "beta2", "epsilon"):
            gradient[key] = r.value(f"gradient_adam_{key}", kind="float")
    return dict(kalman={}, gradient=gradient, kalman_decoupling=decoupling)


def _weights_and_files(r):
    s = r.s
    use_old = s.get_flag("use_old_weights_short")
    if use_old:
        wmin, wmax = s.get_float("weights_min", -1.0), s.get_float("weights_max", 1.0)
    else:
        wmin, wmax = r.value("weights_min", kind="float"), r.value("weights_max",
                                                                   kind="float")
        r.check(wmin <= wmax, "weights_max", "weights_min must be <= weights_max")
    return dict(
        memorize=s.get_flag("memorize_symfunc_results"), weights_min=wmin, weights_max=wmax,
        nguyen_widrow=s.get_flag("nguyen_widrow_weights_short"), use_old_weights=use_old,
        write_weights=(_schedule(s, "write_weights_epoch") if "write_weights_epoch" in s
                       else WriteSchedule()),
        write_neuronstats=(_schedule(s, "write_neuronstats") if "write_neuronstats" in s
                           else WriteSchedule()),
        write_trainlog=s.get_flag("write_trainlog"))


def training_config(settings) -> TrainConfig:
    """Parse and validate the nnp-train keywords of ``settings``."""
    r = _Reader(settings)
    fields = _basics(r)
    fields.update(_modes(r))
    fields.update(_properties(r, fields["use_forces"]))
    fields.update(_errors_and_units(r, fields["use_forces"]))
    fields.update(_updater(r, fields["updater_type"]))
    fields.update(_weights_and_files(r))
    return TrainConfig(warnings=r.warnings, **fields)
