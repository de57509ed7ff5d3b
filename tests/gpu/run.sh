#!/usr/bin/env bash
# tests/gpu/run.sh: everything slim can check on a machine with an NVIDIA GPU.
#
#   1. the GPU (nvidia-smi); stops here with a clear message if there is none;
#   2. make GPU=1 -j: the library and CLI with the CUDA backend, in build-gpu/;
#   3. make test: the CPU suites (SKIP_CPU_TESTS=1 skips them);
#   4. build-gpu/gpu_compare (where built): whole models on the GPU against the
#      CPU backend;
#   5. tests/gpu/bench_kernels: every launcher timed at real model shapes, next
#      to tools/cuda_perf_model.py's prediction for this GPU;
#   6. slim bench -p 512 -n 128 -r 5 on the CUDA backend for $MODEL, next to
#      the predicted pp512 / tg128.
#
# Run from anywhere: bash tests/gpu/run.sh.  Environment: MODEL (default
# models/gemma-3-270m-q4_k_m.gguf; `make model` fetches it), JOBS,
# BENCH_FILTER (a substring of the kernel keys to time), BENCH_REPS,
# SKIP_CPU_TESTS=1, CUDA_HOME.  Logs and the prediction file go to
# build-gpu/gpu-run/.  Exit status: 0 when every step passed, else 1.
set -euo pipefail

cd "$(dirname "$0")/../.."
MODEL=${MODEL:-models/gemma-3-270m-q4_k_m.gguf}
JOBS=${JOBS:-$(nproc)}
CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
NVCC=${NVCC:-$CUDA_HOME/bin/nvcc}
BENCH_REPS=${BENCH_REPS:-20}
OUT=build-gpu/gpu-run
failed=()

step() { printf '\n==== %s\n' "$*"; }
die() {
    echo "tests/gpu/run.sh: $*" >&2
    exit 1
}
# Runs a step; a failure is recorded and the later steps still run.
check() {
    local name=$1
    shift
    if "$@"; then
        echo "---- $name: ok"
    else
        echo "---- $name: FAILED" >&2
        failed+=("$name")
    fi
}

# ---------------------------------------------------------------- 1. the GPU
command -v nvidia-smi > /dev/null 2>&1 ||
    die "nvidia-smi not found: this script needs a machine with an NVIDIA GPU and its driver (no GPU here: nothing to run)"
gpu_name=$(nvidia-smi --query-gpu=name --format=csv,noheader 2> /dev/null | head -n 1) ||
    die "nvidia-smi failed: no usable NVIDIA GPU or driver on this machine"
[ -n "$gpu_name" ] || die "nvidia-smi lists no GPU"
step "GPU: $gpu_name"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.memory \
    --format=csv || true
cc=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2> /dev/null | head -n 1 | tr -d ' .') || cc=
if [[ $cc =~ ^[0-9]+$ ]]; then arch="-arch=sm_$cc"; else arch="-arch=native"; fi
mkdir -p "$OUT"

# ---------------------------------------------------------------- 2. build
step "make GPU=1 -j$JOBS"
make GPU=1 -j"$JOBS" || die "make GPU=1 failed: nothing else can run"

# ---------------------------------------------------------------- 3. CPU suites
if [ "${SKIP_CPU_TESTS:-0}" = 1 ]; then
    step "make test: skipped (SKIP_CPU_TESTS=1)"
else
    step "make test (CPU suites)"
    check "make test" make test
fi

# ---------------------------------------------------------------- 4. GPU vs CPU
step "gpu_compare: whole models on the CUDA backend against the CPU backend"
if [ -x build-gpu/gpu_compare ]; then
    check "make model" make model model-f16
    # Float weights: top-1 identical everywhere; quantized ones: statistics.
    models=(tests/data/synth_*.gguf)
    [ -f models/gemma-3-270m-f16.gguf ] && models+=(models/gemma-3-270m-f16.gguf)
    for m in "$MODEL" models/smollm2-135m-instruct-q4_1.gguf; do
        [ -f "$m" ] && models+=(--quantized "$m")
    done
    if [ "${#models[@]}" -gt 0 ]; then
        check "gpu_compare" build-gpu/gpu_compare "${models[@]}"
    else
        echo "no model file found: gpu_compare not run"
        failed+=("gpu_compare (no model)")
    fi
else
    echo "build-gpu/gpu_compare was not built: skipped"
fi

