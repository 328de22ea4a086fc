//! `cargo xtask bench`: the speed and memory figures, measured side by side in one run on the
//! same 6.12 source, written into BENCHMARKS.md between its markers (the prose around them is
//! kept).
//!
//! - B1 cold kernel build: this project's config (allnoconfig, the minimal base, the items) vs
//!   virtme-ng's (`virtme-configkernel --defconfig` plus the same items), configuring
//!   included: ours before, between and after the reference builds (`--reference-builds`,
//!   one by default; the medians cancel the machine's drift);
//! - B2 warm `vmtest` (all cases, one kernel) vs a bare `vng --exec true`, median of N;
//! - B3 incremental rebuild + boot + run after touching drivers/block/nbd.c, vs B1's cold build;
//! - B4 guest uptime at the harness's start and per case (from the guest's own records);
//! - B5 warm `vmtest --kernel all` (the kernels boot side by side) vs the sum of the four
//!   single-kernel warm runs, median of N; also the matrix with one VM at a time;
//! - peak RSS of QEMU (wait4's `ru_maxrss` of the shell that ties vng to xtask, which vng's
//!   and QEMU's reach) and the guest memory size.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Result};
use xshell::cmd;

use crate::commands::vmtest::{self, Options};
use crate::guest::boot::{self, Boot, Guest};
use crate::infra::host_tools;
use crate::infra::paths::Paths;
use crate::infra::progress::Stage;
use crate::infra::runner::Runner;
use crate::kernel::manifest::Catalog;
use crate::kernel::{build, kconfig, source};

const KERNEL: &str = "6.12";
/// The markers of BENCHMARKS.md's generated table.
const TABLE: &str = "bench";

/// Targets from the speed issue: (benchmark, ratio it must not exceed).
pub const TARGETS: &[(&str, f64)] = &[("B1", 0.30), ("B2", 1.0), ("B3", 0.15), ("B5", 0.6)];
/// The sweep's goal (issue 27): programs per second of guest time under TCG, at least.
pub const SWEEP_RATE_GOAL: f64 = 300.0;

/// min / median / max of some samples (seconds or MiB).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    pub min: f64,
    pub median: f64,
    pub max: f64,
    pub runs: usize,
}

impl Spread {
    pub fn of(samples: &[f64]) -> Self {
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = if n == 0 {
            0.0
        } else if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        };
        Self {
            min: sorted.first().copied().unwrap_or_default(),
            median,
            max: sorted.last().copied().unwrap_or_default(),
            runs: n,
        }
    }

    fn cell(&self) -> String {
        if self.runs == 1 {
            format!("{:.1}", self.median)
        } else {
            format!(
                "{:.1} ({:.1}–{:.1}, n={})",
                self.median, self.min, self.max, self.runs
            )
        }
    }
}

/// Everything one bench run measured.
#[derive(Debug, Clone)]
pub struct Figures {
    pub b1_ours: Spread,
    pub b1_vng: Spread,
    pub b2_vmtest: Spread,
    pub b2_bare: Spread,
    pub b3_incremental: Spread,
    pub b4_harness_start: Spread,
    /// When vng's own init started the bare boot's command: what the harness's init saves.
    pub b4_bare_command_start: Spread,
    pub b4_per_case_ms: Spread,
    pub qemu_peak_mib: Spread,
    pub guest_memory: String,
    pub cases: usize,
    pub matrix: Matrix,
    /// B6: sweep programs per second of guest time, each sweep run fresh (`--case`).
    pub sweep_rate: Spread,
}

/// B5's samples: the whole matrix in one run, and the same kernels run one by one.
#[derive(Debug, Clone)]
pub struct Matrix {
    /// `vmtest --kernel all`, VMs side by side as many as [`crate::commands::vmtest::slots::boot_slots`] allows.
    pub side_by_side: Spread,
    /// `vmtest --kernel all --vms 1`.
    pub one_vm_at_a_time: Spread,
    /// The sum of the single-kernel runs.
    pub singles_sum: Spread,
    pub kernels: usize,
    pub slots: usize,
}

