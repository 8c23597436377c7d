"""The base of every configuration model, and pydantic errors turned into ours.

Each configuration file type is a pydantic model (:class:`ConfigModel`); a file is
checked by :func:`validate_document`, which runs the model on the parsed YAML
(:mod:`hpcnnp.config.yamlfile`) and turns every validation error into one line

    ``FILE:LINE: full.key.path: problem (got VALUE)``

of an :class:`~hpcnnp.errors.InputFileError` (several problems: one line each, in
file order).  Checks that involve several keys, or other parts of hpcnnp (the
labeler table, the site files, the elements of the potential), raise
:class:`KeyProblem` from a validator: it carries the key path *below* the model
that raised it, so the message still names the exact key and its line.

Adding a key to a file type is one line in its model: ``name: type = default``
with a ``Field(description=...)``; the description is what the JSON Schema
(:mod:`hpcnnp.config.schema`) and ``hpcnnp config keys`` show.
"""

from __future__ import annotations

import difflib
from typing import Annotated, ClassVar, Literal, Union, get_args, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    ValidationError,
    WithJsonSchema,
    model_validator,
)

from hpcnnp.config.yamlfile import YamlDocument, key_path
from hpcnnp.errors import InputFileError

__all__ = ["ConfigModel", "OpenModel", "KeyProblem", "ConfigError", "validate_document",
           "suggest", "require_in"]


class KeyProblem(ValueError):
    """A problem with a key below the model whose validator raises it.

    Parameters
    ----------
    keys : tuple
        Key path relative to the model (``("dopant", "site")``); ``()`` for the
        model's own key.
    message : str
        What is wrong, for the user (no key path: it is added).
    show_value : bool
        Append the key's value (``(got -1500)``); not for unknown keys.
    """

    def __init__(self, keys, message, show_value=True):
        super().__init__(message)
        self.keys = tuple(keys)
        self.message = message
        self.show_value = show_value


class ConfigError(InputFileError):
    """Problems in a configuration file.

    ``problems`` lists ``(line, key path, message)`` of each problem in file order;
    the message of the exception has one line per problem, the first of which gives
    the exception's ``line``.
    """

    def __init__(self, path, line, message, problems=None):
        self.problems = problems or [(line, (), message)]
        super().__init__(path, line, message)

    @classmethod
    def from_problems(cls, path, problems):
        line, _, message = problems[0]
        rest = [f"{path}:{ln}: {msg}" if ln else f"{path}: {msg}" for ln, _, msg in problems[1:]]
        return cls(path, line, "\n".join([message] + rest), problems)


def suggest(word, choices):
    """``"; did you mean 'x'?"`` for the closest of *choices*, else ``""``."""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def require_in(value, table, what):
    """*value* if it is a key of *table*, else ValueError ``unknown WHAT (known: ...)``."""
    if value not in table:
        raise ValueError(f"unknown {what} (known: {', '.join(map(str, table))})"
                         + suggest(value, table))
    return value


def _known_keys(cls):
    keys = []
    for name, info in cls.model_fields.items():
        keys.append(info.alias or name)
        if info.validation_alias and isinstance(info.validation_alias, str):
            keys.append(info.validation_alias)
    return keys


