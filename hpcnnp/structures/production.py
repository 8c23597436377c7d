"""The production cells of the main job: an LLZO(001)|LCO(104) interface and a
symmetric Σ-tilt grain boundary of cubic LLZO (the Σ table is
:data:`hpcnnp.structures.grain_boundary.SIGMA_TILTS`)."""

from __future__ import annotations

from .crystals import LLZO_CUBIC_SITES, lco, llzo_cubic
from .grain_boundary import SIGMA_TILTS, grain_boundary
from .surfaces import interface

__all__ = ["llzo_lco_interface", "llzo_tilt_gb", "LLZO_ELEMENTS", "LCO_ELEMENTS",
           "HOST_ELEMENTS"]

#: elements of cubic LLZO (its Wyckoff table) and of LiCoO2 (Li 3a, Co 3b, O 6c)
LLZO_ELEMENTS = tuple(sorted({site.split("_")[0] for site in LLZO_CUBIC_SITES}))
LCO_ELEMENTS = ("Co", "Li", "O")


def llzo_lco_interface(natoms=900):
    """LLZO(001)|LCO(104) interface cell of about *natoms* atoms (two interfaces)."""
    return interface(llzo_cubic(), (0, 0, 1), lco(), (1, 0, 4), natoms=natoms)


def llzo_tilt_gb(sigma=13, natoms=700):
    """Symmetric Σ-tilt bicrystal of cubic LLZO (Σ of :data:`SIGMA_TILTS`), about
    *natoms* atoms."""
    if sigma not in SIGMA_TILTS:
        raise ValueError(f"sigma must be one of {sorted(SIGMA_TILTS)}, got {sigma!r}")
    axis, plane = SIGMA_TILTS[sigma]
    return grain_boundary(llzo_cubic(), axis=axis, plane=plane, natoms=natoms)


#: builder -> elements of the cell it builds (checked against a potential's elements)
HOST_ELEMENTS = {"llzo_lco_interface": tuple(sorted(set(LLZO_ELEMENTS) | set(LCO_ELEMENTS))),
                 "llzo_tilt_gb": LLZO_ELEMENTS}
