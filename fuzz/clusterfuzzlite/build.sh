#!/bin/bash -eu
# OSS-Fuzz / ClusterFuzzLite build script (runs inside the base-builder-rust image, which sets
# $SRC, $OUT and the sanitizer flags that cargo fuzz picks up). Copy to .clusterfuzzlite/build.sh
# (ClusterFuzzLite) or projects/ftsim/build.sh (OSS-Fuzz); see fuzz/README.md.
cd "$SRC/ftsim"
cargo fuzz build -O --debug-assertions
for target in ops schedule parse; do
    cp "fuzz/target/x86_64-unknown-linux-gnu/release/$target" "$OUT/"
    # Seed corpora: the checked-in, minimized corpus of each target.
    (cd "corpus/$target" && zip -q "$OUT/${target}_seed_corpus.zip" ./*)
done
