//! The NBD "simple" transmission protocol as the kernel speaks it after NBD_SET_SOCK: 28-byte
//! requests (big-endian; a WRITE is followed by its data) and 16-byte replies (a READ reply is
//! followed by its data). The layout is `struct nbd_request` / `struct nbd_reply` of
//! include/uapi/linux/nbd.h; the writable tracepoint `nbd_send_request` hands a program the
//! very 28 bytes encoded here, so this module is also the reference for the cases' offsets.

use std::io::{self, Read};

pub const REQUEST_MAGIC: u32 = 0x2560_9513;
pub const REPLY_MAGIC: u32 = 0x6744_6698;
pub const REQUEST_LEN: usize = 28;
pub const REPLY_LEN: usize = 16;

/// Request types (the low 16 bits of the type word; the high 16 are command flags).
pub const CMD_READ: u16 = 0;
pub const CMD_WRITE: u16 = 1;
pub const CMD_DISCONNECT: u16 = 2;

/// Offsets inside the 28-byte request (and so inside the tracepoint's writable buffer).
pub const OFFSET_MAGIC: usize = 0;
pub const OFFSET_TYPE: usize = 4;
pub const OFFSET_COOKIE: usize = 8;
pub const OFFSET_FROM: usize = 16;
pub const OFFSET_LEN: usize = 24;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    pub command: u16,
    pub flags: u16,
    pub cookie: u64,
    pub from: u64,
    pub len: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply {
    pub error: u32,
    pub cookie: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("bad {what} magic {found:#010x} (expected {expected:#010x})")]
    BadMagic {
        what: &'static str,
        found: u32,
        expected: u32,
    },
    #[error("connection closed {0} bytes into a {1}-byte header")]
    ShortHeader(usize, usize),
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl Request {
    pub fn encode(&self) -> [u8; REQUEST_LEN] {
        let mut bytes = [0u8; REQUEST_LEN];
        bytes[OFFSET_MAGIC..4].copy_from_slice(&REQUEST_MAGIC.to_be_bytes());
        let type_word = (u32::from(self.flags) << 16) | u32::from(self.command);
        bytes[OFFSET_TYPE..8].copy_from_slice(&type_word.to_be_bytes());
        bytes[OFFSET_COOKIE..16].copy_from_slice(&self.cookie.to_be_bytes());
        bytes[OFFSET_FROM..24].copy_from_slice(&self.from.to_be_bytes());
        bytes[OFFSET_LEN..28].copy_from_slice(&self.len.to_be_bytes());
        bytes
    }

    pub fn decode(bytes: &[u8; REQUEST_LEN]) -> Result<Self, WireError> {
        check_magic("request", be32(bytes, OFFSET_MAGIC), REQUEST_MAGIC)?;
        let type_word = be32(bytes, OFFSET_TYPE);
        Ok(Self {
            command: type_word as u16,
            flags: (type_word >> 16) as u16,
            cookie: be64(bytes, OFFSET_COOKIE),
            from: be64(bytes, OFFSET_FROM),
            len: be32(bytes, OFFSET_LEN),
        })
    }

    /// Reads one request header; `Ok(None)` on a clean end of stream before its first byte.
    pub fn read_from(reader: &mut impl Read) -> Result<Option<Self>, WireError> {
        let mut bytes = [0u8; REQUEST_LEN];
        if !read_header(reader, &mut bytes)? {
            return Ok(None);
        }
        Self::decode(&bytes).map(Some)
    }
}

impl Reply {
    pub fn encode(&self) -> [u8; REPLY_LEN] {
        let mut bytes = [0u8; REPLY_LEN];
        bytes[0..4].copy_from_slice(&REPLY_MAGIC.to_be_bytes());
        bytes[4..8].copy_from_slice(&self.error.to_be_bytes());
        bytes[8..16].copy_from_slice(&self.cookie.to_be_bytes());
        bytes
    }

    pub fn decode(bytes: &[u8; REPLY_LEN]) -> Result<Self, WireError> {
        check_magic("reply", be32(bytes, 0), REPLY_MAGIC)?;
        Ok(Self {
            error: be32(bytes, 4),
            cookie: be64(bytes, 8),
        })
    }

