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
LDLIBS   = $(BLAS_LIBS) -llapacke -lpng -ljpeg -lz -lcjson -lmicrohttpd -lfftw3f -lpthread -lm
ASAN     = -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer

LIB_SRC  = $(wildcard engine/*.c ops/*.c loaders/*.c train/*.c viscnn/*.c viscnn/server/*.c viscnn/api/*.c)
# The CLI is a client of the public API (include/viscnn.h) and no part of the
# library: libviscnn.so and the installed libviscnn.a hold LIB_SRC alone
# (tests/test_abi.sh links the CLI's objects against libviscnn.so alone). The
# build tree's build/libviscnn.a carries the CLI's objects but main.o as well,
# for bin/viscnn, the MPI and CUDA binaries and the tests that run a command
# in-process.
CLI_SRC  = $(filter-out viscnn/cli/main.c,$(wildcard viscnn/cli/*.c))
CLI_OBJ  = $(CLI_SRC:%.c=build/obj/%.o)
# Built-in architectures (--arch NAME): every models/arch/*.json, embedded as a C file.
ARCH_JSON = $(sort $(wildcard models/arch/*.json))
LIB_SRC += build/gen/arch_templates.c
LIB_OBJ  = $(LIB_SRC:%.c=build/obj/%.o)
# The shared library (docs/api.md): soname libviscnn.so.MAJOR, file
# libviscnn.so.MAJOR.MINOR, versions from include/viscnn.h.
VC_MAJOR := $(shell sed -n 's/^\#define VISCNN_VERSION_MAJOR //p' include/viscnn.h)
VC_MINOR := $(shell sed -n 's/^\#define VISCNN_VERSION_MINOR //p' include/viscnn.h)
VC_PATCH := $(shell sed -n 's/^\#define VISCNN_VERSION_PATCH //p' include/viscnn.h)
SO_NAME  = libviscnn.so.$(VC_MAJOR)
SO_FILE  = build/libviscnn.so.$(VC_MAJOR).$(VC_MINOR)
TEST_SRC = $(wildcard tests/test_*.c)
TEST_BIN = $(TEST_SRC:tests/%.c=build/tests/%) build/tests/parity_run

.PHONY: all deps test clean data
all: deps bin/viscnn $(SO_FILE)

# Prints ✓/✗ for each dependency; installs what is missing, then re-probes.
deps:
	@OPENBLAS_DIR=$(OPENBLAS_DIR) NEED_TORCH=$(NEED_TORCH) NEED_WEB=$(NEED_WEB) scripts/probe.sh || (scripts/install-deps.sh && OPENBLAS_DIR=$(OPENBLAS_DIR) NEED_TORCH=$(NEED_TORCH) NEED_WEB=$(NEED_WEB) scripts/probe.sh)

# Library objects are position-independent (they make libviscnn.so too) and
# hide every symbol but the public API's (VC_API in include/viscnn.h).
# Objects rebuild when these flags change (build/obj/flags holds them).
OBJ_CC = $(CC) $(CFLAGS) -fPIC -fvisibility=hidden
build/obj/flags: FORCE
	@mkdir -p build/obj
	@echo '$(OBJ_CC)' | cmp -s - $@ || echo '$(OBJ_CC)' > $@
FORCE:
.PHONY: FORCE

build/obj/%.o: %.c build/obj/flags
	@mkdir -p $(dir $@)
	$(OBJ_CC) -c $< -o $@

build/gen/arch_templates.c: $(ARCH_JSON) models/arch scripts/embed_arch.sh
	@mkdir -p build/gen
	scripts/embed_arch.sh $(ARCH_JSON) > $@.tmp && mv $@.tmp $@

build/libviscnn.a: $(LIB_OBJ) $(CLI_OBJ) Makefile
	@rm -f $@
	ar rcs $@ $(filter-out Makefile,$^)

$(SO_FILE): $(LIB_OBJ) Makefile
	$(CC) $(CFLAGS) -shared -Wl,-soname,$(SO_NAME) -Wl,--no-undefined $(LIB_OBJ) -o $@ $(LDLIBS)
	ln -sf $(notdir $@) build/$(SO_NAME)
	ln -sf $(SO_NAME) build/libviscnn.so

# The installed static library: one relocatable object whose hidden symbols
# (everything but VC_API) are made local, so that a program linking it
# statically sees the public API alone and cannot clash with the internals.
# (build/libviscnn.a, for bin/viscnn and the tests, keeps them visible.)
build/dist/libviscnn.a: $(LIB_OBJ)
	@mkdir -p build/dist
	ld -r -o build/dist/viscnn.o $(LIB_OBJ)
	objcopy --localize-hidden build/dist/viscnn.o
	@rm -f $@
	ar rcs $@ build/dist/viscnn.o

# Programs relink when the Makefile (link flags) changes.
# (build/mpi/bin-is-mpi marks a bin/viscnn copied by make MPI=1, so that
# switching between the two builds always replaces it)
ifneq ($(MPI),1)
bin/viscnn: build/obj/viscnn/cli/main.o build/libviscnn.a Makefile $(if $(wildcard build/mpi/bin-is-mpi),FORCE)
	@mkdir -p bin
	$(CC) $(CFLAGS) $(filter-out Makefile FORCE,$^) -o $@ $(LDLIBS)
	@rm -f build/mpi/bin-is-mpi
else
bin/viscnn: build/mpi/viscnn $(if $(wildcard build/mpi/bin-is-mpi),,FORCE)
	@mkdir -p bin
	cp $< $@
	@touch build/mpi/bin-is-mpi
endif
FORCE:

# The MPI build (make MPI=1; docs/mpi.md): only viscnn/dist.c differs. It is
# compiled by mpicc with -DVC_MPI and linked ahead of the library, whose plain
# dist.o (one process) is then never pulled in. make test builds it when
# mpicc exists, for tests/test_mpi.py.
MPICC ?= mpicc
build/mpi/dist.o: viscnn/dist.c viscnn/dist.h Makefile
	@mkdir -p build/mpi
	$(MPICC) $(CFLAGS) -DVC_MPI -c $< -o $@
build/mpi/viscnn: build/obj/viscnn/cli/main.o build/mpi/dist.o build/libviscnn.a Makefile
	$(MPICC) $(CFLAGS) $(filter-out Makefile,$^) -o $@ $(LDLIBS)
test-build: $(if $(shell command -v $(MPICC) 2>/dev/null),build/mpi/viscnn)

build/tests/%: tests/%.c build/libviscnn.a Makefile
	@mkdir -p build/tests
	$(CC) $(CFLAGS) -Itests -Iops $< build/libviscnn.a -o $@ $(LDLIBS)

# The same CLI under AddressSanitizer + UBSan, for the bad-input tests.
build/asan/viscnn: Makefile $(LIB_SRC) $(CLI_SRC) viscnn/cli/main.c $(wildcard include/*.h engine/*.h ops/*.h loaders/*.h train/*.h viscnn/*.h viscnn/cli/*.h viscnn/server/*.h)
	@mkdir -p build/asan
	$(CC) -std=gnu11 -Wall -Wextra -fopenmp -Iinclude $(ASAN) $(LIB_SRC) $(CLI_SRC) viscnn/cli/main.c -o $@ $(LDLIBS)

# The public API's thread test under ThreadSanitizer (clang; OpenMP and
# OpenBLAS run one thread each inside it, so every thread TSan sees is one of
# the test's own: libgomp is not instrumented). tests/test_api_tsan.sh runs it.
build/tsan/test_api_threads: Makefile tests/test_api_threads.c $(LIB_SRC) $(wildcard include/*.h engine/*.h ops/*.h loaders/*.h train/*.h viscnn/*.h viscnn/*/*.h)
	@mkdir -p build/tsan
	clang -std=gnu11 -fopenmp=libgomp -Iinclude -Itests -O1 -g -fsanitize=thread -fno-omit-frame-pointer $(LIB_SRC) tests/test_api_threads.c -o $@ $(LDLIBS)

