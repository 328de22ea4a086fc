//! The BPF syscalls aya does not expose for this program type, built on aya-obj's generated
//! `bpf_attr`. Every call zeroes the whole attribute union first: older kernels reject an attr
//! whose bytes past the fields they know are not zero.

use std::ffi::CStr;
use std::io;
use std::mem;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use aya_obj::generated::{bpf_attr, bpf_cmd, bpf_insn};
use protocol::ProgType;

/// Verifier log level 1: the instructions as verified plus the statistics line.
const LOG_LEVEL: u32 = 1;
/// BPF_PROG_LOAD's `log_level` unless a case asks for another (upstream's `__log_level(2)`).
pub const DEFAULT_LOG_LEVEL: u32 = LOG_LEVEL;
/// Start small; grow on ENOSPC up to the kernel's own cap (UINT_MAX >> 2 in 6.x, 16 MiB in 5.x).
const LOG_START_SIZE: usize = 64 * 1024;
const LOG_MAX_SIZE: usize = 16 * 1024 * 1024 - 1;

/// Result of one BPF_PROG_LOAD: the fd (or errno) and the full verifier log either way.
pub struct ProgLoad {
    pub result: Result<OwnedFd, io::Error>,
    pub verifier_log: String,
}

pub struct ProgLoadRequest<'a> {
    pub prog_type: ProgType,
    pub name: &'a str,
    pub insns: &'a [bpf_insn],
    pub license: &'a CStr,
    /// BPF_PROG_LOAD's `prog_flags` (BPF_F_ANY_ALIGNMENT, ...).
    pub flags: u32,
    /// BPF_PROG_LOAD's `log_level` ([`DEFAULT_LOG_LEVEL`] but where a case asks otherwise).
    pub log_level: u32,
    /// The program's BTF, function and line info, as libbpf passes them: the verifier then
    /// prints the source line of each instruction it complains about.
    pub btf: Option<ProgBtf<'a>>,
    /// For an extension: the program it extends and the BTF id of the function it replaces
    /// (`attach_prog_fd`, `attach_btf_id`).
    pub replaces: Option<(BorrowedFd<'a>, u32)>,
    /// BPF_PROG_LOAD's `fd_array` (kfunc calls into a module name its BTF fd's index here);
    /// empty: none.
    pub fd_array: &'a [i32],
}

/// `prog_btf_fd` with the `func_info` and `line_info` records (the `.BTF.ext` of the object).
#[derive(Clone, Copy)]
pub struct ProgBtf<'a> {
    pub fd: BorrowedFd<'a>,
    pub func_info: InfoRecords<'a>,
    pub line_info: InfoRecords<'a>,
}

/// Packed records of one kind: their bytes, count and size of each.
#[derive(Clone, Copy)]
pub struct InfoRecords<'a> {
    pub bytes: &'a [u8],
    pub count: u32,
    pub record_size: u32,
}

/// BPF_PROG_LOAD with our own log buffer, grown until the whole log fits.
pub fn prog_load(request: &ProgLoadRequest<'_>) -> ProgLoad {
    let mut log_size = LOG_START_SIZE;
    loop {
        let mut log = vec![0u8; log_size];
        let result = prog_load_once(request, &mut log);
        let log_truncated = matches!(&result, Err(e) if e.raw_os_error() == Some(libc::ENOSPC));
        if log_truncated && log_size < LOG_MAX_SIZE {
            log_size = (log_size * 4).min(LOG_MAX_SIZE);
            continue;
        }
        return ProgLoad {
            result,
            verifier_log: c_buffer_to_string(&log),
        };
    }
}

/// BPF_PROG_LOAD once with a log of `log_size` bytes (the sweep's small programs: their whole
/// log fits, and thousands of loads do not each zero 64 KiB); 0 asks for no log.
pub fn prog_load_small(request: &ProgLoadRequest<'_>, log_size: usize) -> ProgLoad {
    let mut log = vec![0u8; log_size];
    let result = prog_load_once(request, &mut log);
    ProgLoad {
        result,
        verifier_log: c_buffer_to_string(&log),
    }
}

