//! Host-side tests that boot real kernels live in `tests/`; their snapshots in `snapshots/`.
