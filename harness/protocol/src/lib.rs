//! What crosses the VM boundary: the [`Plan`] the host writes for the guest harness, and the
//! [`Record`]s the harness appends, one JSON object per line, to the results file.
//!
//! Both sides compile this crate, so the guest and the host can never disagree on a field name.
//! The host never trusts the records beyond their shape: names in them are data, never paths.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// File name of the plan inside the run directory.
pub const PLAN_FILE: &str = "plan.json";
/// File name of the results inside the run directory (JSON lines, one [`Record`] each).
pub const RESULTS_FILE: &str = "results.jsonl";
/// The sysfs file whose 64-byte read fires `bpf_testmod_test_writable_bare`.
pub const TESTMOD_SYSFS: &str = "/sys/kernel/bpf_testmod";
/// Where the `pin` step pins links (one file per case) in the guest's bpffs.
pub const PIN_DIR: &str = "/sys/fs/bpf/wtp";
/// The read length at which bpf_testmod fires its writable tracepoint.
pub const TESTMOD_WRITABLE_READ_LEN: usize = 64;

/// Everything the guest needs to run; written by the host, read once by the harness.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Kernel modules to load before the first case, in order (paths as the guest sees them).
    pub modules: Vec<PathBuf>,
    /// What this kernel calls a tracepoint the programs know by another name
    /// (e.g. 6.16+ suffixes bare tracepoints with `_tp`).
    #[serde(default)]
    pub tracepoint_names: BTreeMap<String, String>,
    pub cases: Vec<CasePlan>,
    /// Helpers to probe, for every program type in [`PROBED_PROG_TYPES`], after the cases.
    #[serde(default)]
    pub helper_probes: Vec<HelperProbe>,
    /// The run ends in an interactive shell (`vmtest --shell`): what the cases pin stays
    /// pinned, and libbpf's second opinion (a second program on the tracepoint) is skipped.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shell: bool,
    /// Boundary sweeps (issue 27), run after the cases: each a batch of instruction programs
    /// on one tracepoint.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sweeps: Vec<SweepPlan>,
}

/// One boundary sweep: every program loaded, attached to `tracepoint`, fired once by
/// `trigger` where `fire` says so, detached; one [`SweepResult`] each.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepPlan {
    /// The sweep's case name (`sweep.<tracepoint>`).
    pub name: String,
    /// The name BPF_RAW_TRACEPOINT_OPEN takes on this kernel.
    pub tracepoint: String,
    pub programs: Vec<SweepProgram>,
    /// Fire each fired program a second time loaded with `net.core.bpf_jit_enable=0`.
    #[serde(default)]
    pub interpreter: bool,
    /// How the tracepoint is fired (plans from before there was a choice swept
    /// bpf_test_finish only).
    #[serde(default)]
    pub trigger: SweepTrigger,
}

/// How a sweep fires its tracepoint, and so what a firing shows ([`SweepSeen`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SweepTrigger {
    /// BPF_PROG_TEST_RUN of a trivial socket filter fires `bpf_test_finish`; its 4-byte
    /// buffer is the run's `err`, the syscall's return: [`SweepSeen::Buffer`].
    #[default]
    TestRun,
    /// One read(2) of [`TESTMOD_WRITABLE_READ_LEN`] bytes of [`TESTMOD_SYSFS`] fires
    /// `bpf_testmod_test_writable_bare`: [`SweepSeen::Read`].
    TestmodRead,
    /// Never fired: load and attach only.
    None,
}

/// What one firing showed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SweepSeen {
    /// The whole buffer after the program ran (bpf_test_finish's 4 bytes, little-endian).
    Buffer(Vec<u8>),
    /// What bpf_testmod's read answered.
    Read(ReadAnswer),
}

/// A read(2)'s answer: the text it returned, or its errno.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadAnswer {
    Text(String),
    Errno(i32),
}

/// One sweep program: a caller that tail-calls `callee` has a one-entry prog array whose fd
/// goes into the `imm` of the instruction at `prog_array_at` (a `BPF_LD_MAP_FD`); the callee
/// is loaded first (same type) and put into slot 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepProgram {
    pub name: String,
    pub prog_type: ProgType,
    pub insns: Vec<Insn>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prog_array_at: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callee: Option<Vec<Insn>>,
    /// Fire the tracepoint once if it attaches (the host says no where the model says the
    /// program would write outside the buffer).
    pub fire: bool,
}

/// What the kernel did with one sweep program (compact: it is one of thousands).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepResult {
    pub name: String,
    /// BPF_PROG_LOAD's errno; 0: loaded.
    pub load: i32,
    /// The verifier's verdict line on a refusal ([`verifier_verdict`]).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub verdict: String,
    /// BPF_RAW_TRACEPOINT_OPEN's errno (0: attached); `None`: not tried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attach: Option<i32>,
    /// What one firing showed (bpf_test_finish's 4 bytes, bpf_testmod's read); `None`: not
    /// fired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<SweepSeen>,
    /// The same with the program loaded under the interpreter (`bpf_jit_enable=0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interpreted: Option<SweepSeen>,
    /// What went wrong in the harness (a prog array that could not be made, ...).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
}

/// The BPF program types this project loads (numbers of `enum bpf_prog_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "u32", try_from = "u32")]
pub enum ProgType {
    /// `BPF_PROG_TYPE_SOCKET_FILTER`: the trivial program whose test run fires `bpf_test_finish`.
    SocketFilter,
    /// `BPF_PROG_TYPE_RAW_TRACEPOINT` (`raw_tp/`): may read the tracepoint's arguments only.
    RawTracepoint,
    /// `BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE` (`raw_tp.w/`): may also write its buffer.
    RawTracepointWritable,
    /// `BPF_PROG_TYPE_EXT` (`freplace/<function>`): replaces a global function of a loaded
    /// program and is verified as that program's type.
    Extension,
    /// `BPF_PROG_TYPE_SYSCALL` (`syscall`): run by BPF_PROG_TEST_RUN only; loaded here as a
    /// static prog array's target (libbpf loads it sleepable, as its section says).
    Syscall,
}

