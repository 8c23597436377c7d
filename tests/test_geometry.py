"""Periodic-cell geometry: perpendicular widths (one home for every stage)."""

import re
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

from hpcnnp.geometry import perpendicular_widths


def test_orthorhombic_and_triclinic():
    np.testing.assert_allclose(perpendicular_widths(np.diag([3.0, 4.0, 5.0])), [3, 4, 5])
    rng = np.random.default_rng(3)
    for _ in range(20):
        cell = rng.normal(size=(3, 3)) + 4 * np.eye(3)
        # the distance between the planes of a family is 1/|b_i|, b the reciprocal rows
        recip = np.linalg.inv(cell).T
        np.testing.assert_allclose(perpendicular_widths(cell),
                                   1.0 / np.linalg.norm(recip, axis=1), rtol=1e-12)
        # independent of the handedness and of which vector comes first
        np.testing.assert_allclose(perpendicular_widths(cell[[1, 0, 2]]),
                                   perpendicular_widths(cell)[[1, 0, 2]], rtol=1e-12)


def test_hexagonal_cell_and_stacks():
    a, c = 2.8156, 14.0542                      # LiCoO2, hexagonal axes
    atoms = Atoms(cell=[[a, 0, 0], [-a / 2, a * np.sqrt(3) / 2, 0], [0, 0, c]], pbc=True)
    w = perpendicular_widths(atoms.cell)        # an ase.Cell works too
    np.testing.assert_allclose(w, [a * np.sqrt(3) / 2, a * np.sqrt(3) / 2, c], rtol=1e-12)
    fcc = bulk("Cu", "fcc", a=3.6).cell         # primitive fcc: widths a/sqrt(3)
    np.testing.assert_allclose(perpendicular_widths(fcc), 3.6 / np.sqrt(3), rtol=1e-12)
    stack = np.stack([np.diag([1.0, 2.0, 3.0]), np.array(fcc)])
    out = perpendicular_widths(stack)
    assert out.shape == (2, 3)
    np.testing.assert_allclose(out[1], perpendicular_widths(fcc))


def test_minimum_image_radius():
    """Half the smallest width is the largest sphere that does not see its image."""
    cell = np.array([[5.0, 0, 0], [4.5, 2.0, 0], [0, 0, 9.0]])    # strongly sheared
    half = 0.5 * perpendicular_widths(cell).min()
    shifts = np.array([(i, j, k) for i in range(-3, 4) for j in range(-3, 4)
                       for k in range(-3, 4) if (i, j, k) != (0, 0, 0)])
    nearest = np.linalg.norm(shifts @ cell, axis=1).min()
    assert nearest >= 2 * half - 1e-12


def test_one_definition_in_the_package():
    root = Path(__file__).resolve().parents[1]
    pattern = re.compile(r"def _?(perp\w*_widths|widths)\(|np\.cross\(\w+\[\(\w \+ 1\) % 3\]")
    hits = [f"{p.relative_to(root)}" for folder in ("hpcnnp", "analysis")
            for p in (root / folder).rglob("*.py")
            if p.name != "geometry.py" and pattern.search(p.read_text())]
    assert hits == []
    with pytest.raises(ValueError, match="3x3"):
        perpendicular_widths(np.zeros((3, 2)))
