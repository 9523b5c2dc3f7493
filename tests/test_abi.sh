#!/usr/bin/env bash
# test_abi.sh: libviscnn.so exports the public API and nothing else (vc_*
# only), and no symbol of abi/symbols.txt disappears without a major version
# bump (a new soname). Needs the shared library (make).
set -u
cd "$(dirname "$0")/.."
fails=0
ok()   { echo "ok   $1"; }
fail() { echo "FAIL $1: $2"; fails=$((fails + 1)); }
major=$(sed -n 's/^#define VISCNN_VERSION_MAJOR //p' include/viscnn.h)
minor=$(sed -n 's/^#define VISCNN_VERSION_MINOR //p' include/viscnn.h)
so=build/libviscnn.so.$major.$minor
[ -f "$so" ] || { fail "$so" "missing (make)"; exit 1; }
T=$(mktemp -d /tmp/viscnn-abi.XXXXXX)
trap 'rm -rf "$T"' EXIT
scripts/abi-symbols.sh "$so" > "$T/now.txt"
bad=$(grep -v '^#' "$T/now.txt" | grep -v '^vc_')
[ -z "$bad" ] && ok "$so exports only vc_* symbols ($(grep -vc '^#' "$T/now.txt"))" || fail "exports" "not vc_*: $(echo $bad | head -c 300)"
# every function VC_API declares in include/viscnn.h is exported
decl=$(grep -o 'VC_API [^(]*(' include/viscnn.h | grep -o 'vc_[a-z_0-9]*' | sort)
missing=$(comm -23 <(echo "$decl") <(grep -v '^#' "$T/now.txt"))
[ -z "$missing" ] && ok "every VC_API function of viscnn.h is exported ($(echo "$decl" | wc -l))" || fail "header vs library" "not exported: $missing"

# check COMMITTED CURRENT: fails when a committed symbol is gone under the same soname
check() {
    local file=$1 now=$2
    local was; was=$(sed -n 's/^# soname //p' "$file")
    local is; is=$(sed -n 's/^# soname //p' "$now")
    local gone; gone=$(comm -23 <(grep -v '^#' "$file" | sort) <(grep -v '^#' "$now" | sort))
    local new; new=$(comm -13 <(grep -v '^#' "$file" | sort) <(grep -v '^#' "$now" | sort))
    if [ "$was" != "$is" ]; then echo "abi/symbols.txt is for $was, the library is $is: regenerate it (scripts/abi-symbols.sh)"; return 1; fi
    if [ -n "$gone" ]; then echo "gone without a major version bump: $(echo $gone)"; return 1; fi
    if [ -n "$new" ]; then echo "new symbols not in abi/symbols.txt (add them: scripts/abi-symbols.sh): $(echo $new)"; return 1; fi
}
msg=$(check abi/symbols.txt "$T/now.txt") && ok "abi/symbols.txt matches $so (soname $(sed -n 's/^# soname //p' "$T/now.txt"))" \
    || fail "abi/symbols.txt" "$msg"
# the check itself: a committed symbol that disappears must fail it, a major bump passes it
{ cat abi/symbols.txt; echo vc_removed_function; } > "$T/more.txt"
msg=$(check "$T/more.txt" "$T/now.txt") && fail "checker" "a vanished symbol passed" \
    || { grep -q 'vc_removed_function' <<< "$msg" && ok "a symbol gone under the same soname fails: $msg" || fail "checker" "$msg"; }
sed 's/^# soname .*/# soname libviscnn.so.99/' "$T/now.txt" > "$T/bumped.txt"
msg=$(check "$T/more.txt" "$T/bumped.txt") && fail "checker" "a soname change was not noticed" \
    || ok "after a major bump the list must be regenerated: $msg"

# The CLI is a client of the public API alone: its objects (viscnn/cli/*.c,
# built by make) link against libviscnn.so with nothing else of the library,
# and that binary prints what bin/viscnn (static library) prints.
objs=$(for c in viscnn/cli/*.c; do echo "build/obj/${c%.c}.o"; done)
if ! ls $objs > /dev/null 2>&1; then
    fail "CLI against libviscnn.so" "CLI objects missing (make)"
elif out=$(cc $objs -Lbuild -lviscnn -lm -Wl,-rpath,"$PWD/build" -o "$T/viscnn-shared" 2>&1); then
    ok "the CLI links against libviscnn.so alone (-L build -lviscnn, no libviscnn.a)"
    ldd "$T/viscnn-shared" | grep -q 'libviscnn.so.0 =>' && ok "the shared-linked CLI loads libviscnn.so.0" \
        || fail "shared-linked CLI" "does not load libviscnn.so.0"
    M=models/fashion.safetensors
    for args in "info $M" "info $M --json" "predict $M data/fashion/sneaker" "predict $M data/fashion/sneaker --json --top 3" \
                "rf $M --layer features.6 --y 3 --x 2" "predict $M --top 0 data/fashion/sneaker" "info /nonexistent.safetensors"; do
        a=$("$T/viscnn-shared" $args 2>&1); ra=$?
        b=$(bin/viscnn $args 2>&1); rb=$?
        [ "$a" = "$b" ] && [ $ra = $rb ] && ok "shared-linked CLI = bin/viscnn: viscnn $args (exit $ra)" \
            || fail "shared-linked CLI: viscnn $args" "output or exit status differs ($ra vs $rb)"
    done
    "$T/viscnn-shared" predict $M data/fashion/sneaker --save-input "$T/x.npy" > /dev/null 2>&1 &&
    "$T/viscnn-shared" forward $M --input "$T/x.npy" --layer features.3 -o "$T/a.npy" 2> /dev/null &&
    bin/viscnn forward $M --input "$T/x.npy" --layer features.3 -o "$T/b.npy" 2> /dev/null &&
    cmp -s "$T/a.npy" "$T/b.npy" && ok "shared-linked CLI = bin/viscnn: forward --layer features.3 .npy byte-identical" \
        || fail "shared-linked CLI: forward" "the .npy files differ or a run failed"
else
    fail "CLI against libviscnn.so" "link failed (a CLI file uses a symbol viscnn.h does not export): $(echo "$out" | grep -o 'undefined reference to `[^'"'"']*' | sort -u | head -5 | tr '\n' ' ')"
fi
exit $((fails > 0))
