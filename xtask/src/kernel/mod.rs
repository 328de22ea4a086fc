//! Kernels: manifests, their sources, configs, builds and the cache that keeps them.
//! Uses only [`crate::infra`].

pub mod build;
pub mod cache;
pub mod compiler;
pub mod helper_list;
pub mod kconfig;
pub mod latest;
pub mod manifest;
pub mod raw_tp;
pub mod source;
pub mod user_module;
pub mod vmlinux_h;
