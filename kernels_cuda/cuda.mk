# cuda.mk: the CUDA flavour (issue 17, docs/cuda.md), included by the Makefile.
# It builds into build/cuda/: the kernels_cuda/*.cu objects, linked with the
# same CPU objects (build/libviscnn.a) into build/cuda/bin/viscnn and the CUDA
# test programs build/cuda/tests/*. The engine finds the CUDA backend through
# a weak reference, so the CPU build needs nothing of this.
#   make cuda          the CUDA flavour (also: make CUDA=1)
#   make gpu-bundle    build/gpu-bundle.tar.gz: those programs plus every
#                      non-system shared library they load, found through an
#                      $ORIGIN rpath (for a machine without our packages)
# Code for sm_90 plus PTX (newer GPUs JIT it); CUDA_ARCH=sm_NN picks another.
NVCC      ?= $(firstword $(wildcard /usr/local/cuda/bin/nvcc) $(shell command -v nvcc 2>/dev/null))
CUDA_HOME ?= $(patsubst %/bin/nvcc,%,$(NVCC))
CUDA_ARCH ?= sm_90
CUDA_CC    = $(subst sm_,,$(CUDA_ARCH))
NVCCFLAGS ?= -O2 -g
NVCCFLAGS += -std=c++20 -Iinclude -MMD -MP -Xcompiler -Wall \
             -gencode arch=compute_$(CUDA_CC),code=sm_$(CUDA_CC) -gencode arch=compute_$(CUDA_CC),code=compute_$(CUDA_CC)
# cudart and libstdc++ statically (a bundled libstdc++ would need the build
# machine's glibc 2.36); cuBLAS from the machine's CUDA (too big to carry),
# found through LD_LIBRARY_PATH or these rpaths; our other libraries from ../lib.
CUDA_LIBS  = -L$(CUDA_HOME)/lib64 -lcublas -lcudart_static -ldl -lrt -l:libstdc++.a \
             -Wl,-rpath,'$$ORIGIN/../lib' -Wl,-rpath,$(CUDA_HOME)/lib64

CUDA_SRC  = $(wildcard kernels_cuda/*.cu)
CUDA_OBJ  = $(CUDA_SRC:%.cu=build/cuda/obj/%.o)
CUDA_TEST_BIN = $(patsubst tests/cuda/%.c,build/cuda/tests/%,$(wildcard tests/cuda/test_*.c))

build/cuda/obj/%.o: %.cu
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -c $< -o $@

build/cuda/bin/viscnn: build/obj/viscnn/cli/main.o $(CUDA_OBJ) build/libviscnn.a Makefile kernels_cuda/cuda.mk
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) build/obj/viscnn/cli/main.o $(CUDA_OBJ) build/libviscnn.a -o $@ $(LDLIBS) $(CUDA_LIBS)

build/cuda/tests/%: tests/cuda/%.c $(CUDA_OBJ) build/libviscnn.a Makefile kernels_cuda/cuda.mk
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests -Iops -Ikernels_cuda -I$(CUDA_HOME)/include $< $(CUDA_OBJ) build/libviscnn.a -o $@ $(LDLIBS) $(CUDA_LIBS)

.PHONY: cuda gpu-bundle
ifeq ($(NVCC),)
cuda:
	@echo "make cuda: no nvcc (CUDA toolkit) found; set NVCC=/path/to/nvcc" >&2; exit 2
else
cuda: deps build/cuda/bin/viscnn $(CUDA_TEST_BIN)
	@echo "CUDA flavour ($(CUDA_ARCH) + PTX, $(NVCC)): build/cuda/bin/viscnn, $(CUDA_TEST_BIN)"
# CI compiles the CUDA code on every `make test` wherever nvcc exists (tests/run.sh runs what it built)
test-build: $(CUDA_TEST_BIN) build/cuda/bin/viscnn
endif
ifeq ($(CUDA),1)
all: cuda
endif

gpu-bundle: cuda build/bench/gpu_bench
	scripts/gpu_bundle.sh build/gpu-bundle build/cuda/bin/viscnn $(CUDA_TEST_BIN) build/bench/gpu_bench

build/bench/gpu_bench: benchmarks/gpu_bench.c $(CUDA_OBJ) build/libviscnn.a Makefile kernels_cuda/cuda.mk
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -I$(CUDA_HOME)/include $< $(CUDA_OBJ) build/libviscnn.a -o $@ $(LDLIBS) $(CUDA_LIBS)

-include $(CUDA_OBJ:.o=.d)
