//! The short digests that name cache entries and kept results: the first 8 bytes of a SHA-256,
//! as 16 hex digits (collisions between the few entries of one cache are not a concern).

use sha2::{Digest, Sha256};

/// 16 hex digits of what `hash` has been fed.
pub fn short_hex(hash: Sha256) -> String {
    hash.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// 16 hex digits of `bytes`' SHA-256.
pub fn short_hex_of(bytes: &[u8]) -> String {
    short_hex(Sha256::new_with_prefix(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sixteen_hex_digits_of_the_sha256() {
        // sha256("abc") = ba7816bf8f01cfea414140de5dae2223...
        assert_eq!(short_hex_of(b"abc"), "ba7816bf8f01cfea");
        let mut hash = Sha256::new();
        hash.update(b"a");
        hash.update(b"bc");
        assert_eq!(short_hex(hash), "ba7816bf8f01cfea");
    }
}
