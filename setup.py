"""The one thing pyproject.toml cannot declare: the optional C fast path
(middlebox/_fastpath.c). ``optional=True``: without a compiler or Python's
headers the install still succeeds and the pure-Python path is used."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("tunnelwall.middlebox._fastpath", ["middlebox/_fastpath.c"], optional=True,
                             extra_compile_args=["-O2"])])
