#!/bin/sh
# tests/fuzz/run.sh BUILD SECONDS TARGET...: run each libFuzzer target for
# SECONDS on its corpus (BUILD/corpus/TARGET, seeded by seeds.sh), one line of
# figures each; exits non-zero on the first crash, leak or sanitizer report
# (the reproducer stays in BUILD/crash-TARGET-*).  Run from the repository root.
set -u
b=$1
secs=$2
shift 2
fail=0
for t in "$@"; do
    c="$b/corpus/$t"
    sh tests/fuzz/seeds.sh "$t" "$c"
    log="$b/fuzz-$t.log"
    "$b/fuzz/fuzz_$t" -max_total_time="$secs" -max_len=65536 -rss_limit_mb=4096 -timeout=20 \
        -artifact_prefix="$b/crash-$t-" -print_final_stats=1 "$c" > "$log" 2>&1
    rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
    echo "fuzz $t: ${secs}s, ${runs:-?} execs (${speed:-?}/s), $cov, corpus $(ls "$c" | wc -l) files, exit $rc"
    if [ $rc -ne 0 ]; then
        fail=1
        grep -E 'ERROR|SUMMARY|Test unit written' "$log" | head -5
    fi
done
exit $fail