impl Figures {
    fn ratios(&self) -> [(&'static str, f64); 4] {
        [
            ("B1", self.b1_ours.median / self.b1_vng.median),
            ("B2", self.b2_vmtest.median / self.b2_bare.median),
            ("B3", self.b3_incremental.median / self.b1_ours.median),
            ("B5", self.matrix.ratio()),
        ]
    }
}

impl Matrix {
    fn ratio(&self) -> f64 {
        self.side_by_side.median / self.singles_sum.median
    }
}

/// The Markdown table that goes between the markers.
pub fn render(figures: &Figures) -> String {
    let mut out = String::from("| benchmark | this project | reference | ratio | target | verdict |\n|---|---|---|---|---|---|\n");
    let rows = [
        (
            "B1 cold kernel build (s)",
            figures.b1_ours,
            "vng --kconfig + same items",
            figures.b1_vng,
        ),
        (
            "B2 warm vmtest, all cases (s)",
            figures.b2_vmtest,
            "bare vng --exec true",
            figures.b2_bare,
        ),
        (
            "B3 touch nbd.c: rebuild + boot + run (s)",
            figures.b3_incremental,
            "B1 cold build (ours)",
            figures.b1_ours,
        ),
        (
            "B5 warm vmtest --kernel all (s)",
            figures.matrix.side_by_side,
            "sum of the single-kernel runs",
            figures.matrix.singles_sum,
        ),
    ];
    for ((name, ours, reference_name, reference), (id, ratio)) in rows.iter().zip(figures.ratios())
    {
        let target = TARGETS
            .iter()
            .find(|(t, _)| *t == id)
            .map_or(f64::NAN, |(_, r)| *r);
        let verdict = if ratio <= target {
            "met".to_owned()
        } else {
            format!("missed by {:.1}%", (ratio / target - 1.0) * 100.0)
        };
        out.push_str(&format!(
            "| {name} | {} | {reference_name}: {} | {ratio:.2} | ≤ {target} | {verdict} |\n",
            ours.cell(),
            reference.cell()
        ));
    }
    out.push_str(&format!(
        "\n| guest figure | value |\n|---|---|\n\
         | B4 boot to harness start (guest uptime, s; the harness is the guest's init) | {} |\n\
         | B4 bare vng --exec true: boot to the command's start (guest uptime, s; vng's init) | {} |\n\
         | B4 harness time per case (ms, {} cases) | {} |\n\
         | QEMU peak RSS (MiB) | {} |\n\
         | guest memory | {} |\n\
         | B5 matrix of {} kernels, {} VMs at once (s) | {} |\n\
         | B5 matrix of {} kernels, one VM at a time (s) | {} |\n\
         | B6 sweep programs per second of guest time ({KERNEL}, every sweep fresh; goal ≥ {SWEEP_RATE_GOAL}) | {} |\n",
        figures.b4_harness_start.cell(),
        figures.b4_bare_command_start.cell(),
        figures.cases,
        figures.b4_per_case_ms.cell(),
        figures.qemu_peak_mib.cell(),
        figures.guest_memory,
        figures.matrix.kernels,
        figures.matrix.slots,
        figures.matrix.side_by_side.cell(),
        figures.matrix.kernels,
        figures.matrix.one_vm_at_a_time.cell(),
        figures.sweep_rate.cell(),
    ));
    out
}

/// Writes `table` into BENCHMARKS.md between the markers `name`.
pub fn publish_table(paths: &Paths, name: &str, table: &str) -> Result<PathBuf> {
    let file = paths.root.join("BENCHMARKS.md");
    let current = std::fs::read_to_string(&file).unwrap_or_else(|_| "# Benchmarks\n".into());
    std::fs::write(&file, crate::infra::fsutil::splice(&current, name, table))?;
    Ok(file)
}

pub fn run(paths: &Paths, runs: usize, reference_builds: usize) -> Result<Figures> {
    let runner = Runner::new(&paths.root)?;
    host_tools::ensure(&runner)?;
    let catalog = Catalog::new(&paths.kernels());
    let manifest = catalog.load(KERNEL)?;
    let pristine = source::fetch(&runner, paths, &manifest.source)?;
    let bench_dir = paths.images().join("bench");
    if bench_dir.exists() {
        std::fs::remove_dir_all(&bench_dir)?;
    }
    std::fs::create_dir_all(&bench_dir)?;

    // Our config, cold, from a hard-linked copy of the same source, before, between and after
    // the reference builds: the machine's speed drifts by tens of percent over an hour, and a
    // drift that is linear over the builds cancels out of the medians.
    let tree = bench_dir.join("linux");
    let (sh, pristine_tree) = (&runner.sh, &pristine.dir);
    cmd!(sh, "cp -al {pristine_tree} {tree}").run()?;
    let local = Options {
        kernels: vec![KERNEL.into()],
        kernel_dir: Some(tree.clone()),
        compare_snapshots: false,
        ..Options::default()
    };
    // A private cache per cold build, so each one builds; the last one stays for B3.
    let with_cache = |cache: &str| {
        let mut private = paths.clone();
        private.cache = bench_dir.join(cache);
        // The private cache's own, empty ccache: B1 stays a cold build.
        private.ccache = private.cache.join("ccache");
        private
    };
    let (mut b1_ours, mut b1_vng) = (Vec::new(), Vec::new());
    for build in 0..reference_builds {
        let earlier = with_cache(&format!("cache-{build}"));
        b1_ours.push(vmtest::run(&earlier, &local)?[0].timings.build_secs);
        std::fs::remove_dir_all(&earlier.cache)?;
        b1_vng.push(vng_config_build(
            &runner,
            &catalog,
            &manifest,
            &pristine.dir,
            &bench_dir,
        )?);
    }
    let bench_paths = with_cache("cache");
    b1_ours.push(vmtest::run(&bench_paths, &local)?[0].timings.build_secs);

    // B3: a new nbd.c (same text, new inode and mtime: the cache's copy is untouched).
    let nbd = tree.join("drivers/block/nbd.c");
    let text = std::fs::read(&nbd)?;
    std::fs::remove_file(&nbd)?;
    std::fs::write(&nbd, text)?;
    let started = Instant::now();
    let incremental = vmtest::run(&bench_paths, &local)?;
    let b3 = started.elapsed().as_secs_f64();
    if incremental[0].timings.build_secs == 0.0 {
        bail!("touching nbd.c did not rebuild the kernel: B3 would measure nothing");
    }

    let (warm, bare) = side_by_side(&runner, paths, &catalog, runs)?;
    std::fs::remove_dir_all(&bench_dir).ok();
    let matrix = matrix(paths, &catalog, runs)?;
    let sweep_rate = sweep_rate(paths, runs)?;

    Ok(Figures {
        b1_ours: Spread::of(&b1_ours),
        b1_vng: Spread::of(&b1_vng),
        b2_vmtest: Spread::of(&warm.walls),
        b2_bare: Spread::of(&bare.walls),
        b3_incremental: Spread::of(&[b3]),
        b4_harness_start: Spread::of(&warm.harness_starts),
        b4_bare_command_start: Spread::of(&bare.command_starts),
        b4_per_case_ms: Spread::of(&warm.per_case_ms),
        qemu_peak_mib: Spread::of(&bare.peaks),
        guest_memory: format!("{} MiB", boot::GUEST_MEMORY_MIB),
        cases: warm.cases,
        matrix,
        sweep_rate,
    })
}

/// B2 alone (warm `vmtest` vs a bare `vng --exec true`, interleaved runs on the cached 6.12):
/// the figure a change to the guest side moves, in a minute instead of the cold builds' half
/// hour. Printed, never written to BENCHMARKS.md (whose table is one whole run).
pub fn run_warm(paths: &Paths, runs: usize) -> Result<String> {
    let runner = Runner::new(&paths.root)?;
    host_tools::ensure(&runner)?;
    let catalog = Catalog::new(&paths.kernels());
    let (warm, bare) = side_by_side(&runner, paths, &catalog, runs)?;
    let (ours, reference) = (Spread::of(&warm.walls), Spread::of(&bare.walls));
    let matrix = matrix(paths, &catalog, runs)?;
    let sweep_rate = sweep_rate(paths, runs)?;
    Ok(format!(
        "B2 warm vmtest, all {} cases (s): {} | bare vng --exec true: {} | ratio {:.2}\n\
         B5 warm vmtest --kernel all, {} VMs at once (s): {} | one at a time: {} | sum of the \
         single-kernel runs: {} | ratio {:.2}\n\
         B6 sweep programs per second of guest time ({KERNEL}, every sweep run fresh): {} | \
         goal ≥ {SWEEP_RATE_GOAL}\n",
        warm.cases,
        ours.cell(),
        reference.cell(),
        ours.median / reference.median,
        matrix.slots,
        matrix.side_by_side.cell(),
        matrix.one_vm_at_a_time.cell(),
        matrix.singles_sum.cell(),
        matrix.ratio(),
        sweep_rate.cell(),
    ))
}

/// B6: every sweep of the cached 6.12, named with `--case` so none is reused; the rate is all
/// the programs loaded (first pass and interpreter pass) over the guest time the sweeps took,
/// from the guest's own records.
fn sweep_rate(paths: &Paths, runs: usize) -> Result<Spread> {
    let options = Options {
        kernels: vec![KERNEL.into()],
        only_cases: crate::cases::sweep::plan::BUILT_IN
            .map(str::to_owned)
            .to_vec(),
        compare_snapshots: false,
        ..Options::default()
    };
    let mut rates = Vec::new();
    for _ in 0..runs {
        let reports = vmtest::run(paths, &options)?;
        let Some(run_dir) = reports.first().and_then(|r| r.run_dir.clone()) else {
            bail!("B6: the sweep run left no run directory");
        };
        // Its end is not needed: only the sweeps' records are (a sharded run's from each VM).
        let end = crate::guest::boot::VmEnd::UNRECORDED;
        let (records, _) = crate::guest::boot::read_back(&run_dir, &end);
        let (mut loads, mut ms) = (0usize, 0u64);
        for sweep in records.sweeps.values() {
            let Some(done) = sweep.done_ms else {
                bail!("B6: a sweep did not finish in {}", run_dir.display());
            };
            let again = sweep
                .results
                .iter()
                .filter(|r| r.interpreted.is_some())
                .count();
            loads += sweep.results.len() + again;
            ms += done;
        }
        if ms == 0 {
            bail!("B6: no sweep ran in {}", run_dir.display());
        }
        rates.push(loads as f64 / (ms as f64 / 1000.0));
    }
    Ok(Spread::of(&rates))
}

/// B5: the warm matrix side by side, one VM at a time, and kernel by kernel, interleaved.
fn matrix(paths: &Paths, catalog: &Catalog, runs: usize) -> Result<Matrix> {
    let kernels = catalog.names()?;
    let options = |kernels: Vec<String>, vms: Option<usize>| Options {
        kernels,
        vms,
        compare_snapshots: false,
        ..Options::default()
    };
    let timed = |options: &Options| -> Result<f64> {
        let started = Instant::now();
        vmtest::run(paths, options)?;
        Ok(started.elapsed().as_secs_f64())
    };
    let (mut together, mut one_at_a_time, mut sums) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        together.push(timed(&options(kernels.clone(), None))?);
        one_at_a_time.push(timed(&options(kernels.clone(), Some(1)))?);
        let mut sum = 0.0;
        for kernel in &kernels {
            sum += timed(&options(vec![kernel.clone()], None))?;
        }
        sums.push(sum);
    }
    Ok(Matrix {
        side_by_side: Spread::of(&together),
        one_vm_at_a_time: Spread::of(&one_at_a_time),
        singles_sum: Spread::of(&sums),
        kernels: kernels.len(),
        slots: crate::commands::vmtest::slots::default_boot_slots(kernels.len()),
    })
}

