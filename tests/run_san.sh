#!/bin/bash
# tests/run_san.sh: `make test SAN=1` (issue 14). The C unit tests and the
# CLI tests, all built with clang -fsanitize=address,undefined
# -fno-sanitize-recover=all (build/san/). A test passes when it passes and
# no sanitiser wrote a report. Ends with "N passed, N failed".
cd "$(dirname "$0")/.." || exit 1
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:abort_on_error=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
PY=/usr/bin/python3
L=build/san/logs
mkdir -p "$L"
pass=0 fail=0
run() {   # label, command...
    local label=$1; shift
    local log="$L/$(tr -c 'a-zA-Z0-9_.-' _ <<< "$label").log"
    local t0=$SECONDS
    "$@" > "$log" 2>&1
    local rc=$?
    if [ $rc = 0 ] && ! grep -q "Sanitizer\|runtime error:" "$log"; then
        pass=$((pass + 1)); echo "ok   $label ($((SECONDS - t0)) s)"
    else
        fail=$((fail + 1)); echo "FAIL $label: exit $rc$(grep -q 'Sanitizer\|runtime error:' "$log" && echo ', sanitiser report'), see $log"
        grep -m3 "FAIL\|ERROR: \|runtime error:" "$log" | sed 's/^/     /'
    fi
}
[ -x build/san/bin/viscnn ] || { echo "FAIL build/san/bin/viscnn is missing (make san)"; exit 1; }
# test_rf reads the alexnet model that tests/run.sh's parity step writes
if [ ! -f build/testdata/alexnet/model.safetensors ]; then
    $PY tools/torch_dump.py --torchvision alexnet --seed 0 --batch 2 -o build/testdata/alexnet > "$L/alexnet.dump.log" 2>&1 ||
        echo "FAIL tools/torch_dump.py alexnet (see $L/alexnet.dump.log): test_rf will fail"
fi
# (test_class_circuits is the slowest: about 3 minutes of CPU under ASan,
# 15 minutes of wall time on a loaded 2-core machine)
for t in build/san/tests/test_*; do
    case $t in *.d) continue ;; esac
    run "SAN $(basename "$t")" "$t"
done
run "SAN cli (tests/test_cli.sh)" env VISCNN=build/san/bin/viscnn tests/test_cli.sh
run "SAN bad-input table" $PY tests/bad_inputs/test_bad_inputs.py build/san/bin/viscnn
run "SAN safe writes" $PY tests/bad_inputs/test_safe_write.py build/san/bin/viscnn
echo "SAN=1: $pass passed, $fail failed"
[ $fail = 0 ]
