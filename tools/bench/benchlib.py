"""What tools/bench/compare.py and compare_native.py share: running one
repetition of `slim bench`, running the STREAM binary, naming the CPU."""
import json
import platform
import subprocess


def slim_records(cli, model, threads, p, n):
    """One repetition of `slim bench` (examples/cli/bench.c): its JSON records."""
    out = subprocess.run([cli, "bench", "-m", model, "-p", str(p), "-n", str(n), "-t",
                          str(threads), "-r", "1", "-o", "json"],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def run_stream(path, threads, mib, reps):
    """tools/bench/stream.c at each thread count: its JSON report."""
    out = subprocess.run([path, "-t", ",".join(str(t) for t in threads) + ",", "-s", str(mib),
                          "-r", str(reps), "-o", "json"],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"
