//! Fires `nbd_send_request` with real block I/O on /dev/nbd0 (see [`crate::nbd`]).

use protocol::Outcome;
use serde_json::json;

use crate::nbd::{self, Connection, NbdError};

pub fn connect() -> Result<Connection, Outcome> {
    Connection::connect().map_err(|e| outcome(&e))
}

/// One O_DIRECT block read and what the server saw for it.
pub fn read(connection: &Connection, offset: u64) -> Outcome {
    connection.take_log();
    let data = match connection.read_direct(offset, nbd::BLOCK_SIZE as usize) {
        Ok(data) => data,
        Err(error) => return outcome(&error),
    };
    let block = data.first().copied().unwrap_or_default();
    Outcome::value(json!({
        "len": data.len(),
        "block": block,
        "uniform": data.iter().all(|b| *b == block),
        "server": connection.take_log(),
    }))
}

pub fn disconnect(connection: Connection) -> Outcome {
    connection
        .disconnect()
        .map_or_else(|e| outcome(&e), |()| Outcome::ok())
}

fn outcome(error: &NbdError) -> Outcome {
    match error.errno() {
        Some(errno) => Outcome::errno(errno),
        None => Outcome::Error {
            message: error.to_string(),
        },
    }
}
