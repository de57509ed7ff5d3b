#!/bin/sh
# tools/setup.sh: what the tests need beyond gcc, make, python3 and pip, checked
# before anything is compiled (the Makefile runs it first for `make test`).
# What is missing is installed when it can be: system packages with apt-get when
# run as root, the Python oracles into the project's own virtual environment
# (.venv, never the user's site-packages).  Otherwise it stops at once and
# prints the exact command to run.
#
#   sh tools/setup.sh [test]       system packages, then .venv with tools/requirements/test.txt
#   sh tools/setup.sh venv GROUP   only .venv with tools/requirements/GROUP.txt
#                                  (test, golden: llama-cpp-python, hf-real: torch)
# SLIM_VENV=DIR uses another directory for the environment; SLIM_SETUP=0 skips it all.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV=${SLIM_VENV:-$ROOT/.venv}
case "$VENV" in /*) ;; *) VENV="$PWD/$VENV" ;; esac
mode=${1:-test}
group=${2:-test}

say() { echo "setup: $*" >&2; }

[ "${SLIM_SETUP:-1}" != 0 ] || exit 0

# Debian packages: each with the check that says it is there.
have_pkg() {
    case "$1" in
    # A C compiler that finds libc's headers (gcc without libc6-dev does not).
    build-essential)
        command -v make >/dev/null 2>&1 &&
            printf '#include <stdio.h>\nint main(void) { return 0; }\n' |
            "${CC:-cc}" -x c - -o /dev/null >/dev/null 2>&1
        ;;
    pkg-config) command -v pkg-config >/dev/null 2>&1 ;;
    # make test's interface checks (tools/check/): libabigail's abidw/abidiff, clang-format.
    abigail-tools) command -v abidiff >/dev/null 2>&1 ;;
    clang-format) command -v clang-format >/dev/null 2>&1 ;;
    check) command -v pkg-config >/dev/null 2>&1 && pkg-config --exists check ;;
    # Debian's python3 has no venv/ensurepip without python3-venv; elsewhere
    # both come with Python.  An existing environment needs neither.
    python3-venv)
        [ -x "$VENV/bin/python" ] && return 0
        if command -v dpkg-query >/dev/null 2>&1 && dpkg-query -W -f='${Status}' python3 2>/dev/null | grep -q 'ok installed' &&
            [ "$(command -v python3)" = /usr/bin/python3 ]; then
            dpkg-query -W -f='${Status}' python3-venv 2>/dev/null | grep -q 'ok installed'
        else
            python3 -c 'import venv, ensurepip' >/dev/null 2>&1
        fi
        ;;
    *) return 1 ;;
    esac
}

apt_install() { # packages...
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        say "installing $* (apt-get)"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq && apt-get install -y -qq --no-install-recommends "$@" >&2 && return 0
        say "apt-get failed"
    fi
    if command -v apt-get >/dev/null 2>&1; then
        say "missing: $*.  Run:"
        echo "    sudo apt-get install $*" >&2
    else
        say "missing: $* (Debian package names; install your distribution's equivalents:"
        say "Check and pkg-config for the unit tests, Python's venv module for the test oracles)"
    fi
    say "then run make test again (docs/DEPENDENCIES.md says what needs what)"
    exit 1
}

system() {
    command -v python3 >/dev/null 2>&1 || { say "python3 is needed (sudo apt-get install python3 python3-venv)"; exit 1; }
    need=""
    for p in build-essential pkg-config check python3-venv abigail-tools clang-format; do
        have_pkg "$p" || need="$need $p"
    done
    # shellcheck disable=SC2086
    [ -z "$need" ] || apt_install $need
}

# .venv with GROUP's requirements; a copy of the file it was built from says
# whether it is up to date, so a second run costs nothing.
venv() {
    req="$ROOT/tools/requirements/$1.txt"
    [ -f "$req" ] || { say "no such requirements group: $1 ($req)"; exit 2; }
    stamp="$VENV/.slim-$1.txt"
    base="$ROOT/tools/requirements/test.txt"
    if [ -f "$stamp" ] && [ -x "$VENV/bin/python" ] && cat "$base" "$req" | cmp -s - "$stamp"; then
        touch "$stamp"
        return 0
    fi
    if [ ! -x "$VENV/bin/python" ]; then
        have_pkg python3-venv || apt_install python3-venv
        say "creating $VENV"
        python3 -m venv "$VENV" >&2 || {
            rm -rf "$VENV"
            say "python3 -m venv failed; on Debian/Ubuntu: sudo apt-get install python3-venv"
            exit 1
        }
    fi
    say "installing the Python test oracles into $VENV ($req)"
    (cd "$ROOT/tools/requirements" &&
        "$VENV/bin/python" -m pip install --disable-pip-version-check -r "$1.txt" >&2) || {
        say "pip install failed (network?); rerun: $VENV/bin/python -m pip install -r $req"
        exit 1
    }
    cat "$base" "$req" > "$stamp"
}

case "$mode" in
test) system && venv test ;;
venv) venv "$group" ;;
*) say "usage: sh tools/setup.sh [test | venv GROUP]"; exit 2 ;;
esac
