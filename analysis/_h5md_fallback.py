"""Stop-gap H5MD 1.1 reader and writer until :mod:`hpcnnp.io.h5md` exists.

Only what the analyses, their tests and the analysis benchmark need.  The reader has
the API of ``hpcnnp.io.h5md.H5MDTrajectory`` (``n_frames``, ``n_atoms``,
``species``, ``masses``, ``metadata``, ``steps``, ``times``, ``fields``, ``frame``,
``iter_chunks``, ``unwrapped``); :func:`hpcnnp.analysis.trajectory.open_h5md` uses
the real one as soon as it can be imported.  Remove this module then (and let the
tests write their files with the real writer).

Layout (H5MD 1.1)::

    /h5md                       version = [1, 1], author, creator
    /particles/all/position/{step,time,value}    value (n_frames, N, 3) Å
    /particles/all/image/{step,time,value}       int (n_frames, N, 3)
    /particles/all/velocity/{step,time,value}    Å/fs (optional)
    /particles/all/species/{step,time,value}     atomic numbers, value (1, N)
    /particles/all/mass/{step,time,value}        amu, value (1, N)
    /particles/all/box                           dimension = 3, boundary = periodic x3
    /particles/all/box/edges/{step,time,value}   (n_frames, 3, 3) edge vectors as rows
    /parameters                                  attribute "hpcnnp" = JSON (atoms.info)
"""

from __future__ import annotations

import json

import numpy as np

__all__ = ["H5MDTrajectory", "write_h5md"]


def _json_default(o):
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, np.generic):
        return o.item()
    return str(o)


def write_h5md(path, positions, box, species, *, image=None, velocities=None,
               times=None, steps=None, masses=None, metadata=None, dt=1.0,
               compression=None):
    """Write a trajectory in the H5MD 1.1 layout above (overwrites ``path``).

    Parameters
    ----------
    positions : (n_frames, N, 3) Å
    box : (3, 3) or (n_frames, 3, 3) Å, edge vectors as rows
    species : sequence of str (N,)
    image : int (n_frames, N, 3), optional
    velocities : (n_frames, N, 3) Å/fs, optional
    times : (n_frames,) fs, optional (default ``steps * dt``)
    steps : (n_frames,) int, optional (default 0, 1, ...)
    masses : (N,) amu, optional (default: ASE's masses)
    metadata : dict, optional
        Stored as JSON in the attribute ``/parameters/hpcnnp``.
    """
    import h5py
    from ase.data import atomic_masses, atomic_numbers

    positions = np.asarray(positions, dtype=np.float64)
    nf, n = positions.shape[:2]
    box = np.asarray(box, dtype=np.float64)
    if box.shape == (3, 3):
        box = np.broadcast_to(box, (nf, 3, 3))
    steps = np.arange(nf, dtype=np.int64) if steps is None else np.asarray(steps)
    times = steps * float(dt) if times is None else np.asarray(times, dtype=np.float64)
    z = np.array([atomic_numbers[s] for s in species], dtype=np.int32)
    if masses is None:
        masses = atomic_masses[z]
    with h5py.File(path, "w") as f:
        h = f.create_group("h5md")
        h.attrs["version"] = np.array([1, 1])
        h.create_group("author").attrs["name"] = "hpcnnp"
        c = h.create_group("creator")
        c.attrs["name"] = "hpcnnp.analysis"
        c.attrs["version"] = "0.1"
        g = f.create_group("particles/all")
        b = g.create_group("box")
        b.attrs["dimension"] = 3
        b.attrs["boundary"] = np.array([b"periodic"] * 3)

        def series(group, value, unit=None, chunks=None, frames=True):
            s = g.create_group(group)
            s.create_dataset("step", data=steps if frames else steps[:1])
            t = s.create_dataset("time", data=times if frames else times[:1])
            t.attrs["unit"] = "fs"
            v = s.create_dataset("value", data=value, chunks=chunks,
                                 compression=compression)
            if unit:
                v.attrs["unit"] = unit
            return s

        series("box/edges", box, "Angstrom")
        series("position", positions, "Angstrom", chunks=(1, n, 3))
        if image is not None:
            series("image", np.asarray(image, dtype=np.int32), chunks=(1, n, 3))
        if velocities is not None:
            series("velocity", np.asarray(velocities, dtype=np.float64), "Angstrom fs-1",
                   chunks=(1, n, 3))
        series("species", z[None], frames=False)
        series("mass", np.asarray(masses, dtype=np.float64)[None], frames=False)
        p = f.create_group("parameters")
        p.attrs["hpcnnp"] = json.dumps(metadata or {}, default=_json_default)
    return path


