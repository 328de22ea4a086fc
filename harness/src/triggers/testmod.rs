//! bpf_testmod fires `bpf_testmod_test_writable_bare` in the read handler of its sysfs file,
//! only for reads of exactly 64 bytes. With `early_ret` set by the program, the read returns
//! `"%d\n"` of `val`; otherwise it fails with EIO.

use std::fs::File;
use std::io::Read;

use protocol::{Outcome, TESTMOD_SYSFS, TESTMOD_WRITABLE_READ_LEN};
use serde_json::json;

/// One read(2) of exactly 64 bytes; the value is the length returned and the text.
pub fn read_writable() -> Outcome {
    match read_writable_text() {
        Ok(text) => Outcome::value(json!({
            "len": text.len(),
            "text": text,
        })),
        Err(error) => Outcome::from_io(&error),
    }
}

/// One read(2) of exactly 64 bytes: the text it returned (the kernel's `"%d\n"` of `val`
/// when the program set `early_ret`), or the error (EIO when it did not).
pub fn read_writable_text() -> std::io::Result<String> {
    let mut file = File::open(TESTMOD_SYSFS)?;
    let mut buffer = [0u8; TESTMOD_WRITABLE_READ_LEN];
    let len = file.read(&mut buffer)?;
    Ok(String::from_utf8_lossy(&buffer[..len]).into_owned())
}
