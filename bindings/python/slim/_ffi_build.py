"""Build the cffi extension slim._slim_cffi from include/slim.h.

Run by setuptools through ``cffi_modules`` (setup.py).  Where libslim comes
from, in this order:

1. ``SLIM_LIBRARY``: a path to libslim.a or libslim.so[.N] to link; the header
   from ``SLIM_INCLUDE_DIR``, else ``<dir of the library>/../include``, else the
   source tree's or pkg-config's.
2. The source tree this package sits in (bindings/python of a slim checkout,
   or ``SLIM_SOURCE_DIR``): setup.py runs ``make lib`` there and the extension
   links build/libslim.a statically, so the installed package needs no
   libslim.so at run time.
3. ``pkg-config slim`` (after ``make install``).

The declarations come from the header itself (slim/_cdef.py): no copy of the
structs is kept here, and cffi's API mode compiles a C file that includes
slim.h, so the compiler and cffi's layout checks catch any disagreement.
"""

from __future__ import annotations

import importlib.util
import os
import shlex
import subprocess
from pathlib import Path
from typing import Any

import cffi

HERE = Path(__file__).resolve().parent  # .../bindings/python/slim

# Callbacks into Python (cffi "extern Python": they take the GIL themselves).
CALLBACKS = """
extern "Python" void _slim_py_log(slim_log_level, const char *, void *);
extern "Python" void _slim_py_progress(float, void *);
"""

# The engine's event queue (slim/_engine_queue.c, compiled into the
# extension): its own names, slimpy_*, beside the header's.
ENGINE_QUEUE_CDEF = """
typedef struct slimpy_queue slimpy_queue;
typedef struct slimpy_node {
    struct slimpy_node *next;
    uint64_t key;
    slimpy_queue *queue;
    int32_t lost;
    slim_event ev;
} slimpy_node;
slimpy_queue *slimpy_queue_new(void);
void slimpy_queue_free(slimpy_queue *q);
slimpy_node *slimpy_request_new(slimpy_queue *q, uint64_t key);
void slimpy_node_free(slimpy_node *n);
void slimpy_list_free(slimpy_node *n);
int slimpy_on_event(const slim_event *ev, void *user);
slimpy_node *slimpy_queue_wait(slimpy_queue *q, int32_t timeout_ms);
void slimpy_queue_wake(slimpy_queue *q);
"""