fn prog_load_once(request: &ProgLoadRequest<'_>, log: &mut [u8]) -> io::Result<OwnedFd> {
    let mut attr = zeroed_attr();
    // SAFETY: writing plain integer fields of the zeroed union member used by BPF_PROG_LOAD.
    let load = unsafe { &mut attr.__bindgen_anon_3 };
    load.prog_type = request.prog_type.number();
    load.insn_cnt = request.insns.len() as u32;
    load.insns = request.insns.as_ptr() as u64;
    load.license = request.license.as_ptr() as u64;
    load.prog_flags = request.flags;
    // An empty buffer asks for no log at all: the verifier then formats nothing.
    if !log.is_empty() {
        load.log_level = request.log_level;
        load.log_size = log.len() as u32;
        load.log_buf = log.as_mut_ptr() as u64;
    }
    copy_prog_name(&mut load.prog_name, request.name);
    if let Some((target, btf_id)) = request.replaces {
        load.__bindgen_anon_1.attach_prog_fd = target.as_raw_fd() as u32;
        load.attach_btf_id = btf_id;
    }
    if !request.fd_array.is_empty() {
        load.fd_array = request.fd_array.as_ptr() as u64;
    }
    if let Some(btf) = &request.btf {
        load.prog_btf_fd = btf.fd.as_raw_fd() as u32;
        if btf.func_info.count > 0 {
            load.func_info = btf.func_info.bytes.as_ptr() as u64;
            load.func_info_cnt = btf.func_info.count;
            load.func_info_rec_size = btf.func_info.record_size;
        }
        if btf.line_info.count > 0 {
            load.line_info = btf.line_info.bytes.as_ptr() as u64;
            load.line_info_cnt = btf.line_info.count;
            load.line_info_rec_size = btf.line_info.record_size;
        }
    }
    bpf_fd(bpf_cmd::BPF_PROG_LOAD, &mut attr)
}

/// BPF_RAW_TRACEPOINT_OPEN: attaches `prog` to the named tracepoint and returns the link;
/// closing the fd detaches. A non-zero `cookie` goes into `raw_tracepoint.cookie` (6.10+).
pub fn raw_tracepoint_open(
    prog: BorrowedFd<'_>,
    tracepoint: &CStr,
    cookie: u64,
) -> io::Result<OwnedFd> {
    let mut attr = zeroed_attr();
    // SAFETY: plain fields of the zeroed union member used by BPF_RAW_TRACEPOINT_OPEN.
    let open = unsafe { &mut attr.raw_tracepoint };
    open.name = tracepoint.as_ptr() as u64;
    open.prog_fd = prog.as_raw_fd() as u32;
    open.cookie = cookie;
    bpf_fd(bpf_cmd::BPF_RAW_TRACEPOINT_OPEN, &mut attr)
}

/// BPF_RAW_TRACEPOINT_OPEN without a name: attaches an extension (or fentry-like) program to
/// the target it was loaded for (bpf_tracing_prog_attach); closing the link detaches.
pub fn tracing_attach(prog: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    let mut attr = zeroed_attr();
    // SAFETY: plain fields of the zeroed union member used by BPF_RAW_TRACEPOINT_OPEN.
    let open = unsafe { &mut attr.raw_tracepoint };
    open.prog_fd = prog.as_raw_fd() as u32;
    bpf_fd(bpf_cmd::BPF_RAW_TRACEPOINT_OPEN, &mut attr)
}

/// What BPF_OBJ_GET_INFO_BY_FD says about a raw tracepoint link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    pub link_type: u32,
    pub id: u32,
    pub prog_id: u32,
    pub tp_name: String,
}

/// BPF_OBJ_GET_INFO_BY_FD of a link, with room for the raw tracepoint's name.
pub fn link_info(link: BorrowedFd<'_>) -> io::Result<LinkInfo> {
    let mut name = [0u8; 256];
    // SAFETY: bpf_link_info is a plain C struct of integers; all-zero is its empty state.
    let mut info: aya_obj::generated::bpf_link_info = unsafe { mem::zeroed() };
    info.__bindgen_anon_1.raw_tracepoint.tp_name = name.as_mut_ptr() as u64;
    info.__bindgen_anon_1.raw_tracepoint.tp_name_len = name.len() as u32;
    obj_info(link, &mut info)?;
    Ok(LinkInfo {
        link_type: info.type_,
        id: info.id,
        prog_id: info.prog_id,
        tp_name: c_buffer_to_string(&name),
    })
}

