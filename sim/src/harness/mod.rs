//! The fuzz harness, re-exported from where it lives: `ftsim_drive::fuzz` (feature `fuzz` of
//! the drive crate: the inputs, the configuration and the run functions over the checked runs),
//! and the checked run's snapshot (`ftsim_drive::checked`) that the walk's coverage test holds to
//! the walk. The fuzz targets build `ftsim-drive` alone; the corpus replay and the walk test
//! reach the same code through this path.

pub use ftsim_drive::checked::{snapshot_footprint, snapshot_same, Checked};
pub use ftsim_drive::fuzz::*;
