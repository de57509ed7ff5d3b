# slim: build, test, install.  `make help` lists the targets.
VERSION_MAJOR := 0
VERSION_MINOR := 1
VERSION_PATCH := 0
VERSION       := $(VERSION_MAJOR).$(VERSION_MINOR).$(VERSION_PATCH)

PREFIX  ?= /usr/local
DESTDIR ?=
CC      ?= cc
# CUDA: auto (the default) uses the CUDA toolkit's headers where present, for
# the emulated kernels in `make test`; CUDA=0 needs no CUDA toolkit at all.
CUDA    ?= auto
CUDA_HOME ?= /usr/local/cuda
SAN     ?= 0
# ARCH unset or empty: a portable library with run-time CPU dispatch (docs/ARCHITECTURE.md):
# the baseline is x86-64-v2 (plain aarch64 elsewhere), and the CPU kernels are also built for
# AVX2 and AVX-512 VNNI, one chosen from cpuid at run time (SLIM_CPU=baseline|avx2|avx512 forces
# a lower one).  ARCH=native (-march=native) or other -m flags: one target, the kernels for it.
ARCH    ?=
# FUZZ=1 (make fuzz sets it): clang, libFuzzer's instrumentation with ASan and UBSan, one
# target CPU (no dispatch), built in $(BUILD)-fuzz.
FUZZ    ?= 0
ifeq ($(FUZZ),1)
  override CC   := clang
  override ARCH := native
  override OPT  := -O1
endif
ifeq ($(strip $(ARCH)),native)
  override ARCH := -march=native
endif
OPT     ?= -O2
BUILD   ?= build

CPPFLAGS += -Iinclude -Ilib -D_GNU_SOURCE -DSLIM_BUILDING
CFLAGS   += -std=c11 $(OPT) $(or $(ARCH),$(CPU_BASE_ARCH)) -g -Wall -Wextra -Werror -Wshadow \
            -Wno-unused-parameter -fPIC -fvisibility=hidden -pthread -MMD -MP
LDLIBS   += -lm -pthread

ifeq ($(FUZZ),1)
  CFLAGS  += -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined \
             -fno-omit-frame-pointer -Wno-error
  LDFLAGS += -fsanitize=address,undefined
  override BUILD := $(BUILD)-fuzz
endif
ifeq ($(SAN),1)
  CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  LDFLAGS += -fsanitize=address,undefined
  override BUILD := $(BUILD)-san
endif

ifeq ($(CUDA),auto)
  override CUDA := $(if $(wildcard $(CUDA_HOME)/include/cuda_runtime.h),1,0)
endif