/// B1 reference: virtme-ng's own kernel config plus the same items (the manifest's fragments,
/// not the minimal base: vng's config is the base B1 compares ours with), built cold.
fn vng_config_build(
    runner: &Runner,
    catalog: &Catalog,
    manifest: &crate::kernel::manifest::Manifest,
    source: &Path,
    bench_dir: &Path,
) -> Result<f64> {
    // Configuring counts on both sides: ours (allnoconfig and the merge) is in build_secs.
    let started = Instant::now();
    let stage = Stage::start("B1 reference: configuring with virtme-configkernel --defconfig");
    let build = bench_dir.join("vng-build");
    std::fs::create_dir_all(&build)?;
    let fragment = bench_dir.join("items.config");
    std::fs::write(
        &fragment,
        kconfig::merge_files(&catalog.fragment_paths(manifest))?.render(),
    )?;
    let sh = &runner.sh;
    let _dir = sh.push_dir(source);
    let out = format!("O={}", build.display());
    runner.run_logged(
        cmd!(
            sh,
            "virtme-configkernel --defconfig --custom {fragment} {out}"
        ),
        &bench_dir.join("vng-config.log"),
        &stage,
    )?;
    stage.finish("");
    let stage = Stage::start("B1 reference: building the vng-config kernel (cold)");
    // An empty ccache of its own: B1 compares cold builds.
    let ccache = bench_dir.join("vng-ccache");
    let _ = std::fs::remove_dir_all(&ccache);
    build::make_kernel(
        runner,
        (source, &build),
        &ccache,
        &build.join("build.log"),
        &stage,
    )?;
    let secs = started.elapsed().as_secs_f64();
    stage.finish("");
    std::fs::remove_dir_all(&build).ok();
    std::fs::remove_dir_all(&ccache).ok();
    Ok(secs)
}

