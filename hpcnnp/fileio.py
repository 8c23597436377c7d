"""Small file helpers shared by the stages: atomic text writes.

A reader (another stage, a batch system, a user) never sees a half-written file:
the text goes to a temporary file in the same folder, is fsync'ed and renamed
over the target.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hpcnnp.errors import InputFileError


def _umask():
    umask = os.umask(0)
    os.umask(umask)
    return umask


def write_atomic(path, text, executable=False):
    """Write ``text`` to ``path`` atomically.

    An existing file keeps its permission bits; a new one gets 0o666 (0o777 with
    ``executable``) minus the umask.  Errors name the file (InputFileError).
    """
    path = Path(path)
    try:
        mode = path.stat().st_mode & 0o7777
        if executable:
            mode |= 0o111 & ~_umask()
    except FileNotFoundError:
        mode = (0o777 if executable else 0o666) & ~_umask()
    except OSError as exc:
        raise InputFileError(path, None, f"cannot access: {exc.strerror}") from None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise InputFileError(path, None, f"cannot write: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def yaml_key_lines(node, index=str, prefix=(), out=None):
    """{key path tuple: 1-based line} of every key and sequence item of a composed YAML
    node (``yaml.compose(text)``), for error messages that name the line.

    ``index`` converts sequence positions in the paths (``str`` or ``int``).
    """
    import yaml

    out = {} if out is None else out
    if isinstance(node, yaml.MappingNode):
        out.setdefault(prefix, node.start_mark.line + 1)
        for key, value in node.value:
            path = prefix + (str(key.value),)
            out[path] = key.start_mark.line + 1
            yaml_key_lines(value, index, path, out)
    elif isinstance(node, yaml.SequenceNode):
        out.setdefault(prefix, node.start_mark.line + 1)
        for i, item in enumerate(node.value):
            path = prefix + (index(i),)
            out[path] = item.start_mark.line + 1
            yaml_key_lines(item, index, path, out)
    return out
