"""Sphinx configuration of the hpcnnp documentation (API reference from docstrings).

Build: ``python -m sphinx -W -b html docs docs/_build/html`` (needs the ``dev`` extra and
an installed hpcnnp; the optional engines -- LAMMPS, Parsl, CHGNet, tblite -- are not
needed, their imports are mocked).
"""

import hpcnnp

project = "hpcnnp"
author = "the hpcnnp developers"
copyright = "the hpcnnp developers, GPL-3.0-or-later"
version = release = hpcnnp.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "schema"]

autosummary_generate = True
autosummary_imported_members = False
# each object is documented once, in the module that defines it (packages re-export
# their modules' names in __all__; documenting those again would duplicate them)
autodoc_default_options = {"members": True, "show-inheritance": True,
                           "ignore-module-all": True}
autodoc_member_order = "bysource"
# engines that are optional extras: the reference documents hpcnnp, not them
autodoc_mock_imports = ["lammps", "parsl", "chgnet", "torch", "tblite", "MDAnalysis",
                        "pymatgen", "aimsgb", "packmol"]

numpydoc_show_class_members = False
numpydoc_xref_param_type = False
numpydoc_validation_checks = set()

html_theme = "alabaster"
html_title = f"hpcnnp {release}"


# ---------------------------------------------------------------------------------------
# Docstrings are written for people reading the source: |x| is an absolute value and
# **options a keyword dictionary, not reST substitutions or bold text.  Escape both
# before numpydoc and docutils see them (literal blocks and ``code`` stay as written).
# ---------------------------------------------------------------------------------------

import re  # noqa: E402

_LITERAL = re.compile(r"``.*?``|`[^`]*`_?")
_STAR = re.compile(r"(?<![\w*\\])(\*\*?)(?=\w)")


def _escape(text):
    out, pos = [], 0
    for m in _LITERAL.finditer(text):
        out.append(_escape_plain(text[pos:m.start()]))
        out.append(m.group())
        pos = m.end()
    out.append(_escape_plain(text[pos:]))
    return "".join(out)


def _escape_plain(text):
    text = text.replace("|", r"\|")
    # a * or ** before a word that no matching * or ** closes on the line
    pieces, pos = [], 0
    for m in _STAR.finditer(text):
        rest = text[m.end():]
        closes = re.search(r"\w" + re.escape(m.group(1)) + r"(?!\w)", rest)
        if not closes:
            pieces.append(text[pos:m.start()] + "\\*" * len(m.group(1)))
            pos = m.end()
    return "".join(pieces) + text[pos:]


def _escape_docstring(app, what, name, obj, options, lines):
    grid = any(line.lstrip().startswith("+-") for line in lines)
    literal_indent = None
    for k, line in enumerate(lines):
        stripped = line.lstrip()
        indent = len(line) - len(stripped)
        if literal_indent is not None:
            if not stripped or indent > literal_indent:
                continue                                # inside a literal block
            literal_indent = None
        if stripped.startswith((">>>", "...", "+-")) or set(stripped) <= set("=- ") \
                or (grid and stripped.startswith("|")):
            pass                                        # doctest, table, rule
        else:
            lines[k] = line[:indent] + _escape(stripped)
        if stripped.endswith("::"):
            literal_indent = indent


def setup(app):
    app.connect("autodoc-process-docstring", _escape_docstring, priority=100)