/// Samples of the warm runs: wall times, guest uptime at harness start, per-case times.
#[derive(Default)]
struct WarmRuns {
    walls: Vec<f64>,
    harness_starts: Vec<f64>,
    per_case_ms: Vec<f64>,
    cases: usize,
}

/// The bare boots of B2.
#[derive(Default)]
struct BareBoots {
    walls: Vec<f64>,
    /// QEMU's peak RSS (MiB).
    peaks: Vec<f64>,
    /// Guest uptime (s) when vng's init started the command.
    command_starts: Vec<f64>,
}

/// B2's two sides, interleaved (warm run, bare boot, warm run, ...) so that a machine that
/// slows down or speeds up over the minutes weighs on both alike.
fn side_by_side(
    runner: &Runner,
    paths: &Paths,
    catalog: &Catalog,
    runs: usize,
) -> Result<(WarmRuns, BareBoots)> {
    let options = Options {
        kernels: vec![KERNEL.into()],
        compare_snapshots: false,
        ..Options::default()
    };
    let bzimage = cached_bzimage(runner, paths, catalog)?;
    let scratch = tempfile::tempdir()?;
    let accel = boot::choose_accel(runner, paths, &bzimage, scratch.path())?;
    let bare_args = boot::vng_args(
        &Boot {
            kernel: &bzimage,
            accel,
            writable_dir: scratch.path(),
        },
        &Guest::Command("true".into()),
    );
    let console = scratch.path().join("console.log");
    let (mut warm, mut bare) = (WarmRuns::default(), BareBoots::default());
    let (sh, args) = (&runner.sh, &bare_args);
    for _ in 0..runs {
        warm_once(paths, &options, &mut warm)?;
        let started = Instant::now();
        // Tied to xtask like every VM: killed with it, on Ctrl-C and at the timeout.
        let stage = Stage::start("B2: a bare `vng --exec true`");
        let measured = runner.spawn_tied_measured(
            cmd!(sh, "vng {args...}"),
            &console,
            &stage,
            Some(vmtest::DEFAULT_TIMEOUT),
        )?;
        bare.walls.push(started.elapsed().as_secs_f64());
        let (finished, peak_rss_kib) = (measured.finished, measured.peak_rss_kib);
        let Some(peak_rss_kib) = peak_rss_kib.filter(|_| finished.success()) else {
            stage.fail(finished);
            // The console is in a directory removed on return: its end goes into the error.
            bail!(
                "bare `vng --exec true` failed: {finished}; the end of its console:\n{}",
                crate::infra::progress::tail(&console, 20)
            );
        };
        stage.finish("");
        bare.peaks.push(peak_rss_kib as f64 / 1024.0);
        let text = String::from_utf8_lossy(&std::fs::read(&console)?).into_owned();
        bare.command_starts.extend(command_start_secs(&text));
    }
    Ok((warm, bare))
}

