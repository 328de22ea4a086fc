//! The results file: one JSON record per line, each written through to the host as soon as
//! it is made, so a kernel panic or a harness crash later in the run loses nothing already
//! recorded. The run directory is a 9p share without a cache: a write returns once QEMU has
//! written the bytes to the host's file, so no fsync is needed (it would only make the host
//! flush its disk, a round trip per record).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

use protocol::Record;

pub struct Results {
    file: File,
}

impl Results {
    pub fn create(path: &Path) -> io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Self { file })
    }

    pub fn write(&mut self, record: &Record) -> io::Result<()> {
        let mut line = serde_json::to_vec(record)?;
        line.push(b'\n');
        self.file.write_all(&line)
    }
}
