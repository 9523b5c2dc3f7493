#!/bin/bash
# tests/fuzz/run.sh [SECONDS]: runs every libFuzzer harness (build/san/fuzz/,
# `make fuzz-build`) for SECONDS (default 20) on its corpus, one at a time,
# and prints one line per harness with its executions. A crash, leak,
# timeout (30 s for one input: a hang, not the slowness of a loaded machine)
# or sanitiser report fails the harness and leaves the input in
# build/san/fuzz/artifacts/ (add it to tests/fuzz/corpus/NAME/ once fixed).
cd "$(dirname "$0")/../.." || exit 1
S=${1:-20}
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1" UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export OMP_NUM_THREADS=1
fail=0
# the repository's inputs (models/, the seed corpora) as they were: a harness
# must never write into the repository (fuzz_cli once wrote over the default
# model). Sources are left out, so that editing them during a run is no finding.
tracked() { git ls-files -z models tests/fuzz/corpus 2>/dev/null | xargs -0 sha256sum 2>/dev/null | sha256sum; }
before=$(tracked)
mkdir -p build/san/fuzz/artifacts build/san/fuzz/logs
for h in build/san/fuzz/fuzz_*; do
    case $h in *.d) continue ;; esac
    name=$(basename "$h" | sed 's/^fuzz_//')
    corpus=$PWD/build/san/fuzz/corpus/$name   # absolute: fuzz_cli works in a folder of its own
    mkdir -p "$corpus"
    cp -n tests/fuzz/corpus/$name/* "$corpus"/ 2>/dev/null   # the committed seeds; new finds stay in build/
    log=build/san/fuzz/logs/$name.log
    "$h" -max_total_time="$S" -timeout=30 -rss_limit_mb=1024 -max_len=65536 -print_final_stats=1 \
        -artifact_prefix=$PWD/build/san/fuzz/artifacts/$name- "$corpus" > "$log" 2>&1
    rc=$?
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')
    if [ $rc = 0 ]; then
        echo "ok   fuzz $name: ${S} s, ${execs:-?} executions, no finding"
    else
        fail=$((fail + 1))
        echo "FAIL fuzz $name: exit $rc after ${execs:-?} executions: $(grep -m1 'ERROR\|runtime error\|Timeout\|out-of-memory' "$log")"
    fi
    now=$(tracked)
    if [ "$now" != "$before" ]; then
        fail=$((fail + 1))
        echo "FAIL fuzz $name changed a file of the repository: $(git status --short -uno models tests/fuzz/corpus | head -3 | tr '\n' ' ')"
        before=$now
    fi
done
[ $fail = 0 ]
