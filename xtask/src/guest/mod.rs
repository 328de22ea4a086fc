//! The guest side seen from the host: the initramfs, the boot, and reading back what the
//! harness recorded. Uses [`crate::cases`], [`crate::kernel`] and [`crate::infra`].

pub mod boot;
pub mod failure;
pub mod initramfs;
pub mod probe_cache;
pub mod results;
pub mod shards;
pub mod sweep_cache;
