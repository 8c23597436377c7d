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
import shlex

import numpy
from Cython.Build import cythonize
from setuptools import Extension, find_packages, setup

cflags = ["-O3", "-std=c99", "-fopenmp-simd", "-fno-math-errno", "-fno-trapping-math"]
march = os.environ.get("HPCNNP_MARCH", "native").strip()
if march and march.lower() != "none":
    cflags.append(f"-march={march}")
cflags += shlex.split(os.environ.get("HPCNNP_CFLAGS", ""))

extensions = [
    Extension(
        "hpcnnp._core",
        sources=["cython_kernels/_core.pyx", "cython_kernels/hdnnp_core.c"],
        include_dirs=[numpy.get_include(), "cython_kernels"],
        extra_compile_args=cflags,
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    )
]

packages = find_packages(include=["hpcnnp", "hpcnnp.*"]) + ["hpcnnp.analysis"]

setup(
    packages=packages,
    package_dir={"hpcnnp.analysis": "analysis"},
    ext_modules=cythonize(extensions, language_level=3,
                          compiler_directives={"boundscheck": False, "wraparound": False}),
)
