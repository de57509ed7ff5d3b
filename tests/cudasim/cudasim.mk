# tests/cudasim/cudasim.mk: the CUDA emulation harness (see docs/CUDA.md, "cudasim").
# A make fragment for the root Makefile (`include tests/cudasim/cudasim.mk`,
# after BUILD and SAN are final); also usable alone:
#   make -f tests/cudasim/cudasim.mk cudasim-test        [SAN=1] [BUILD=dir]
#   make -f tests/cudasim/cudasim.mk cudasim-nvcc-check  (needs nvcc; not part of cudasim-test)
# Targets:
#   cudasim-test        build $(BUILD)/cudasim/test_cudasim (the emulator's self-tests) and
#                       $(BUILD)/cudasim/test_ops_* (kernels/*.cu vs the CPU backend's C code),
#                       run both; one closing line "N passed, N failed" for the two
#                       (non-zero exit on failure)
#   cudasim-nvcc-check  compile the same kernels (test_kernels.cu and kernels/*.cu) with nvcc
#                       for each CUDASIM_NVCC_ARCHS, host and device warnings as errors,
#                       ptxas spills/lmem as errors; reports in $(BUILD)/cudasim/nvcc/*.log
#   cudasim-clean       remove $(BUILD)/cudasim

BUILD             ?= build
CUDA_HOME         ?= /usr/local/cuda
CUDASIM_CXX       ?= g++
CUDASIM_CC        ?= gcc
CUDASIM_NVCC      ?= $(CUDA_HOME)/bin/nvcc
CUDASIM_NVCC_ARCHS ?= 80 86 89 90
CUDASIM_DIR       := tests/cudasim
# SAN=1 standalone gets its own directory; the root Makefile's BUILD is already build-san.
CUDASIM_BUILD      = $(BUILD)/cudasim$(if $(and $(filter 1,$(SAN)),$(filter-out %-san,$(BUILD))),-san,)
# Leave the includer's default goal alone.
CUDASIM_SAVED_GOAL := $(.DEFAULT_GOAL)

# Kernels are compiled by the host compiler as C++17 with the shim first
# (kernels/common.cuh includes cudasim.h when __CUDACC__ is undefined) and
# linked statically into the test program (thread_local __shared__ storage).
CUDASIM_CPPFLAGS  := -I$(CUDASIM_DIR) -Ikernels -isystem $(CUDA_HOME)/include
# fmaf() inline rather than a libm call (the GEMM kernels spend half their time there).
CUDASIM_FMA       := $(if $(filter x86_64,$(shell uname -m)),-mfma,)
CUDASIM_CXXFLAGS  := -std=c++17 -O1 -g $(CUDASIM_FMA) -fno-strict-aliasing -Wall -Wextra -Werror -pthread -MMD -MP
CUDASIM_LDFLAGS   := -pthread
# The CPU reference for test_ops: the project's own C files, compiled as C.
# SLIM_WITH_CUDA: lib/backend/cuda is the real backend here, over the stand-ins.
CUDASIM_REF_CFLAGS := -std=c11 -O2 $(ARCH) -g -Iinclude -Ilib -Ikernels -isystem $(CUDA_HOME)/include \
                      -D_GNU_SOURCE -DSLIM_BUILDING -DSLIM_WITH_CUDA -Wall -Wextra -Werror \
                      -Wno-unused-parameter -pthread -MMD -MP
ifeq ($(SAN),1)
  CUDASIM_CXXFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  CUDASIM_REF_CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  CUDASIM_LDFLAGS  += -fsanitize=address,undefined
endif

CUDASIM_RT_SRC    := $(CUDASIM_DIR)/fiber.cc $(CUDASIM_DIR)/cudasim.cc
CUDASIM_TEST_CC   := $(CUDASIM_DIR)/test_cudasim.cc
CUDASIM_TEST_CU   := $(CUDASIM_DIR)/test_kernels.cu
CUDASIM_CC_OBJ     = $(patsubst $(CUDASIM_DIR)/%.cc,$(CUDASIM_BUILD)/%.o,$(CUDASIM_RT_SRC) $(CUDASIM_TEST_CC))
CUDASIM_CU_OBJ     = $(patsubst $(CUDASIM_DIR)/%.cu,$(CUDASIM_BUILD)/%.cu.o,$(CUDASIM_TEST_CU))
CUDASIM_TEST_BIN   = $(CUDASIM_BUILD)/test_cudasim

