"""setuptools glue: build libslim with the project's Makefile, then the cffi
extension over it (slim/_ffi_build.py says where the library comes from)."""

import importlib.util
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent


def _ffi_build():
    spec = importlib.util.spec_from_file_location("_slim_ffi_build", HERE / "slim" / "_ffi_build.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class BuildExt(build_ext):
    """build_ext that first runs `make lib` in the slim checkout."""

    def run(self):
        fb = _ffi_build()
        fb.make_lib(fb.CONFIG)
        super().run()


setup(cmdclass={"build_ext": BuildExt}, cffi_modules=["slim/_ffi_build.py:ffibuilder"])