/// The id of a loaded program (BPF_OBJ_GET_INFO_BY_FD).
pub fn prog_id(prog: BorrowedFd<'_>) -> io::Result<u32> {
    // SAFETY: as in `link_info`.
    let mut info: aya_obj::generated::bpf_prog_info = unsafe { mem::zeroed() };
    obj_info(prog, &mut info)?;
    Ok(info.id)
}

fn obj_info<T>(fd: BorrowedFd<'_>, info: &mut T) -> io::Result<()> {
    let mut attr = zeroed_attr();
    // SAFETY: plain fields of the zeroed union member used by BPF_OBJ_GET_INFO_BY_FD; `info`
    // outlives the call and is `info_len` bytes.
    let get = unsafe { &mut attr.info };
    get.bpf_fd = fd.as_raw_fd() as u32;
    get.info_len = mem::size_of::<T>() as u32;
    get.info = info as *mut T as u64;
    bpf(bpf_cmd::BPF_OBJ_GET_INFO_BY_FD, &mut attr).map(drop)
}

/// Every link id BPF_LINK_GET_NEXT_ID enumerates.
pub fn link_ids() -> io::Result<Vec<u32>> {
    next_ids(bpf_cmd::BPF_LINK_GET_NEXT_ID)
}

/// Every BTF object id BPF_BTF_GET_NEXT_ID enumerates (vmlinux, modules, programs' BTF).
pub fn btf_ids() -> io::Result<Vec<u32>> {
    next_ids(bpf_cmd::BPF_BTF_GET_NEXT_ID)
}

fn next_ids(cmd: bpf_cmd) -> io::Result<Vec<u32>> {
    let mut ids = Vec::new();
    let mut start = 0;
    loop {
        let mut attr = zeroed_attr();
        // SAFETY: plain fields of the zeroed union member used by the GET_NEXT_ID commands.
        let next = unsafe { &mut attr.__bindgen_anon_6 };
        next.__bindgen_anon_1.start_id = start;
        match bpf(cmd, &mut attr) {
            // SAFETY: the kernel filled in the same union member.
            Ok(_) => start = unsafe { attr.__bindgen_anon_6.next_id },
            Err(error) if error.raw_os_error() == Some(libc::ENOENT) => return Ok(ids),
            Err(error) => return Err(error),
        }
        ids.push(start);
    }
}

/// BPF_BTF_GET_FD_BY_ID: an fd of the BTF object with that id.
pub fn btf_fd_by_id(id: u32) -> io::Result<OwnedFd> {
    let mut attr = zeroed_attr();
    // SAFETY: plain fields of the zeroed union member used by the GET_FD_BY_ID commands.
    let get = unsafe { &mut attr.__bindgen_anon_6 };
    get.__bindgen_anon_1.btf_id = id;
    bpf_fd(bpf_cmd::BPF_BTF_GET_FD_BY_ID, &mut attr)
}

/// What BPF_OBJ_GET_INFO_BY_FD says about a BTF object: its name and whether the kernel's
/// (vmlinux or a module: 5.11+; older kernels leave both empty).
pub struct BtfInfo {
    pub name: String,
    pub kernel_btf: bool,
}

pub fn btf_info(btf: BorrowedFd<'_>) -> io::Result<BtfInfo> {
    let mut name = [0u8; 64];
    // SAFETY: bpf_btf_info is a plain C struct of integers; all-zero is its empty state.
    let mut info: aya_obj::generated::bpf_btf_info = unsafe { mem::zeroed() };
    info.name = name.as_mut_ptr() as u64;
    info.name_len = name.len() as u32;
    obj_info(btf, &mut info)?;
    Ok(BtfInfo {
        name: c_buffer_to_string(&name),
        kernel_btf: info.kernel_btf != 0,
    })
}

/// BPF_OBJ_PIN of `fd` at `path` in a bpffs.
pub fn obj_pin(fd: BorrowedFd<'_>, path: &CStr) -> io::Result<()> {
    let mut attr = zeroed_attr();
    // SAFETY: plain fields of the zeroed union member used by BPF_OBJ_PIN and BPF_OBJ_GET.
    let pin = unsafe { &mut attr.__bindgen_anon_4 };
    pin.pathname = path.as_ptr() as u64;
    pin.bpf_fd = fd.as_raw_fd() as u32;
    bpf(bpf_cmd::BPF_OBJ_PIN, &mut attr).map(drop)
}

