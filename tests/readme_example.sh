#!/bin/sh
# tests/readme_example.sh: README.md's C example, as a user would use it, so
# the README cannot rot: the first ```c block is extracted, the library
# installed with `make install PREFIX=<tmp>` (a non-system prefix), the block
# compiled with -Wall -Wextra -Werror through the installed slim.pc with the
# rpath the README shows, then run on MODEL.  Also checks that it reports a
# missing model file with a message and a non-zero exit.
#   sh tests/readme_example.sh MODEL [EXTRA_CFLAGS]      (make test runs it)
set -eu
model=$1
extra=${2:-}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
MAKE=${MAKE:-make}
CC=${CC:-cc}
case "$model" in /*) ;; *) model="$ROOT/$model" ;; esac
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "readme_example: FAIL: $*" >&2; exit 1; }

awk '/^```c$/ { on = 1; next } on && /^```$/ { exit } on { print }' "$ROOT/README.md" > "$tmp/app.c"
[ -s "$tmp/app.c" ] || fail "no \`\`\`c block in README.md"

# Run from make test: the parent's jobserver is not passed to this script's make.
MAKEFLAGS=$(printf '%s\n' "${MAKEFLAGS:-}" | sed -e 's/--jobserver-[a-z]*=[^ ]*//g' -e 's/ -j[0-9]*//g')
export MAKEFLAGS
$MAKE -s -C "$ROOT" install PREFIX="$tmp/prefix" >/dev/null
export PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig"
libdir=$(pkg-config --variable=libdir slim)
# shellcheck disable=SC2046,SC2086
$CC -std=c11 -Wall -Wextra -Werror -O2 $extra "$tmp/app.c" $(pkg-config --cflags --libs slim) \
    -Wl,-rpath,"$libdir" -o "$tmp/app" || fail "the README's C example does not compile warning-free"
# Linked to the installed shared library, not the build tree's.
ldd "$tmp/app" | grep -q "libslim.so.0 => $libdir/" || fail "app does not load $libdir/libslim.so.0"

out=$(cd "$tmp" && ./app "$model" "The capital of France is") || fail "app exited non-zero on $model"
[ -n "$out" ] || fail "app printed nothing on $model"
if err=$(cd "$tmp" && ./app "$tmp/no-such-model.gguf" 2>&1); then
    fail "app exited 0 on a missing model"
fi
case "$err" in *no-such-model.gguf*) ;; *) fail "app's error does not name the missing file: $err" ;; esac
echo "readme_example: ok (README's C block: -Wall -Wextra -Werror, installed at a non-system prefix, ran on $model)"