def _load_cdef_module() -> Any:
    spec = importlib.util.spec_from_file_location("_slim_cdef", HERE / "_cdef.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def source_root() -> Path | None:
    """The slim checkout holding this package (or SLIM_SOURCE_DIR), if any."""
    env = os.environ.get("SLIM_SOURCE_DIR")
    cands = [Path(env)] if env else [HERE.parent.parent.parent]
    for c in cands:
        if (c / "include" / "slim.h").is_file() and (c / "Makefile").is_file():
            return c.resolve()
    if env:
        raise RuntimeError(f"SLIM_SOURCE_DIR={env}: no include/slim.h and Makefile there")
    return None


def _pkg_config(*args: str) -> list[str] | None:
    try:
        out = subprocess.run(
            ["pkg-config", *args, "slim"], check=True, capture_output=True, text=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    return shlex.split(out)


def library_config() -> dict[str, Any]:
    """Where the header and the library are, and how to link (see the docstring)."""
    root = source_root()
    lib = os.environ.get("SLIM_LIBRARY")
    if lib:
        libp = Path(lib).resolve()
        if not libp.is_file():
            raise RuntimeError(f"SLIM_LIBRARY={lib}: no such file")
        inc_env = os.environ.get("SLIM_INCLUDE_DIR")
        incs = [Path(inc_env)] if inc_env else [libp.parent.parent / "include"]
        if root:
            incs.append(root / "include")
        incs += [Path(f[2:]) for f in (_pkg_config("--cflags") or []) if f.startswith("-I")]
        inc = next((d for d in incs if (d / "slim.h").is_file()), None)
        if inc is None:
            raise RuntimeError(f"SLIM_LIBRARY={lib}: slim.h not found; set SLIM_INCLUDE_DIR")
        kw: dict[str, Any] = {"include_dirs": [str(inc)]}
        if libp.suffix == ".a":
            kw.update(extra_objects=[str(libp)], libraries=["m"], extra_link_args=["-pthread"])
        else:
            kw.update(
                extra_objects=[str(libp)],
                runtime_library_dirs=[str(libp.parent)],
                extra_link_args=["-pthread"],
            )
        return {"mode": "library", "header": inc / "slim.h", "root": root, "kwargs": kw}
    if root is not None:
        build = os.environ.get("SLIM_BUILD_DIR", "build")
        kw = {
            "include_dirs": [str(root / "include")],
            "extra_objects": [str(root / build / "libslim.a")],
            "libraries": ["m"],
            "extra_link_args": ["-pthread"],
        }
        return {"mode": "tree", "header": root / "include" / "slim.h", "root": root, "kwargs": kw}
    cflags, libs = _pkg_config("--cflags"), _pkg_config("--libs")
    if cflags is not None and libs is not None:
        dirs = [f[2:] for f in cflags if f.startswith("-I")] + ["/usr/local/include", "/usr/include"]
        inc = next((Path(d) for d in dirs if (Path(d) / "slim.h").is_file()), None)
        if inc is None:
            raise RuntimeError("pkg-config slim: slim.h not found in its include directories")
        libdirs = [f[2:] for f in libs if f.startswith("-L")]
        kw = {
            "include_dirs": [str(inc)],
            "library_dirs": libdirs,
            "runtime_library_dirs": libdirs,
            "libraries": [f[2:] for f in libs if f.startswith("-l")] + ["m"],
            "extra_link_args": ["-pthread"],
        }
        return {"mode": "pkg-config", "header": inc / "slim.h", "root": None, "kwargs": kw}
    raise RuntimeError(
        "libslim not found: install from a slim checkout (pip install ./bindings/python), "
        "set SLIM_LIBRARY=/path/to/libslim.a (or .so), or make install so that "
        "pkg-config finds slim"
    )


def make_lib(cfg: dict[str, Any]) -> None:
    """Build libslim with the project's Makefile (tree mode only)."""
    if cfg["mode"] != "tree":
        return
    jobs = os.environ.get("SLIM_MAKE_JOBS", str(min(os.cpu_count() or 1, 8)))
    cmd = ["make", "-C", str(cfg["root"]), f"-j{jobs}", "lib"]
    if os.environ.get("SLIM_BUILD_DIR"):
        cmd.append(f"BUILD={os.environ['SLIM_BUILD_DIR']}")
    cmd += shlex.split(os.environ.get("SLIM_MAKE_ARGS", ""))
    subprocess.run(cmd, check=True)


def make_ffibuilder(cfg: dict[str, Any]) -> cffi.FFI:
    cdef = _load_cdef_module()
    header = Path(cfg["header"]).read_text(encoding="utf-8")
    ffi = cffi.FFI()
    ffi.cdef(cdef.header_to_cdef(header) + CALLBACKS + ENGINE_QUEUE_CDEF)
    queue_c = (HERE / "_engine_queue.c").read_text(encoding="utf-8")
    ffi.set_source("slim._slim_cffi", '#include "slim.h"\n' + queue_c, **cfg["kwargs"])
    return ffi


CONFIG = library_config()
ffibuilder = make_ffibuilder(CONFIG)

def build_inplace(tmpdir: Path) -> Path:
    """Compile the extension into slim/ itself (no install; what `make
    test-python` runs, with PYTHONPATH=bindings/python).  The library must be
    built already."""
    import shutil

    so = Path(ffibuilder.compile(tmpdir=str(tmpdir)))
    dest = HERE / so.name
    # A new file renamed over the old: a process that has the old one loaded
    # keeps its (unlinked) copy instead of seeing it rewritten under it.
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.copyfile(so, tmp)
    os.replace(tmp, dest)
    return dest


if __name__ == "__main__":  # python slim/_ffi_build.py [TMPDIR]: build in place
    import sys

    print(build_inplace(Path(sys.argv[1] if len(sys.argv) > 1 else HERE.parent / "build" / "cffi")))