class H5MDTrajectory:
    """Read-only H5MD trajectory (minimal stand-in for ``hpcnnp.io.h5md``)."""

    def __init__(self, path):
        import h5py
        from ase.data import chemical_symbols

        self.path = str(path)
        try:
            self._file = h5py.File(self.path, "r")
        except OSError as exc:
            from .trajectory import TrajectoryError
            raise TrajectoryError(f"{self.path}: not an HDF5 file ({exc})") from None
        f = self._file
        if "particles" not in f or not len(f["particles"]):
            from .trajectory import TrajectoryError
            raise TrajectoryError(f"{self.path}: no /particles group (not H5MD)")
        self._g = g = f["particles"]["all" if "all" in f["particles"]
                                     else list(f["particles"])[0]]
        pos = g["position/value"]
        self.n_frames, self.n_atoms = pos.shape[:2]
        self.fields = tuple(k for k in ("position", "image", "velocity", "force")
                            if k in g)
        self.steps = np.asarray(g["position/step"][()], dtype=np.int64)
        t = g["position/time"]
        self.times = np.asarray(t[()], dtype=np.float64)
        unit = t.attrs.get("unit", "fs")
        unit = unit.decode() if isinstance(unit, bytes) else str(unit)
        self.times = self.times * {"fs": 1.0, "ps": 1e3, "ns": 1e6}.get(unit, 1.0)
        sp = self._fixed("species")
        if sp is None:
            raise ValueError(f"{self.path}: no /particles/all/species")
        if sp.dtype.kind in "iu":
            self.species = [chemical_symbols[int(z)] for z in sp]
        else:
            self.species = [s.decode() if isinstance(s, bytes) else str(s) for s in sp]
        m = self._fixed("mass")
        self.masses = None if m is None else np.asarray(m, dtype=np.float64)
        meta = f["parameters"].attrs.get("hpcnnp") if "parameters" in f else None
        if isinstance(meta, bytes):
            meta = meta.decode()
        self.metadata = json.loads(meta) if meta else {}

    def _fixed(self, name):
        if name not in self._g:
            return None
        obj = self._g[name]
        if hasattr(obj, "keys"):
            v = obj["value"][()]
            return v[0] if v.ndim == 2 else v
        return obj[()]

    def _box(self, sel):
        e = self._g["box/edges"]
        if hasattr(e, "keys"):
            v = e["value"]
            b = v[sel] if v.shape[0] == self.n_frames else np.broadcast_to(
                v[0], (len(np.arange(self.n_frames)[sel]),) + v.shape[1:])
        else:
            b = np.broadcast_to(e[()], (len(np.arange(self.n_frames)[sel]),) + e.shape)
        b = np.asarray(b, dtype=np.float64)
        if b.ndim == 2:
            b = np.stack([np.diag(x) for x in b])
        return b

    def iter_chunks(self, start=0, stop=None, step=1, chunk=64,
                    fields=("position", "image")):
        frames = np.arange(self.n_frames)[slice(start, stop, step)]
        step = step or 1
        for lo in range(0, len(frames), chunk):
            idx = frames[lo:lo + chunk]
            sel = slice(int(idx[0]), int(idx[-1]) + 1, step)
            out = {"box": self._box(sel)}
            for name in fields:
                out[name] = self._g[name]["value"][sel]
            yield idx, out

    def frame(self, i):
        i = int(i)
        out = {"box": self._box(slice(i, i + 1))[0], "step": int(self.steps[i]),
               "time": float(self.times[i])}
        for name in self.fields:
            out[name] = self._g[name]["value"][i]
        return out

    def unwrapped(self, start=0, stop=None, step=1):
        out = []
        for _, d in self.iter_chunks(start, stop, step, fields=("position", "image")):
            out.append(d["position"] + np.einsum("fnk,fkj->fnj", d["image"], d["box"]))
        return np.concatenate(out)

    def close(self):
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
