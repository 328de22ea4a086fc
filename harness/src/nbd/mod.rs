//! A real NBD device inside the guest, with no external server: one end of an AF_UNIX
//! socketpair goes to the kernel (NBD_SET_SOCK), the other to a server thread here that serves
//! a known pattern (every byte of 4 KiB block n is n) and logs every request it receives, so a
//! case can compare what a program saw or rewrote with what actually went over the wire.

pub mod wire;

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;
use wire::{Reply, Request, WireError};

pub const DEVICE: &str = "/dev/nbd0";
pub const BLOCK_SIZE: u64 = 4096;
pub const DEVICE_BLOCKS: u64 = 16;
/// How long any one NBD step may take before the case fails instead of hanging the VM.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(10);
/// The kernel's own request timeout, so a lost reply errors out instead of blocking forever.
const KERNEL_TIMEOUT_SECS: u64 = 5;

/// NBD ioctls (include/uapi/linux/nbd.h): `_IO(0xab, n)` taking an integer argument.
mod ioctl {
    nix::ioctl_write_int_bad!(set_sock, nix::request_code_none!(0xab, 0));
    nix::ioctl_write_int_bad!(set_blksize, nix::request_code_none!(0xab, 1));
    nix::ioctl_write_int_bad!(set_size, nix::request_code_none!(0xab, 2));
    nix::ioctl_none_bad!(do_it, nix::request_code_none!(0xab, 3));
    nix::ioctl_none_bad!(clear_sock, nix::request_code_none!(0xab, 4));
    nix::ioctl_none_bad!(disconnect, nix::request_code_none!(0xab, 8));
    nix::ioctl_write_int_bad!(set_timeout, nix::request_code_none!(0xab, 9));
}

/// One request as the server received it (the cookie is the kernel's own bookkeeping and
/// differs from run to run, so it is left out).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Logged {
    pub command: u16,
    pub from: u64,
    pub len: u32,
}

/// A connected /dev/nbd0 with its server; disconnects and cleans up on drop.
pub struct Connection {
    control: File,
    do_it: Option<Bounded<nix::Result<i32>>>,
    server: Option<Bounded<Result<(), WireError>>>,
    log: Arc<Mutex<Vec<Logged>>>,
}

#[derive(Debug, thiserror::Error)]
pub enum NbdError {
    #[error("{0}: {1}")]
    Sys(&'static str, nix::Error),
    #[error("{0}: {1}")]
    Io(&'static str, std::io::Error),
    #[error("{0} did not finish within {1:?}")]
    Timeout(&'static str, Duration),
    #[error("the NBD server failed: {0}")]
    Server(WireError),
}

impl NbdError {
    /// The errno behind the error, if the kernel gave one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            NbdError::Sys(_, errno) => Some(*errno as i32),
            NbdError::Io(_, error) => error.raw_os_error(),
            _ => None,
        }
    }
}

impl Connection {
    /// Hands one socket end to the kernel, starts the server and NBD_DO_IT, and waits until
    /// the device is live.
    pub fn connect() -> Result<Self, NbdError> {
        let (kernel_end, server_end) =
            UnixStream::pair().map_err(|e| NbdError::Io("socketpair", e))?;
        let control = OpenOptions::new()
            .read(true)
            .write(true)
            .open(DEVICE)
            .map_err(|e| NbdError::Io("opening /dev/nbd0", e))?;
        let fd = control.as_raw_fd();
        // SAFETY: NBD ioctls on an open nbd device, with integer arguments as the uapi defines.
        unsafe {
            ioctl::set_blksize(fd, BLOCK_SIZE as i32)
                .map_err(|e| NbdError::Sys("NBD_SET_BLKSIZE", e))?;
            ioctl::set_size(fd, (BLOCK_SIZE * DEVICE_BLOCKS) as i32)
                .map_err(|e| NbdError::Sys("NBD_SET_SIZE", e))?;
            ioctl::set_timeout(fd, KERNEL_TIMEOUT_SECS as i32)
                .map_err(|e| NbdError::Sys("NBD_SET_TIMEOUT", e))?;
            ioctl::set_sock(fd, kernel_end.as_raw_fd())
                .map_err(|e| NbdError::Sys("NBD_SET_SOCK", e))?;
        }
        // The kernel holds its own reference to the socket now.
        drop(kernel_end);

        let log = Arc::new(Mutex::new(Vec::new()));
        let server_log = Arc::clone(&log);
        let server = Bounded::spawn(move || serve(server_end, &server_log));
        let do_it_file = control
            .try_clone()
            .map_err(|e| NbdError::Io("dup /dev/nbd0", e))?;
        // SAFETY: as above; NBD_DO_IT blocks this thread until the device disconnects.
        let do_it = Bounded::spawn(move || unsafe { ioctl::do_it(do_it_file.as_raw_fd()) });
        let connection = Self {
            control,
            do_it: Some(do_it),
            server: Some(server),
            log,
        };
        // NBD_DO_IT's thread is running once `pid` exists, but the capacity may still be 0
        // then (a read returns EOF): wait for the size the ioctls set, in 512-byte sectors.
        // (`udevadm settle` used to hide this race by waiting for the capacity's uevent.)
        let sectors = (BLOCK_SIZE * DEVICE_BLOCKS / 512).to_string();
        wait_for("the device to start with its size", || {
            Path::new("/sys/block/nbd0/pid").exists()
                && std::fs::read_to_string("/sys/block/nbd0/size")
                    .is_ok_and(|size| size.trim() == sectors)
        })?;
        if crate::udev::running() {
            settle_udev()?;
        }
        connection.take_log();
        Ok(connection)
    }

