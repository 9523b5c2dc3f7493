# viscnn build. `make` builds build/libviscnn.a and bin/viscnn; `make test`
# runs the whole suite (tests/run.sh). Missing Debian packages are installed
# by scripts/install-deps.sh when the probe finds something missing.
CC      ?= cc
CFLAGS  ?= -O2 -g
CFLAGS  += -std=gnu11 -Wall -Wextra -fopenmp -Iinclude -MMD -MP
# OpenBLAS built with OpenMP (Debian's libopenblas0-openmp), not the default
# pthreads build: our ops parallelise with OpenMP too, and two thread pools
# spin against each other on the cores (resnet18 forward ran 2.6x slower with
# the pthreads build). DT_RPATH (--disable-new-dtags) also makes liblapacke's
# liblapack.so.3 resolve in that folder, so one OpenBLAS is loaded.
OPENBLAS_DIR ?= /usr/lib/$(shell $(CC) -print-multiarch)/openblas-openmp
BLAS_LIBS = -L$(OPENBLAS_DIR) -l:libopenblas.so.0 -Wl,-rpath,$(OPENBLAS_DIR) -Wl,--disable-new-dtags
LDLIBS   = $(BLAS_LIBS) -llapacke -lpng -ljpeg -lz -lcjson -lmicrohttpd -lpthread -lm
ASAN     = -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer

