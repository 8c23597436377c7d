"""Fixtures of the analysis tests: small synthetic trajectories, in memory and as H5MD.

H5MD files are written with :class:`hpcnnp.io.h5md.H5MDWriter` (H5MD 1.1: wrapped
positions + image flags, box edges as 3x3 vectors, times in ps, velocities in Å/ps,
metadata JSON in /parameters/hpcnnp).
"""


import numpy as np
import pytest
from _trajectories import GB_METADATA, random_walk_trajectory, write_h5md  # noqa: F401


@pytest.fixture(scope="session")
def walk_data():
    return random_walk_trajectory(np.random.default_rng(42))


@pytest.fixture(scope="session")
def walk_h5(tmp_path_factory, walk_data):
    """H5MD file of :func:`random_walk_trajectory` with GB planes in the metadata."""
    path = tmp_path_factory.mktemp("h5md") / "walk.h5"
    d = walk_data
    write_h5md(path, d["positions"], d["box"], d["species"], image=d["image"],
               velocities=d["velocities"], dt=d["dt"], metadata=GB_METADATA)
    return path


@pytest.fixture(scope="session")
def walk_h5_nometa(tmp_path_factory, walk_data):
    path = tmp_path_factory.mktemp("h5md") / "walk_nometa.h5"
    d = walk_data
    write_h5md(path, d["positions"], d["box"], d["species"], image=d["image"], dt=d["dt"])
    return path