# GPU=1: the library with the CUDA backend (lib/backend/cuda + kernels/*.cu
# compiled by nvcc for GPU_ARCHS, linked with cudart), built in $(BUILD)-gpu.
GPU       ?= 0
GPU_ARCHS ?= 80 86 89 90
NVCC      ?= $(CUDA_HOME)/bin/nvcc
ifeq ($(GPU),1)
  override BUILD := $(BUILD)-gpu
  CPPFLAGS += -DSLIM_WITH_CUDA -Ikernels -isystem $(CUDA_HOME)/include
  LDLIBS   += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcudart -lcublas -lstdc++
  KERNEL_OBJ = $(patsubst kernels/%.cu,$(BUILD)/kernels/%.o,$(sort $(wildcard kernels/*.cu)))
endif

LIB_SRC  := $(shell find lib -name '*.c' | sort)
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o) $(KERNEL_OBJ)

# Run-time CPU dispatch (ARCH empty): the CPU kernels' files (CPU_LEVEL_SRC) are compiled once per
# level with its flags into $(BUILD)/level-L/, linked into one object $(BUILD)/cpu-L.o whose only
# global symbol is that level's table, slim_cpu_kernels_L (lib/backend/cpu/kernels.c); the rest
# of the library is built for the baseline and lib/backend/cpu/dispatch.c picks the table.
CPU_LEVEL_SRC := $(filter-out lib/backend/cpu/dispatch.c,$(sort $(wildcard lib/quant/*.c lib/backend/cpu/*.c)))
CPU_LEVEL_SRC := $(filter-out lib/quant/dtype.c lib/quant/quantize.c,$(CPU_LEVEL_SRC))
ifeq ($(strip $(ARCH)),)
  ifneq ($(filter x86_64%,$(shell $(CC) -dumpmachine)),)
    CPU_BASE_ARCH   := -march=x86-64-v2
    CPU_LEVELS      := baseline avx2 avx512
  else
    CPU_LEVELS      := baseline
  endif
  CPU_ARCH_baseline := $(CPU_BASE_ARCH)
  CPU_ARCH_avx2     := -march=x86-64-v3
  CPU_ARCH_avx512   := -march=x86-64-v4 -mavx512vnni
  CPPFLAGS += -DSLIM_CPU_DISPATCH
  LIB_OBJ  := $(filter-out $(CPU_LEVEL_SRC:%.c=$(BUILD)/%.o),$(LIB_OBJ)) \
              $(foreach l,$(CPU_LEVELS),$(BUILD)/cpu-$(l).o)
endif
OBJCOPY ?= objcopy
STATIC   := $(BUILD)/libslim.a
SONAME   := libslim.so.$(VERSION_MAJOR)
SHARED   := $(BUILD)/libslim.so.$(VERSION)

CLI_SRC  := $(sort $(wildcard examples/cli/*.c))
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
CLI      := $(BUILD)/slim
SIMPLE   := $(BUILD)/simple

TEST_SRC := $(sort $(wildcard tests/unit/*.c))
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/%.o)
TEST_BIN := $(BUILD)/unit_tests
# `make test` does its own set-up, before anything is compiled: tools/setup.sh
# checks for Check, pkg-config and the test oracles, installs what is missing
# where it can (apt-get as root; the Python oracles into $(VENV)) or stops,
# printing the command to run.  SLIM_SETUP=0 skips it; `make -n` does not run it.
VENV    ?= .venv
VENV_PY := $(VENV)/bin/python
SLIM_SETUP ?= 1
ifneq ($(filter test test-full,$(MAKECMDGOALS)),)
ifeq ($(SLIM_SETUP)$(findstring n,$(firstword -$(MAKEFLAGS))),1)
  $(if $(shell SLIM_VENV=$(VENV) sh tools/setup.sh test >&2 && echo ok),,$(error set-up failed (above)))
  export SLIM_SETUP := 0
endif
endif
CHECK_CFLAGS := $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS   := $(shell pkg-config --libs check 2>/dev/null || echo -lcheck -lsubunit -lrt)

MODEL_DIR  ?= models
MODEL      := $(MODEL_DIR)/gemma-3-270m-q4_k_m.gguf
SMOLLM2    := $(MODEL_DIR)/smollm2-135m-instruct-q4_1.gguf
# The default model's weights dequantized to F16 (tools/dequant_gguf.py), for the
# CUDA-vs-CPU whole-model test: float weights, no 8-bit activations.
MODEL_F16  := $(MODEL_DIR)/gemma-3-270m-f16.gguf
# Vocab-only GGUFs built from the reference tokenizers' own files (Llama 3,
# Mistral Nemo and v3, Phi-4) for tests/unit/test_tokenizer_refs.c.
VOCABS     := $(MODEL_DIR)/vocab/.done
# Hugging Face tokenizer directories made from those with transformers'
# converters (tools/fetch_hf_tokenizers.sh) for tests/unit/test_hf_tokenizer.c.
HF_TOKS    := $(MODEL_DIR)/hf-tok/.done
# The default and SmolLM2 models as Hugging Face directories with transformers'
# logits (tools/golden/gguf_to_hf.py), for test-full.
HF_REAL    := $(MODEL_DIR)/hf-real/smollm2 $(MODEL_DIR)/hf-real/gemma3
PROMPT     ?= The three primary colors are
THREADS    ?= 2

.PHONY: all lib cli test test-levels test-full model model-f16 vocabs hf-tokenizers hf-real run install uninstall clean format help cuda
all: lib $(CLI) $(SIMPLE)

# The CUDA emulation harness (tests/cudasim): its self-tests run in `make test`
# when CUDA is on; `make cuda` compiles the kernels with nvcc for sm_80..sm_90.
include tests/cudasim/cudasim.mk
# With nvcc present, `make test` also compiles every kernel for sm_80..90 (`make cuda`).
CUDASIM_IN_TEST := $(if $(filter 1,$(CUDA)),cudasim-test) \
                   $(if $(and $(filter 1,$(CUDA)),$(wildcard $(CUDASIM_NVCC))),cudasim-nvcc-check)
# The whole-model test under the emulator (test_ops_model) also runs the real models.
# Only in test-full: an emulated decode step of a 262k-vocabulary model takes
# ~20 s, so the real models' runs take minutes each.
ifeq ($(FULL),1)
cudasim-test: $(MODEL) $(SMOLLM2) $(MODEL_F16)
cudasim-test: export SLIM_TEST_MODEL = $(MODEL)
cudasim-test: export SLIM_TEST_MODEL_F16 = $(MODEL_F16)
cudasim-test: export SLIM_TEST_MODEL_SMOLLM2 = $(SMOLLM2)
# The real models rebuilt as Hugging Face directories (`make hf-real`, needs
# torch and transformers) are compared with transformers where present.
test: export SLIM_TEST_HF_REAL = $(subst $(eval) ,$(comma),$(wildcard $(HF_REAL)))
endif
comma := ,
lib: $(STATIC) $(BUILD)/libslim.so

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

include lib/model/arch/registry.mk
$(BUILD)/lib/model/tensors.o: $(ARCH_LIST)
$(BUILD)/lib/model/tensors.o: CPPFLAGS += -I$(BUILD)/gen

# One CPU level: its objects, then one object exposing only slim_cpu_kernels_L (objcopy -G
# makes every other symbol local, so the levels' same-named functions do not meet).
define CPU_LEVEL_RULES
$(BUILD)/level-$(1)/%.o: %.c
	@mkdir -p $$(@D)
	$$(CC) $$(CPPFLAGS) -DSLIM_CPU_LEVEL=$(1) $$(CFLAGS) $$(CPU_ARCH_$(1)) -c $$< -o $$@
$(BUILD)/cpu-$(1).o: $(CPU_LEVEL_SRC:%.c=$(BUILD)/level-$(1)/%.o)
	$$(CC) -r -nostdlib -o $$@.tmp $$^
	$$(OBJCOPY) -G slim_cpu_kernels_$(1) $$@.tmp $$@
	@rm -f $$@.tmp
endef
$(foreach l,$(CPU_LEVELS),$(eval $(call CPU_LEVEL_RULES,$(l))))

# GPU=1: device code for every GPU_ARCHS, host side as position-independent C-style C++.
$(BUILD)/kernels/%.o: kernels/%.cu kernels/kernels.h $(wildcard kernels/*.cuh)
	@mkdir -p $(@D)
	$(NVCC) -std=c++17 -O3 $(foreach a,$(GPU_ARCHS),-gencode arch=compute_$(a),code=sm_$(a)) \
	    -Ikernels -Werror all-warnings -Xcompiler -fPIC,-fvisibility=hidden,-Wall,-Wextra,-Werror \
	    -c $< -o $@

$(STATIC): $(LIB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(SHARED): $(LIB_OBJ)
	$(CC) -shared -Wl,-soname,$(SONAME) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/libslim.so: $(SHARED)
	ln -sf libslim.so.$(VERSION) $(BUILD)/$(SONAME)
	ln -sf $(SONAME) $@

$(CLI): $(CLI_OBJ) $(STATIC)
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(STATIC) $(LDLIBS) $(CLI_LIBS)

# slim chat's line editing and history: libedit where pkg-config finds it
# (Debian: libedit-dev), else plain stdin; LIBEDIT=0 builds without it.  Only
# the CLI uses it: the library never does.
LIBEDIT ?= $(shell pkg-config --exists libedit 2>/dev/null && echo 1 || echo 0)
ifeq ($(LIBEDIT),1)
$(CLI_OBJ): CPPFLAGS += -DSLIM_CLI_LIBEDIT $(shell pkg-config --cflags libedit)
CLI_LIBS := $(shell pkg-config --libs libedit)
endif

# slim serve (examples/cli/serve*.c, docs/SERVER.md): HTTP through libmicrohttpd where
# pkg-config finds it (Debian: libmicrohttpd-dev); without it `slim serve` says it was
# built without the server.  SERVER=0 leaves it out.  Only the CLI links it: never libslim.
SERVER ?= $(shell pkg-config --exists libmicrohttpd 2>/dev/null && echo 1 || echo 0)
ifeq ($(SERVER),1)
$(BUILD)/examples/cli/serve.o: CPPFLAGS += -DSLIM_CLI_SERVER $(shell pkg-config --cflags libmicrohttpd)
CLI_LIBS += $(shell pkg-config --libs libmicrohttpd)
else ifeq ($(filter clean help format,$(MAKECMDGOALS)),)
$(info slim serve: libmicrohttpd not found by pkg-config (Debian: libmicrohttpd-dev): building slim without the server)
endif

# slim eval --endpoint: libcurl where pkg-config finds it (Debian:
# libcurl4-openssl-dev); CURL=0 builds without it (--endpoint then says so).
CURL ?= $(shell pkg-config --exists libcurl 2>/dev/null && echo 1 || echo 0)
ifeq ($(CURL),1)
$(BUILD)/examples/cli/eval_endpoint.o: CPPFLAGS += -DSLIM_CLI_CURL $(shell pkg-config --cflags libcurl)
CLI_LIBS += $(shell pkg-config --libs libcurl)
endif

$(SIMPLE): $(BUILD)/examples/simple.o $(STATIC)
	$(CC) $(LDFLAGS) -o $@ $< $(STATIC) $(LDLIBS)

# GPU=1: the whole model on the GPU vs the CPU backend (tests/gpu/run.sh runs it).
ifeq ($(GPU),1)
all: $(BUILD)/gpu_compare
$(BUILD)/gpu_compare: tests/gpu/gpu_compare.c tests/gpu/backend_compare.c $(STATIC)
	$(CC) $(CPPFLAGS) -Itests/gpu $(CFLAGS) $(LDFLAGS) -o $@ $(filter %.c,$^) $(STATIC) $(LDLIBS)
endif

$(BUILD)/tests/%.o: tests/%.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CHECK_CFLAGS) $(CFLAGS) -Wno-gnu-zero-variadic-macro-arguments -c $< -o $@

$(TEST_BIN): $(TEST_OBJ) $(STATIC)
	$(CC) $(LDFLAGS) -o $@ $(TEST_OBJ) $(STATIC) $(CHECK_LIBS) $(LDLIBS)

# The default test run: every Check suite (needs the default model for the
# tokenizer and forward-pass suites).  CK_FORK stays on so one crash is one failure.
test: $(CUDASIM_IN_TEST) $(TEST_BIN) $(CLI) $(MODEL) $(SMOLLM2) $(VOCABS) $(HF_TOKS) readme-example
	SLIM_TEST_MODEL=$(MODEL) SLIM_TEST_MODEL_SMOLLM2=$(SMOLLM2) SLIM_TEST_VOCAB_DIR=$(MODEL_DIR)/vocab \
	    SLIM_TEST_HF_TOK_DIR=$(MODEL_DIR)/hf-tok \
	    SLIM_CLI=$(CLI) $(TEST_BIN)

# README.md's C example compiled warning-free against `make install
# PREFIX=<tmp>` and run on the default model (tests/readme_example.sh).
.PHONY: readme-example
readme-example: lib $(MODEL)
	CC="$(CC)" sh tests/readme_example.sh $(MODEL) "$(if $(filter 1,$(SAN)),-fsanitize=address$(comma)undefined)"
# The Python binding's pytest suite (bindings/python, docs/PYTHON.md): its cffi
# extension is built in place against $(STATIC) (no pip install).  `make test`
# runs it when $(PYTHON) has pytest, cffi and numpy (not with SAN=1 or GPU=1).
PYTHON    ?= $(abspath $(VENV_PY))
PY_STAMP  := $(BUILD)/python/.stamp
.PHONY: test-python test-python-if-available
$(PY_STAMP): $(STATIC) include/slim.h $(wildcard bindings/python/slim/*.py bindings/python/slim/*.c)
	@mkdir -p $(@D)
	cd bindings/python && SLIM_BUILD_DIR=$(BUILD) $(PYTHON) slim/_ffi_build.py $(abspath $(@D))
	touch $@
# test-full also runs slim.serve.ray's test (Ray Serve and openai into $(VENV)).
test-python: $(PY_STAMP) $(MODEL) $(SMOLLM2) $(if $(filter 1,$(FULL)),$(VENV)/.slim-ray.txt)
	SLIM_TEST_MODEL=$(MODEL) SLIM_TEST_MODEL_SMOLLM2=$(SMOLLM2) SLIM_BUILD_DIR=$(BUILD) SLIM_TEST_FULL=$(FULL) \
	    PYTHONPATH=$(CURDIR)/bindings/python $(PYTHON) -m pytest -q -rs bindings/python/tests
test-python-if-available:
	@if $(PYTHON) -c 'import pytest, cffi, numpy' 2>/dev/null; then $(MAKE) --no-print-directory test-python; \
	else echo "test-python skipped: $(PYTHON) lacks pytest, cffi or numpy"; fi
test: $(if $(and $(filter 0,$(SAN)),$(filter 0,$(GPU))),test-python-if-available)
# slim serve's tests (tests/server, docs/SERVER.md): the official openai client against a
# real server on a free loopback port.  `make test` runs them when the CLI has the server
# and $(PYTHON) has pytest, openai, httpx and numpy; with SAN=1 the server is the ASan/UBSan
# build (SLIM_SERVE_STRESS_N=... shortens the 1,000-request concurrency test).
.PHONY: test-server test-server-if-available
test-server: $(CLI) $(MODEL)
	SLIM_CLI=$(abspath $(CLI)) SLIM_TEST_MODEL=$(abspath $(MODEL)) $(PYTHON) -m pytest -q -rs tests/server
test-server-if-available: $(CLI) $(MODEL)
	@if [ "$(SERVER)" != 1 ]; then echo "test-server skipped: slim was built without the server (libmicrohttpd-dev)"; \
	elif $(PYTHON) -c 'import pytest, openai, httpx, numpy' 2>/dev/null; then $(MAKE) --no-print-directory test-server; \
	else echo "test-server skipped: $(PYTHON) lacks pytest, openai, httpx or numpy"; fi
test: $(if $(filter 0,$(GPU)),test-server-if-available)
# slim eval's 50-item tasks (tests/eval/run.sh): every figure recomputed by
# tools/eval_check.py, resume and rerun hashes, report.html rendered by Chromium.
.PHONY: test-eval
test-eval: $(CLI) $(SMOLLM2)
	SLIM_CLI=$(CLI) PYTHON=$(PYTHON) sh tests/eval/run.sh
test: $(if $(filter 0,$(GPU)),test-eval)
# issue 16's endpoint check (minutes; not in make test): --endpoint against slim serve
.PHONY: test-eval-endpoint
test-eval-endpoint: $(CLI) $(SMOLLM2)
	SLIM_CLI=$(CLI) PYTHON=$(PYTHON) sh tests/eval/endpoint.sh
# The kernel and model suites at each CPU level of the dispatch build (SLIM_CPU lowers the
# level cpuid picks; docs/ARCHITECTURE.md, "CPU dispatch").
LEVEL_SUITES ?= quant cpu model hf_model arch batch weight_type repack_model
test-levels: $(TEST_BIN) $(CLI) $(MODEL) $(SMOLLM2) $(VOCABS) $(HF_TOKS)
	@set -e; for l in $(or $(CPU_LEVELS),single); do for s in $(LEVEL_SUITES); do \
	    echo "SLIM_CPU=$$l suite $$s"; \
	    SLIM_CPU=$$l CK_RUN_SUITE=$$s SLIM_TEST_MODEL=$(MODEL) SLIM_TEST_MODEL_SMOLLM2=$(SMOLLM2) \
	    SLIM_TEST_VOCAB_DIR=$(MODEL_DIR)/vocab SLIM_TEST_HF_TOK_DIR=$(MODEL_DIR)/hf-tok \
	    SLIM_CLI=$(CLI) $(TEST_BIN); done; done

# The slow tiers too: the emulated whole-model runs of the real models.
test-full:
	$(MAKE) test FULL=1

model: $(MODEL) $(SMOLLM2)
$(MODEL):
	sh tools/fetch_model.sh $(MODEL_DIR) gemma3
$(SMOLLM2):
	sh tools/fetch_model.sh $(MODEL_DIR) smollm2
# The Python oracles run in the project's virtual environment, one per
# tools/requirements/GROUP.txt (test, golden, hf-real); `make venv` makes the test one.
.PHONY: venv
venv: $(VENV)/.slim-test.txt
$(VENV)/.slim-%.txt: tools/requirements/%.txt tools/requirements/test.txt
	SLIM_VENV=$(VENV) sh tools/setup.sh venv $*
model-f16: $(MODEL_F16)
$(MODEL_F16): $(MODEL) tools/dequant_gguf.py | $(VENV)/.slim-test.txt
	$(VENV_PY) tools/dequant_gguf.py $(MODEL) $@.tmp && mv $@.tmp $@
vocabs: $(VOCABS)
$(VOCABS): tools/fetch_tokenizers.sh tools/golden/gen_vocab_refs.py | $(VENV)/.slim-test.txt
	PYTHON=$(VENV_PY) sh tools/fetch_tokenizers.sh $(MODEL_DIR)
	touch $@
hf-real: $(HF_TOKS) | $(VENV)/.slim-hf-real.txt
	$(VENV_PY) tools/golden/gguf_to_hf.py smollm2 $(MODEL_DIR) $(MODEL_DIR)/hf-real/smollm2
	$(VENV_PY) tools/golden/gguf_to_hf.py gemma3 $(MODEL_DIR) $(MODEL_DIR)/hf-real/gemma3
hf-tokenizers: $(HF_TOKS)
$(HF_TOKS): $(MODEL) $(SMOLLM2) $(VOCABS) tools/fetch_hf_tokenizers.sh tools/golden/gen_hf_tokenizer.py \
            | $(VENV)/.slim-test.txt
	PYTHON=$(VENV_PY) sh tools/fetch_hf_tokenizers.sh $(MODEL_DIR)

run: all $(MODEL)
	$(CLI) run -m $(MODEL) -p "$(PROMPT)" -n 64 -t $(THREADS) --seed 42

# The default model is a base model (it continues text); chat needs an
# instruction-tuned one with a chat template: SmolLM2-135M-Instruct.
.PHONY: chat
chat: all $(SMOLLM2)
	$(CLI) chat -m $(SMOLLM2) -t $(THREADS)

cuda: cudasim-nvcc-check

# slim.Engine from Python vs the C engine, same batched benchmark, alternating
# under flock (tools/bench/python_engine.py; docs/PYTHON.md).
.PHONY: bench-python
bench-python: $(CLI) $(PY_STAMP) $(MODEL)
	$(PYTHON) tools/bench/python_engine.py -m $(MODEL) -t $(THREADS) --slim $(CLI)
# CPU benchmarks (docs/PERFORMANCE.md): `make stream` builds the STREAM-style
# bandwidth program (tools/bench/stream.c); `make bench-models` writes synthetic
# Llama-3.2-1B-shaped GGUFs (F16 by the gguf package, the rest by llama.cpp's
# quantizer via llama-cpp-python) for tools/bench/compare.py, when missing.
BENCH_MODELS := $(foreach t,q4_0 q4_k_m q8_0 f16,$(MODEL_DIR)/bench/llama1b-$(t).gguf)
.PHONY: stream bench-models bench-repack
stream: $(BUILD)/stream
$(BUILD)/stream: tools/bench/stream.c
	@mkdir -p $(@D)
	$(CC) -std=c11 -O3 $(or $(ARCH),-march=native) -Wall -Wextra -Werror -D_GNU_SOURCE -pthread -o $@ $<
# `make bench-repack`: the repacked CPU kernels vs the plain ones (tools/bench/repack.c).
bench-repack: $(BUILD)/repack
$(BUILD)/repack: tools/bench/repack.c $(STATIC)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< $(STATIC) $(LDLIBS)
# `make bench-pool`: the thread pool's cost per run, empty parts (tools/bench/pool.c).
.PHONY: bench-pool
bench-pool: $(BUILD)/pool
$(BUILD)/pool: tools/bench/pool.c $(STATIC)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< $(STATIC) $(LDLIBS)
# `make bench-fma`: one core's float32 FMA peak, the ceiling of F16 prefill (tools/bench/fma_peak.c).
.PHONY: bench-fma
bench-fma: $(BUILD)/fma_peak
$(BUILD)/fma_peak: tools/bench/fma_peak.c
	@mkdir -p $(@D)
	$(CC) -std=c11 -O2 -Wall -Wextra -Werror -D_GNU_SOURCE -o $@ $<
# `make maskbench`: the constraint engine's MaskBench runner (tools/maskbench/).
.PHONY: maskbench
maskbench: $(BUILD)/maskbench
$(BUILD)/maskbench: tools/maskbench/maskbench.c $(STATIC)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< $(STATIC) $(LDLIBS)
# `make fuzz`: libFuzzer targets (clang), one binary per entry point, in build-fuzz/fuzz/: the
# whole library built with -fsanitize=fuzzer-no-link,address,undefined (FUZZ=1 below), each
# target linked against it.  `make fuzz-run [FUZZ_TIME=30]` runs each for FUZZ_TIME seconds on
# its seed corpus (tests/fuzz/seeds.sh writes them from tests/data); docs/RELIABILITY.md.
FUZZ_TARGETS := gguf safetensors json hf_config tokenizer_json tokenize chat lora gbnf regex schema
FUZZ_TIME    ?= 30
.PHONY: fuzz fuzz-run fuzz-bins
fuzz:
	$(MAKE) FUZZ=1 fuzz-bins
fuzz-run: fuzz
	sh tests/fuzz/run.sh build-fuzz $(FUZZ_TIME) $(FUZZ_TARGETS)
fuzz-bins: $(FUZZ_TARGETS:%=$(BUILD)/fuzz/fuzz_%)
$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(wildcard tests/fuzz/*.h) $(STATIC)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -fsanitize=fuzzer -o $@ $< $(STATIC) $(LDLIBS)
bench-models: $(BENCH_MODELS)
$(BENCH_MODELS) &: | $(VENV)/.slim-golden.txt
	$(VENV_PY) tools/bench/gen_llama1b.py $(MODEL_DIR)/bench

install: lib
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/bin
	install -m 644 include/slim.h $(DESTDIR)$(PREFIX)/include/slim.h
	install -m 644 $(STATIC) $(DESTDIR)$(PREFIX)/lib/libslim.a
	install -m 755 $(SHARED) $(DESTDIR)$(PREFIX)/lib/libslim.so.$(VERSION)
	ln -sf libslim.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(PREFIX)/lib/libslim.so
	[ ! -f $(CLI) ] || install -m 755 $(CLI) $(DESTDIR)$(PREFIX)/bin/slim
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' slim.pc.in \
	    > $(DESTDIR)$(PREFIX)/lib/pkgconfig/slim.pc

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/include/slim.h $(DESTDIR)$(PREFIX)/lib/libslim.a \
	      $(DESTDIR)$(PREFIX)/lib/libslim.so $(DESTDIR)$(PREFIX)/lib/$(SONAME) \
	      $(DESTDIR)$(PREFIX)/lib/libslim.so.$(VERSION) $(DESTDIR)$(PREFIX)/bin/slim \
	      $(DESTDIR)$(PREFIX)/lib/pkgconfig/slim.pc

format:
	clang-format -i $(FORMAT_SRC)

# The public interface and the tree's rules (tools/check/): slim.h alone as C99, C11 and C++,
# only slim_* exported, the ABI against abi/libslim.abi (additions pass), clang-format clean,
# lib/'s includes pointing down the layers.  `make test` runs all four.
FORMAT_SRC = $(shell find lib include kernels examples tests bindings -path '*/build' -prune -o \( -name '*.[ch]' -o -name '*.cu' -o -name '*.cuh' \) -print)
.PHONY: check check-api check-format check-includes check-symbols abi-baseline
check: check-api check-format check-includes check-symbols
check-api: $(SHARED)
	CC="$(CC)" sh tools/check/api.sh $(SHARED)
check-format:
	@clang-format --dry-run --Werror $(FORMAT_SRC) && echo "format: ok ($(words $(FORMAT_SRC)) files)"
check-includes:
	python3 tools/check/includes.py
# lib/'s .c files calling each other in no cycle (nm over the objects).
check-symbols: $(STATIC)
	python3 tools/check/symbols.py $(BUILD)
# Only when a release may break the ABI: the new baseline is what check-api compares with.
abi-baseline: $(SHARED)
	abidw --headers-dir include --no-corpus-path --drop-undefined-syms $(SHARED) > abi/libslim.abi
test: $(if $(and $(filter 0,$(SAN)),$(filter 0,$(GPU))),check-api check-format check-includes check-symbols)

clean:
	rm -rf build build-san

help:
	@echo "make [all]      library (static + shared), the slim CLI and examples; portable, with run-time"
	@echo "                CPU dispatch (baseline/AVX2/AVX-512); ARCH=native: for this machine only"
	@echo "make test       set-up (tools/setup.sh), cudasim tests (CUDA=1; nvcc check if nvcc is there) and all Check suites (SAN=1: ASan + UBSan)"
	@echo "make test-server  slim serve's pytest suite (tests/server; part of make test when built with libmicrohttpd)"
	@echo "make bench-python slim.Engine from Python vs the C engine (bench --parallel), alternating medians"
	@echo "make test-python  the Python binding's pytest suite (in .venv; PYTHON=... to use another with pytest cffi numpy)"
	@echo "make test-eval  slim eval's 50-item tasks checked by tools/eval_check.py, report.html rendered by Chromium (in make test)"
	@echo "make test-eval-endpoint  banking77-50 through slim eval --endpoint against slim serve equals the in-process run"
	@echo "make test-levels  the kernel and model suites at each CPU level (SLIM_CPU=baseline|avx2|avx512)"
	@echo "make test-full  also the emulated CUDA runs of the real models (minutes each)"
	@echo "make cuda       compile the CUDA kernels with nvcc for sm_80, 86, 89, 90"
	@echo "make GPU=1      the library and CLI with the CUDA backend (nvcc, cudart) in $(BUILD)-gpu"
	@echo "make model      fetch the models (Gemma 3 270M Q4_K_M, the default; SmolLM2-135M-Instruct Q4_1) into $(MODEL_DIR)/"
	@echo "make vocabs     reference tokenizers as vocab GGUFs (with .venv's oracles, made on demand)"
	@echo "make hf-tokenizers  Hugging Face tokenizer dirs from those (transformers in .venv)"
	@echo "make hf-real    the two models as Hugging Face dirs + transformers logits (installs torch into .venv; for test-full)"
	@echo "make run        build, fetch and generate (PROMPT=..., THREADS=...)"
	@echo "make chat       build, fetch SmolLM2-135M-Instruct and chat with it (the default model is a base model)"
	@echo "make venv       the test oracles' Python environment in $(VENV) (make test makes it)"
	@echo "make install    PREFIX=$(PREFIX) DESTDIR=... ; make uninstall"

-include $(LIB_OBJ:.o=.d) $(foreach l,$(CPU_LEVELS),$(CPU_LEVEL_SRC:%.c=$(BUILD)/level-$(l)/%.d)) $(CLI_OBJ:.o=.d) $(TEST_OBJ:.o=.d) $(BUILD)/examples/simple.d