LIB_SRC  = $(wildcard engine/*.c ops/*.c loaders/*.c train/*.c viscnn/*.c viscnn/server/*.c) $(filter-out viscnn/cli/main.c,$(wildcard viscnn/cli/*.c))
# Built-in architectures (--arch NAME): every models/arch/*.json, embedded as a C file.
ARCH_JSON = $(sort $(wildcard models/arch/*.json))
LIB_SRC += build/gen/arch_templates.c
LIB_OBJ  = $(LIB_SRC:%.c=build/obj/%.o)
TEST_SRC = $(wildcard tests/test_*.c)
TEST_BIN = $(TEST_SRC:tests/%.c=build/tests/%) build/tests/parity_run

.PHONY: all deps test clean data
all: deps bin/viscnn

# Prints ✓/✗ for each dependency; installs what is missing, then re-probes.
deps:
	@OPENBLAS_DIR=$(OPENBLAS_DIR) NEED_TORCH=$(NEED_TORCH) NEED_WEB=$(NEED_WEB) scripts/probe.sh || (scripts/install-deps.sh && OPENBLAS_DIR=$(OPENBLAS_DIR) NEED_TORCH=$(NEED_TORCH) NEED_WEB=$(NEED_WEB) scripts/probe.sh)

build/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

build/gen/arch_templates.c: $(ARCH_JSON) models/arch scripts/embed_arch.sh
	@mkdir -p build/gen
	scripts/embed_arch.sh $(ARCH_JSON) > $@.tmp && mv $@.tmp $@

build/libviscnn.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

# Programs relink when the Makefile (link flags) changes.
bin/viscnn: build/obj/viscnn/cli/main.o build/libviscnn.a Makefile
	@mkdir -p bin
	$(CC) $(CFLAGS) $(filter-out Makefile,$^) -o $@ $(LDLIBS)

build/tests/%: tests/%.c build/libviscnn.a Makefile
	@mkdir -p build/tests
	$(CC) $(CFLAGS) -Itests -Iops $< build/libviscnn.a -o $@ $(LDLIBS)

# The same CLI under AddressSanitizer + UBSan, for the bad-input tests.
build/asan/viscnn: Makefile $(LIB_SRC) viscnn/cli/main.c $(wildcard include/*.h engine/*.h ops/*.h loaders/*.h train/*.h viscnn/*.h viscnn/cli/*.h viscnn/server/*.h)
	@mkdir -p build/asan
	$(CC) -std=gnu11 -Wall -Wextra -fopenmp -Iinclude $(ASAN) $(LIB_SRC) viscnn/cli/main.c -o $@ $(LDLIBS)

test: NEED_TORCH=1
test: NEED_WEB=1
ifneq ($(SAN),1)
test: deps bin/viscnn build/asan/viscnn $(TEST_BIN)
	@NEED_TORCH=1 tests/run.sh
else
test: san
	@tests/run_san.sh
endif

clean:
	rm -rf build bin

# Small image sets for the demos, the tests and the GUI (not committed; data/
# is ignored): data/fashion/<label>/NNNNN.png (50 Fashion-MNIST test images
# per class), data/fashion-heldout/<label>/ (the next 50, for held-out
# faithfulness) and data/photos/ (photographs from python3-skimage and darknet).
data:
	@[ -d /usr/share/datasets/fashion-mnist ] && [ -d /usr/share/darknet/data ] || scripts/install-deps.sh
	scripts/make-data.sh

-include $(LIB_OBJ:.o=.d) $(TEST_BIN:=.d)

# The README's main job, on the embedded default model (a Fashion-MNIST
# AlexNet-style net trained by `viscnn train`, models/fashion.safetensors):
# what it is, the circuit behind one class (chosen from that class's images,
# measured on held-out ones), then the browser GUI over its image set (make
# data). The server precomputes the first view (scores, layout,
# faithfulness; cached in build/serve-cache, so a second start is instant),
# prints the URL, and runs until Ctrl-C. PORT=N picks another port.
DEFAULT_MODEL = models/fashion.safetensors
demo: NEED_WEB=1
demo: deps bin/viscnn data
	@bin/viscnn info $(DEFAULT_MODEL) | tail -4
	@mkdir -p build/demo
	bin/viscnn circuit $(DEFAULT_MODEL) --images data/fashion/sneaker --target class:7 --mode keep:0.1 --faithfulness --eval-images data/fashion-heldout/sneaker -o build/demo/circuit_sneaker.json
	@echo "circuit JSON: build/demo/circuit_sneaker.json (layers, kept nodes and kernels with both ends and scores, held-out faithfulness)"
	bin/viscnn serve $(DEFAULT_MODEL) --images data/fashion --cache build/serve-cache --port $(or $(PORT),8050)
.PHONY: demo

build/bench/%: benchmarks/%.c build/libviscnn.a Makefile
	@mkdir -p build/bench
	$(CC) $(CFLAGS) $< build/libviscnn.a -o $@ $(LDLIBS)

# Benchmarks against PyTorch (not part of the tests): prints a table of
# ratios and appends it to benchmarks/RESULTS.md.
bench: NEED_TORCH=1
bench: deps bin/viscnn build/bench/bench_run
	benchmarks/run.sh
.PHONY: bench

# Class circuits of the default model on held-out images (issue 12): prints
# the tables recorded in benchmarks/RESULTS.md.
bench-circuits: build/bench/circuits
	build/bench/circuits
.PHONY: bench-circuits

# ---- SAN=1 (issue 14): everything built with clang, AddressSanitizer and
# UBSan, no recovery, into build/san/ (its own objects, library, CLI and C
# tests); `make test SAN=1` runs the C unit tests and the CLI tests under it
# (tests/run_san.sh). `make san` only builds.
SAN_CC    = clang
SAN_FLAGS = -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all \
            -fsanitize=fuzzer-no-link \
            -std=gnu11 -Wall -Wextra -fopenmp -Iinclude -MMD -MP
SAN_OBJ   = $(LIB_SRC:%.c=build/san/obj/%.o)
SAN_TESTS = $(TEST_SRC:tests/%.c=build/san/tests/%)

build/san/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(SAN_CC) $(SAN_FLAGS) -c $< -o $@

build/san/libviscnn.a: $(SAN_OBJ)
	@rm -f $@
	ar rcs $@ $^

build/san/bin/viscnn: build/san/obj/viscnn/cli/main.o build/san/libviscnn.a Makefile
	@mkdir -p build/san/bin
	$(SAN_CC) $(SAN_FLAGS) $(filter-out Makefile,$^) -o $@ $(LDLIBS)

build/san/tests/%: tests/%.c build/san/libviscnn.a Makefile
	@mkdir -p build/san/tests
	$(SAN_CC) $(SAN_FLAGS) -Itests -Iops $< build/san/libviscnn.a -o $@ $(LDLIBS)

san: build/san/bin/viscnn $(SAN_TESTS)
.PHONY: san

# libFuzzer harnesses (tests/fuzz/README.md) against the SAN library (its
# objects carry the fuzzer's coverage instrumentation: fuzzer-no-link above).
# `make fuzz FUZZ_S=600` runs each harness that many seconds, one at a time.
FUZZ_S    ?= 20
FUZZ_BINS  = $(patsubst tests/fuzz/%.c,build/san/fuzz/%,$(wildcard tests/fuzz/fuzz_*.c))
build/san/fuzz/%: tests/fuzz/%.c tests/fuzz/fuzz_util.h build/san/libviscnn.a Makefile
	@mkdir -p build/san/fuzz
	$(SAN_CC) $(SAN_FLAGS) -fsanitize=fuzzer -Itests $< build/san/libviscnn.a -o $@ $(LDLIBS)
fuzz-build: $(FUZZ_BINS)
fuzz: fuzz-build
	tests/fuzz/run.sh $(FUZZ_S)
.PHONY: fuzz fuzz-build

-include $(SAN_OBJ:.o=.d) $(SAN_TESTS:=.d)
