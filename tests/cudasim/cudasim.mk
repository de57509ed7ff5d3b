# tests/cudasim/cudasim.mk: the CUDA emulation harness (see docs/CUDA.md, "cudasim").
# A make fragment for the root Makefile (`include tests/cudasim/cudasim.mk`,
# after BUILD and SAN are final); also usable alone:
#   make -f tests/cudasim/cudasim.mk cudasim-test        [SAN=1] [BUILD=dir]
#   make -f tests/cudasim/cudasim.mk cudasim-nvcc-check  (needs nvcc; not part of cudasim-test)
# Targets:
#   cudasim-test        build $(BUILD)/cudasim/test_cudasim and run the self-tests
#                       (last line "N passed, N failed"; non-zero exit on failure)
#   cudasim-nvcc-check  compile the same kernels with nvcc for each CUDASIM_NVCC_ARCHS,
#                       host and device warnings as errors, ptxas spill report
#   cudasim-clean       remove $(BUILD)/cudasim

BUILD             ?= build
CUDA_HOME         ?= /usr/local/cuda
CUDASIM_CXX       ?= g++
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
CUDASIM_CXXFLAGS  := -std=c++17 -O1 -g -fno-strict-aliasing -Wall -Wextra -Werror -pthread -MMD -MP
CUDASIM_LDFLAGS   := -pthread
ifeq ($(SAN),1)
  CUDASIM_CXXFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  CUDASIM_LDFLAGS  += -fsanitize=address,undefined
endif

CUDASIM_RT_SRC    := $(CUDASIM_DIR)/fiber.cc $(CUDASIM_DIR)/cudasim.cc
CUDASIM_TEST_CC   := $(CUDASIM_DIR)/test_cudasim.cc
CUDASIM_TEST_CU   := $(CUDASIM_DIR)/test_kernels.cu
CUDASIM_CC_OBJ     = $(patsubst $(CUDASIM_DIR)/%.cc,$(CUDASIM_BUILD)/%.o,$(CUDASIM_RT_SRC) $(CUDASIM_TEST_CC))
CUDASIM_CU_OBJ     = $(patsubst $(CUDASIM_DIR)/%.cu,$(CUDASIM_BUILD)/%.cu.o,$(CUDASIM_TEST_CU))
CUDASIM_TEST_BIN   = $(CUDASIM_BUILD)/test_cudasim

.PHONY: cudasim-test cudasim-nvcc-check cudasim-clean

cudasim-test: $(CUDASIM_TEST_BIN)
	$(CUDASIM_TEST_BIN)

$(CUDASIM_TEST_BIN): $(CUDASIM_CC_OBJ) $(CUDASIM_CU_OBJ)
	$(CUDASIM_CXX) $(CUDASIM_LDFLAGS) -o $@ $^

$(CUDASIM_BUILD)/%.o: $(CUDASIM_DIR)/%.cc
	@mkdir -p $(@D)
	$(CUDASIM_CXX) $(CUDASIM_CPPFLAGS) $(CUDASIM_CXXFLAGS) -c $< -o $@

$(CUDASIM_BUILD)/%.cu.o: $(CUDASIM_DIR)/%.cu
	@mkdir -p $(@D)
	$(CUDASIM_CXX) $(CUDASIM_CPPFLAGS) $(CUDASIM_CXXFLAGS) -x c++ -c $< -o $@

cudasim-nvcc-check:
	@mkdir -p $(CUDASIM_BUILD)/nvcc
	@set -e; for a in $(CUDASIM_NVCC_ARCHS); do \
	  echo "nvcc sm_$$a $(CUDASIM_TEST_CU)"; \
	  $(CUDASIM_NVCC) -std=c++17 -arch=sm_$$a -Ikernels -I$(CUDASIM_DIR) \
	    -Werror all-warnings -Xcompiler -Wall,-Wextra,-Werror -Xptxas -v,-warn-spills,-warn-lmem-usage,-Werror \
	    -c $(CUDASIM_TEST_CU) -o $(CUDASIM_BUILD)/nvcc/test_kernels.sm_$$a.o 2> $(CUDASIM_BUILD)/nvcc/ptxas.sm_$$a.log \
	    || { cat $(CUDASIM_BUILD)/nvcc/ptxas.sm_$$a.log; exit 1; }; \
	done; echo "cudasim-nvcc-check: ok ($(CUDASIM_NVCC_ARCHS))"

cudasim-clean:
	rm -rf $(CUDASIM_BUILD)

-include $(wildcard $(CUDASIM_BUILD)/*.d)

.DEFAULT_GOAL := $(CUDASIM_SAVED_GOAL)
