"""The project file of the main job (``hpcnnp run project.yaml``).

One YAML file describes the whole pipeline: which structures to build, which
labeler labels them, the SF set, network and training, validation, one
active-learning iteration, the production MD of an LLZO|LCO interface and a
Σ grain boundary, and their analysis.  Every key is listed in :data:`SCHEMA`
(the one place to extend); :func:`load_project` checks the whole file before
any work starts and names the offending key.

Scale: ``scale`` multiplies the snapshot counts of the sampling campaign and
``site`` selects where the stages run (``local`` on a laptop; a site of
``jobs/sites`` on a cluster) — the same file runs the laptop demo and the
production campaign.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import yaml

from hpcnnp.errors import InputFileError

#: key path -> (type or tuple of types, required, default, meaning)
SCHEMA = {
    "name": (str, True, None, "project name (report title)"),
    "workdir": (str, False, "run", "folder for every stage's files (relative to the project file)"),
    "site": (str, False, "local", "site of jobs/sites (Parsl executor and MPI launcher)"),
    "ranks": (int, False, None, "MPI ranks for training/MD (default: the cores of one node)"),
    "scale": ((int, float), False, 1.0, "multiplies the snapshot counts of the campaign"),
    "seed": (int, False, 12345, "seed of every random choice"),
    "elements": (list, False, ["Li", "La", "Zr", "O", "Co"], "elements of the potential"),
    "labeler": (dict, True, None, "reference calculator: {name: chgnet|xtb|cp2k|vasp|espresso, ...options}"),
    "campaign": (dict, True, None, "sampling campaign (hpcnnp sample format: structures, temperatures, snapshots)"),
    "descriptors": (dict, False, {"preset": "llzo-lco"}, "SF set: {preset: llzo-lco|llzo-lco-wide}"),
    "network": (dict, False, {"hidden": [20, 20], "activation": "t t l"}, "atomic networks"),
    "training": (dict, False, {}, "extra input.nn training keywords (n2p2 names), e.g. epochs"),
    "validation": (dict, False, {"properties": ["errors"]}, "hpcnnp validate options"),
    "active": (dict, False, {"iterations": 1}, "active-learning settings (hpcnnp active format)"),
    "production": (dict, False, {}, "MD of the interface and the grain boundary"),
    "analysis": (dict, False, {"segregation": "Co", "li_density": True}, "trajectory analyses"),
}


@dataclass
class Project:
    """A validated project file."""

    path: Path
    data: dict

    def __getitem__(self, key):
        return self.data[key]

    def get(self, key, default=None):
        return self.data.get(key, default)

    @property
    def workdir(self) -> Path:
        return (self.path.parent / self.data["workdir"]).resolve()


def _line_of(text, key):
    for i, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith(f"{key}:"):
            return i
    return None


def load_project(path):
    """Read and check a project file; raises InputFileError naming file, line and key."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, None, "project file not found")
    text = path.read_text()
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        raise InputFileError(path, None if line is None else line + 1,
                             f"not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise InputFileError(path, None, "the project file must be a mapping of keys")
    for key in data:
        if key not in SCHEMA:
            raise InputFileError(path, _line_of(text, key),
                                 f"unknown key '{key}' (known: {', '.join(SCHEMA)})")
    out = {}
    for key, (typ, required, default, meaning) in SCHEMA.items():
        if key not in data:
            if required:
                raise InputFileError(path, None, f"missing key '{key}': {meaning}")
            out[key] = copy.deepcopy(default)
            continue
        value = data[key]
        if not isinstance(value, typ) or isinstance(value, bool) and typ in (int, (int, float)):
            tname = typ.__name__ if isinstance(typ, type) else "number"
            raise InputFileError(path, _line_of(text, key),
                                 f"key '{key}' must be a {tname} ({meaning})")
        out[key] = value
    _check_semantics(path, text, out)
    return Project(path.resolve(), out)


def _check_semantics(path, text, d):
    """Checks that need other parts of hpcnnp (labeler table, site files)."""
    from hpcnnp.errors import HpcnnpError

    lab = d["labeler"]
    name = lab.get("name")
    try:
        from hpcnnp.sampling.labelers import LABELERS
    except ImportError:  # pragma: no cover - sampling not installed
        LABELERS = {}
    if name not in LABELERS:
        raise InputFileError(path, _line_of(text, "labeler"),
                             f"key 'labeler.name': unknown labeler '{name}' "
                             f"(known: {', '.join(sorted(LABELERS))})")
    try:
        from hpcnnp.hpc.sites import load_site
        load_site(d["site"])
    except HpcnnpError as exc:
        raise InputFileError(path, _line_of(text, "site"), f"key 'site': {exc}") from None
    if d["scale"] <= 0:
        raise InputFileError(path, _line_of(text, "scale"), "key 'scale' must be > 0")
    if d["ranks"] is not None and d["ranks"] < 1:
        raise InputFileError(path, _line_of(text, "ranks"), "key 'ranks' must be >= 1")
    net = d["network"]
    if not isinstance(net.get("hidden", []), list) or not all(
            isinstance(n, int) and n > 0 for n in net.get("hidden", [])):
        raise InputFileError(path, _line_of(text, "network"),
                             "key 'network.hidden' must be a list of positive integers")
    acts = str(net.get("activation", "")).split()
    if len(acts) != len(net.get("hidden", [])) + 1:
        raise InputFileError(path, _line_of(text, "network"),
                             "key 'network.activation' needs one letter per hidden layer "
                             "plus one for the output (e.g. 't t l')")
    preset = d["descriptors"].get("preset")
    from hpcnnp.descriptors.sfgen import PRESETS
    if preset not in PRESETS:
        raise InputFileError(path, _line_of(text, "descriptors"),
                             f"key 'descriptors.preset': unknown preset '{preset}' "
                             f"(known: {', '.join(PRESETS)})")