    /// Takes what the server logged so far, leaving its log empty.
    pub fn take_log(&self) -> Vec<Logged> {
        std::mem::take(&mut *self.log.lock().unwrap())
    }

    /// One O_DIRECT read, so exactly one READ request goes to the server.
    pub fn read_direct(&self, offset: u64, len: usize) -> Result<Vec<u8>, NbdError> {
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECT)
            .open(DEVICE)
            .map_err(|e| NbdError::Io("opening /dev/nbd0 O_DIRECT", e))?;
        let mut buffer = AlignedBuffer::new(len);
        let read = file
            .read_at(buffer.as_mut_slice(), offset)
            .map_err(|e| NbdError::Io("reading /dev/nbd0", e))?;
        Ok(buffer.as_mut_slice()[..read].to_vec())
    }

    /// NBD_DISCONNECT from another descriptor, then joins NBD_DO_IT and the server, then
    /// NBD_CLEAR_SOCK. Every wait is bounded.
    pub fn disconnect(mut self) -> Result<(), NbdError> {
        self.shut_down()
    }

    fn shut_down(&mut self) -> Result<(), NbdError> {
        let Some(do_it) = self.do_it.take() else {
            return Ok(());
        };
        let other = File::open(DEVICE).map_err(|e| NbdError::Io("opening /dev/nbd0", e))?;
        // SAFETY: NBD ioctls without arguments on open nbd device descriptors.
        unsafe { ioctl::disconnect(other.as_raw_fd()) }
            .map_err(|e| NbdError::Sys("NBD_DISCONNECT", e))?;
        do_it
            .join("NBD_DO_IT")?
            .map_err(|e| NbdError::Sys("NBD_DO_IT", e))?;
        if let Some(server) = self.server.take() {
            server.join("the NBD server")?.map_err(NbdError::Server)?;
        }
        // SAFETY: as above.
        unsafe { ioctl::clear_sock(self.control.as_raw_fd()) }
            .map_err(|e| NbdError::Sys("NBD_CLEAR_SOCK", e))?;
        Ok(())
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        if let Err(error) = self.shut_down() {
            eprintln!("harness: nbd teardown: {error}");
        }
    }
}

/// A connected device makes a running udev probe it (blkid reads from several offsets). The
/// harness stops udev before the cases ([`crate::udev`]); should one still run, waiting for it
/// keeps those reads from racing the case's own. `udevadm settle` compares with the kernel's
/// uevent sequence number, so an event still in flight is waited for too.
fn settle_udev() -> Result<(), NbdError> {
    let status = std::process::Command::new("udevadm")
        .args(["settle", &format!("--timeout={}", STEP_TIMEOUT.as_secs())])
        .status();
    match status {
        Ok(status) if status.success() => Ok(()),
        Ok(_) => Err(NbdError::Timeout("udevadm settle", STEP_TIMEOUT)),
        // No udev in this guest: nothing probes the device.
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(NbdError::Io("running udevadm settle", error)),
    }
}

/// Serves requests until the kernel disconnects: READ gets the block pattern, WRITE is
/// consumed and acknowledged, anything else is acknowledged.
fn serve(mut stream: UnixStream, log: &Mutex<Vec<Logged>>) -> Result<(), WireError> {
    while let Some(request) = Request::read_from(&mut stream)? {
        log.lock().unwrap().push(Logged {
            command: request.command,
            from: request.from,
            len: request.len,
        });
        let reply = Reply {
            error: 0,
            cookie: request.cookie,
        };
        match request.command {
            wire::CMD_DISCONNECT => break,
            wire::CMD_READ => {
                stream.write_all(&reply.encode())?;
                stream.write_all(&pattern(request.from, request.len as usize))?;
            }
            wire::CMD_WRITE => {
                std::io::copy(
                    &mut (&mut stream).take(u64::from(request.len)),
                    &mut std::io::sink(),
                )?;
                stream.write_all(&reply.encode())?;
            }
            _ => stream.write_all(&reply.encode())?,
        }
    }
    Ok(())
}

