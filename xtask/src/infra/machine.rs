//! What this machine offers the builds and the VMs: its cores and its free memory.

/// What one VM needs when memory cannot be read (room for one VM is assumed).
const MIB_FOR_ONE_VM: u64 = 1024 + 256;

/// This machine's cores, as the kernel builds and the boot slots count them.
pub fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// MemAvailable from /proc/meminfo, in MiB (unknown: room for one VM).
pub fn available_memory_mib() -> u64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemAvailable:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map_or(MIB_FOR_ONE_VM, |kib| kib / 1024)
}

/// make's job count for every kernel make: one per core.
pub fn jobs() -> String {
    available_cores().to_string()
}
