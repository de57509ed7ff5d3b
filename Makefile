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
# The library is built on the machine that runs it (like llama.cpp's native build);
# ARCH= (empty) gives a portable build.
ARCH    ?= -march=native
OPT     ?= -O2
BUILD   ?= build

CPPFLAGS += -Iinclude -Ilib -D_GNU_SOURCE -DSLIM_BUILDING
CFLAGS   += -std=c11 $(OPT) $(ARCH) -g -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter \
            -fPIC -fvisibility=hidden -pthread -MMD -MP
LDLIBS   += -lm -pthread

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

.PHONY: all lib cli test test-full model model-f16 vocabs hf-tokenizers hf-real run install uninstall clean format help cuda
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
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(STATIC) $(LDLIBS)

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
test: $(CUDASIM_IN_TEST) $(TEST_BIN) $(CLI) $(MODEL) $(SMOLLM2) $(VOCABS) $(HF_TOKS)
	SLIM_TEST_MODEL=$(MODEL) SLIM_TEST_MODEL_SMOLLM2=$(SMOLLM2) SLIM_TEST_VOCAB_DIR=$(MODEL_DIR)/vocab \
	    SLIM_TEST_HF_TOK_DIR=$(MODEL_DIR)/hf-tok \
	    SLIM_CLI=$(CLI) $(TEST_BIN)

# The slow tiers too: the emulated whole-model runs of the real models.
test-full:
	$(MAKE) test FULL=1

model: $(MODEL) $(SMOLLM2)
$(MODEL):
	sh tools/fetch_model.sh $(MODEL_DIR) gemma3
$(SMOLLM2):
	sh tools/fetch_model.sh $(MODEL_DIR) smollm2
model-f16: $(MODEL_F16)
$(MODEL_F16): $(MODEL) tools/dequant_gguf.py
	python3 tools/dequant_gguf.py $(MODEL) $@.tmp && mv $@.tmp $@
vocabs: $(VOCABS)
$(VOCABS): tools/fetch_tokenizers.sh tools/golden/gen_vocab_refs.py
	sh tools/fetch_tokenizers.sh $(MODEL_DIR)
	touch $@
hf-real: $(HF_TOKS)
	python3 tools/golden/gguf_to_hf.py smollm2 $(MODEL_DIR) $(MODEL_DIR)/hf-real/smollm2
	python3 tools/golden/gguf_to_hf.py gemma3 $(MODEL_DIR) $(MODEL_DIR)/hf-real/gemma3
hf-tokenizers: $(HF_TOKS)
$(HF_TOKS): $(MODEL) $(SMOLLM2) $(VOCABS) tools/fetch_hf_tokenizers.sh tools/golden/gen_hf_tokenizer.py
	sh tools/fetch_hf_tokenizers.sh $(MODEL_DIR)

run: all $(MODEL)
	$(CLI) run -m $(MODEL) -p "$(PROMPT)" -n 64 -t $(THREADS) --seed 42

cuda: cudasim-nvcc-check

# CPU benchmarks (docs/PERFORMANCE.md): `make stream` builds the STREAM-style
# bandwidth program (tools/bench/stream.c); `make bench-models` writes synthetic
# Llama-3.2-1B-shaped GGUFs (F16 by the gguf package, the rest by llama.cpp's
# quantizer via llama-cpp-python) for tools/bench/compare.py, when missing.
BENCH_MODELS := $(foreach t,q4_0 q4_k_m q8_0 f16,$(MODEL_DIR)/bench/llama1b-$(t).gguf)
.PHONY: stream bench-models bench-repack
stream: $(BUILD)/stream
$(BUILD)/stream: tools/bench/stream.c
	@mkdir -p $(@D)
	$(CC) -std=c11 -O3 $(ARCH) -Wall -Wextra -Werror -D_GNU_SOURCE -pthread -o $@ $<
# `make bench-repack`: the repacked CPU kernels vs the plain ones (tools/bench/repack.c).
bench-repack: $(BUILD)/repack
$(BUILD)/repack: tools/bench/repack.c $(STATIC)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< $(STATIC) $(LDLIBS)
# `make maskbench`: the constraint engine's MaskBench runner (tools/maskbench/).
.PHONY: maskbench
maskbench: $(BUILD)/maskbench
$(BUILD)/maskbench: tools/maskbench/maskbench.c $(STATIC)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< $(STATIC) $(LDLIBS)
# `make fuzz`: libFuzzer targets (clang) for the GBNF, regex and JSON Schema compilers.
FUZZ_CONSTRAIN := $(filter-out lib/constrain/tokens_vocab.c,$(wildcard lib/constrain/*.c)) \
                  lib/format/json.c lib/format/mmap.c lib/core/bigalloc.c lib/core/error.c
.PHONY: fuzz
fuzz: $(BUILD)/fuzz/fuzz_gbnf $(BUILD)/fuzz/fuzz_regex $(BUILD)/fuzz/fuzz_schema
$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_constrain_common.h $(FUZZ_CONSTRAIN)
	@mkdir -p $(@D)
	clang -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	    -D_GNU_SOURCE -DSLIM_BUILDING -Iinclude -Ilib -o $@ $< $(FUZZ_CONSTRAIN) -lm -pthread
bench-models: $(BENCH_MODELS)
$(BENCH_MODELS) &:
	python3 tools/bench/gen_llama1b.py $(MODEL_DIR)/bench

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
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-san

help:
	@echo "make [all]      library (static + shared), the slim CLI and examples"
	@echo "make test       cudasim tests (CUDA=1; nvcc check if nvcc is there) and all Check suites (SAN=1: ASan + UBSan)"
	@echo "make test-full  also the emulated CUDA runs of the real models (minutes each)"
	@echo "make cuda       compile the CUDA kernels with nvcc for sm_80, 86, 89, 90"
	@echo "make GPU=1      the library and CLI with the CUDA backend (nvcc, cudart) in $(BUILD)-gpu"
	@echo "make model      fetch the models (Gemma 3 270M Q4_K_M, the default; SmolLM2-135M-Instruct Q4_1) into $(MODEL_DIR)/"
	@echo "make vocabs     reference tokenizers as vocab GGUFs (needs pip: gguf mistral-common sentencepiece)"
	@echo "make hf-tokenizers  Hugging Face tokenizer dirs from those (needs pip: transformers tokenizers tiktoken protobuf)"
	@echo "make hf-real    the two models as Hugging Face dirs + transformers logits (needs torch; for test-full)"
	@echo "make run        build, fetch and generate (PROMPT=..., THREADS=...)"
	@echo "make install    PREFIX=$(PREFIX) DESTDIR=... ; make uninstall"

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_OBJ:.o=.d) $(BUILD)/examples/simple.d