impl ProgType {
    /// The kernel's number for the type (the `prog_type` of BPF_PROG_LOAD).
    pub const fn number(self) -> u32 {
        match self {
            ProgType::SocketFilter => 1,
            ProgType::RawTracepoint => 17,
            ProgType::RawTracepointWritable => 24,
            ProgType::Extension => 28,
            ProgType::Syscall => 31,
        }
    }

    /// libbpf's section prefix for the type, as users know it.
    pub const fn section(self) -> &'static str {
        match self {
            ProgType::SocketFilter => "socket",
            ProgType::RawTracepoint => "raw_tp",
            ProgType::RawTracepointWritable => "raw_tp.w",
            ProgType::Extension => "freplace",
            ProgType::Syscall => "syscall",
        }
    }
}

impl From<ProgType> for u32 {
    fn from(prog_type: ProgType) -> u32 {
        prog_type.number()
    }
}

impl TryFrom<u32> for ProgType {
    type Error = String;

    fn try_from(number: u32) -> Result<Self, String> {
        [
            ProgType::SocketFilter,
            ProgType::RawTracepoint,
            ProgType::RawTracepointWritable,
            ProgType::Extension,
            ProgType::Syscall,
        ]
        .into_iter()
        .find(|t| t.number() == number)
        .ok_or_else(|| format!("program type {number} is not one this project loads"))
    }
}

impl std::fmt::Display for ProgType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.section())
    }
}

/// Program types whose helper and kfunc access is probed: RAW_TRACEPOINT_WRITABLE and, to
/// show the difference, plain RAW_TRACEPOINT.
pub const PROBED_PROG_TYPES: [ProgType; 2] =
    [ProgType::RawTracepointWritable, ProgType::RawTracepoint];

/// Kfunc call sequences the kfunc probe tries, each one program calling these vmlinux kfuncs
/// in order (argument-free, balanced: the program is otherwise valid): a generic kfunc pair
/// registered for every program type (6.2+), and a kfunc registered only for the test-run of
/// SCHED_CLS programs (in vmlinux up to 6.1).
pub const KFUNC_PROBES: &[&[&str]] = &[
    &["bpf_rcu_read_lock", "bpf_rcu_read_unlock"],
    &["bpf_kfunc_call_test1"],
];

/// What the verifier said to a program calling one kfunc sequence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KfuncAnswer {
    /// The kfuncs called, joined with `+`.
    pub kfuncs: String,
    /// Whether vmlinux BTF has all of them (if not, nothing was loaded).
    pub present: bool,
    pub outcome: Outcome,
    pub message: String,
}

/// What the verifier said to a program calling one helper.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HelperAnswer {
    pub id: u32,
    pub loaded: bool,
    pub errno: i32,
    /// The verifier's verdict line (the last line before its statistics).
    pub message: String,
}

/// One case: its program (a function of a BPF object, or instructions) and the steps to run
/// after loading it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CasePlan {
    pub name: String,
    /// What is loaded.
    pub source: ProgramSource,
    /// Globals patched into `.data`/`.bss` before the maps are created (like aya's `override_global`).
    #[serde(default)]
    pub globals: BTreeMap<String, u64>,
    /// `prog_flags` of BPF_PROG_LOAD (e.g. BPF_F_ANY_ALIGNMENT = 2, as upstream's `__flag`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub prog_flags: u32,
    /// BPF_PROG_LOAD's `log_level` for the case's program (upstream's `__log_level`); both
    /// loaders use 1 when it is not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_level: Option<u32>,
    pub steps: Vec<Step>,
}

fn is_zero(flags: &u32) -> bool {
    *flags == 0
}

/// Where a case's program comes from. Both loaders (the own one and libbpf) load either.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProgramSource {
    /// A compiled BPF object (path as the guest sees it) and the function in it; `None` when
    /// the object has exactly one raw tracepoint program.
    Object {
        path: PathBuf,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        function: Option<String>,
    },
    /// A program given as instructions, loaded as they are (BPF_PROG_LOAD; libbpf's
    /// `bpf_prog_load`).
    Insns(InsnProgram),
}

impl ProgramSource {
    /// A function of an object.
    pub fn object(path: impl Into<PathBuf>, function: Option<String>) -> Self {
        ProgramSource::Object {
            path: path.into(),
            function,
        }
    }
}

/// A program given as instructions: plain data, cheap to generate by the thousand (each
/// instruction is `[code, dst, src, off, imm]`, `struct bpf_insn`'s fields).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InsnProgram {
    pub prog_type: ProgType,
    /// The program's name for the kernel (`prog_name`, at most 15 bytes kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default = "default_license")]
    pub license: String,
    pub insns: Vec<Insn>,
    /// Maps created before the load; each one's fd goes into the `imm` of the instructions
    /// it lists (the first half of a `BPF_LD_MAP_FD`, whose `src` is BPF_PSEUDO_MAP_FD).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub maps: Vec<InsnMap>,
    /// The `attach` step's tracepoint when the step names none (what a section name gives an
    /// object's program).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracepoint: Option<String>,
}

fn default_license() -> String {
    "GPL".to_owned()
}

/// One `struct bpf_insn`; serialised as `[code, dst, src, off, imm]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "(u8, u8, u8, i16, i32)", into = "(u8, u8, u8, i16, i32)")]
pub struct Insn {
    pub code: u8,
    pub dst: u8,
    pub src: u8,
    pub off: i16,
    pub imm: i32,
}

