#!/usr/bin/env bash
# run.sh: the whole test suite (called by `make test`). Each test program
# prints one "ok   ..." or "FAIL ...: reason" line per case; a program that
# exits non-zero without a FAIL line counts as one failure. Ends with
# "N passed, N failed" and exits non-zero on any failure.
set -u
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
# Idle OpenMP threads sleep instead of spinning: spinning threads fight
# OpenBLAS's own threads and, on a busy 2-core machine, made some tests 10x slower.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
DATA=build/testdata
mkdir -p "$DATA"
LOG=build/test.log
: > "$LOG"
pass=0 fail=0

# run LABEL VERBOSE CMD...: VERBOSE=1 prints every line, else FAILs and a count.
run() {
    local label=$1 verbose=$2; shift 2
    local out rc p f t0=$SECONDS
    out=$("$@" 2>&1); rc=$?
    printf '== %s\n%s\n' "$label" "$out" >> "$LOG"
    p=$(grep -c '^ok ' <<< "$out"); f=$(grep -c '^FAIL' <<< "$out")
    if [ "$verbose" = 1 ]; then grep -E '^(ok |FAIL|#)' <<< "$out"; else grep -E '^FAIL' <<< "$out"; fi
    if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "FAIL $label: exited with status $rc"; tail -5 <<< "$out" | sed 's/^/#   /'; f=1
    fi
    echo "-- $label: $p passed, $f failed ($((SECONDS - t0)) s)"
    pass=$((pass + p)); fail=$((fail + f))
}

# Many tests read data/ (make data: the default model's images); a clean
# clone has none, so it is made first.
if [ ! -d data/fashion ] || [ ! -d data/fashion-heldout ] || [ ! -d data/photos ]; then
    scripts/make-data.sh > build/make-data.log 2>&1 || { echo "FAIL make data (scripts/make-data.sh): $(tail -1 build/make-data.log)"; fail=$((fail + 1)); }
fi

# test_rf runs after the parity section: its real-AlexNet cases read the
# model that section converts
for src in tests/test_*.c; do
    t=build/tests/$(basename "$src" .c)
    [ "$t" = build/tests/test_rf ] || run "$(basename "$t")" 0 "$t"
done

# The CUDA backend (issue 17, docs/cuda.md): `make test` builds these wherever
# nvcc exists (kernels_cuda/cuda.mk). On a machine without a GPU they print
# "# cuda: no device (...), N CUDA tests not run", which counts as neither
# passed nor failed; with one, every case is compared with the CPU backend.
cuda_built=1
for src in tests/cuda/test_*.c; do [ -x "build/cuda/tests/$(basename "$src" .c)" ] || cuda_built=0; done
if [ $cuda_built = 1 ]; then
    for src in tests/cuda/test_*.c; do
        t=build/cuda/tests/$(basename "$src" .c)
        run "$(basename "$t") (CUDA backend vs CPU backend)" 1 "$t"
    done
elif [ -x /usr/local/cuda/bin/nvcc ] || command -v nvcc >/dev/null 2>&1; then
    echo "FAIL cuda tests: nvcc is here but build/cuda/tests/test_cuda_* were not built (make test builds them)"
    fail=$((fail + 1))
else
    echo "# cuda: no nvcc on this machine, the CUDA backend was not compiled"
fi

run "converter (tools/torch2viscnn.py)" 1 $PY tests/test_converter.py

# Parity with PyTorch: seeded random weights, eval mode, batch 2.
for m in alexnet vgg11 resnet18 googlenet squeezenet1_1; do
    d=$DATA/$m
    if [ ! -f "$d/done" ] || [ tools/torch_dump.py -nt "$d/done" ] || [ tools/torch2viscnn.py -nt "$d/done" ]; then
        rm -rf "$d"
        if ! $PY tools/torch_dump.py --torchvision "$m" --seed 0 --batch 2 -o "$d" > "$DATA/$m.dump.log" 2>&1; then
            echo "FAIL parity $m: tools/torch_dump.py failed:"; tail -3 "$DATA/$m.dump.log" | sed 's/^/#   /'
            fail=$((fail + 1)); continue
        fi
        touch "$d/done"
    fi
    if ! build/tests/parity_run "$d" > "$DATA/$m.run.log" 2>&1; then
        echo "FAIL parity $m: parity_run failed: $(tail -1 "$DATA/$m.run.log")"; fail=$((fail + 1)); continue
    fi
    run "parity $m" 1 $PY tests/parity_check.py "$d" "$m"
    # What later tests read is model.safetensors of alexnet, resnet18 and
    # googlenet; the rest of the dump is removed so build/ stays small (the
    # next run dumps again).
    rm -f "$d/done" "$d/grads.safetensors" "$d/ours.safetensors" "$d/nodes.safetensors" "$d/decisions.npz"
    case $m in vgg11|squeezenet1_1) rm -rf "$d" ;; esac
