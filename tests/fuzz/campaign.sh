#!/bin/sh
# tests/fuzz/campaign.sh BUILD CPU_SECONDS TARGET...: a long campaign, measured in
# CPU time rather than wall time, so it can run niced beside other work: each
# target runs on its corpus (BUILD/corpus/TARGET, kept between campaigns) until
# its process has used CPU_SECONDS of CPU, then gets SIGINT (libFuzzer prints its
# final stats and exits 72).  One line of figures per target; a crash, leak or
# sanitizer report exits non-zero and leaves BUILD/crash-TARGET-*.
# Run from the repository root, e.g.  nice -n 19 sh tests/fuzz/campaign.sh build-fuzz 1800 gguf json
set -u
b=$1
budget=$2
shift 2
tck=$(getconf CLK_TCK)
fail=0
for t in "$@"; do
    c="$b/corpus/$t"
    sh tests/fuzz/seeds.sh "$t" "$c"
    log="$b/campaign-$t.log"
    start=$(date +%s)
    "$b/fuzz/fuzz_$t" -max_total_time=86400 -max_len=65536 -rss_limit_mb=4096 -timeout=20 \
        -artifact_prefix="$b/crash-$t-" -print_final_stats=1 "$c" > "$log" 2>&1 &
    pid=$!
    cpu=0
    while kill -0 $pid 2>/dev/null; do
        # utime + stime of the fuzzer (fields 14 and 15 of /proc/PID/stat).
        ticks=$(awk '{print $14 + $15}' /proc/$pid/stat 2>/dev/null) || break
        cpu=$((ticks / tck))
        if [ "$cpu" -ge "$budget" ]; then
            kill -INT $pid
            break
        fi
        sleep 5
    done
    wait $pid
    rc=$?
    [ $rc -eq 72 ] && rc=0 # interrupted at the budget: the normal end
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
    echo "campaign $t: ${cpu}s CPU in $(($(date +%s) - start))s wall, ${runs:-?} execs, $cov," \
        "corpus $(ls "$c" | wc -l) files, exit $rc"
    if [ $rc -ne 0 ]; then
        fail=1
        grep -E 'ERROR|SUMMARY|Test unit written' "$log" | head -5
    fi
done
exit $fail
