"""Task planning of a sampling campaign: a validated campaign file -> tasks.

:func:`load_campaign` reads a campaign file with the typed model
(:class:`hpcnnp.config.campaign.CampaignFile`: every error names file, line and
key) and returns a :class:`Campaign`, whose :meth:`Campaign.tasks` lists the
trajectories to run.  Each (structure, temperature) pair becomes ``ceil(scale x
snapshots / snapshots_per_task)`` trajectories (seeds ``seed``, ``seed+1``, ...);
a :class:`Task` is named by the hash of everything that changes its labels
(:meth:`Task.hash`), so raising ``scale`` adds trajectories and keeps the
finished ones, and a changed thread count does not restart anything.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from hpcnnp.config.base import validate_document
from hpcnnp.config.campaign import (MD_DEFAULTS, SERIAL_SITE, CampaignFile, check_site,
                                    entry_labeler)
from hpcnnp.config.labeler import as_labeler_dict
from hpcnnp.config.yamlfile import read_yaml
from hpcnnp.errors import HpcnnpError
from hpcnnp.sampling.aimd import MDSettings
from hpcnnp.sampling.labelers import DEFAULT_LABELER, make_labeler
from hpcnnp.structures.builders import builtin_class

__all__ = ["Campaign", "Task", "load_campaign", "campaign_from_document", "MD_DEFAULTS",
           "SERIAL_SITE", "canonical"]

#: MD settings that are whole numbers (a YAML ``10.0`` is stored as 10)
_MD_INTEGERS = ("equilibration", "interval", "snapshots_per_task")


def canonical(obj):
    """Canonical JSON of *obj* (sorted keys, no spaces): what task hashes are taken of."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


@dataclass
class Task:
    """One trajectory of a campaign.

    Attributes
    ----------
    structure_class : str
    structure : dict
        Builder spec.
    temperature : float, K
    seed : int
    md : dict
        MD settings (see :class:`hpcnnp.sampling.aimd.MDSettings`; ``snapshots``
        is the number of snapshots of this task).
    labeler : dict
        Labeler name and options.
    label_settings : dict
        The labeler settings that change labels (hashed).
    where : str
        Campaign file and line of the sampling entry (for messages).
    """

    structure_class: str
    structure: dict
    temperature: float
    seed: int
    md: dict
    labeler: dict
    label_settings: dict
    where: str = ""
    base_dir: str = "."

    def key(self):
        md = {k: v for k, v in self.md.items() if k not in MDSettings.RUNTIME}
        return {"class": self.structure_class, "structure": self.structure,
                "temperature": float(self.temperature), "seed": int(self.seed), "md": md,
                "labeler": self.label_settings}

    @property
    def hash(self):
        """16 hex digits of the SHA-256 of :meth:`key` (canonical JSON)."""
        return hashlib.sha256(canonical(self.key()).encode()).hexdigest()[:16]

    def to_dict(self):
        return {"hash": self.hash, "structure_class": self.structure_class,
                "structure": self.structure, "temperature": self.temperature,
                "seed": self.seed, "md": self.md, "labeler": self.labeler,
                "label_settings": self.label_settings, "where": self.where,
                "base_dir": self.base_dir}

    @classmethod
    def from_dict(cls, d):
        return cls(structure_class=d["structure_class"], structure=d["structure"],
                   temperature=d["temperature"], seed=d["seed"], md=d["md"],
                   labeler=d["labeler"], label_settings=d["label_settings"],
                   where=d.get("where", ""), base_dir=d.get("base_dir", "."))