impl From<(u8, u8, u8, i16, i32)> for Insn {
    fn from((code, dst, src, off, imm): (u8, u8, u8, i16, i32)) -> Self {
        Insn {
            code,
            dst,
            src,
            off,
            imm,
        }
    }
}

impl From<Insn> for (u8, u8, u8, i16, i32) {
    fn from(insn: Insn) -> Self {
        (insn.code, insn.dst, insn.src, insn.off, insn.imm)
    }
}

/// A map an instruction program uses (BPF_MAP_CREATE's numbers).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InsnMap {
    /// Its name for the `map` a step may look up; also the kernel's `map_name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub map_type: u32,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub map_flags: u32,
    /// Indexes of the instructions whose `imm` becomes the map's fd.
    pub insns: Vec<usize>,
}

/// An action the harness performs after the program is loaded. Each yields one [`Outcome`].
///
/// Every case runs twice in the same boot: its steps on the own loader's program, then (the
/// own loader's program, links and pin gone) the same steps on libbpf's copy of it, and the
/// host requires the same outcome at every step libbpf ran. libbpf runs the steps in order up
/// to the first one that cannot run a second time in a boot ([`Step::libbpf_skips`]): that step
/// and every later one are the own loader's alone (what they change is what the later steps
/// observe), and the host names the first of them with its reason instead of comparing them.
/// - run by libbpf (they touch the program, its maps and links, or fire a tracepoint that is
///   back to its initial state once the own loader's program is gone): `attach`,
///   `link_create`, `close_link`, `link_info`, `pin`, `get_pinned`, `unpin` (the own loader's
///   pin is removed before libbpf's run, so the path is free again), `link_detach`,
///   `link_update`, `set_global`, `read_global`, `prog_array_set` (libbpf loads the target with
///   the object), `freplace` (libbpf loads the extension from a second open of the object that
///   reuses the first one's maps, with `bpf_program__set_attach_target`), `testmod_read`,
///   `test_run_socket_filter`, `test_run_self`, `host_write` (it truncates and rewrites),
///   and the triggers for anything, `exec`, `read_file` and `write_file`: they are how a case
///   fires its own tracepoint, so libbpf's program must see them too. A command or a write
///   that changes the guest for good (a second `exec` would find another state) belongs after
///   the steps libbpf compares, or in a case of its own;
/// - not run by libbpf: `nbd_connect`, `nbd_read`, `nbd_disconnect` (they change /dev/nbd0
///   for the rest of the boot, and a rewritten request can break the device for every later
///   case), `crash_kernel`, `hang`, `abort_harness` (they end the run).
///
/// When libbpf's run stops before the case's first `attach`, libbpf still attaches there
/// ([`LibbpfAnswer::attach`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "do", rename_all = "snake_case")]
pub enum Step {
    /// BPF_RAW_TRACEPOINT_OPEN; the link stays open until `detach`. Without a name, the
    /// tracepoint in the program's section name (`raw_tp.w/<name>`), as libbpf would do.
    /// Either way the name goes through [`Plan::tracepoint_names`]. The value is the name used.
    /// With `cookie`, the link gets it (`raw_tracepoint.cookie`, 6.10+; older kernels refuse
    /// the non-zero field) and the program reads it with bpf_get_attach_cookie().
    Attach {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tracepoint: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cookie: Option<u64>,
    },
    /// BPF_LINK_CREATE with attach type BPF_TRACE_RAW_TP: the generic link path the docs
    /// name as the other way to attach (the kernel refuses it for raw_tp and raw_tp.w).
    #[serde(rename = "link_create", alias = "attach_link")]
    AttachLink,
    /// Close the harness's fd of the link (a pin may keep the link alive).
    #[serde(rename = "close_link", alias = "detach")]
    Detach,
    /// BPF_OBJ_GET_INFO_BY_FD of the link, its fdinfo, and whether BPF_LINK_GET_NEXT_ID lists
    /// it; the value is `{"type", "fdinfo_link_type", "tp_name", "prog_id_is_the_program",
    /// "listed_by_id"}` (no ids: they differ from run to run).
    LinkInfo,
    /// BPF_OBJ_PIN of the link at [`PIN_DIR`]`/<case>` (bpffs mounted if it is not).
    Pin,
    /// BPF_OBJ_GET of the pinned link: the harness holds an fd of it again.
    GetPinned,
    /// Unlink the pin. A link whose last reference was its pin is released from a workqueue,
    /// so what follows races with that release; close an fd last to release synchronously.
    Unpin,
    /// BPF_LINK_DETACH on the link.
    LinkDetach,
    /// BPF_LINK_UPDATE of the link with the case's own program as the new one.
    LinkUpdate,
    /// Write a global in the program's `.data`/`.bss` map while it is loaded.
    SetGlobal { name: String, value: u64 },
    /// Read a global from the program's `.data`/`.bss` map; the value is an unsigned integer.
    ReadGlobal { name: String },
    /// Load `program`, another raw tracepoint program of the case's object, against the same
    /// maps, and put it into slot `index` of the prog array `map` (BPF_MAP_UPDATE_ELEM): a
    /// tail-call target filled at run time. The kernel's answer to the load (its errno if the
    /// verifier refused the program) or to the update.
    ProgArraySet {
        map: String,
        index: u32,
        program: String,
    },
    /// Load `program`, a `freplace/<function>` program of the case's object, as a replacement
    /// of that global function of the case's (loaded) program, and attach it
    /// (BPF_RAW_TRACEPOINT_OPEN without a name: bpf_tracing_prog_attach). The kernel's answer
    /// to the load or to the attach; the replacement stays until the case ends.
    Freplace { program: String },
    /// Read [`TESTMOD_WRITABLE_READ_LEN`] bytes from [`TESTMOD_SYSFS`]; the value is
    /// `{"len": <bytes returned>, "text": <what was read>}`.
    TestmodRead,
    /// Connect /dev/nbd0 to the harness's NBD server over a socketpair (NBD ioctls).
    NbdConnect,
    /// One O_DIRECT read of 4 KiB at `offset`; the value is `{"len", "block", "uniform",
    /// "server"}`: bytes read, the block whose pattern came back, whether every byte matched
    /// it, and the requests the server received for this read.
    NbdRead { offset: u64 },
    /// NBD_DISCONNECT, join NBD_DO_IT and the server, NBD_CLEAR_SOCK.
    NbdDisconnect,
    /// BPF_PROG_TEST_RUN of a trivial socket filter (fires `bpf_test_finish`); the value is
    /// `{"ret": <syscall return>, "retval": <program return>}`.
    TestRunSocketFilter,
    /// BPF_PROG_TEST_RUN of the case's own program.
    TestRunSelf,
    /// Fault injection for the harness's own tests: write `c` to /proc/sysrq-trigger (the
    /// guest kernel panics).
    CrashKernel,
    /// Fault injection: never return (the run's timeout must catch it).
    Hang,
    /// Fault injection: abort the harness process.
    AbortHarness,
    /// Fault injection: create a file at `path` anywhere (outside the run directory it must
    /// fail or stay in the guest: the host is read-only); unchecked, for the fault tests.
    HostWrite { path: String },
    /// Run `argv` in the guest and wait for it (at most [`EXEC_TIMEOUT_SECS`]): `argv[0]` is a
    /// path or a name searched on the guest's PATH. The value is `{"status": <exit status, or
    /// null when a signal ended it>, "stdout": <up to [`EXEC_OUTPUT_LIMIT`] bytes, as text>}`;
    /// a program that is not there is a harness error naming it.
    Exec { argv: Vec<String> },
    /// One read(2) of `len` bytes from `path` (without `len`: read to the end, at most
    /// [`READ_FILE_LIMIT`] bytes); the value is `{"len": <bytes read>, "text": <them>}`.
    /// `path` is one of the guest's own files ([`guest_path_problem`]).
    ReadFile {
        path: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        len: Option<u64>,
    },
    /// One write(2) of `text` to `path` (opened for writing, created in /tmp); the value is
    /// the number of bytes written. `path` is one of the guest's own files.
    WriteFile { path: String, text: String },
}