test: NEED_TORCH=1
test: NEED_WEB=1
ifneq ($(SAN),1)
# Everything the tests run is built first, on every core (after deps, which
# may install packages), then tests/run.sh runs.
test: deps
	@$(MAKE) --no-print-directory -j$$(nproc) test-build
	@NEED_TORCH=1 tests/run.sh
test-build: bin/viscnn $(SO_FILE) build/asan/viscnn build/tsan/test_api_threads $(TEST_BIN) fuzz-build
.PHONY: test-build
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

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_BIN:=.d)

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

# ---- install (docs/api.md) ----------------------------------------------------
# make install PREFIX=/usr/local DESTDIR=: the CLI, the shared library with its
# links, the static library, the public header, pkg-config, the docs.
# make uninstall removes exactly the files install writes (and the doc folder
# once empty); the folders above them stay.
PREFIX  ?= /usr/local
DESTDIR ?=
LIBDIR   = $(PREFIX)/lib
VC_PC_LIBS = $(LDLIBS) -fopenmp
INSTALL_DOCS = README.md $(wildcard docs/*.md)
build/viscnn.pc: Makefile include/viscnn.h
	@mkdir -p build
	printf 'prefix=%s\nlibdir=%s\nincludedir=%s\n\nName: viscnn\nDescription: CNN microscope: exact per-kernel edge maps, importance, circuits\nVersion: %s\nLibs: -L$${libdir} -lviscnn\nLibs.private: %s\nCflags: -I$${includedir}\n' \
	  '$(PREFIX)' '$${prefix}/lib' '$${prefix}/include' '$(VC_MAJOR).$(VC_MINOR).$(VC_PATCH)' '$(VC_PC_LIBS)' > $@

install: all build/viscnn.pc build/dist/libviscnn.a
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/share/doc/viscnn
	install -m 755 bin/viscnn $(DESTDIR)$(PREFIX)/bin/viscnn
	install -m 755 $(SO_FILE) $(DESTDIR)$(LIBDIR)/$(notdir $(SO_FILE))
	ln -sf $(notdir $(SO_FILE)) $(DESTDIR)$(LIBDIR)/$(SO_NAME)
	ln -sf $(SO_NAME) $(DESTDIR)$(LIBDIR)/libviscnn.so
	install -m 644 build/dist/libviscnn.a $(DESTDIR)$(LIBDIR)/libviscnn.a
	install -m 644 include/viscnn.h $(DESTDIR)$(PREFIX)/include/viscnn.h
	install -m 644 build/viscnn.pc $(DESTDIR)$(LIBDIR)/pkgconfig/viscnn.pc
	install -m 644 $(INSTALL_DOCS) $(DESTDIR)$(PREFIX)/share/doc/viscnn/
	@# the man page is generated from the CLI's help table (`viscnn help --man`,
	@# the CLI issue); until that command exists it is reported, not installed
	@if bin/viscnn help --man > build/viscnn.1 2>/dev/null && head -1 build/viscnn.1 | grep -q "^\.TH"; then \
	  install -d $(DESTDIR)$(PREFIX)/share/man/man1 && install -m 644 build/viscnn.1 $(DESTDIR)$(PREFIX)/share/man/man1/viscnn.1 && \
	  echo "installed $(DESTDIR)$(PREFIX)/share/man/man1/viscnn.1"; \
	else rm -f build/viscnn.1; echo "✗ man page: bin/viscnn has no 'help --man' yet (the CLI issue adds it): viscnn.1 not installed"; fi

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/viscnn $(DESTDIR)$(LIBDIR)/$(notdir $(SO_FILE)) $(DESTDIR)$(LIBDIR)/$(SO_NAME) \
	  $(DESTDIR)$(LIBDIR)/libviscnn.so $(DESTDIR)$(LIBDIR)/libviscnn.a $(DESTDIR)$(PREFIX)/include/viscnn.h \
	  $(DESTDIR)$(LIBDIR)/pkgconfig/viscnn.pc $(DESTDIR)$(PREFIX)/share/man/man1/viscnn.1 $(addprefix $(DESTDIR)$(PREFIX)/share/doc/viscnn/,$(notdir $(INSTALL_DOCS)))
	-rmdir $(DESTDIR)$(PREFIX)/share/doc/viscnn 2>/dev/null
.PHONY: install uninstall
# The CUDA flavour (issue 17): make cuda / make CUDA=1, make gpu-bundle (docs/cuda.md).
include kernels_cuda/cuda.mk
# ---- SAN=1 (issue 14): everything built with clang, AddressSanitizer and
# UBSan, no recovery, into build/san/ (its own objects, library, CLI and C
# tests); `make test SAN=1` runs the C unit tests and the CLI tests under it
# (tests/run_san.sh). `make san` only builds.
SAN_CC    = clang
SAN_FLAGS = -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all \
            -fsanitize=fuzzer-no-link \
            -std=gnu11 -Wall -Wextra -fopenmp -Iinclude -MMD -MP
SAN_OBJ   = $(LIB_SRC:%.c=build/san/obj/%.o) $(CLI_SRC:%.c=build/san/obj/%.o)
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
# fuzz_cli drives the CLI in-process: main.c renamed, the command files beside it
SAN_CLI_OBJ = $(patsubst %.c,build/san/obj/%.o,$(filter-out viscnn/cli/main.c,$(wildcard viscnn/cli/*.c)))
build/san/obj/viscnn/cli/main_fuzz.o: viscnn/cli/main.c
	@mkdir -p $(dir $@)
	$(SAN_CC) $(SAN_FLAGS) -Dmain=viscnn_cli_main -c $< -o $@
build/san/fuzz/fuzz_cli: tests/fuzz/fuzz_cli.c tests/fuzz/fuzz_util.h build/san/obj/viscnn/cli/main_fuzz.o $(SAN_CLI_OBJ) build/san/libviscnn.a Makefile
	@mkdir -p build/san/fuzz
	$(SAN_CC) $(SAN_FLAGS) -fsanitize=fuzzer -Itests $< build/san/obj/viscnn/cli/main_fuzz.o $(SAN_CLI_OBJ) build/san/libviscnn.a -o $@ $(LDLIBS)
fuzz-build: $(FUZZ_BINS)
fuzz: fuzz-build
	tests/fuzz/run.sh $(FUZZ_S)
.PHONY: fuzz fuzz-build

-include $(SAN_OBJ:.o=.d) $(SAN_TESTS:=.d)
