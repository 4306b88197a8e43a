"""The one compiled part of babysit; everything else is in pyproject.toml.

`babysit.watch._kernels` takes the monitor's update:weight ratios in one pass over the
weights after each optimizer step (see the C file for why). It is optional: where it cannot
be compiled, babysit computes the same numbers with NumPy, only slower.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension(
    "babysit.watch._kernels",
    sources=["src/babysit/watch/_kernels.c"],
    # reassociating the float sums lets the compiler vectorize them (NaN still propagates)
    extra_compile_args=["-fno-math-errno", "-fassociative-math", "-fno-signed-zeros", "-fno-trapping-math"],
    optional=True,
)])