/// Most bytes of an `exec` step's stdout kept in its value (the rest is read and dropped).
pub const EXEC_OUTPUT_LIMIT: usize = 4096;
/// Longest an `exec` step's command may run before it is killed (a harness error then).
pub const EXEC_TIMEOUT_SECS: u64 = 30;
/// Most bytes a `read_file` step without `len` reads.
pub const READ_FILE_LIMIT: usize = 65536;
/// Where `read_file` and `write_file` may go: the guest's own files. /proc, /sys and /dev are
/// the guest kernel's; /tmp is a private overlay in the guest (what is written there never
/// reaches the host). Everything else is the host's root, shared read-only.
pub const GUEST_FILE_ROOTS: &[&str] = &["/proc", "/sys", "/dev", "/tmp"];

/// Why `path` is not one of the guest's own files, if it is not: it must be absolute, under
/// one of [`GUEST_FILE_ROOTS`], without `.` or `..` components, and not reach the host's
/// root through a process's `root`, `cwd`, `exe` or `fd` link in /proc.
pub fn guest_path_problem(path: &str) -> Option<String> {
    let Some(rest) = path.strip_prefix('/') else {
        return Some(format!("`{path}` is not an absolute path"));
    };
    let parts: Vec<&str> = rest.split('/').collect();
    if parts.iter().any(|part| *part == ".." || *part == ".") {
        return Some(format!("`{path}` has a `.` or `..` component"));
    }
    let under_root = GUEST_FILE_ROOTS
        .iter()
        .any(|root| parts.first() == Some(&&root[1..]) && parts.len() > 1 && !parts[1].is_empty());
    if !under_root {
        return Some(format!(
            "`{path}` is not one of the guest's own files (under {})",
            GUEST_FILE_ROOTS.join(", ")
        ));
    }
    let through_a_process = parts[0] == "proc"
        && parts.len() > 2
        && ["root", "cwd", "exe", "fd", "map_files"].contains(&parts[2]);
    if through_a_process {
        return Some(format!(
            "`{path}` goes through a process's `{}` link to files that are not the guest's own",
            parts[2]
        ));
    }
    None
}

/// Why `argv` cannot be an `exec` step's command line, if it cannot: it needs a program, and
/// the program is a name (searched on the guest's PATH) or an absolute path without `.` or
/// `..` components.
pub fn exec_problem(argv: &[String]) -> Option<String> {
    let Some(program) = argv.first() else {
        return Some("`argv` is empty: it needs at least the program".into());
    };
    if program.is_empty() {
        return Some("the program (`argv[0]`) is empty".into());
    }
    if !program.contains('/') {
        return None;
    }
    match program.strip_prefix('/') {
        None => Some(format!(
            "the program `{program}` is a relative path: give a name on the guest's PATH or an absolute path"
        )),
        Some(rest) if rest.split('/').any(|part| part == ".." || part == ".") => {
            Some(format!("the program `{program}` has a `.` or `..` component"))
        }
        Some(_) => None,
    }
}

