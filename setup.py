"""Build of hpcnnp: the C core + Cython extension and the Python package.

``pip install .`` compiles ``cython_kernels/hdnnp_core.c`` (plain C, shared
with the LAMMPS plugin) and its Cython wrapper into ``hpcnnp._core``.
Extra compiler flags: environment variable ``HPCNNP_CFLAGS`` (e.g.
``-march=native`` on the compute node that runs the code).
"""

import os
import shlex

import numpy
from Cython.Build import cythonize
from setuptools import Extension, find_packages, setup

cflags = ["-O3", "-std=c99", "-fopenmp-simd", "-fno-math-errno", "-fno-trapping-math"]
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
