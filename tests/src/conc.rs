//! A concurrent driver of the core's steps over real (std or loom) mutexes (issue 6).
