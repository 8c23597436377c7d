"""Error metrics of a potential against reference data: RMSE, MAE and R².

For reference values y_i and predictions p_i (i = 1..n)

* RMSE = sqrt( (1/n) sum_i (p_i - y_i)^2 )
* MAE  = (1/n) sum_i |p_i - y_i|
* R²   = 1 - sum_i (p_i - y_i)^2 / sum_i (y_i - ȳ)^2   (coefficient of determination)

Pitfalls
--------
* R² measures the error *relative to the spread of the reference values*.  Within
  one structure class the energies per atom often span only a few meV/atom, so a
  small RMSE can still give a low (even negative) R²; read the two together.
* R² is undefined (NaN here) when all reference values are equal.
* Energies are compared per atom (E/N), forces per Cartesian component, as in the
  published tables of HDNNPs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["rmse", "mae", "r2", "ErrorStats", "error_stats"]


def _pair(ref, pred):
    ref = np.asarray(ref, dtype=float).ravel()
    pred = np.asarray(pred, dtype=float).ravel()
    if ref.shape != pred.shape:
        raise ValueError(f"reference ({ref.size} values) and prediction "
                         f"({pred.size} values) differ in length")
    return ref, pred


def rmse(ref, pred):
    """Root-mean-square error, in the unit of the inputs (NaN for no values)."""
    ref, pred = _pair(ref, pred)
    return float(np.sqrt(np.mean((pred - ref) ** 2))) if ref.size else float("nan")


def mae(ref, pred):
    """Mean absolute error, in the unit of the inputs (NaN for no values)."""
    ref, pred = _pair(ref, pred)
    return float(np.mean(np.abs(pred - ref))) if ref.size else float("nan")


def r2(ref, pred):
    """Coefficient of determination 1 - SS_res/SS_tot (NaN if the reference is constant)."""
    ref, pred = _pair(ref, pred)
    if ref.size == 0:
        return float("nan")
    ss_tot = float(np.sum((ref - ref.mean()) ** 2))
    if ss_tot == 0.0:
        return float("nan")
    return 1.0 - float(np.sum((pred - ref) ** 2)) / ss_tot


@dataclass(frozen=True)
class ErrorStats:
    """RMSE, MAE, R² and maximum absolute error of ``n`` values (unit of the inputs)."""

    n: int
    rmse: float
    mae: float
    r2: float
    max_abs: float

    def scaled(self, factor):
        """The same statistics with the errors multiplied by ``factor`` (unit change)."""
        return ErrorStats(self.n, self.rmse * factor, self.mae * factor, self.r2,
                          self.max_abs * factor)


def error_stats(ref, pred):
    """:class:`ErrorStats` of predictions ``pred`` against reference values ``ref``."""
    ref, pred = _pair(ref, pred)
    mx = float(np.max(np.abs(pred - ref))) if ref.size else float("nan")
    return ErrorStats(int(ref.size), rmse(ref, pred), mae(ref, pred), r2(ref, pred), mx)