impl Step {
    /// The step's name as case files spell it (`do = "..."`).
    pub fn name(&self) -> &'static str {
        match self {
            Step::Attach { .. } => "attach",
            Step::AttachLink => "link_create",
            Step::Detach => "close_link",
            Step::LinkInfo => "link_info",
            Step::Pin => "pin",
            Step::GetPinned => "get_pinned",
            Step::Unpin => "unpin",
            Step::LinkDetach => "link_detach",
            Step::LinkUpdate => "link_update",
            Step::SetGlobal { .. } => "set_global",
            Step::ReadGlobal { .. } => "read_global",
            Step::ProgArraySet { .. } => "prog_array_set",
            Step::Freplace { .. } => "freplace",
            Step::TestmodRead => "testmod_read",
            Step::NbdConnect => "nbd_connect",
            Step::NbdRead { .. } => "nbd_read",
            Step::NbdDisconnect => "nbd_disconnect",
            Step::TestRunSocketFilter => "test_run_socket_filter",
            Step::TestRunSelf => "test_run_self",
            Step::CrashKernel => "crash_kernel",
            Step::Hang => "hang",
            Step::AbortHarness => "abort_harness",
            Step::HostWrite { .. } => "host_write",
            Step::Exec { .. } => "exec",
            Step::ReadFile { .. } => "read_file",
            Step::WriteFile { .. } => "write_file",
        }
    }

    /// The fields a case file may give this step besides `do`, as serde spells them (the
    /// host rejects any other: serde ignores unknown fields of a flattened, tagged step).
    pub fn fields(&self) -> &'static [&'static str] {
        match self {
            Step::Attach { .. } => &["tracepoint", "cookie"],
            Step::SetGlobal { .. } => &["name", "value"],
            Step::ReadGlobal { .. } => &["name"],
            Step::NbdRead { .. } => &["offset"],
            Step::HostWrite { .. } => &["path"],
            Step::Exec { .. } => &["argv"],
            Step::ReadFile { .. } => &["path", "len"],
            Step::WriteFile { .. } => &["path", "text"],
            Step::ProgArraySet { .. } => &["map", "index", "program"],
            Step::Freplace { .. } => &["program"],
            Step::AttachLink
            | Step::Detach
            | Step::LinkInfo
            | Step::Pin
            | Step::GetPinned
            | Step::Unpin
            | Step::LinkDetach
            | Step::LinkUpdate
            | Step::TestmodRead
            | Step::NbdConnect
            | Step::NbdDisconnect
            | Step::TestRunSocketFilter
            | Step::TestRunSelf
            | Step::CrashKernel
            | Step::Hang
            | Step::AbortHarness => &[],
        }
    }

    /// Why libbpf's run of the case stops before this step, if it does (the rule is on
    /// [`Step`]): the step cannot run a second time in one boot.
    pub fn libbpf_skips(&self) -> Option<&'static str> {
        match self {
            Step::NbdConnect | Step::NbdRead { .. } | Step::NbdDisconnect => Some(
                "it changes /dev/nbd0 for the rest of the boot (a rewritten request can break the device)",
            ),
            Step::CrashKernel | Step::Hang | Step::AbortHarness => {
                Some("a fault step ends the run")
            }
            Step::Attach { .. }
            | Step::AttachLink
            | Step::Detach
            | Step::LinkInfo
            | Step::Pin
            | Step::GetPinned
            | Step::Unpin
            | Step::LinkDetach
            | Step::LinkUpdate
            | Step::SetGlobal { .. }
            | Step::ReadGlobal { .. }
            | Step::ProgArraySet { .. }
            | Step::Freplace { .. }
            | Step::TestmodRead
            | Step::TestRunSocketFilter
            | Step::TestRunSelf
            | Step::HostWrite { .. }
            | Step::Exec { .. }
            | Step::ReadFile { .. }
            | Step::WriteFile { .. } => None,
        }
    }

    /// Whether the step makes the kernel run the tracepoint (for the "triggered" phase).
    pub fn is_trigger(&self) -> bool {
        matches!(
            self,
            Step::TestmodRead
                | Step::NbdRead { .. }
                | Step::TestRunSocketFilter
                | Step::Exec { .. }
                | Step::ReadFile { .. }
                | Step::WriteFile { .. }
        )
    }
}

/// A helper to probe: its number in `enum bpf_func_id` and its name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HelperProbe {
    pub id: u32,
    pub name: String,
}

