"""Build of hpcnnp: the C core + Cython extension and the Python package.

``pip install .`` compiles ``cython_kernels/hdnnp_core.c`` (plain C, shared
with the LAMMPS plugin) and its Cython wrapper into ``hpcnnp._core``.
The kernels are written to vectorise; the instruction set is chosen with
``HPCNNP_MARCH`` (default ``native``: build on the kind of node that runs the
code; use e.g. ``HPCNNP_MARCH=x86-64-v3`` for a build shared by AVX2 nodes,
``HPCNNP_MARCH=none`` for a generic build, about 2x slower).  Further flags:
``HPCNNP_CFLAGS``.
"""

import os
import re
import shlex

import numpy
from Cython.Build import cythonize
import shutil
from pathlib import Path

from setuptools import Extension, find_packages, setup
from setuptools.command.build_py import build_py

#: C/C++ sources shipped with the package so that the LAMMPS plugin can be
#: compiled on the target machine (hpcnnp.lammps_plugin_path()).
PLUGIN_SOURCES = ["hdnnp_core.c", "hdnnp_core.h", "hdnnp_internal.h", "hdnnp_sfx.c",
                  "hdnnp_n2p2.c", "pair_hpcnnp.cpp"]


class BuildPyWithSources(build_py):
    """Copy the C core and the plugin source into hpcnnp/_csrc of the build."""

    def run(self):
        super().run()
        dest = Path(self.build_lib) / "hpcnnp" / "_csrc"
        dest.mkdir(parents=True, exist_ok=True)
        for name in PLUGIN_SOURCES:
            shutil.copy2(Path("cython_kernels") / name, dest / name)
        # site definitions and job templates (hpcnnp.hpc.sites.jobs_dir())
        jobs = Path(self.build_lib) / "hpcnnp" / "_jobs"
        if jobs.exists():
            shutil.rmtree(jobs)
        shutil.copytree("jobs", jobs)

cflags = ["-O3", "-std=c99", "-fopenmp-simd", "-fno-math-errno", "-fno-trapping-math"]
march = os.environ.get("HPCNNP_MARCH", "native").strip()
if march and march.lower() != "none":
    cflags.append(f"-march={march}")
cflags += shlex.split(os.environ.get("HPCNNP_CFLAGS", ""))

extensions = [
    Extension(
        "hpcnnp._core",
        sources=["cython_kernels/_core.pyx", "cython_kernels/hdnnp_core.c",
                 "cython_kernels/hdnnp_sfx.c", "cython_kernels/hdnnp_n2p2.c",
                 "cython_kernels/kalman_product.c"],
        depends=["cython_kernels/hdnnp_core.h", "cython_kernels/hdnnp_internal.h"],
        include_dirs=[numpy.get_include(), "cython_kernels"],
        extra_compile_args=cflags,
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    )
]

packages = find_packages(include=["hpcnnp", "hpcnnp.*"]) + ["hpcnnp.analysis"]


def _version():
    """``hpcnnp.__version__``, the one place the version is written (read as text:
    the build does not import the package it builds)."""
    text = Path("hpcnnp", "__init__.py").read_text(encoding="utf-8")
    return re.search(r'^__version__ = "([^"]+)"$', text, re.MULTILINE).group(1)


setup(
    version=_version(),
    cmdclass={"build_py": BuildPyWithSources},
    packages=packages,
    package_dir={"hpcnnp.analysis": "analysis"},
    ext_modules=cythonize(extensions, language_level=3,
                          compiler_directives={"boundscheck": False, "wraparound": False}),
)
