//! Fuzzing harnesses shared by the cargo-fuzz targets and the stable corpus replay (issue 5).
