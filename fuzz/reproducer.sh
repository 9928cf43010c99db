#!/usr/bin/env bash
# Turns a fuzz crash into a committed reproducer file:
#
#   fuzz/reproducer.sh TARGET ARTIFACT PROTOCOL PROPERTY ["what it shows"]
#
# 1. minimizes ARTIFACT with `cargo fuzz tmin`, pinned to PROTOCOL and with only PROPERTY
#    counting as a finding (FTSIM_ONLY), so the minimized input still finds that property;
# 2. prints the minimized input's reproducer (`cargo fuzz fmt`: the input's Debug);
# 3. writes it, with a comment saying where it came from and what it shows, to
#    corpus/reproducers/fuzz-<PROTOCOL>--<PROPERTY>.txt, which the stable test
#    tests/tests/corpus.rs replays (it must keep finding PROPERTY).
#
# TARGET is ops or schedule; PROTOCOL a preset name. Example:
#   FTSIM_PROTOCOL=merged cargo fuzz run -s none ops ../corpus/ops     # finds a crash
#   fuzz/reproducer.sh ops fuzz/artifacts/ops/crash-1234 merged lock-recursion \
#       "single-ip modify re-takes direct_mutex through the locking register"
set -euo pipefail

if [[ $# -lt 4 ]]; then
    sed -n '2,19p' "$0"
    exit 2
fi
target="$1" artifact="$(realpath "$2")" protocol="$3" property="$4" note="${5:-}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="$here/../corpus/reproducers/fuzz-$protocol--$property.txt"
cd "$here"
unset CARGO_TARGET_DIR
export FTSIM_PROTOCOL="$protocol" FTSIM_ONLY="$property" RUST_BACKTRACE=0

min="$here/artifacts/$target/minimized-$protocol--$property"
mkdir -p "$(dirname "$min")"
cargo fuzz tmin -s none -r 2000 "$target" "$artifact" -- -exact_artifact_path="$min" \
    >"$min.log" 2>&1 || true
if [[ ! -s "$min" ]]; then
    echo "reproducer: tmin produced nothing (does $artifact find $property on $protocol?)," \
        "see $min.log" >&2
    exit 1
fi
script="$(cargo fuzz fmt -s none "$target" "$min" 2>&1 | sed -n '/^# ftsim reproducer/,/^$/p' | sed '/^$/d')"
if ! grep -q "^expect .*$property" <<<"$script"; then
    echo "reproducer: the minimized input does not find $property:" >&2
    echo "$script" >&2
    exit 1
fi
{
    echo "# Found by the $target fuzz target (FTSIM_PROTOCOL=$protocol), minimized with"
    echo "# fuzz/reproducer.sh (cargo fuzz tmin keeping $property)."
    [[ -n "$note" ]] && echo "# $note"
    echo "$script"
} >"$out"
echo "reproducer: wrote $out"
cat "$out"