/// The guest uptime at which virtme-ng's init started the command, from its console line
/// `[    3.953] virtme-ng-init: starting script`. Pure.
fn command_start_secs(console: &str) -> Option<f64> {
    let line = console
        .lines()
        .find(|line| line.contains("virtme-ng-init: starting script"))?;
    let stamp = line.trim_start().strip_prefix('[')?.split_once(']')?.0;
    stamp.trim().parse().ok()
}

fn warm_once(paths: &Paths, options: &Options, warm: &mut WarmRuns) -> Result<()> {
    let started = Instant::now();
    let reports = vmtest::run(paths, options)?;
    warm.walls.push(started.elapsed().as_secs_f64());
    let timings = &reports[0].timings;
    warm.cases = reports[0].rows.len();
    if let Some(ms) = timings.harness_start_ms {
        warm.harness_starts.push(ms as f64 / 1000.0);
    }
    warm.per_case_ms
        .extend(timings.case_ms.iter().map(|&ms| ms as f64));
    Ok(())
}

fn cached_bzimage(runner: &Runner, paths: &Paths, catalog: &Catalog) -> Result<PathBuf> {
    let manifest = catalog.load(KERNEL)?;
    let source = source::fetch(runner, paths, &manifest.source)?;
    Ok(build::ensure(runner, paths, catalog, &manifest, &source)?.bzimage)
}

