"""Synthetic trajectories for the analysis tests (kept out of conftest.py so that the
engine tests' conftest is not shadowed)."""

import numpy as np
from ase import Atoms

from hpcnnp.io.h5md import H5MDWriter


def write_h5md(path, positions, box, species, *, image=None, velocities=None, dt=1.0,
               metadata=None):
    """Write frames (positions Å, velocities Å/fs, dt fs) as an hpcnnp H5MD file."""
    positions = np.asarray(positions)
    nf = len(positions)
    box = np.asarray(box, float)
    boxes = np.broadcast_to(box, (nf, 3, 3)) if box.shape == (3, 3) else box
    atoms = Atoms(list(species), positions=positions[0], cell=boxes[0], pbc=True)
    atoms.info.update(metadata or {})
    fields = ["position"] + (["image"] if image is not None else []) + \
        (["velocity"] if velocities is not None else [])
    with H5MDWriter(path, atoms, fields=fields) as w:
        for k in range(nf):
            w.write_frame(k, k * dt / 1000.0, positions[k], boxes[k],
                          image=None if image is None else image[k],
                          velocity=None if velocities is None else velocities[k] * 1000.0)
    return path


def random_walk_trajectory(rng, n_atoms=240, n_frames=60, box=None, sigma=0.15,
                           species=None, dt=10.0):
    """Random walk of a random cell: wrapped positions + image flags (+ velocities).

    Returns a dict of arrays for :func:`write_h5md` / ArrayTrajectory.
    """
    if box is None:
        box = np.diag([14.0, 14.5, 24.0])
    box = np.asarray(box, float)
    if species is None:
        base = ["Li", "La", "Zr", "O", "O", "Co"]
        species = [base[k % len(base)] for k in range(n_atoms)]
        rng.shuffle(species)
    x0 = rng.random((n_atoms, 3)) @ box
    steps = rng.normal(0.0, sigma, (n_frames, n_atoms, 3))
    steps[0] = 0.0
    unwrapped = x0 + np.cumsum(steps, axis=0)
    s = unwrapped @ np.linalg.inv(box)
    image = np.floor(s).astype(np.int64)
    wrapped = (s - image) @ box
    vel = np.gradient(unwrapped, dt, axis=0)
    return dict(positions=wrapped, box=box, species=list(species), image=image,
                velocities=vel, dt=dt, unwrapped=unwrapped)


GB_METADATA = {
    "structure_class": "GB test bicrystal",
    "sigma": 5,
    "planes": [{"normal": [0.0, 0.0, 1.0], "position": 6.0, "kind": "mirror"},
               {"normal": [0.0, 0.0, 1.0], "position": 18.0, "kind": "mirror"}],
}
