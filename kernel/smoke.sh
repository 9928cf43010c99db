#!/usr/bin/env bash
# The kernel smoke (CI): set up both real kernels, then replay every sequential reproducer of
# corpus/reproducers/ that the harness performs on each, in one boot per kernel, against the
# preset read from that kernel's sources. Fails when a kernel differs from its preset.
# Writes the tables to target/kernel/smoke-<kernel>.md.
set -euo pipefail
cd "$(dirname "$0")/.."
bash kernel/setup.sh all
cargo build --release -q -p ftsim-sim
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
exit $code
