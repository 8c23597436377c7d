"""The ``labeler:`` section shared by project, campaign and active-learning files.

``labeler: chgnet`` or ``labeler: {name: cp2k, cutoff: 500, launcher: site}``: a
name of the labeler table (:data:`hpcnnp.sampling.labelers.LABELERS`) and that
labeler's options.  :func:`labeler_problem` checks both against the table when
the file is read, so a misspelt option stops the run before any work.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from hpcnnp.config.base import KeyProblem, OpenModel, suggest
from hpcnnp.errors import HpcnnpError
from hpcnnp.sampling.labelers import DEFAULT_LABELER, LABELERS, make_labeler

__all__ = ["LabelerSection", "labeler_problem", "as_labeler_dict"]


def as_labeler_dict(value):
    """``"chgnet"`` -> ``{"name": "chgnet"}``; a mapping is copied; None -> None."""
    if value is None:
        return None
    if isinstance(value, str):
        return {"name": value}
    return dict(value) if isinstance(value, dict) else value


def labeler_problem(labeler):
    """``(key path, message, show_value)`` of the first problem of a labeler mapping
    (name and options) in the labeler table, or None."""
    name = labeler.get("name", DEFAULT_LABELER)
    key = str(name).strip().lower()
    if key not in LABELERS:
        return ("name",), (f"unknown labeler {name!r}; known labelers: "
                           + ", ".join(LABELERS) + suggest(key, LABELERS)), False
    known = LABELERS[key].options
    for opt in labeler:
        if opt != "name" and opt not in known:
            return (opt,), (f"labeler {key} has no option {opt!r} (known options: "
                            f"{', '.join(sorted(known)) or 'none'})" + suggest(opt, known)), False
    try:
        make_labeler(**dict(labeler, name=key))
    except HpcnnpError as exc:
        return (), str(exc), False
    return None


class LabelerSection(OpenModel):
    """A labeler of the table and its options (every other key is an option)."""

    name: str = Field(DEFAULT_LABELER, description="name in the labeler table: "
                      + ", ".join(LABELERS))

    @model_validator(mode="before")
    @classmethod
    def _name_only(cls, data):
        return as_labeler_dict(data)

    @model_validator(mode="after")
    def _check(self):
        problem = labeler_problem(self.as_dict())
        if problem is not None:
            raise KeyProblem(*problem)
        return self

    def as_dict(self):
        """``{"name": ..., **options}`` as written (for the labeler factory)."""
        return {"name": self.name, **(self.model_extra or {})}
