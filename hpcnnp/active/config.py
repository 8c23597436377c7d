"""The campaign file of ``hpcnnp active``: YAML, every option in one typed model.

The keys, their types, ranges, defaults and meanings are the fields of
:class:`hpcnnp.config.active.ActiveFile` (the one place to add a key: one line
with its description); :data:`OPTIONS` lists them as dotted keys.
:func:`load_config` reads a file (or a dict), validates it and returns an
:class:`ActiveConfig`.  A bad key or value is an
:class:`~hpcnnp.errors.InputFileError` naming the file, the line and the full key
path.  ``hpcnnp active --help`` prints the table.

A minimal file::

    data: input.data              # labelled structures (n2p2 input.data)
    input_nn: input.nn            # elements, SFs, network, training keywords
    committee: {size: 4, epochs: 10}
    exploration:
      structures: [{file: start.data}, {builder: llzo_cubic}]
      temperatures: [600, 1200]
      steps: 2000
      stride: 20
    selection: {sigma_low: 0.05, sigma_high: 0.35, max_select: 50}
    labeler: {name: chgnet}

Relative paths are relative to the folder of the campaign file.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

from hpcnnp.config.active import ActiveFile
from hpcnnp.config.base import ConfigModel, validate_document
from hpcnnp.config.yamlfile import YamlDocument, read_yaml
from hpcnnp.errors import InputFileError

__all__ = ["OPTIONS", "Option", "ActiveConfig", "load_config", "options_help"]


@dataclass(frozen=True)
class Option:
    """One key of the campaign file."""

    key: str            # dotted path, e.g. "selection.sigma_low"
    kind: str           # type as written in the model
    default: object     # REQUIRED for keys without a default
    doc: str


REQUIRED = object()


def _options(model, prefix=""):
    out = []
    for name, info in model.model_fields.items():
        sub = info.annotation
        if isinstance(sub, type) and issubclass(sub, ConfigModel):
            out += _options(sub, f"{prefix}{name}.")
            continue
        default = REQUIRED if info.is_required() else info.get_default(call_default_factory=True)
        kind = getattr(sub, "__name__", None) or str(sub).replace("typing.", "")
        out.append(Option(prefix + name, kind, default, info.description or ""))
    return out


#: every key of the campaign file (dotted path, type, default, meaning), from the model
OPTIONS = tuple(_options(ActiveFile))

#: other spellings accepted for a key (those of ``hpcnnp train`` and of the project
#: file of ``hpcnnp run``): alias -> key
ALIASES = {"settings": "input_nn", "site": "parallel.site"}
_SECTIONS = sorted({o.key.split(".")[0] for o in OPTIONS if "." in o.key})


def options_help():
    """The table of options as text (for ``hpcnnp active --help``)."""
    import textwrap

    lines = []
    aliases = {v: k for k, v in ALIASES.items()}
    for o in OPTIONS:
        default = ("required" if o.default is REQUIRED else
                   "default: none" if o.default is None else f"default: {o.default!r}")
        alias = f", alias: {aliases[o.key]}" if o.key in aliases else ""
        lines.append(f"  {o.key}  ({default}{alias})")
        lines += textwrap.wrap(o.doc, 76, initial_indent="      ", subsequent_indent="      ")
    return "\n".join(lines)


class ActiveConfig:
    """A checked campaign: ``cfg["selection.sigma_low"]`` or ``cfg.selection.sigma_low``.

    Attributes
    ----------
    values : dict
        Dotted key -> value (defaults filled in, paths absolute).
    path : Path or None
        The campaign file.
    base : Path
        Folder against which relative paths were resolved.
    model : ActiveFile
        The validated model.
    """

    def __init__(self, values, path=None, base=None, lines=None, model=None):
        self.values = values
        self.path = None if path is None else Path(path)
        self.base = Path(base) if base is not None else Path.cwd()
        self._lines = lines or {}
        self.model = model

    def __getitem__(self, key):
        return self.values[key]

    def __getattr__(self, section):
        if section.startswith("_") or section not in _SECTIONS:
            raise AttributeError(section)
        prefix = section + "."
        return SimpleNamespace(**{k[len(prefix):]: v for k, v in self.values.items()
                                  if k.startswith(prefix)})

    @property
    def workdir(self):
        return Path(self.values["workdir"])

    def error(self, key, message):
        """An InputFileError naming the campaign file, the key's line and the key."""
        parts = tuple(key.split("."))
        while parts and parts not in self._lines:
            parts = parts[:-1]
        return InputFileError(self.path or "<config>", self._lines.get(parts),
                              f"{key}: {message}")

    def as_dict(self):
        """Nested dict (what a YAML file with these values would hold)."""
        out = {}
        for key, value in self.values.items():
            node = out
            *head, last = key.split(".")
            for h in head:
                node = node.setdefault(h, {})
            node[last] = value
        return out


def _flatten(model):
    values = {}
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, ConfigModel):
            for sub in type(value).model_fields:
                values[f"{name}.{sub}"] = copy.deepcopy(getattr(value, sub))
        else:
            values[name] = value
    return values


def _set_dotted(raw, key, value):
    node = raw
    *head, last = key.split(".")
    for h in head:
        node = node.setdefault(h, {})
    node[last] = value


def load_config(source, overrides=None):
    """Read and check a campaign.

    Parameters
    ----------
    source : path or dict
        The YAML file, or its content as a nested dict (paths then relative to the
        current folder).
    overrides : dict, optional
        Dotted key -> value applied after reading (checked like the file's values).

    Returns
    -------
    ActiveConfig

    Raises
    ------
    InputFileError
        Unknown key, missing required key, bad value (names file, line and key).
    """
    if isinstance(source, dict):
        doc = YamlDocument(path="<config>", text="", data=copy.deepcopy(source))
        path, base = None, Path.cwd()
    else:
        doc = read_yaml(source, "campaign file")
        path, base = Path(source), Path(source).resolve().parent
    if overrides and isinstance(doc.data, dict):
        for key, value in overrides.items():
            _set_dotted(doc.data, key, value)
    model = validate_document(ActiveFile, doc, {"base_dir": base})
    values = _flatten(model)
    if values["workdir"] is None:
        values["workdir"] = str(base)
    return ActiveConfig(values, path, base, doc.lines, model)
