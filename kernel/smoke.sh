#!/usr/bin/env bash
# The kernel smoke (CI): set up both real kernels, then replay every sequential reproducer of
# corpus/reproducers/ that the harness performs on each, in one boot per kernel, against the
# preset read from that kernel's sources. Fails when a kernel differs from its preset.
# Writes the tables to target/kernel/smoke-<kernel>.md.
set -euo pipefail
cd "$(dirname "$0")/.."
bash kernel/setup.sh all
cargo build --release -q -p ftsim-cli
code=0
for k in 6.1 6.12; do
    echo "--- kernel $k"
    set +e
    ./target/release/ftsim kernel --kernel "$k" --skip-unperformable corpus/reproducers/*.txt \
        > "target/kernel/smoke-$k.md" 2> "target/kernel/smoke-$k.err"
    c=$?
    set -e
    cat "target/kernel/smoke-$k.md"
    grep -v '^ftsim kernel: skipped' "target/kernel/smoke-$k.err" || true
    echo "(skipped, not performable: $(grep -c '^ftsim kernel: skipped' "target/kernel/smoke-$k.err"))"
    if [ "$c" -ne 0 ]; then
        echo "kernel smoke: $k exit $c (1: the kernel differs from its preset; 3: machinery)."
        echo "replay one: ./target/release/ftsim kernel FILE --kernel $k"
        code=1
    fi
done
# The README's "confirmed on Linux" table: both kernels side by side, per reproducer.
awk -F' [|] ' '
    FNR == 1 { k++ }
    /^[|] `/ {
        f = $1; sub(/^[|] `corpus\/reproducers\//, "`", f); sub(/[.]txt`/, "`", f)
        v = $4; sub(/ [|]$/, "", v)
        gsub(/confirmed by the agreeing model [(]not observable by a call[)]/, "confirmed (by the agreeing model)", v)
        c = $3; sub(/ [(]kernel said.*/, "", c)
        if (!(f in seen)) { order[++n] = f; seen[f] = 1; ex[f] = $2 }
        cell[f, k] = (c == "agree" ? v : c)
    }
    END {
        print "| reproducer | expects | 6.1.192 (vs debian-6.1) | 6.12.117 (vs debian-6.12) |"
        print "|---|---|---|---|"
        for (i = 1; i <= n; i++) {
            f = order[i]
            a = ((f, 1) in cell) ? cell[f, 1] : "not performable"
            b = ((f, 2) in cell) ? cell[f, 2] : "not performable"
            print "| " f " | " ex[f] " | " a " | " b " |"
        }
    }' target/kernel/smoke-6.1.md target/kernel/smoke-6.12.md > target/kernel/confirmed.md
echo "--- both kernels: target/kernel/confirmed.md"
cat target/kernel/confirmed.md
exit $code
