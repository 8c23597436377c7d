"""The project file of the main job (``hpcnnp run project.yaml``).

One YAML file describes the whole pipeline: which structures to build, which
labeler labels them, the SF set, network and training, validation, active
learning, the production MD of an LLZO|LCO interface and a Σ grain boundary, and
their analysis.  Every key is a field of the typed model
:class:`hpcnnp.config.project.ProjectFile` (the one place to extend: one line
with its description), which embeds the campaign, active-learning and MD models;
:func:`load_project` checks the whole file -- every nested key -- before any work
starts and names file, line and key path of each problem.

Scale: ``scale`` multiplies the snapshot counts of the sampling campaign and
``site`` selects where the stages run (``local`` on a laptop; a site of
``jobs/sites`` on a cluster) -- the same file runs the laptop demo and the
production campaign.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

from hpcnnp.config.base import validate_document
from hpcnnp.config.project import DEFAULT_ELEMENTS, ProjectFile
from hpcnnp.config.yamlfile import YamlDocument, read_yaml
from hpcnnp.sampling.tasks import campaign_from_document

__all__ = ["Project", "load_project", "SCHEMA", "DEFAULTS"]

#: the typed model of the project file
SCHEMA = ProjectFile

#: values of the keys a project may leave out, as the stages read them
DEFAULTS = {
    "workdir": "run", "site": "local", "ranks": None, "scale": 1.0, "seed": 12345,
    "elements": DEFAULT_ELEMENTS, "descriptors": {"preset": "llzo-lco"},
    "network": {"hidden": [20, 20], "activation": "t t l"}, "training": {},
    "validation": {"properties": ["errors"]}, "active": {"iterations": 1},
    "production": {}, "analysis": {"segregation": "Co", "li_density": True},
}


@dataclass
class Project:
    """A validated project file.

    Attributes
    ----------
    path : Path
    data : dict
        The keys as written, defaults filled in (``project["campaign"]``).
    config : ProjectFile
        The validated, typed model (``project.config.production.gb.sigma``).
    """

    path: Path
    data: dict
    config: ProjectFile = None

    def __getitem__(self, key):
        return self.data[key]

    def get(self, key, default=None):
        return self.data.get(key, default)

    @property
    def workdir(self) -> Path:
        return (self.path.parent / self.data["workdir"]).resolve()

    # -- the inputs of the stages, built here so that --check and the stages agree ----

    def campaign_data(self):
        """The ``hpcnnp sample`` campaign of the sampling stage (a dict)."""
        camp = copy.deepcopy(self.data["campaign"])
        camp.setdefault("name", self.data["name"])
        camp["output"] = "dataset.h5"
        camp["workdir"] = "campaign.work"
        camp.setdefault("site", self.data["site"])
        camp["labeler"] = self.data["labeler"]
        camp["scale"] = self.data["scale"] * camp.get("scale", 1.0)
        camp.setdefault("seed", self.data["seed"])
        return camp

    def active_data(self, data, settings):
        """The ``hpcnnp active`` file of the active-learning stage (a dict; paths of
        the project resolved against its folder) and the number of iterations."""
        cfg = copy.deepcopy(self.data["active"])
        iterations = cfg.pop("iterations", 1)
        checked = self.config.active
        if checked is not None:
            cfg["exploration"]["structures"] = copy.deepcopy(checked.exploration.structures)
            for key in ("data", "input_nn"):
                if getattr(checked, key) is not None:
                    cfg[key] = getattr(checked, key)
            if checked.labeler is not None:
                cfg["labeler"] = {"name": checked.labeler.name, "options": checked.labeler.options,
                                  "batch": checked.labeler.batch,
                                  "max_force": checked.labeler.max_force}
        cfg.setdefault("data", str(data))
        if "input_nn" not in cfg and "settings" not in cfg:
            cfg["settings"] = str(settings)
        cfg.setdefault("labeler", self.data["labeler"])
        if "site" not in cfg and "site" not in cfg.get("parallel", {}):
            cfg["site"] = self.data["site"]
        return cfg, iterations

    def sampling_tasks(self):
        """The tasks of the sampling stage's campaign, planned by the code of
        ``hpcnnp sample`` (which also checks the campaign as that command will)."""
        doc = YamlDocument(path=f"{self.path}: campaign", text="", data=self.campaign_data())
        return campaign_from_document(doc, context={"base_dir": self.path.parent}).tasks()

    def md_protocol(self, name, structure, potential):
        """The ``hpcnnp md`` protocol (a dict) of production run *name*
        (``interface`` or ``gb``)."""
        md = getattr(self.config.production, name)
        return md.protocol(structure, potential, self.data["seed"])

    def input_nn_text(self):
        """The input.nn the descriptors stage writes before the SFs are appended."""
        lines = [f"# input.nn written by hpcnnp run for project '{self.data['name']}'"]
        lines += [f"{k} {v}".rstrip() for k, v in self.config.input_nn_keywords()]
        return "\n".join(lines) + "\n"


def load_project(path):
    """Read and check a project file.

    Raises
    ------
    InputFileError
        Every problem, one line each with file, line and the full key path
        (``training.epochs``, ``production.gb.dopant.site``, ...).
    """
    path = Path(path)
    doc = read_yaml(path, "project file")
    model = validate_document(ProjectFile, doc, {"base_dir": path.resolve().parent})
    data = {key: copy.deepcopy(doc.data.get(key, default)) for key, default in
            {**DEFAULTS, "name": None, "labeler": None, "campaign": None}.items()}
    data["labeler"] = model.labeler.as_dict()
    data["elements"] = list(model.elements)
    return Project(path.resolve(), data, model)