/// Writes the figures into BENCHMARKS.md, between the markers.
pub fn publish(paths: &Paths, figures: &Figures) -> Result<PathBuf> {
    publish_table(paths, TABLE, &render(figures))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_has_min_median_max() {
        assert_eq!(
            Spread::of(&[3.0, 1.0, 2.0]),
            Spread {
                min: 1.0,
                median: 2.0,
                max: 3.0,
                runs: 3
            }
        );
        assert_eq!(Spread::of(&[4.0, 1.0]).median, 2.5);
        assert_eq!(Spread::of(&[]).runs, 0);
    }

    fn figures() -> Figures {
        let one = |v| Spread::of(&[v]);
        Figures {
            b1_ours: one(250.0),
            b1_vng: one(734.0),
            b2_vmtest: Spread::of(&[6.0, 6.5, 7.0]),
            b2_bare: Spread::of(&[4.4, 5.0, 5.6]),
            b3_incremental: one(60.0),
            b4_harness_start: Spread::of(&[2.0, 2.1, 2.2]),
            b4_bare_command_start: Spread::of(&[3.9]),
            b4_per_case_ms: Spread::of(&[10.0, 20.0, 30.0]),
            qemu_peak_mib: Spread::of(&[300.0, 310.0, 320.0]),
            guest_memory: "1G".into(),
            cases: 22,
            matrix: Matrix {
                side_by_side: Spread::of(&[20.0]),
                one_vm_at_a_time: Spread::of(&[30.0]),
                singles_sum: Spread::of(&[40.0]),
                kernels: 4,
                slots: 2,
            },
            sweep_rate: Spread::of(&[900.0, 1000.0, 1100.0]),
        }
    }

    #[test]
    fn vngs_init_says_when_it_starts_the_command() {
        let console = "[    3.175566] virtme-ng-init: triggering udev coldplug\n\
                       [    3.953077] virtme-ng-init: starting script\n";
        assert_eq!(command_start_secs(console), Some(3.953077));
        assert_eq!(
            command_start_secs("[ 1.0] Run /init as init process\n"),
            None
        );
    }

    #[test]
    fn the_table_states_ratios_targets_and_misses() {
        let table = render(&figures());
        assert!(table.contains("| B1 cold kernel build (s) | 250.0 | vng --kconfig + same items: 734.0 | 0.34 | ≤ 0.3 | missed by 13.5% |"), "{table}");
        assert!(table.contains("| 6.5 (6.0–7.0, n=3) | bare vng --exec true: 5.0 (4.4–5.6, n=3) | 1.30 | ≤ 1 | missed by 30.0% |"), "{table}");
        assert!(table.contains("| B5 warm vmtest --kernel all (s) | 20.0 | sum of the single-kernel runs: 40.0 | 0.50 | ≤ 0.6 | met |"), "{table}");
        assert!(
            table.contains("| B5 matrix of 4 kernels, one VM at a time (s) | 30.0 |"),
            "{table}"
        );
        assert!(
            table.contains("| 0.24 | ≤ 0.15 | missed by 60.0% |"),
            "{table}"
        );
        // A miss smaller than the ratio's two decimals still shows.
        let close = Figures {
            b1_ours: Spread::of(&[306.3]),
            b1_vng: Spread::of(&[1017.9]),
            ..figures()
        };
        assert!(
            render(&close).contains("| 0.30 | ≤ 0.3 | missed by 0.3% |"),
            "{}",
            render(&close)
        );
        assert!(
            table.contains("| QEMU peak RSS (MiB) | 310.0 (300.0–320.0, n=3) |"),
            "{table}"
        );
        assert!(
            table.contains("(6.12, every sweep fresh; goal ≥ 300) | 1000.0 (900.0–1100.0, n=3) |"),
            "{table}"
        );
    }

    #[test]
    fn splicing_keeps_the_prose_around_the_markers() {
        let doc = "# Benchmarks\n\nintro\n\n<!-- bench:start -->\nold\n<!-- bench:end -->\n\n\
                   <!-- blocks:start -->\nkept\n<!-- blocks:end -->\n## Notes\nkeep me\n";
        let out = crate::infra::fsutil::splice(doc, "bench", "new\n");
        assert_eq!(
            out,
            "# Benchmarks\n\nintro\n\n<!-- bench:start -->\nnew\n<!-- bench:end -->\n\n\
             <!-- blocks:start -->\nkept\n<!-- blocks:end -->\n## Notes\nkeep me\n"
        );
        let appended = crate::infra::fsutil::splice("# Benchmarks\n", "bench", "t\n");
        assert!(appended.ends_with("<!-- bench:start -->\nt\n<!-- bench:end -->\n"));
    }
}
