"""A minimal text-template renderer for batch scripts and site files.

Placeholders are written ``%{name}``.  That syntax collides neither with the
shell (``$VAR``, ``${VAR:-x}``), nor with the schedulers' own patterns
(Slurm/LSF ``%j``/``%J``, Flux ``{{id}}``), so templates stay plain, readable
shell scripts.  Two rules cover all the logic the templates need:

* **Lines** (:func:`render_text`): a line that refers to a value of ``None``
  is dropped (``#SBATCH --account=%{account}`` disappears when no account is
  set); a line that consists of one placeholder whose value is empty is
  dropped too; a multi-line value is inserted as is, except in a comment line
  (``# ...``), where every line of it stays a comment.
* **Tokens** (:func:`render_tokens`): the text is split like a shell command
  line and a *token* that refers to ``None`` is dropped, so write options as
  one token (``--queue=%{queue}``, not ``-q %{queue}``).

An unknown name is an error that names the source and line.
"""

from __future__ import annotations

import re
import shlex

from hpcnnp.errors import InputFileError

#: ``%{name}``
PLACEHOLDER = re.compile(r"%\{([A-Za-z_][A-Za-z0-9_]*)\}")


def placeholders(text):
    """The set of placeholder names used in *text*."""
    return set(PLACEHOLDER.findall(text))


def _substitute(text, values):
    return PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), text)


def _check_known(names, values, source, line, where=""):
    unknown = sorted(n for n in names if n not in values)
    if unknown:
        known = ", ".join(sorted(values))
        raise InputFileError(source, line,
                             f"{where}unknown placeholder "
                             f"{', '.join('%{' + n + '}' for n in unknown)} "
                             f"(known: {known})")


def render_text(text, values, *, source="<template>", first_line=1):
    """Fill the placeholders of a multi-line template.

    Parameters
    ----------
    text : str
        Template text.
    values : dict
        name -> value (``None``: drop the lines that use it).
    source : str
        File name used in error messages.
    first_line : int
        Line number of the first line of *text* in *source*.

    Raises
    ------
    InputFileError
        A placeholder that is not in *values*.
    """
    out = []
    for lineno, line in enumerate(text.splitlines(), first_line):
        names = PLACEHOLDER.findall(line)
        if not names:
            out.append(line)
            continue
        _check_known(names, values, source, lineno)
        if any(values[n] is None for n in names):
            continue
        if PLACEHOLDER.fullmatch(line.strip()) and str(values[names[0]]) == "":
            continue
        text_line = _substitute(line, values)
        if line.lstrip().startswith("#") and "\n" in text_line:
            # a value with a line break in a comment: keep every line a comment, so
            # that nothing after the break runs as a command
            text_line = "\n# ".join(text_line.split("\n"))
        out.append(text_line)
    return "\n".join(out) + ("\n" if text.endswith("\n") else "")


def render_tokens(text, values, *, source="<site>", where=""):
    """Split *text* like a shell command line and fill each token.

    A token that refers to a value of ``None`` is dropped.  Returns a list
    of arguments (no shell quoting left).
    """
    names = placeholders(text)
    _check_known(names, values, source, None, where)
    try:
        tokens = shlex.split(text)
    except ValueError as exc:
        raise InputFileError(source, None, f"{where}cannot split {text!r}: {exc}") from None
    out = []
    for token in tokens:
        used = PLACEHOLDER.findall(token)
        if any(values[n] is None for n in used):
            continue
        out.append(_substitute(token, values))
    return out


def render_string(text, values, *, source="<site>", where=""):
    """Fill the placeholders of a one-line string (``None`` values -> error)."""
    names = placeholders(text)
    _check_known(names, values, source, None, where)
    missing = sorted(n for n in names if values[n] is None)
    if missing:
        raise InputFileError(source, None,
                             f"{where}needs a value for {', '.join(missing)} "
                             f"(used in {text!r})")
    return _substitute(text, values)


__all__ = ["PLACEHOLDER", "placeholders", "render_text", "render_tokens", "render_string"]