/// The device's content: every byte of block n is n (mod 256).
pub fn pattern(from: u64, len: usize) -> Vec<u8> {
    (0..len as u64)
        .map(|i| ((from + i) / BLOCK_SIZE) as u8)
        .collect()
}

/// Polls `ready` (every millisecond: the guest's tick rounds it up) until the step timeout.
fn wait_for(what: &'static str, ready: impl Fn() -> bool) -> Result<(), NbdError> {
    let deadline = Instant::now() + STEP_TIMEOUT;
    while !ready() {
        if Instant::now() >= deadline {
            return Err(NbdError::Timeout(what, STEP_TIMEOUT));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

/// A thread whose end is waited for with the step timeout, and noticed the moment it comes
/// (a polled `is_finished` cost each NBD case tens of milliseconds of sleeping).
struct Bounded<T> {
    handle: JoinHandle<T>,
    done: mpsc::Receiver<()>,
}

impl<T: Send + 'static> Bounded<T> {
    fn spawn(work: impl FnOnce() -> T + Send + 'static) -> Self {
        let (finished, done) = mpsc::channel();
        let handle = std::thread::spawn(move || {
            let result = work();
            let _ = finished.send(());
            result
        });
        Self { handle, done }
    }

    fn join(self, what: &'static str) -> Result<T, NbdError> {
        match self.done.recv_timeout(STEP_TIMEOUT) {
            Err(mpsc::RecvTimeoutError::Timeout) => Err(NbdError::Timeout(what, STEP_TIMEOUT)),
            // Sent, or the thread is gone without sending (it panicked): join says which.
            _ => Ok(self.handle.join().expect("NBD threads do not panic")),
        }
    }
}

/// O_DIRECT needs a block-aligned buffer.
struct AlignedBuffer {
    pointer: *mut u8,
    layout: std::alloc::Layout,
}

impl AlignedBuffer {
    fn new(len: usize) -> Self {
        let layout = std::alloc::Layout::from_size_align(len.max(1), BLOCK_SIZE as usize)
            .expect("valid layout");
        // SAFETY: the layout has a non-zero size.
        let pointer = unsafe { std::alloc::alloc_zeroed(layout) };
        assert!(!pointer.is_null(), "out of memory");
        Self { pointer, layout }
    }

    fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: pointer is a live allocation of layout.size() initialised bytes owned by self.
        unsafe { std::slice::from_raw_parts_mut(self.pointer, self.layout.size()) }
    }
}

impl Drop for AlignedBuffer {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { std::alloc::dealloc(self.pointer, self.layout) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pattern_is_the_block_number() {
        assert_eq!(pattern(0, 3), vec![0, 0, 0]);
        assert_eq!(pattern(7 * BLOCK_SIZE, 2), vec![7, 7]);
        assert_eq!(pattern(BLOCK_SIZE - 1, 2), vec![0, 1]);
    }

    #[test]
    fn the_server_answers_reads_writes_and_stops_on_disconnect() {
        let (mut kernel, server_end) = UnixStream::pair().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let server_log = Arc::clone(&log);
        let server = std::thread::spawn(move || serve(server_end, &server_log));

        let read = Request {
            command: wire::CMD_READ,
            flags: 0,
            cookie: 9,
            from: 7 * BLOCK_SIZE,
            len: 8,
        };
        kernel.write_all(&read.encode()).unwrap();
        assert_eq!(
            Reply::read_from(&mut kernel).unwrap(),
            Some(Reply {
                error: 0,
                cookie: 9
            })
        );
        let mut data = [0u8; 8];
        kernel.read_exact(&mut data).unwrap();
        assert_eq!(data, [7; 8]);

        let write = Request {
            command: wire::CMD_WRITE,
            flags: 0,
            cookie: 10,
            from: 0,
            len: 4,
        };
        kernel.write_all(&write.encode()).unwrap();
        kernel.write_all(&[1, 2, 3, 4]).unwrap();
        assert_eq!(
            Reply::read_from(&mut kernel).unwrap(),
            Some(Reply {
                error: 0,
                cookie: 10
            })
        );

        let bye = Request {
            command: wire::CMD_DISCONNECT,
            flags: 0,
            cookie: 11,
            from: 0,
            len: 0,
        };
        kernel.write_all(&bye.encode()).unwrap();
        server.join().unwrap().unwrap();
        let logged: Vec<u16> = log.lock().unwrap().iter().map(|l| l.command).collect();
        assert_eq!(
            logged,
            vec![wire::CMD_READ, wire::CMD_WRITE, wire::CMD_DISCONNECT]
        );
    }

    #[test]
    fn a_server_fed_garbage_stops_with_bad_magic() {
        let (mut kernel, server_end) = UnixStream::pair().unwrap();
        let log = Mutex::new(Vec::new());
        kernel.write_all(&[0u8; wire::REQUEST_LEN]).unwrap();
        assert!(matches!(
            serve(server_end, &log),
            Err(WireError::BadMagic { .. })
        ));
    }
}