@dataclass
class Campaign:
    """A loaded campaign file (see :mod:`hpcnnp.sampling.campaign`)."""

    path: Path
    name: str
    description: str
    output: Path
    workdir: Path
    site: str
    resources: dict
    scale: float
    seed: int
    labeler: dict
    md: dict
    structures: dict
    entries: list
    lines: dict = field(default_factory=dict, repr=False)

    def tasks(self):
        """All tasks (unique by hash, in file order)."""
        out = {}
        for entry in self.entries:
            lab = entry_labeler(self.labeler, entry.get("labeler"))
            name = lab.pop("name")
            label_settings = make_labeler(name, **lab).label_settings()
            md = dict(self.md, **entry.get("md", {}))
            per = int(md.pop("snapshots_per_task"))
            n_tasks = max(1, math.ceil(self.scale * entry["snapshots"] / per))
            for temp in entry["temperatures"]:
                for i in range(n_tasks):
                    task = Task(structure_class=entry["class"], structure=entry["spec"],
                                temperature=float(temp), seed=self.seed + i,
                                md=dict(md, snapshots=per),
                                labeler={"name": name, **lab}, label_settings=label_settings,
                                where=entry["where"], base_dir=str(self.path.parent))
                    out.setdefault(task.hash, task)
        return list(out.values())


def _md_section(raw):
    """The MD settings as written (the values are hashed: ``1`` stays ``1``), whole
    numbers written as ``10.0`` stored as ``10``."""
    out = dict(raw or {})
    for key in _MD_INTEGERS:
        if isinstance(out.get(key), float):
            out[key] = int(out[key])
    return out


def campaign_from_document(doc, scale=None, site=None, output=None, workdir=None,
                           context=None):
    """A :class:`Campaign` of a parsed file (:class:`~hpcnnp.config.yamlfile.YamlDocument`);
    the keyword arguments override the file's values (see :func:`load_campaign`)."""
    context = dict(context or {})
    if site is not None:                      # the file's site is not used: not checked
        context["check_site"] = False
        problem = check_site(site)
        if problem:
            raise HpcnnpError(f"site {site}: {problem}")
    model = validate_document(CampaignFile, doc, context)
    raw = doc.data
    path = Path(doc.path)
    name = str(model.name or path.stem)
    labeler = as_labeler_dict(raw.get("labeler")) or {}
    labeler.setdefault("name", DEFAULT_LABELER)
    md = dict(MD_DEFAULTS, **_md_section(raw.get("md")))
    structures = {str(k): dict(v) for k, v in (raw.get("structures") or {}).items()}
    entries = []
    for i, (entry, checked) in enumerate(zip(raw["sampling"], model.sampling)):
        spec = dict(structures[checked.structure]) if checked.structure in structures \
            else builtin_class(checked.structure)
        e = {"class": str(spec.pop("class", checked.structure)), "spec": spec,
             "temperatures": [float(t) for t in checked.temperatures],
             "snapshots": checked.snapshots,
             "where": f"{doc.path}:{doc.lines.get(('sampling', i), '?')}"}
        if entry.get("md") is not None:
            e["md"] = _md_section(entry["md"])
        if entry.get("labeler") is not None:
            e["labeler"] = dict(entry["labeler"])
        entries.append(e)
    return Campaign(
        path=path.resolve(), name=name, description=model.description,
        output=Path(output or model.output or f"{name}.h5"),
        workdir=Path(workdir or model.workdir or f"{name}.work"),
        site=site or model.site, resources=model.resources.model_dump(exclude_unset=True),
        scale=float(model.scale if scale is None else scale), seed=model.seed,
        labeler=labeler, md=md, structures=structures, entries=entries, lines=doc.lines)


def load_campaign(path, scale=None, site=None, output=None, workdir=None):
    """Read and check a campaign file.

    Parameters
    ----------
    path : str or path
    scale : float, optional
        Overrides ``scale`` (global factor on all snapshot counts).
    site : str, optional
        Overrides ``site`` (checked: an unknown site stops here, before any folder
        is written).
    output, workdir : str, optional
        Override ``output`` / ``workdir`` (relative paths: to the current folder).

    Raises
    ------
    InputFileError
        With file, line and key: unknown or duplicate keys, unknown structure classes,
        builders or sites, temperatures <= 0, unknown labelers or options, bad numbers.
    """
    if scale is not None and not (isinstance(scale, (int, float)) and scale > 0):
        raise HpcnnpError(f"scale must be > 0, got {scale!r}")
    return campaign_from_document(read_yaml(path, "campaign file"), scale=scale, site=site,
                                  output=output, workdir=workdir)
