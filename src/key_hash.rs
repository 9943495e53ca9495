//! The only form in which a team key is stored or looked up: the hex SHA-256 of the key.
//! The plaintext exists in memory for the duration of one request and is never logged.

use sha2::{Digest, Sha256};

/// The KV name of a key's record: `key:<hex sha-256 of the key>`.
pub fn record_name(key: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(key.as_bytes());
    let mut name = String::with_capacity(4 + 64);
    name.push_str("key:");
    for byte in digest {
        name.push(HEX[usize::from(byte >> 4)] as char);
        name.push(HEX[usize::from(byte & 0xf)] as char);
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_known_sha256() {
        // sha256("abc")
        assert_eq!(
            record_name("abc"),
            "key:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