/// One line of the results file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
pub enum Record {
    /// The harness is up: what kernel it runs on and which modules it loaded.
    Boot(BootInfo),
    /// A case is about to run (so a hang can be pinned on it), at this guest uptime.
    Started {
        case: String,
        #[serde(default)]
        uptime_ms: u64,
    },
    /// A case ran to its end, whatever the kernel said.
    Finished(Box<CaseResult>),
    /// Every helper probe for one program type.
    Helpers {
        prog_type: ProgType,
        answers: Vec<HelperAnswer>,
    },
    /// Programs of this type calling each of [`KFUNC_PROBES`].
    Kfuncs {
        prog_type: ProgType,
        answers: Vec<KfuncAnswer>,
    },
    /// A batch of one sweep's results, in plan order (a sweep writes several).
    Sweep {
        sweep: String,
        results: Vec<SweepResult>,
        /// Written after the last batch: the sweep ran to its end; guest milliseconds it took.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        done_ms: Option<u64>,
        /// What the sweep as a whole noted (the interpreter could not be turned on, ...).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        notes: Vec<String>,
    },
    /// The harness finished every case; a results file without it is incomplete.
    End { cases: usize },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BootInfo {
    pub kernel_release: String,
    pub modules: Vec<ModuleLoad>,
    /// Guest uptime when the harness started (boot to first case, for the benchmark).
    #[serde(default)]
    pub uptime_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModuleLoad {
    pub path: PathBuf,
    pub outcome: Outcome,
}

/// How far a case got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// The object exists but the kernel did not accept the program.
    Compiled,
    Loaded,
    Attached,
    /// The tracepoint was fired at least once while the program was attached.
    Triggered,
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(match self {
            Phase::Compiled => "compiled",
            Phase::Loaded => "loaded",
            Phase::Attached => "attached",
            Phase::Triggered => "triggered",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseResult {
    pub case: String,
    pub phase: Phase,
    pub load: LoadReport,
    pub steps: Vec<StepRecord>,
    /// The second opinion: the same object, program and globals loaded by libbpf in the same
    /// guest, and the case's steps run on libbpf's program. The host requires it to agree
    /// with the own loader: load, first attach and step outcomes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub libbpf: Option<LibbpfAnswer>,
}

/// What libbpf made of a case's object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LibbpfAnswer {
    /// `bpf_object__load` with the case's program autoloaded, with the tail-call targets its
    /// `prog_array_set` steps name and the programs the object's static prog-array
    /// initialisers name (and no other): ok, or the errno.
    pub load: Outcome,
    /// Whether the kernel's verifier saw the program (its log is not empty): a failure
    /// without it is libbpf's own (the object, a relocation), not the kernel's.
    pub reached_verifier: bool,
    /// The verifier's verdict line when it refused the program.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub verdict: String,
    /// The answer to the case's first `attach` on libbpf's program
    /// (`bpf_program__attach_raw_tracepoint`), without the tracepoint's name, when the case
    /// attaches and libbpf loaded the program: the outcome of that step in [`Self::steps`], or
    /// of that attach alone when libbpf's run stopped before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attach: Option<Outcome>,
    /// What libbpf printed (warnings and errors), for a disagreement's message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<String>,
    /// The case's steps run on libbpf's program, up to the first one libbpf does not run
    /// ([`Step::libbpf_skips`]); empty when libbpf did not load the program. The host
    /// compares them with the own loader's; snapshots keep only the own loader's steps.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<StepRecord>,
}

/// What BPF_PROG_LOAD said, with the verifier log whether it accepted the program or not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadReport {
    pub outcome: Outcome,
    /// The program type of the load (snapshotted as its number, e.g. 24); `None` when the
    /// object never reached BPF_PROG_LOAD.
    #[serde(default)]
    pub prog_type: Option<ProgType>,
    pub insn_count: usize,
    pub verifier_log: String,
    /// Where the loader departed from what libbpf would do (a section skipped, BTF refused);
    /// empty for an ordinary object.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    pub step: Step,
    pub outcome: Outcome,
}

/// The result of one kernel interaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Outcome {
    Ok {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value: Option<serde_json::Value>,
    },
    /// The kernel returned an error number.
    Errno { errno: i32, name: String },
    /// Something the harness itself could not do (bad plan, missing map, ...).
    Error { message: String },
}

impl Outcome {
    pub fn ok() -> Self {
        Outcome::Ok { value: None }
    }

    pub fn value(value: serde_json::Value) -> Self {
        Outcome::Ok { value: Some(value) }
    }

    pub fn errno(errno: i32) -> Self {
        Outcome::Errno {
            errno,
            name: errno_name(errno).to_owned(),
        }
    }

    /// An I/O error as the kernel reported it: its errno if it has one.
    pub fn from_io(error: &std::io::Error) -> Self {
        match error.raw_os_error() {
            Some(errno) => Outcome::errno(errno),
            None => Outcome::Error {
                message: error.to_string(),
            },
        }
    }

    pub fn is_ok(&self) -> bool {
        matches!(self, Outcome::Ok { .. })
    }
}

/// The verifier's verdict in a log: the last line that is not its statistics (and not a
/// source line, which only loaders that pass line info get). Empty for an empty log.
pub fn verifier_verdict(log: &str) -> &str {
    log.lines()
        .rev()
        .map(str::trim_end)
        .find(|line| {
            !line.is_empty()
                && !line.starts_with("processed ")
                && !line.starts_with("verification time")
                && !line.starts_with("stack depth")
                && !line.starts_with("; ")
        })
        .unwrap_or_default()
}

/// Symbolic name of an errno as the kernel spells it; `E<number>` for ones outside the table.
pub fn errno_name(errno: i32) -> &'static str {
    ERRNO_NAMES
        .iter()
        .find(|(number, _)| *number == errno)
        .map_or("EUNKNOWN", |(_, name)| name)
}

/// The symbolic errno names this project knows ([`errno_number`]), in numeric order.
pub fn errno_names() -> impl Iterator<Item = &'static str> {
    ERRNO_NAMES.iter().map(|(_, name)| *name)
}

/// Errno number for a symbolic name, if it is one this project knows.
pub fn errno_number(name: &str) -> Option<i32> {
    ERRNO_NAMES
        .iter()
        .find(|(_, known)| *known == name)
        .map(|(number, _)| *number)
}

/// The errnos the BPF syscall and the triggers are known to return (asm-generic numbering,
/// plus the kernel-internal ENOTSUPP that BPF_PROG_TEST_RUN leaks).
const ERRNO_NAMES: &[(i32, &str)] = &[
    (1, "EPERM"),
    (2, "ENOENT"),
    (3, "ESRCH"),
    (4, "EINTR"),
    (5, "EIO"),
    (6, "ENXIO"),
    (7, "E2BIG"),
    (9, "EBADF"),
    (11, "EAGAIN"),
    (12, "ENOMEM"),
    (13, "EACCES"),
    (14, "EFAULT"),
    (16, "EBUSY"),
    (17, "EEXIST"),
    (19, "ENODEV"),
    (22, "EINVAL"),
    (24, "EMFILE"),
    (28, "ENOSPC"),
    (30, "EROFS"),
    (34, "ERANGE"),
    (38, "ENOSYS"),
    (62, "ETIME"),
    (95, "EOPNOTSUPP"),
    (110, "ETIMEDOUT"),
    (524, "ENOTSUPP"),
];

#[cfg(test)]
mod tests {
    use super::*;

