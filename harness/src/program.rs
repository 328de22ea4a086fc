//! A loaded case program, whichever loader loaded it: what the steps of a case need from it.
//! [`crate::case`] runs the same step code on the own loader's [`LoadedProgram`] and then on
//! libbpf's ([`crate::reference::LibbpfProgram`]), so the two runs differ only in the loader.

use std::ffi::CString;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use protocol::Outcome;

use crate::bpf_sys;
use crate::loader::insns::InsnLoaded;
use crate::loader::LoadedProgram;

/// What the steps do with a case's program.
pub trait CaseProgram {
    /// The case's program.
    fn fd(&self) -> BorrowedFd<'_>;
    /// Default attach target from the program's section name (`raw_tp.w/<tracepoint>`).
    fn section_tracepoint(&self) -> Option<&str>;
    /// Attaches the program to a raw tracepoint (BPF_RAW_TRACEPOINT_OPEN); the cookie goes
    /// to the kernel only when the case gives one.
    fn attach(&mut self, tracepoint: &str, cookie: Option<u64>) -> Result<Link, Outcome>;
    /// A global as an unsigned little-endian integer of its own size.
    fn read_global(&self, name: &str) -> Result<u64, Outcome>;
    /// Writes a global in the live `.data`/`.bss` map.
    fn write_global(&self, name: &str, value: u64) -> Result<(), Outcome>;
    /// The object's map named `name` (its own fd: the caller may keep it).
    fn map(&self, name: &str) -> Result<OwnedFd, Outcome>;
    /// Another program of the object, loaded against the same maps (a tail-call target):
    /// the kernel's errno if the verifier refused it.
    fn sibling(&mut self, name: &str) -> Result<OwnedFd, Outcome>;
    /// Loads `extension`, a `freplace/<function>` program of the object, as a replacement of
    /// that function of the case's program, and attaches it.
    fn freplace(&mut self, extension: &str) -> Result<Link, Outcome>;
}

/// A link held by the case: an fd of the kernel's link, or libbpf's `bpf_link` (closed by
/// `bpf_link__destroy`). Dropping it closes the fd.
pub enum Link {
    Fd(OwnedFd),
    Libbpf(libbpf_rs::Link),
}

impl AsFd for Link {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Link::Fd(fd) => fd.as_fd(),
            Link::Libbpf(link) => link.as_fd(),
        }
    }
}

/// Something the harness itself could not do.
/// What a program given as instructions does not have (globals, sibling programs,
/// extensions): the same answer from both loaders.
pub fn no_such_part_of_insns(what: &str) -> Outcome {
    harness_error(&format!("a program given as instructions has no {what}"))
}

pub fn harness_error(message: &str) -> Outcome {
    Outcome::Error {
        message: message.to_owned(),
    }
}

/// An error with every cause after it (`creating map counts: failed to create map: Invalid
/// argument (os error 22)`): the kernel's answer is usually the last one.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// BPF_RAW_TRACEPOINT_OPEN of `prog` on `tracepoint`.
pub fn raw_tracepoint_open(
    prog: BorrowedFd<'_>,
    tracepoint: &str,
    cookie: u64,
) -> Result<OwnedFd, Outcome> {
    let name = CString::new(tracepoint)
        .map_err(|_| harness_error(&format!("tracepoint name {tracepoint:?} has a NUL byte")))?;
    bpf_sys::raw_tracepoint_open(prog, &name, cookie).map_err(|e| Outcome::from_io(&e))
}

impl CaseProgram for LoadedProgram {
    fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    fn section_tracepoint(&self) -> Option<&str> {
        self.section_tracepoint.as_deref()
    }

    fn attach(&mut self, tracepoint: &str, cookie: Option<u64>) -> Result<Link, Outcome> {
        raw_tracepoint_open(self.fd.as_fd(), tracepoint, cookie.unwrap_or(0)).map(Link::Fd)
    }

    fn read_global(&self, name: &str) -> Result<u64, Outcome> {
        LoadedProgram::read_global(self, name).map_err(|e| harness_error(&chain(&e)))
    }

