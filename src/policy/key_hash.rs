//! The only form in which a team key (or an admin token) is stored or looked up: the hex
//! SHA-256 of it. The plaintext exists in memory for the duration of one request and is never
//! logged.

use sha2::{Digest, Sha256};

/// The KV name of a key's record: `key:<hex sha-256 of the key>`.
pub fn record_name(key: &str) -> String {
    record_name_of_hash(&sha256_hex(key))
}

/// The KV name of the record of the key whose hash is `hash` (as [`sha256_hex`] gives it).
pub fn record_name_of_hash(hash: &str) -> String {
    format!("key:{hash}")
}

/// The lowercase hex SHA-256 of a secret: the only form in which keys and admin tokens are stored.
pub fn sha256_hex(secret: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(secret.as_bytes());
    let mut hex = String::with_capacity(64);
    for byte in digest {
        hex.push(HEX[usize::from(byte >> 4)] as char);
        hex.push(HEX[usize::from(byte & 0xf)] as char);
    }
    hex
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_known_sha256() {
        // sha256("abc")
        assert_eq!(record_name("abc"), "key:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