    /// Every field a step serialises (each struct variant built with all its fields, so a
    /// new field does not compile here until it is listed) is one `Step::fields` names.
    #[test]
    fn step_fields_are_the_fields_serde_writes() {
        let full = [
            Step::Attach {
                tracepoint: Some("tp".into()),
                cookie: Some(1),
            },
            Step::SetGlobal {
                name: "g".into(),
                value: 1,
            },
            Step::ReadGlobal { name: "g".into() },
            Step::NbdRead { offset: 0 },
            Step::HostWrite { path: "/x".into() },
            Step::Exec {
                argv: vec!["cat".into()],
            },
            Step::ReadFile {
                path: "/proc/x".into(),
                len: Some(64),
            },
            Step::WriteFile {
                path: "/proc/x".into(),
                text: "1".into(),
            },
            Step::Detach,
        ];
        for step in full {
            let value = serde_json::to_value(&step).unwrap();
            let mut keys: Vec<&str> = value
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .filter(|key| *key != "do")
                .collect();
            let mut fields = step.fields().to_vec();
            keys.sort();
            fields.sort();
            assert_eq!(keys, fields, "{}", step.name());
        }
    }

    #[test]
    fn records_round_trip_through_json_lines() {
        let records = vec![
            Record::Boot(BootInfo {
                kernel_release: "6.12.117".into(),
                modules: vec![ModuleLoad {
                    path: "/cache/bpf_testmod.ko".into(),
                    outcome: Outcome::ok(),
                }],
                uptime_ms: 2000,
            }),
            Record::Started {
                case: "bare".into(),
                uptime_ms: 2100,
            },
            Record::Finished(Box::new(CaseResult {
                case: "bare".into(),
                phase: Phase::Triggered,
                load: LoadReport {
                    outcome: Outcome::ok(),
                    prog_type: Some(ProgType::RawTracepointWritable),
                    insn_count: 7,
                    verifier_log: "processed 7 insns".into(),
                    notes: Vec::new(),
                },
                steps: vec![
                    StepRecord {
                        step: Step::Attach {
                            tracepoint: Some("bpf_testmod_test_writable_bare".into()),
                            cookie: None,
                        },
                        outcome: Outcome::ok(),
                    },
                    StepRecord {
                        step: Step::TestmodRead,
                        outcome: Outcome::errno(5),
                    },
                    StepRecord {
                        step: Step::ReadGlobal {
                            name: "seen_val".into(),
                        },
                        outcome: Outcome::value(1024.into()),
                    },
                ],
                libbpf: Some(LibbpfAnswer {
                    load: Outcome::ok(),
                    reached_verifier: true,
                    verdict: String::new(),
                    attach: Some(Outcome::ok()),
                    messages: vec![],
                    steps: vec![StepRecord {
                        step: Step::TestmodRead,
                        outcome: Outcome::errno(5),
                    }],
                }),
            })),
            Record::End { cases: 1 },
        ];
        let text: String = records
            .iter()
            .map(|r| serde_json::to_string(r).unwrap() + "\n")
            .collect();
        let back: Vec<Record> = text
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(back, records);
        assert!(text.contains(r#""result":"errno","errno":5,"name":"EIO""#));
    }

    /// An answer whose program ran no steps serialises as before the field existed, and the
    /// steps libbpf leaves to the own loader are the ones that change the boot's state.
    #[test]
    fn libbpf_steps_are_optional_and_skipped_steps_are_the_unrepeatable_ones() {
        let answer = LibbpfAnswer {
            load: Outcome::errno(13),
            reached_verifier: true,
            verdict: "R6 invalid mem access 'scalar'".into(),
            attach: None,
            messages: vec![],
            steps: vec![],
        };
        let json = serde_json::to_string(&answer).unwrap();
        assert!(!json.contains("steps"), "{json}");
        assert_eq!(serde_json::from_str::<LibbpfAnswer>(&json).unwrap(), answer);
        let skipped: Vec<&str> = [
            Step::NbdConnect,
            Step::NbdRead { offset: 0 },
            Step::NbdDisconnect,
            Step::CrashKernel,
            Step::Hang,
            Step::AbortHarness,
            Step::Pin,
            Step::TestmodRead,
            Step::Freplace {
                program: "ext".into(),
            },
        ]
        .iter()
        .filter(|step| step.libbpf_skips().is_some())
        .map(Step::name)
        .collect();
        assert_eq!(
            skipped,
            [
                "nbd_connect",
                "nbd_read",
                "nbd_disconnect",
                "crash_kernel",
                "hang",
                "abort_harness"
            ]
        );
    }

    /// A program given as instructions travels as plain data: each instruction
    /// `[code, dst, src, off, imm]`, the maps with the instructions that load them.
    #[test]
    fn program_sources_travel_as_plain_data() {
        let json = r#"{"insns":{"prog_type":24,"insns":[[24,1,1,0,0],[0,0,0,0,0],[149,0,0,0,0]],
            "maps":[{"map_type":1,"key_size":8,"value_size":8,"max_entries":1,"map_flags":1,"insns":[0]}]}}"#;
        let source: ProgramSource = serde_json::from_str(json).unwrap();
        let ProgramSource::Insns(program) = &source else {
            panic!("{source:?}")
        };
        assert_eq!(program.license, "GPL");
        assert_eq!(
            program.insns[0],
            Insn {
                code: 0x18,
                dst: 1,
                src: 1,
                off: 0,
                imm: 0
            }
        );
        assert_eq!(program.maps[0].insns, [0]);
        let back: ProgramSource =
            serde_json::from_str(&serde_json::to_string(&source).unwrap()).unwrap();
        assert_eq!(back, source);
        let object = ProgramSource::object("/o.o", Some("f".into()));
        assert_eq!(
            serde_json::to_string(&object).unwrap(),
            r#"{"object":{"path":"/o.o","function":"f"}}"#
        );
    }