/// BPF_OBJ_GET: a new fd of the object pinned at `path`.
pub fn obj_get(path: &CStr) -> io::Result<OwnedFd> {
    let mut attr = zeroed_attr();
    // SAFETY: as in `obj_pin`.
    let get = unsafe { &mut attr.__bindgen_anon_4 };
    get.pathname = path.as_ptr() as u64;
    bpf_fd(bpf_cmd::BPF_OBJ_GET, &mut attr)
}

/// BPF_LINK_DETACH.
pub fn link_detach(link: BorrowedFd<'_>) -> io::Result<()> {
    let mut attr = zeroed_attr();
    // SAFETY: plain fields of the zeroed union member used by BPF_LINK_DETACH.
    let detach = unsafe { &mut attr.link_detach };
    detach.link_fd = link.as_raw_fd() as u32;
    bpf(bpf_cmd::BPF_LINK_DETACH, &mut attr).map(drop)
}

/// BPF_LINK_UPDATE with `prog` as the link's new program.
pub fn link_update(link: BorrowedFd<'_>, prog: BorrowedFd<'_>) -> io::Result<()> {
    let mut attr = zeroed_attr();
    // SAFETY: plain fields of the zeroed union member used by BPF_LINK_UPDATE.
    let update = unsafe { &mut attr.link_update };
    update.link_fd = link.as_raw_fd() as u32;
    update.__bindgen_anon_1.new_prog_fd = prog.as_raw_fd() as u32;
    bpf(bpf_cmd::BPF_LINK_UPDATE, &mut attr).map(drop)
}

/// What BPF_PROG_TEST_RUN returned: the syscall's own return value and the program's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TestRun {
    pub ret: i64,
    pub retval: u32,
}

/// BPF_PROG_TEST_RUN once over `data`. `ret` may be negative without being an error: it is
/// whatever a program attached to bpf_test_finish left in `err`.
pub fn prog_test_run(prog: BorrowedFd<'_>, data: &[u8]) -> io::Result<TestRun> {
    let mut attr = zeroed_attr();
    // SAFETY: plain fields of the zeroed union member used by BPF_PROG_TEST_RUN.
    let test = unsafe { &mut attr.test };
    test.prog_fd = prog.as_raw_fd() as u32;
    test.data_in = data.as_ptr() as u64;
    test.data_size_in = data.len() as u32;
    test.repeat = 1;
    let ret = bpf(bpf_cmd::BPF_PROG_TEST_RUN, &mut attr)?;
    // SAFETY: the kernel filled in the same union member.
    let retval = unsafe { attr.test.retval };
    Ok(TestRun { ret, retval })
}

/// BPF_LINK_CREATE of `prog` with attach type BPF_TRACE_RAW_TP; closing the fd detaches.
pub fn link_create_raw_tp(prog: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    let mut attr = zeroed_attr();
    // SAFETY: plain fields of the zeroed union member used by BPF_LINK_CREATE.
    let link = unsafe { &mut attr.link_create };
    link.__bindgen_anon_1.prog_fd = prog.as_raw_fd() as u32;
    link.attach_type = aya_obj::generated::bpf_attach_type::BPF_TRACE_RAW_TP as u32;
    bpf_fd(bpf_cmd::BPF_LINK_CREATE, &mut attr)
}

/// BPF_MAP_LOOKUP_ELEM of key 0 in a single-entry array map whose values are `value.len()` bytes.
pub fn array_lookup(map: BorrowedFd<'_>, value: &mut [u8]) -> io::Result<()> {
    let key = 0u32;
    let mut attr = zeroed_attr();
    // SAFETY: plain fields of the zeroed union member used by the map element commands.
    let elem = unsafe { &mut attr.__bindgen_anon_2 };
    elem.map_fd = map.as_raw_fd() as u32;
    elem.key = &key as *const u32 as u64;
    elem.__bindgen_anon_1.value = value.as_mut_ptr() as u64;
    bpf(bpf_cmd::BPF_MAP_LOOKUP_ELEM, &mut attr).map(drop)
}

/// BPF_MAP_UPDATE_ELEM of key 0 in a single-entry array map.
pub fn array_update(map: BorrowedFd<'_>, value: &[u8]) -> io::Result<()> {
    let key = 0u32;
    let mut attr = zeroed_attr();
    // SAFETY: as in `array_lookup`.
    let elem = unsafe { &mut attr.__bindgen_anon_2 };
    elem.map_fd = map.as_raw_fd() as u32;
    elem.key = &key as *const u32 as u64;
    elem.__bindgen_anon_1.value = value.as_ptr() as u64;
    bpf(bpf_cmd::BPF_MAP_UPDATE_ELEM, &mut attr).map(drop)
}