# The kernels (kernels/*.cu) and their tests against the CPU backend: every
# tests/cudasim/test_ops_*.cc is one program, linked with all emulated kernels,
# the cudart / cuBLAS stand-ins (tests/cudasim/*_sim.cc) and the library's C
# code compiled as C (the CPU reference; an archive, so each program pulls in
# only what it uses).
CUDASIM_KERNEL_CU := $(sort $(wildcard kernels/*.cu))
CUDASIM_KERNEL_OBJ = $(patsubst kernels/%.cu,$(CUDASIM_BUILD)/kernels/%.cu.o,$(CUDASIM_KERNEL_CU))
CUDASIM_STANDIN_CC := $(sort $(wildcard $(CUDASIM_DIR)/*_sim.cc))
CUDASIM_STANDIN_OBJ = $(patsubst $(CUDASIM_DIR)/%.cc,$(CUDASIM_BUILD)/%.o,$(CUDASIM_STANDIN_CC))
# lib/backend/cuda (host code calling the launchers) goes only into test_ops_model.
CUDASIM_REF_SRC   := $(filter-out lib/backend/cuda/%,$(sort $(wildcard lib/*/*.c lib/*/*/*.c lib/*.c)))
CUDASIM_BACKEND_OBJ = $(patsubst %.c,$(CUDASIM_BUILD)/ref/%.o,$(sort $(wildcard lib/backend/cuda/*.c)))
CUDASIM_REF_OBJ    = $(patsubst %.c,$(CUDASIM_BUILD)/ref/%.o,$(CUDASIM_REF_SRC))
CUDASIM_REF_LIB    = $(CUDASIM_BUILD)/libslim_ref.a
CUDASIM_OPS_CC    := $(sort $(wildcard $(CUDASIM_DIR)/test_ops_*.cc))
CUDASIM_OPS_BINS   = $(patsubst $(CUDASIM_DIR)/%.cc,$(CUDASIM_BUILD)/%,$(CUDASIM_OPS_CC))
CUDASIM_EMU_OBJ    = $(CUDASIM_BUILD)/fiber.o $(CUDASIM_BUILD)/cudasim.o $(CUDASIM_STANDIN_OBJ) \
                     $(CUDASIM_KERNEL_OBJ)

.PHONY: cudasim-test cudasim-nvcc-check cudasim-clean

# Runs each test program into a log, prints it without its closing line, and
# closes with one "N passed, N failed" line for all (a crash counts as a failure).
cudasim-test: $(CUDASIM_TEST_BIN) $(CUDASIM_OPS_BINS)
	@rc=0; p=0; f=0; for t in $(CUDASIM_TEST_BIN) $(CUDASIM_OPS_BINS); do \
	  echo "== $$t"; \
	  $$t > $$t.log 2>&1 || rc=1; \
	  grep -Ev '^[0-9]+ passed, [0-9]+ failed$$' $$t.log || true; \
	  set -- $$(tail -n 1 $$t.log); \
	  if [ "$$2" = "passed," ] && [ "$$4" = "failed" ]; then p=$$((p + $$1)); f=$$((f + $$3)); \
	  else echo "FAIL $$t did not finish"; f=$$((f + 1)); rc=1; fi; \
	done; echo "$$p passed, $$f failed"; exit $$rc

$(CUDASIM_TEST_BIN): $(CUDASIM_CC_OBJ) $(CUDASIM_CU_OBJ)
	$(CUDASIM_CXX) $(CUDASIM_LDFLAGS) -o $@ $^

# The whole CUDA backend: its host code, before the archive it calls into.
$(CUDASIM_BUILD)/test_ops_model: $(CUDASIM_BUILD)/test_ops_model.o \
                                 $(CUDASIM_BUILD)/ref/tests/gpu/backend_compare.o $(CUDASIM_BACKEND_OBJ) \
                                 $(CUDASIM_EMU_OBJ) $(CUDASIM_REF_LIB)
	$(CUDASIM_CXX) $(CUDASIM_LDFLAGS) -o $@ $^ -lm

# The batched step (graphs per bucket, mixed adapters, invariance), likewise.
$(CUDASIM_BUILD)/test_ops_batch: $(CUDASIM_BUILD)/test_ops_batch.o $(CUDASIM_BACKEND_OBJ) \
                                 $(CUDASIM_EMU_OBJ) $(CUDASIM_REF_LIB)
	$(CUDASIM_CXX) $(CUDASIM_LDFLAGS) -o $@ $^ -lm

# LoRA adapters on the whole CUDA backend, likewise.
$(CUDASIM_BUILD)/test_ops_lora: $(CUDASIM_BUILD)/test_ops_lora.o $(CUDASIM_BACKEND_OBJ) \
                                $(CUDASIM_EMU_OBJ) $(CUDASIM_REF_LIB)
	$(CUDASIM_CXX) $(CUDASIM_LDFLAGS) -o $@ $^ -lm

$(CUDASIM_BUILD)/test_ops_%: $(CUDASIM_BUILD)/test_ops_%.o $(CUDASIM_EMU_OBJ) $(CUDASIM_REF_LIB)
	$(CUDASIM_CXX) $(CUDASIM_LDFLAGS) -o $@ $^ -lm

$(CUDASIM_BUILD)/test_ops_%.o: $(CUDASIM_DIR)/test_ops_%.cc
	@mkdir -p $(@D)
	$(CUDASIM_CXX) $(CUDASIM_CPPFLAGS) -Iinclude -Ilib -Itests/gpu $(CUDASIM_CXXFLAGS) -c $< -o $@

$(CUDASIM_REF_LIB): $(CUDASIM_REF_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(CUDASIM_BUILD)/kernels/%.cu.o: kernels/%.cu
	@mkdir -p $(@D)
	$(CUDASIM_CXX) $(CUDASIM_CPPFLAGS) $(CUDASIM_CXXFLAGS) -x c++ -c $< -o $@

$(CUDASIM_BUILD)/ref/%.o: %.c
	@mkdir -p $(@D)
	$(CUDASIM_CC) $(CUDASIM_REF_CFLAGS) -c $< -o $@

include lib/model/arch/registry.mk
$(CUDASIM_BUILD)/ref/lib/model/tensors.o: $(ARCH_LIST)
$(CUDASIM_BUILD)/ref/lib/model/tensors.o: CUDASIM_REF_CFLAGS += -I$(BUILD)/gen

$(CUDASIM_BUILD)/%.o: $(CUDASIM_DIR)/%.cc
	@mkdir -p $(@D)
	$(CUDASIM_CXX) $(CUDASIM_CPPFLAGS) $(CUDASIM_CXXFLAGS) -c $< -o $@

$(CUDASIM_BUILD)/%.cu.o: $(CUDASIM_DIR)/%.cu
	@mkdir -p $(@D)
	$(CUDASIM_CXX) $(CUDASIM_CPPFLAGS) $(CUDASIM_CXXFLAGS) -x c++ -c $< -o $@

# One object per kernel file and architecture, each depending on the headers
# nvcc reports (-MMD) and on this file (the flags), so a second check with
# nothing changed runs no nvcc.  ptxas -v reports: $(CUDASIM_BUILD)/nvcc/*.log.
CUDASIM_NVCC_DIR   = $(CUDASIM_BUILD)/nvcc
CUDASIM_NVCC_FLAGS := -std=c++17 -Ikernels -Werror all-warnings -Xcompiler -Wall,-Wextra,-Werror \
                      -Xptxas -v,-warn-spills,-warn-lmem-usage,-Werror -MMD -MP
CUDASIM_NVCC_OBJ   = $(foreach a,$(CUDASIM_NVCC_ARCHS),$(CUDASIM_NVCC_DIR)/test_kernels.sm_$(a).o \
                       $(patsubst kernels/%.cu,$(CUDASIM_NVCC_DIR)/%.sm_$(a).o,$(CUDASIM_KERNEL_CU)))
# $(1): the architecture, $(2): extra flags; on failure the log is shown and no object kept.
cudasim_nvcc = @mkdir -p $(@D); echo "nvcc sm_$(1) $<"; \
  $(CUDASIM_NVCC) $(CUDASIM_NVCC_FLAGS) -arch=sm_$(1) $(2) -MF $(@:.o=.d) -c $< -o $@ 2> $(@:.o=.log) \
  || { cat $(@:.o=.log); rm -f $@; exit 1; }
define CUDASIM_NVCC_RULES
$$(CUDASIM_NVCC_DIR)/test_kernels.sm_$(1).o: $$(CUDASIM_TEST_CU) $$(CUDASIM_DIR)/cudasim.mk
	$$(call cudasim_nvcc,$(1),-I$$(CUDASIM_DIR))
$$(CUDASIM_NVCC_DIR)/%.sm_$(1).o: kernels/%.cu $$(CUDASIM_DIR)/cudasim.mk
	$$(call cudasim_nvcc,$(1))
endef
$(foreach a,$(CUDASIM_NVCC_ARCHS),$(eval $(call CUDASIM_NVCC_RULES,$(a))))

cudasim-nvcc-check: $(CUDASIM_NVCC_OBJ)
	@echo "cudasim-nvcc-check: ok ($(CUDASIM_NVCC_ARCHS))"

cudasim-clean:
	rm -rf $(CUDASIM_BUILD)

-include $(wildcard $(CUDASIM_BUILD)/*.d $(CUDASIM_BUILD)/kernels/*.d $(CUDASIM_BUILD)/ref/tests/gpu/*.d \
                   $(CUDASIM_NVCC_DIR)/*.d \
                   $(patsubst %.o,%.d,$(CUDASIM_REF_OBJ) $(CUDASIM_BACKEND_OBJ)))

.PRECIOUS: $(CUDASIM_BUILD)/test_ops_%.o

.DEFAULT_GOAL := $(CUDASIM_SAVED_GOAL)