done

run "test_rf" 0 build/tests/test_rf

run "cli" 1 tests/test_cli.sh
run "cli help, names, pictures, README examples" 1 $PY tests/test_cli_help.py
run "featvis CLI (reproducible PNGs, cache, --all, bad input)" 1 tests/test_featvis_cli.sh
run "analysis (importance, contrasts, circuits)" 1 $PY tests/test_analysis.py
run "circuits (modes, faithfulness, contrasts, edge ends on googlenet and resnet18)" 1 $PY tests/test_circuits.py
# The parity verdict must not depend on the thread count (issue 19): the
# importance parity test runs viscnn at this count and at a second one (1, or
# 3 when this is 1), reusing the oracle's references where the two counts make
# the same decisions (docs/parity.md).
T2=1; [ "$OMP_NUM_THREADS" = 1 ] && T2=3
run "importance parity with the PyTorch oracle (dissection, replayed decisions; $OMP_NUM_THREADS and $T2 threads)" 1 \
    $PY tests/test_importance_parity.py --threads "$OMP_NUM_THREADS,$T2"
run "CNN families: every torchvision family converts and matches PyTorch; parity on mobilenet_v2, efficientnet_b0, shufflenet_v2_x0_5, convnext_tiny" 1 \
    $PY tests/test_families.py
run "bad input (AddressSanitizer)" 1 $PY tests/test_bad_input.py
run "bad-input table (tests/bad_inputs: hostile files, truncations, PNG bomb, 100,000-node graph)" 1 $PY tests/bad_inputs/test_bad_inputs.py
# every libFuzzer harness for 20 s on its corpus (tests/fuzz/README.md; make fuzz FUZZ_S=600 for long runs)
if ls build/san/fuzz/fuzz_* >/dev/null 2>&1; then
    run "fuzzing (libFuzzer + ASan/UBSan, each harness 20 s)" 1 tests/fuzz/run.sh 20
else
    echo "FAIL fuzzing: build/san/fuzz/ has no harnesses (make fuzz-build; needs clang and libclang-rt-14-dev)"; fail=$((fail + 1))
fi
run "safe writes (SIGKILL/SIGINT/SIGTERM during a write, planted symlinks)" 1 $PY tests/bad_inputs/test_safe_write.py
run "pth checkpoints (native .pth, hostile files)" 1 $PY tests/test_pth.py
run "fashion default model and make data" 1 $PY tests/test_fashion.py
# the C library (issue 21): exported symbols, ThreadSanitizer, install +
# pkg-config + the examples against the CLI (on data/)
run "libviscnn.so exports (abi/symbols.txt)" 1 tests/test_abi.sh
run "C library threads under ThreadSanitizer" 1 tests/test_api_tsan.sh
run "C library: install, pkg-config, examples vs the CLI" 1 tests/test_install.sh
# MPI (issue 18): mpirun -np 1/2/3 against the single process, a failing
# rank, kill and resume (FAILs when OpenMPI or build/mpi/viscnn is missing)
run "mpi (mpirun -np 1/2/3 parity, failing rank, kill and resume)" 1 $PY tests/test_mpi.py
# The GUI: its server (bad requests under ASan, cache, timing), then the page
# in headless Chromium (screenshots in build/test-gui/)
run "viscnn serve (bad requests, concurrency, cache, timing)" 1 $PY tests/test_server.py
run "browser GUI (headless chromium + playwright-core)" 1 node tests/browser/test_gui.mjs

# The benchmarks still work (a tiny run of make bench; nothing is recorded).
run "benchmark smoke (benchmarks/run.sh --smoke)" 1 bash -c \
    'benchmarks/run.sh --smoke > build/bench_smoke.log 2>&1 && grep -q "importance scaling" build/bench_smoke.log &&
     echo "ok   benchmark smoke: make bench runs end to end (table in build/bench_smoke.log)"'

# Footprint (issue 14): what the suite leaves under build/.
# Models converted for one test and not read again (each is written again when
# missing): the CLI test's alexnet and the benchmark smoke's, 234 MB each.
rm -f build/testdata/cli/alexnet.safetensors build/bench/*.safetensors
echo "# build/ after the tests: $(du -sh build 2>/dev/null | cut -f1) (du -sh build)"
echo "(full log: $LOG)"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
