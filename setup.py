"""The C half of target-flx's binary COPY encoder (target_flx/_copybin.c); everything else is in
pyproject.toml. Optional: without a C compiler the package installs and encodes in Python (slower)."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "target_flx._copybin",
            ["target_flx/_copybin.c"],
            extra_compile_args=["-O2", "-std=c11", "-Wall", "-Wextra", "-Wno-missing-field-initializers"],
            optional=True,
        )
    ]
)
