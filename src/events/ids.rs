//! Random identifiers: a prefix naming the kind of thing, then lowercase hex of random bytes
//! drawn by the caller (the core reads no randomness itself).

/// `<prefix><hex of random>`.
pub fn format_id(prefix: &str, random: &[u8]) -> String {
    format!("{prefix}{}", hex::encode(random))
}

/// Whether `text` is `prefix` followed by exactly `random_len` bytes as lowercase hex.
pub fn is_id(prefix: &str, random_len: usize, text: &str) -> bool {
    text.strip_prefix(prefix).is_some_and(|digits| {
        digits.len() == 2 * random_len && digits.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_prefix_and_hex() {
        let id = format_id("evt_", &[0x01, 0xab]);
        assert_eq!(id, "evt_01ab");
        assert!(is_id("evt_", 2, &id));
        assert!(!is_id("evt_", 3, &id));
        assert!(!is_id("whk_", 2, &id));
        assert!(!is_id("evt_", 2, "evt_01AB"), "uppercase is not ours");
        assert!(!is_id("evt_", 2, "evt_01a\n"));
    }
}
