"""Any ASE calculator from a factory ``module:function`` or ``file.py:function``.

A labeler named in a YAML file this way is *code*: the factory runs with the
rights of the user who runs hpcnnp.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from pathlib import Path

from hpcnnp.errors import HpcnnpError

from .base import Labeler, LabelerError

__all__ = ["PythonLabeler"]


class PythonLabeler(Labeler):
    """Any ASE calculator from a factory ``module:function`` or ``file.py:function``,
    called with ``kwargs``."""

    name = "python"
    summary = "any ASE calculator: factory 'module:function' or 'file.py:function'"
    options = {"factory": None, "kwargs": None, "stress": True, "timeout": None}
    runtime_options = ("timeout",)

    def validate(self):
        f = self.settings["factory"]
        if not f or ":" not in str(f):
            raise LabelerError("labeler python: option factory must be 'module:function' or "
                               "'path/to/file.py:function'")
        if self.settings["kwargs"] is not None and not isinstance(self.settings["kwargs"], dict):
            raise LabelerError("labeler python: option kwargs must be a mapping")

    def _factory(self):
        target, _, func = str(self.settings["factory"]).rpartition(":")
        try:
            if target.endswith(".py"):
                path = Path(target).expanduser().resolve()
                if not path.is_file():
                    raise LabelerError(f"labeler python: factory file {path} not found")
                name = "hpcnnp_labeler_" + re.sub(r"\W", "_", str(path))
                spec = importlib.util.spec_from_file_location(name, path)
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
            else:
                module = importlib.import_module(target)
        except HpcnnpError:
            raise
        except Exception as exc:
            raise LabelerError(f"labeler python: cannot import {target!r}: "
                               f"{type(exc).__name__}: {exc}") from None
        fn = getattr(module, func, None)
        if not callable(fn):
            raise LabelerError(f"labeler python: {target!r} has no callable {func!r}")
        return fn

    def check(self, elements=()):
        self._factory()

    def build(self, directory):
        return self._factory()(**(self.settings["kwargs"] or {}))