/// BPF_MAP_UPDATE_ELEM of a 4-byte key with a 4-byte value: a program fd into a prog array
/// slot (BPF_ANY).
pub fn prog_array_update(map: BorrowedFd<'_>, index: u32, prog: BorrowedFd<'_>) -> io::Result<()> {
    let value = prog.as_raw_fd() as u32;
    let mut attr = zeroed_attr();
    // SAFETY: as in `array_lookup`.
    let elem = unsafe { &mut attr.__bindgen_anon_2 };
    elem.map_fd = map.as_raw_fd() as u32;
    elem.key = &index as *const u32 as u64;
    elem.__bindgen_anon_1.value = &value as *const u32 as u64;
    bpf(bpf_cmd::BPF_MAP_UPDATE_ELEM, &mut attr).map(drop)
}

/// BPF_BTF_LOAD of an object's (sanitised) BTF; on failure, the kernel's BTF log with it.
pub fn btf_load(btf: &[u8]) -> Result<OwnedFd, (io::Error, String)> {
    let mut log = vec![0u8; LOG_START_SIZE];
    let mut attr = zeroed_attr();
    // SAFETY: plain fields of the zeroed union member used by BPF_BTF_LOAD.
    let load = unsafe { &mut attr.__bindgen_anon_7 };
    load.btf = btf.as_ptr() as u64;
    load.btf_size = btf.len() as u32;
    load.btf_log_buf = log.as_mut_ptr() as u64;
    load.btf_log_size = log.len() as u32;
    load.btf_log_level = LOG_LEVEL;
    bpf_fd(bpf_cmd::BPF_BTF_LOAD, &mut attr).map_err(|error| (error, c_buffer_to_string(&log)))
}

/// BPF_MAP_CREATE of a plain map (no BTF), named `name` (the kernel keeps 15 bytes).
pub fn map_create(map: &protocol::InsnMap) -> io::Result<OwnedFd> {
    let shape = (
        map.map_type,
        map.key_size,
        map.value_size,
        map.max_entries,
        map.map_flags,
    );
    let mut attr = map_create_attr(shape);
    if let Some(name) = &map.name {
        // SAFETY: the member `map_create_attr` filled.
        copy_prog_name(unsafe { &mut attr.__bindgen_anon_1.map_name }, name);
    }
    bpf_fd(bpf_cmd::BPF_MAP_CREATE, &mut attr)
}

/// A map's type, key size, value size, entries and flags, as BPF_MAP_CREATE takes them.
pub type MapShape = (u32, u32, u32, u32, u32);

/// BPF_MAP_CREATE's attr with the map's shape filled in.
fn map_create_attr((map_type, key_size, value_size, max_entries, map_flags): MapShape) -> bpf_attr {
    let mut attr = zeroed_attr();
    // SAFETY: plain fields of the zeroed union member used by BPF_MAP_CREATE.
    let create = unsafe { &mut attr.__bindgen_anon_1 };
    create.map_type = map_type;
    create.key_size = key_size;
    create.value_size = value_size;
    create.max_entries = max_entries;
    create.map_flags = map_flags;
    attr
}

/// BPF_MAP_CREATE of a map of maps (no BTF, as libbpf creates one) whose slots take maps
/// like `inner` (the template: its type, sizes and flags).
pub fn map_in_map_create(
    name: &str,
    shape: MapShape,
    inner: BorrowedFd<'_>,
) -> io::Result<OwnedFd> {
    let mut attr = map_create_attr(shape);
    // SAFETY: the member `map_create_attr` filled.
    let create = unsafe { &mut attr.__bindgen_anon_1 };
    create.inner_map_fd = inner.as_raw_fd() as u32;
    copy_prog_name(&mut create.map_name, name);
    bpf_fd(bpf_cmd::BPF_MAP_CREATE, &mut attr)
}