    pub fn read_from(reader: &mut impl Read) -> Result<Option<Self>, WireError> {
        let mut bytes = [0u8; REPLY_LEN];
        if !read_header(reader, &mut bytes)? {
            return Ok(None);
        }
        Self::decode(&bytes).map(Some)
    }
}

/// Fills `buffer` completely; false if the stream ended before the first byte.
fn read_header(reader: &mut impl Read, buffer: &mut [u8]) -> Result<bool, WireError> {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read(&mut buffer[filled..]) {
            Ok(0) if filled == 0 => return Ok(false),
            Ok(0) => return Err(WireError::ShortHeader(filled, buffer.len())),
            Ok(n) => filled += n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error.into()),
        }
    }
    Ok(true)
}

fn check_magic(what: &'static str, found: u32, expected: u32) -> Result<(), WireError> {
    if found == expected {
        Ok(())
    } else {
        Err(WireError::BadMagic {
            what,
            found,
            expected,
        })
    }
}

fn be32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap())
}

fn be64(bytes: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(bytes[at..at + 8].try_into().unwrap())
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    const READ_BLOCK_0: Request = Request {
        command: CMD_READ,
        flags: 0,
        cookie: 0x0102_0304_0506_0708,
        from: 0,
        len: 4096,
    };

    #[test]
    fn a_read_request_has_the_kernels_layout() {
        let bytes = READ_BLOCK_0.encode();
        assert_eq!(&bytes[0..4], &[0x25, 0x60, 0x95, 0x13]);
        assert_eq!(&bytes[4..8], &[0, 0, 0, 0]);
        assert_eq!(&bytes[8..16], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(&bytes[16..24], &[0; 8]);
        assert_eq!(&bytes[24..28], &[0, 0, 0x10, 0]);
    }

    #[rstest]
    #[case(READ_BLOCK_0)]
    #[case(Request { command: CMD_WRITE, flags: 1, cookie: u64::MAX, from: 7 * 4096, len: 512 })]
    #[case(Request { command: CMD_DISCONNECT, flags: 0, cookie: 0, from: 0, len: 0 })]
    fn requests_round_trip(#[case] request: Request) {
        assert_eq!(Request::decode(&request.encode()).unwrap(), request);
    }

    #[test]
    fn replies_round_trip_and_carry_the_cookie() {
        let reply = Reply {
            error: 5,
            cookie: 42,
        };
        let bytes = reply.encode();
        assert_eq!(&bytes[0..4], &[0x67, 0x44, 0x66, 0x98]);
        assert_eq!(Reply::decode(&bytes).unwrap(), reply);
    }

    #[test]
    fn bad_magic_is_rejected() {
        let mut bytes = READ_BLOCK_0.encode();
        bytes[0] = 0;
        let error = Request::decode(&bytes).unwrap_err().to_string();
        assert!(error.contains("bad request magic 0x00609513"), "{error}");
        let mut reply = Reply {
            error: 0,
            cookie: 1,
        }
        .encode();
        reply[3] ^= 1;
        assert!(Reply::decode(&reply).is_err());
    }

    #[test]
    fn short_reads_are_reassembled_and_truncation_is_reported() {
        // A reader that hands out one byte at a time still yields whole headers.
        struct Trickle(Vec<u8>);
        impl Read for Trickle {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0.is_empty() || buf.is_empty() {
                    return Ok(0);
                }
                buf[0] = self.0.remove(0);
                Ok(1)
            }
        }
        let mut two = Trickle([READ_BLOCK_0.encode(), READ_BLOCK_0.encode()].concat());
        assert_eq!(Request::read_from(&mut two).unwrap(), Some(READ_BLOCK_0));
        assert_eq!(Request::read_from(&mut two).unwrap(), Some(READ_BLOCK_0));
        assert_eq!(Request::read_from(&mut two).unwrap(), None);

        let mut cut = Trickle(READ_BLOCK_0.encode()[..10].to_vec());
        let error = Request::read_from(&mut cut).unwrap_err();
        assert!(matches!(error, WireError::ShortHeader(10, 28)));
    }
}
