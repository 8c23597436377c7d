"""The one YAML reader of hpcnnp's configuration files.

Every configuration file (project, campaign, MD protocol, active learning, site)
is read by :func:`read_yaml` / :func:`parse_yaml`, which

* loads safely (``yaml.SafeLoader``: plain data, never Python objects);
* rejects a key given twice in one mapping (PyYAML silently keeps the last one,
  so a duplicated ``temperatures:`` would quietly drop the first list);
* keeps the 1-based line of every key and list item, so that a problem found
  later (by the typed models of :mod:`hpcnnp.config`) names the line.

>>> doc = parse_yaml("md:\\n  timestep: 0.5\\n", "c.yaml")
>>> doc.data, doc.line_of(("md", "timestep"))
({'md': {'timestep': 0.5}}, 2)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from hpcnnp.errors import InputFileError

__all__ = ["YamlDocument", "read_yaml", "parse_yaml", "key_path"]

#: YAML's merge key (``<<: *anchor``): may appear more than once by design
_MERGE_TAG = "tag:yaml.org,2002:merge"


def key_path(keys):
    """Dotted form of a key path: ``("sampling", 0, "temperatures")`` ->
    ``"sampling.0.temperatures"``."""
    return ".".join(str(k) for k in keys)


@dataclass
class YamlDocument:
    """A parsed YAML file: its data and the line of every key.

    Attributes
    ----------
    path : str
        The file as named by the caller (used in messages).
    text : str
    data : object
        What ``yaml.safe_load`` returns (``None`` for an empty file).
    lines : dict
        Key path (tuple of mapping keys as ``str`` and list positions as ``int``)
        -> 1-based line; the empty path is the document itself.
    """

    path: str
    text: str
    data: object
    lines: dict = field(default_factory=dict, repr=False)

    def line_of(self, keys):
        """Line of *keys*, or of its longest non-empty prefix found in the file (a
        missing key is reported at the line of the mapping it should be in); None if
        there is none (e.g. a missing top-level key)."""
        probe = _normal(keys)
        while probe:
            if probe in self.lines:
                return self.lines[probe]
            probe = probe[:-1]
        return None

    def error(self, keys, message, cls=InputFileError):
        """An :class:`~hpcnnp.errors.InputFileError` naming file, line and key path."""
        label = key_path(keys)
        return cls(self.path, self.line_of(keys), f"{label}: {message}" if label else message)


def _normal(keys):
    return tuple(k if isinstance(k, int) and not isinstance(k, bool) else str(k)
                 for k in keys)


def _walk(node, prefix, lines, path, error):
    """Record lines of keys and items below *node*; reject duplicate keys."""
    if isinstance(node, yaml.MappingNode):
        seen = {}
        for key, value in node.value:
            if key.tag == _MERGE_TAG:
                _walk(value, prefix, lines, path, error)
                continue
            name = str(key.value) if isinstance(key, yaml.ScalarNode) else \
                f"<{key.id} at line {key.start_mark.line + 1}>"
            line = key.start_mark.line + 1
            if name in seen:
                raise error(
                    path, line, f"{key_path(prefix + (name,))}: key given twice in one "
                    f"mapping (first on line {seen[name]}); YAML would keep only the last")
            seen[name] = line
            lines.setdefault(prefix + (name,), line)
            _walk(value, prefix + (name,), lines, path, error)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines.setdefault(prefix + (i,), item.start_mark.line + 1)
            _walk(item, prefix + (i,), lines, path, error)


def parse_yaml(text, path="<string>", error=InputFileError):
    """Parse YAML *text* (see the module docstring).

    Raises
    ------
    InputFileError
        (or *error*, a subclass) Not valid YAML (line of the problem), several
        documents, or a duplicate key.
    """
    path = str(path)
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        lines = {}
        if node is not None:
            lines[()] = node.start_mark.line + 1
            _walk(node, (), lines, path, error)
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise error(path, None if mark is None else mark.line + 1,
                    f"not valid YAML: {problem}") from None
    finally:
        loader.dispose()
    return YamlDocument(path=path, text=text, data=data, lines=lines)


def read_yaml(path, what="file"):
    """Read and parse a YAML file (:func:`parse_yaml`); *what* names it in messages
    (``"campaign file"``)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputFileError(path, None, f"{what} not found") from None
    except IsADirectoryError:
        raise InputFileError(path, None, f"{what} expected, found a directory") from None
    except UnicodeDecodeError as exc:
        raise InputFileError(path, None, f"{what} is not UTF-8 text ({exc.reason} at byte "
                                         f"{exc.start})") from None
    except OSError as exc:
        raise InputFileError(path, None, f"cannot read the {what}: {exc.strerror}") from None
    return parse_yaml(text, path)