/// BPF_MAP_CREATE of a global data section's one-entry array (`.data`, `.bss`, `.rodata`,
/// `.bss.<name>`...) with the object's BTF as libbpf creates it: no key type, the section's
/// DATASEC as the value type, so the kernel sees the special fields its globals hold (a
/// `bpf_list_head`, a `bpf_spin_lock`). The name as aya writes it (its first 15 bytes).
pub fn data_map_create(
    name: &str,
    shape: MapShape,
    (btf, datasec): (BorrowedFd<'_>, u32),
) -> io::Result<OwnedFd> {
    let mut attr = map_create_attr(shape);
    // SAFETY: the member `map_create_attr` filled.
    let create = unsafe { &mut attr.__bindgen_anon_1 };
    create.btf_fd = btf.as_raw_fd() as u32;
    create.btf_key_type_id = 0;
    create.btf_value_type_id = datasec;
    for (slot, byte) in create.map_name.iter_mut().take(15).zip(name.bytes()) {
        *slot = byte as libc::c_char;
    }
    bpf_fd(bpf_cmd::BPF_MAP_CREATE, &mut attr)
}

/// BPF_MAP_UPDATE_ELEM of a map of maps' slot `index` (a 4-byte key) with `map`.
pub fn map_in_map_update(outer: BorrowedFd<'_>, index: u32, map: BorrowedFd<'_>) -> io::Result<()> {
    prog_array_update(outer, index, map)
}

/// BPF_MAP_FREEZE, for `.rodata`: the verifier may then treat its contents as constants.
pub fn map_freeze(map: BorrowedFd<'_>) -> io::Result<()> {
    let mut attr = zeroed_attr();
    // SAFETY: as in `array_lookup`.
    let elem = unsafe { &mut attr.__bindgen_anon_2 };
    elem.map_fd = map.as_raw_fd() as u32;
    bpf(bpf_cmd::BPF_MAP_FREEZE, &mut attr).map(drop)
}

fn zeroed_attr() -> bpf_attr {
    // SAFETY: bpf_attr is a plain C union of integers; all-zero is its documented empty state.
    unsafe { mem::zeroed() }
}

fn copy_prog_name(dest: &mut [libc::c_char; 16], name: &str) {
    // The kernel accepts [A-Za-z0-9_.] and at most 15 bytes plus the NUL.
    let safe = name
        .bytes()
        .filter(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'.');
    for (slot, byte) in dest.iter_mut().take(15).zip(safe) {
        *slot = byte as libc::c_char;
    }
}

fn bpf(cmd: bpf_cmd, attr: &mut bpf_attr) -> io::Result<i64> {
    // SAFETY: attr is a valid, fully initialised bpf_attr that outlives the call; every pointer
    // stored in it points at memory the caller keeps alive for the duration of the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd as libc::c_int,
            attr as *mut bpf_attr,
            mem::size_of::<bpf_attr>() as libc::c_uint,
        )
    };
    // glibc's `syscall` turns only -4095..-1 into -1 with errno. Any other negative value is
    // the command's own answer: BPF_PROG_TEST_RUN returns whatever a program wrote into
    // bpf_test_finish's `err`, and errno is then stale.
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn bpf_fd(cmd: bpf_cmd, attr: &mut bpf_attr) -> io::Result<OwnedFd> {
    let fd = bpf(cmd, attr)?;
    let fd = i32::try_from(fd)
        .ok()
        .filter(|fd| *fd >= 0)
        .ok_or_else(|| {
            io::Error::other(format!("the kernel returned {fd}, not a file descriptor"))
        })?;
    // SAFETY: these commands return a new file descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The log up to its first NUL, lossily decoded (the kernel writes ASCII).
pub fn c_buffer_to_string(buffer: &[u8]) -> String {
    let end = buffer.iter().position(|b| *b == 0).unwrap_or(buffer.len());
    String::from_utf8_lossy(&buffer[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prog_name_keeps_only_what_the_kernel_accepts() {
        let mut name = [0 as libc::c_char; 16];
        copy_prog_name(&mut name, "writable-bare/read_val_long_name");
        let bytes: Vec<u8> = name.iter().map(|c| *c as u8).collect();
        assert_eq!(
            &bytes[..15],
            b"writablebareread_val_long_name"[..15].as_ref()
        );
        assert_eq!(bytes[15], 0);
    }

    #[test]
    fn log_is_cut_at_the_first_nul() {
        assert_eq!(
            c_buffer_to_string(b"processed 3 insns\n\0junk"),
            "processed 3 insns\n"
        );
        assert_eq!(c_buffer_to_string(b"no nul"), "no nul");
    }
}