    fn write_global(&self, name: &str, value: u64) -> Result<(), Outcome> {
        LoadedProgram::write_global(self, name, value).map_err(|e| harness_error(&chain(&e)))
    }

    fn map(&self, name: &str) -> Result<OwnedFd, Outcome> {
        let map = LoadedProgram::map(self, name).map_err(|e| harness_error(&chain(&e)))?;
        map.try_clone_to_owned().map_err(|e| Outcome::from_io(&e))
    }

    fn sibling(&mut self, name: &str) -> Result<OwnedFd, Outcome> {
        let (attempt, fd) = self
            .load_sibling(name)
            .map_err(|e| harness_error(&chain(&e)))?;
        match (attempt.result, fd) {
            (Ok(()), Some(fd)) => Ok(fd),
            (Err(error), _) => Err(Outcome::from_io(&error)),
            (Ok(()), None) => Err(harness_error("the loader returned no fd")),
        }
    }

    fn freplace(&mut self, extension: &str) -> Result<Link, Outcome> {
        let fd = self.sibling(extension)?;
        bpf_sys::tracing_attach(fd.as_fd())
            .map(Link::Fd)
            .map_err(|e| Outcome::from_io(&e))
    }
}

impl CaseProgram for InsnLoaded {
    fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    fn section_tracepoint(&self) -> Option<&str> {
        self.tracepoint.as_deref()
    }

    fn attach(&mut self, tracepoint: &str, cookie: Option<u64>) -> Result<Link, Outcome> {
        raw_tracepoint_open(self.fd.as_fd(), tracepoint, cookie.unwrap_or(0)).map(Link::Fd)
    }

    fn read_global(&self, _: &str) -> Result<u64, Outcome> {
        Err(no_such_part_of_insns("globals"))
    }

    fn write_global(&self, _: &str, _: u64) -> Result<(), Outcome> {
        Err(no_such_part_of_insns("globals"))
    }

    fn map(&self, name: &str) -> Result<OwnedFd, Outcome> {
        let map = InsnLoaded::map(self, name)
            .ok_or_else(|| harness_error(&format!("no map named `{name}`")))?;
        map.try_clone_to_owned().map_err(|e| Outcome::from_io(&e))
    }

    fn sibling(&mut self, _: &str) -> Result<OwnedFd, Outcome> {
        Err(no_such_part_of_insns("sibling programs"))
    }

    fn freplace(&mut self, _: &str) -> Result<Link, Outcome> {
        Err(no_such_part_of_insns("extensions"))
    }
}

/// The own loader's program, from an object or from instructions.
pub enum OwnProgram {
    Object(Box<LoadedProgram>),
    Insns(InsnLoaded),
}

impl OwnProgram {
    fn inner(&self) -> &dyn CaseProgram {
        match self {
            OwnProgram::Object(program) => program.as_ref(),
            OwnProgram::Insns(program) => program,
        }
    }

    fn inner_mut(&mut self) -> &mut dyn CaseProgram {
        match self {
            OwnProgram::Object(program) => program.as_mut(),
            OwnProgram::Insns(program) => program,
        }
    }
}

impl CaseProgram for OwnProgram {
    fn fd(&self) -> BorrowedFd<'_> {
        self.inner().fd()
    }

    fn section_tracepoint(&self) -> Option<&str> {
        self.inner().section_tracepoint()
    }

    fn attach(&mut self, tracepoint: &str, cookie: Option<u64>) -> Result<Link, Outcome> {
        self.inner_mut().attach(tracepoint, cookie)
    }

    fn read_global(&self, name: &str) -> Result<u64, Outcome> {
        self.inner().read_global(name)
    }

    fn write_global(&self, name: &str, value: u64) -> Result<(), Outcome> {
        self.inner().write_global(name, value)
    }

    fn map(&self, name: &str) -> Result<OwnedFd, Outcome> {
        self.inner().map(name)
    }

    fn sibling(&mut self, name: &str) -> Result<OwnedFd, Outcome> {
        self.inner_mut().sibling(name)
    }

    fn freplace(&mut self, extension: &str) -> Result<Link, Outcome> {
        self.inner_mut().freplace(extension)
    }
}