class ConfigModel(BaseModel):
    """Base of the configuration models: unknown keys are errors (with the known keys
    and the closest match), and every field has a description (its documentation)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    #: extra spellings accepted for a key (``{"settings": "input_nn"}``)
    ALIASES: ClassVar[dict] = {}

    @model_validator(mode="before")
    @classmethod
    def _unknown_keys(cls, data):
        if not isinstance(data, dict):
            return data
        known = _known_keys(cls)
        for key in data:
            if str(key) in known or key in cls.ALIASES:
                continue
            raise KeyProblem((key,), f"unknown key (known: {', '.join(known)})"
                             + suggest(key, known), show_value=False)
        if cls.ALIASES:
            data = dict(data)
            for alias, target in cls.ALIASES.items():
                if alias in data:
                    if target in data:
                        raise KeyProblem((alias,), f"given twice (as {alias} and as {target})",
                                         show_value=False)
                    data[target] = data.pop(alias)
        return data

    @classmethod
    def keys_help(cls):
        """``[(dotted key, type, default, description)]`` of every key (nested models
        expanded), for ``--help`` texts and documentation."""
        out = []
        for name, info in cls.model_fields.items():
            key = info.alias or name
            sub = _submodel(info.annotation)
            default = None if info.is_required() else info.get_default(call_default_factory=True)
            if isinstance(default, BaseModel):
                default = "see below"
            typ = _type_name(Annotated[(info.annotation, *info.metadata)]
                             if info.metadata else info.annotation)
            out.append((key, typ, "required" if info.is_required() else default,
                        info.description or ""))
            if sub is not None:
                out += [(f"{key}.{k}", t, d, doc) for k, t, d, doc in sub.keys_help()]
        return out


class OpenModel(ConfigModel):
    """A model whose extra keys are passed on (e.g. a builder's parameters)."""

    model_config = ConfigDict(extra="allow")

    @model_validator(mode="before")
    @classmethod
    def _unknown_keys(cls, data):
        return data


def _submodel(annotation):
    if isinstance(annotation, type) and issubclass(annotation, ConfigModel) \
            and not issubclass(annotation, OpenModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        if isinstance(arg, type) and issubclass(arg, ConfigModel) \
                and not issubclass(arg, OpenModel):
            return arg
    return None


_NAMES = {str: "string", int: "integer", float: "number", bool: "true/false", dict: "mapping"}


def _type_name(annotation):
    """Words for a field's type: ``number > 0 K``, ``list of integer``, ``X or null``."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return _annotated_name(args)
    if origin is Union or (origin is not None and origin.__name__ == "UnionType"):
        parts = [a for a in args if a is not type(None)]
        words = " or ".join(_type_name(a) for a in parts)
        return words + (" or null" if len(parts) < len(args) else "")
    if origin is list:
        return f"list of {_type_name(args[0])}" if args else "list"
    if origin is Literal:
        return "one of " + ", ".join(map(str, args))
    if origin is dict or (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
        return "mapping"
    return _NAMES.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _annotated_name(args):
    """Words for ``Annotated[type, ...]``: the value types of :mod:`.types` carry their
    range and unit (or a description) in their JSON Schema."""
    schema = next((m.json_schema for m in args[1:] if isinstance(m, WithJsonSchema)), None)
    schema = schema or {}
    if schema.get("description"):                # named value types: durations, ...
        return schema["description"]
    words = _type_name(args[0])
    for key, sign in (("exclusiveMinimum", ">"), ("minimum", ">="),
                      ("exclusiveMaximum", "<"), ("maximum", "<=")):
        if key in schema:
            words += f" {sign} {schema[key]:g}"
    return words + (f" {schema['unit']}" if schema.get("unit") else "")


# ---------------------------------------------------------------------------------------
# pydantic errors -> file, line, key path, message
# ---------------------------------------------------------------------------------------

_TYPE_WORDS = {
    "int_parsing": "must be a whole number", "int_type": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_parsing": "must be a number", "float_type": "must be a number",
    "finite_number": "must be a finite number",
    "bool_parsing": "must be true or false", "bool_type": "must be true or false",
    "string_type": "must be a string", "dict_type": "must be a mapping (key: value)",
    "model_type": "must be a mapping (key: value)",
    "model_attributes_type": "must be a mapping (key: value)",
    "list_type": "must be a list", "tuple_type": "must be a list",
    "missing": "required key is missing", "extra_forbidden": "unknown key",
    "too_short": "needs at least {min_length} item(s)",
    "too_long": "takes at most {max_length} item(s)",
    "greater_than": "must be > {gt}", "greater_than_equal": "must be >= {ge}",
    "less_than": "must be < {lt}", "less_than_equal": "must be <= {le}",
    "literal_error": "must be one of {expected}",
    "enum": "must be one of {expected}",
    "none_required": "must be empty (null)",
}


def _resolve(loc, data, missing=False):
    """The key path of *loc* in *data*: pydantic's locations also hold the tags of
    unions and validator names, which are not keys of the file."""
    path, node = [], data
    for i, part in enumerate(loc):
        if isinstance(node, dict) and part in node:
            path.append(part)
            node = node[part]
        elif isinstance(node, dict) and str(part) in {str(k) for k in node}:
            key = next(k for k in node if str(k) == str(part))
            path.append(key)
            node = node[key]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            path.append(part)
            node = node[part]
        elif missing and i == len(loc) - 1 and isinstance(node, dict) \
                and isinstance(part, str):
            path.append(part)                # a missing key: named though absent
    return tuple(path), node


def _show(value):
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _problem(err, data):
    """(key path, message) of one pydantic error dict."""
    loc, kind, ctx = err["loc"], err["type"], err.get("ctx") or {}
    path, node = _resolve(loc, data, missing=kind == "missing")
    cause = ctx.get("error")
    if isinstance(cause, KeyProblem):
        keys = path + cause.keys
        value = node
        for k in cause.keys:
            value = value.get(k) if isinstance(value, dict) else None
        got = "" if value is None or isinstance(value, (dict, list)) or \
            not cause.show_value or "got " in cause.message or \
            (isinstance(value, str) and _show(value) in cause.message) \
            else f" (got {_show(value)})"
        return keys, cause.message + got
    if kind == "union_tag_invalid":
        disc = ctx.get("discriminator", "type").strip("'")
        what = str(path[-2]).rstrip("s") + " " if len(path) >= 2 and isinstance(path[-1], int) \
            else ""
        return path + (disc,), (f"unknown {what}{disc} {ctx.get('tag')!r} (known: "
                                f"{ctx.get('expected_tags', '').replace(chr(39), '')})")
    if kind == "union_tag_not_found":
        disc = ctx.get("discriminator", "type").strip("'")
        return path + (disc,), "required key is missing"
    if kind == "value_error":
        message = str(cause) if cause is not None else err["msg"].removeprefix("Value error, ")
    elif kind in _TYPE_WORDS:
        try:
            message = _TYPE_WORDS[kind].format(**ctx)
        except (KeyError, IndexError):
            message = _TYPE_WORDS[kind]
    else:
        message = err["msg"]
    if kind not in ("missing", "extra_forbidden") and "got " not in message \
            and not isinstance(err.get("input"), (dict, list)) \
            and not (isinstance(err.get("input"), str) and _show(err["input"]) in message):
        message += f" (got {_show(err.get('input'))})"
    return path, message


def validate_document(model, doc: YamlDocument, context=None, error_class=ConfigError):
    """Validate a parsed file with *model*; errors name file, line and key path.

    Parameters
    ----------
    model : type of ConfigModel
    doc : YamlDocument
    context : dict, optional
        Passed to the validators (``base_dir`` for relative paths, ...).
    error_class : type
        Subclass of :class:`ConfigError` to raise (e.g. the site files' SiteError).

    Returns
    -------
    ConfigModel

    Raises
    ------
    ConfigError
        Every problem, one line each, sorted by line.
    """
    data = doc.data
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise error_class(doc.path, doc.lines.get(()), "the file must be a YAML mapping "
                          "(key: value lines)")
    try:
        return model.model_validate(data, context=dict(context or {}, document=doc))
    except ValidationError as exc:
        problems, seen = [], set()
        for err in exc.errors():
            keys, message = _problem(err, data)
            if keys in seen:                 # one problem per key (unions report per branch)
                continue
            seen.add(keys)
            label = key_path(keys)
            problems.append((doc.line_of(keys), keys,
                             f"{label}: {message}" if label else message))
        problems.sort(key=lambda p: (p[0] is None, p[0] or 0))
        raise error_class.from_problems(doc.path, problems) from None
