//! bpf_testmod fires `bpf_testmod_test_writable_bare` in the read handler of its sysfs file,
//! only for reads of exactly 64 bytes. With `early_ret` set by the program, the read returns
//! `"%d\n"` of `val`; otherwise it fails with EIO.

use std::fs::File;
use std::io::Read;

use protocol::{Outcome, TESTMOD_SYSFS, TESTMOD_WRITABLE_READ_LEN};
use serde_json::json;

/// One read(2) of exactly 64 bytes; the value is the length returned and the text.
pub fn read_writable() -> Outcome {
    let mut file = match File::open(TESTMOD_SYSFS) {
        Ok(file) => file,
        Err(error) => return Outcome::from_io(&error),
    };
    let mut buffer = [0u8; TESTMOD_WRITABLE_READ_LEN];
    match file.read(&mut buffer) {
        Ok(len) => Outcome::value(json!({
            "len": len,
            "text": String::from_utf8_lossy(&buffer[..len]),
        })),
        Err(error) => Outcome::from_io(&error),
    }
}
