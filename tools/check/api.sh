#!/bin/sh
# tools/check/api.sh LIB.so: what the public interface promises, checked.
#  1. include/slim.h compiles alone as C99, C11 and C++ (warnings are errors);
#  2. LIB exports only slim_* symbols;
#  3. LIB's ABI against abi/libslim.abi (the baseline of the current release):
#     added functions, enumerators and members appended to a struct versioned by
#     struct_size pass; any other change or a removal fails with abidiff's report,
#     and tools/check/abi_layout.py checks the members abidiff's suppression hides.
# `make abi-baseline` rewrites the baseline (only when a release may break ABI).
set -u
lib=${1:?usage: tools/check/api.sh build/libslim.so.X.Y.Z}
root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
CC=${CC:-cc}
CXX=${CXX:-c++}
fail=0

printf '#include "slim.h"\nint main(void) { return (int)slim_version_number() == 0; }\n' > "$tmp/h.c"
for std in c99 c11; do
    if ! "$CC" -std=$std -pedantic -Wall -Wextra -Werror -I"$root/include" -c "$tmp/h.c" -o "$tmp/h.o"; then
        echo "api: include/slim.h does not compile alone as $std"; fail=1
    fi
done
cp "$tmp/h.c" "$tmp/h.cpp"
if ! "$CXX" -std=c++11 -pedantic -Wall -Wextra -Werror -I"$root/include" -c "$tmp/h.cpp" -o "$tmp/h.o"; then
    echo "api: include/slim.h does not compile alone as C++11"; fail=1
fi

others=$(nm -D --defined-only "$lib" | awk '{print $3}' | grep -v '^slim_' || true)
if [ -n "$others" ]; then
    echo "api: $lib exports symbols outside slim_*:"; echo "$others" | sed 's/^/    /'; fail=1
fi
n=$(nm -D --defined-only "$lib" | wc -l)

if ! command -v abidw >/dev/null 2>&1; then
    echo "api: abidw not found (Debian: abigail-tools; tools/setup.sh installs it)"; exit 1
fi
abidw --headers-dir "$root/include" --no-corpus-path --drop-undefined-syms "$lib" > "$tmp/now.abi" || {
    echo "api: abidw failed on $lib"; exit 1; }
abidiff --no-added-syms --suppressions "$root/abi/suppressions" "$root/abi/libslim.abi" "$tmp/now.abi" > "$tmp/report"
rc=$?
if [ $rc -ne 0 ]; then
    echo "api: the ABI of $lib differs from abi/libslim.abi (abidiff exit $rc):"
    sed 's/^/    /' "$tmp/report"
    fail=1
fi
# abidiff's suppression for appended members hides any change to a struct that has one:
# the members the baseline has must keep their name, offset and type.
if ! python3 "$root/tools/check/abi_layout.py" "$root/abi/libslim.abi" "$tmp/now.abi" > "$tmp/layout"; then
    echo "api: a public struct or enum of $lib changed its layout against abi/libslim.abi:"
    cat "$tmp/layout"
    fail=1
fi
added=$(abidiff --suppressions "$root/abi/suppressions" "$root/abi/libslim.abi" "$tmp/now.abi" | grep -c '^  \[A\]' || true)
[ $fail -eq 0 ] && echo "api: ok (slim.h alone as c99, c11, c++11; $n exports, all slim_*; ABI compatible with abi/libslim.abi, $added functions added; $(tail -n 1 "$tmp/layout"))"
exit $fail