# ---------------------------------------------------------------- 5. kernels
step "bench_kernels ($arch): measured vs predicted per launch"
libs=(-lcudart)
cublas=()
if [ -f kernels/gemm_cublas.cu ]; then
    libs+=(-lcublas)
    cublas=(-DSLIM_BENCH_CUBLAS=1)
fi
bench_ok=1
srcs=(kernels/*.cu)
if ! "$NVCC" -std=c++17 -O3 "$arch" ${cublas[@]+"${cublas[@]}"} -Ikernels -Ilib -Iinclude \
    -o build-gpu/bench_kernels \
    tests/gpu/bench_kernels.cu "${srcs[@]}" -L"$CUDA_HOME/lib64" "${libs[@]}"; then
    failed+=("bench_kernels build")
    bench_ok=0
fi
pred=()
if python3 tools/cuda_perf_model.py --tsv --gpu "$gpu_name" > "$OUT/pred.tsv"; then
    pred=(--pred "$OUT/pred.tsv")
else
    echo "no performance model of '$gpu_name': built-in shapes, no predictions"
fi
if [ "$bench_ok" = 1 ]; then
    bench_args=(--reps "$BENCH_REPS")
    [ "${#cublas[@]}" -gt 0 ] && bench_args+=(--cublas) # GEMM shapes also through cuBLAS
    [ -n "${BENCH_FILTER:-}" ] && bench_args+=(--filter "$BENCH_FILTER")
    check "bench_kernels" bash -c 'set -o pipefail; "$@" | tee '"$OUT/bench_kernels.txt" _ \
        build-gpu/bench_kernels ${pred[@]+"${pred[@]}"} "${bench_args[@]}"
fi

# ---------------------------------------------------------------- 6. slim bench
step "slim bench --backend cuda: $MODEL"
[ -f "$MODEL" ] || check "make model" make model
base=$(basename "$MODEL" | tr '[:upper:]' '[:lower:]')
case $base in
    *gemma-3-270m*) mkey=gemma-3-270m ;;
    *llama-3.2-1b*) mkey=llama-3.2-1b ;;
    *llama-3.1-8b*) mkey=llama-3.1-8b ;;
    *nemo*) mkey=mistral-nemo-12b ;;
    *) mkey= ;;
esac
case $base in
    *q4_k_m*) qkey=q4_k_m ;;
    *q8_0*) qkey=q8_0 ;;
    *) qkey= ;;
esac
if bash -c 'set -o pipefail; "$@" | tee '"$OUT/slim_bench.txt" _ \
    build-gpu/slim bench -m "$MODEL" --backend cuda -p 512 -n 128 -r 5; then
    echo "---- slim bench: ok"
    # Rows: | model | type | threads | pp512 | t/s |
    pp=$(awk -F'|' '$5 ~ /pp512/ {gsub(/ /, "", $6); print $6}' "$OUT/slim_bench.txt")
    tg=$(awk -F'|' '$5 ~ /tg128/ {gsub(/ /, "", $6); print $6}' "$OUT/slim_bench.txt")
    if [ -n "$mkey" ] && [ -n "$qkey" ] &&
        p=$(python3 tools/cuda_perf_model.py --bench-pred --gpu "$gpu_name" --model "$mkey" \
            --quant "$qkey" 2> /dev/null); then
        ppp=$(awk '$1 == "pp512" {print $2}' <<< "$p")
        ptg=$(awk '$1 == "tg128" {print $2}' <<< "$p")
        printf '\n%-8s %14s %14s %10s\n' test "measured t/s" "predicted t/s" "x pred"
        awk -v a="${pp:-0}" -v b="$ppp" 'BEGIN {printf "%-8s %14.1f %14.1f %10.2f\n", "pp512", a, b, (b > 0 ? a / b : 0)}'
        awk -v a="${tg:-0}" -v b="$ptg" 'BEGIN {printf "%-8s %14.1f %14.1f %10.2f\n", "tg128", a, b, (b > 0 ? a / b : 0)}'
    else
        echo "no prediction for $(basename "$MODEL") on $gpu_name (measured: pp512 ${pp:-?} t/s, tg128 ${tg:-?} t/s)"
    fi
else
    echo "---- slim bench: FAILED" >&2
    failed+=("slim bench")
fi

# ---------------------------------------------------------------- summary
echo
if [ "${#failed[@]}" -gt 0 ]; then
    echo "tests/gpu/run.sh: FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "tests/gpu/run.sh: all steps passed on $gpu_name (logs in $OUT/)"