    #[test]
    fn step_names_are_the_case_file_spelling() {
        let steps = [
            Step::Attach {
                tracepoint: None,
                cookie: None,
            },
            Step::NbdRead { offset: 0 },
            Step::TestRunSocketFilter,
            Step::HostWrite { path: "x".into() },
            Step::Exec { argv: vec![] },
            Step::ReadFile {
                path: "x".into(),
                len: None,
            },
            Step::WriteFile {
                path: "x".into(),
                text: String::new(),
            },
        ];
        for step in steps {
            let json = serde_json::to_value(&step).unwrap();
            assert_eq!(json["do"], step.name());
        }
    }

    #[test]
    fn link_steps_have_the_names_users_guess() {
        let parse = |json: &str| serde_json::from_str::<Step>(json).unwrap();
        assert_eq!(parse(r#"{"do":"close_link"}"#), Step::Detach);
        assert_eq!(parse(r#"{"do":"detach"}"#), Step::Detach);
        assert_eq!(parse(r#"{"do":"link_create"}"#), Step::AttachLink);
        assert_eq!(
            parse(r#"{"do":"attach","cookie":24301}"#),
            Step::Attach {
                tracepoint: None,
                cookie: Some(24301)
            }
        );
        for step in [
            Step::Detach,
            Step::AttachLink,
            Step::LinkInfo,
            Step::Pin,
            Step::Unpin,
        ] {
            let json = serde_json::to_value(&step).unwrap();
            assert_eq!(json["do"], step.name());
        }
    }

    #[test]
    fn guest_paths_are_the_guests_own_files() {
        for good in [
            "/proc/wtp_own_tp",
            "/sys/kernel/bpf_testmod",
            "/dev/null",
            "/tmp/a/b",
        ] {
            assert_eq!(guest_path_problem(good), None, "{good}");
        }
        for (bad, why) in [
            ("proc/x", "not an absolute path"),
            ("/etc/passwd", "not one of the guest's own files"),
            ("/proc", "not one of the guest's own files"),
            ("/proctor/x", "not one of the guest's own files"),
            ("/tmp/../etc/passwd", "`..` component"),
            ("/proc/self/root/etc/passwd", "`root` link"),
            ("/proc/1/cwd/x", "`cwd` link"),
        ] {
            let problem = guest_path_problem(bad).unwrap_or_default();
            assert!(problem.contains(why), "{bad}: {problem}");
        }
        assert_eq!(exec_problem(&["cat".into(), "/proc/x".into()]), None);
        assert_eq!(exec_problem(&["/bin/cat".into()]), None);
        for (bad, why) in [
            (vec![], "`argv` is empty"),
            (vec!["bin/cat".to_owned()], "relative path"),
            (vec!["/bin/../bin/cat".to_owned()], "`..`"),
        ] {
            let problem = exec_problem(&bad).unwrap_or_default();
            assert!(problem.contains(why), "{bad:?}: {problem}");
        }
    }

    #[test]
    fn program_types_travel_as_the_kernel_numbers() {
        assert_eq!(
            serde_json::to_string(&ProgType::RawTracepointWritable).unwrap(),
            "24"
        );
        assert_eq!(
            serde_json::from_str::<ProgType>("17").unwrap(),
            ProgType::RawTracepoint
        );
        assert!(serde_json::from_str::<ProgType>("2").is_err());
        assert_eq!(ProgType::RawTracepointWritable.to_string(), "raw_tp.w");
    }

    #[test]
    fn the_verdict_is_the_last_line_before_the_statistics() {
        let log = "0: (85) call bpf_xyz#300\nunknown func bpf_xyz#300\nprocessed 1 insns (limit 1000000)\n";
        assert_eq!(verifier_verdict(log), "unknown func bpf_xyz#300");
        let with_lines = "; v = *p @ a.c:3\nR6 invalid mem access 'scalar'\nverification time 5 usec\nstack depth 0\n";
        assert_eq!(
            verifier_verdict(with_lines),
            "R6 invalid mem access 'scalar'"
        );
        assert_eq!(verifier_verdict(""), "");
    }

    #[test]
    fn errno_names_cover_the_bpf_answers_both_ways() {
        for name in ["EACCES", "EINVAL", "ENOENT", "EIO", "ENOTSUPP"] {
            let number = errno_number(name).unwrap();
            assert_eq!(errno_name(number), name);
        }
        assert_eq!(errno_name(4242), "EUNKNOWN");
    }

    /// A sweep result written before reads were a thing (`after` as the buffer's bytes) reads
    /// back as the buffer; a read's answer is tagged by its kind.
    #[test]
    fn what_a_firing_showed_keeps_the_buffers_old_form() {
        let old = r#"{"name":"p","load":0,"attach":0,"after":[42,0,0,0],"interpreted":[42,0,0,0]}"#;
        let result: SweepResult = serde_json::from_str(old).unwrap();
        assert_eq!(result.after, Some(SweepSeen::Buffer(vec![42, 0, 0, 0])));
        let read = SweepSeen::Read(ReadAnswer::Text("1024\n".into()));
        let text = serde_json::to_string(&read).unwrap();
        assert_eq!(text, r#"{"text":"1024\n"}"#);
        assert_eq!(serde_json::from_str::<SweepSeen>(&text).unwrap(), read);
        let failed = SweepSeen::Read(ReadAnswer::Errno(5));
        let text = serde_json::to_string(&failed).unwrap();
        assert_eq!(text, r#"{"errno":5}"#);
        assert_eq!(serde_json::from_str::<SweepSeen>(&text).unwrap(), failed);
        let plan =
            r#"{"name":"sweep.bpf_test_finish","tracepoint":"bpf_test_finish","programs":[]}"#;
        let plan: SweepPlan = serde_json::from_str(plan).unwrap();
        assert_eq!(plan.trigger, SweepTrigger::TestRun);
    }
}
