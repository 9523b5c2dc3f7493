#!/usr/bin/env bash
# test_api_tsan.sh: tests/test_api_threads.c under ThreadSanitizer (clang,
# build/tsan/test_api_threads from `make test`): four threads on one model,
# no data race reported. OpenMP and OpenBLAS get one thread each, so the only
# threads are the test's own (libgomp and OpenBLAS are not instrumented, and
# their pools would be reported falsely).
set -u
cd "$(dirname "$0")/.."
exe=build/tsan/test_api_threads
[ -x "$exe" ] || { echo "FAIL ThreadSanitizer thread test: $exe missing (make build/tsan/test_api_threads)"; exit 1; }
nm "$exe" | grep -q __tsan_init || { echo "FAIL ThreadSanitizer thread test: $exe is not built with -fsanitize=thread"; exit 1; }
out=$(OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 TSAN_OPTIONS="halt_on_error=0 exitcode=66" "$exe" 2>&1); rc=$?
grep '^ok ' <<< "$out" | sed 's/^ok   /ok   [tsan] /'
grep '^FAIL' <<< "$out"
races=$(grep -c 'WARNING: ThreadSanitizer' <<< "$out")
if [ "$races" -eq 0 ] && [ $rc -eq 0 ]; then echo "ok   ThreadSanitizer: no reports (4 threads, one shared model)"
else echo "FAIL ThreadSanitizer: $races reports, exit status $rc"; grep -A8 'WARNING: ThreadSanitizer' <<< "$out" | head -30 | sed 's/^/#   /'; exit 1; fi
