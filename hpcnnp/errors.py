"""Exception types of hpcnnp.

Every error caused by user input is an :class:`HpcnnpError`; its message names
the file, the line (1-based) and the problem, so that the command-line tools can
print it as one line instead of a traceback.
"""

from __future__ import annotations


class HpcnnpError(Exception):
    """Base class of all errors hpcnnp raises on purpose."""


class InputFileError(HpcnnpError, ValueError):
    """A problem in an input file.

    Parameters
    ----------
    path : str
        File in which the problem was found.
    line : int or None
        1-based line number (``None`` if the problem is not tied to a line).
    message : str
        What is wrong, in words a user can act on.
    """

    def __init__(self, path, line, message):
        self.path = str(path)
        self.line = line
        self.message = message
        where = self.path if line is None else f"{self.path}:{line}"
        super().__init__(f"{where}: {message}")


class OutputError(HpcnnpError):
    """An output file or folder cannot be written (disk full, read-only, permissions).

    Parameters
    ----------
    path : str
        The file or folder.
    message : str
        What went wrong, e.g. ``cannot write: No space left on device``.
    """

    def __init__(self, path, message):
        self.path = str(path)
        self.message = message
        super().__init__(f"{self.path}: {message}")


class StructureError(HpcnnpError, ValueError):
    """A structure the engine cannot evaluate (e.g. atoms closer than 0.1 Å)."""


class PotentialError(HpcnnpError, ValueError):
    """An inconsistent potential (settings, scaling and weights do not fit)."""
