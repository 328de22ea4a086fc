//! The results file: one JSON record per line, each synced to disk as soon as it is written,
//! so a kernel panic or a harness crash later in the run loses nothing already recorded.

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
        self.file.write_all(&line)?;
        self.file.sync_data()
    }
}
