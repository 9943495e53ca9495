//! The secrets and ids the control plane hands out, from randomness passed in.
//!
//! - Team keys: `tk_` + 40 base62 characters (~238 bits), a prefix secret scanners can match.
//! - Principal tokens: `tka_` + 40 base62 characters (before organisations), and
//!   `tka_<org_id>_` + 40 since ([`crate::platform::org_id::new_token`]).
//! - Ids: `key_`, `prj_`, `prn_` + 16 base62 characters; not secret.
//!
//! A secret is shown once, in the answer that creates it; the registry keeps only its SHA-256
//! ([`crate::policy::key_hash`]) and its [`mask`].

pub const KEY_PREFIX: &str = "tk_";
pub const TOKEN_PREFIX: &str = "tka_";
const SECRET_CHARS: usize = 40;
const ID_CHARS: usize = 16;
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// The largest multiple of 62 a byte can hold: bytes from here up are drawn again.
const UNBIASED_BELOW: u8 = 248;

/// Fills a buffer with random bytes (`getrandom` at the edge, a fixed sequence in tests).
pub trait Random {
    fn fill(&mut self, bytes: &mut [u8]);
}

impl<F: FnMut(&mut [u8])> Random for F {
    fn fill(&mut self, bytes: &mut [u8]) {
        self(bytes)
    }
}

/// `len` uniformly random base62 characters.
fn base62(len: usize, random: &mut impl Random) -> String {
    let mut out = String::with_capacity(len);
    let mut buffer = [0u8; 64];
    while out.len() < len {
        random.fill(&mut buffer);
        let usable = buffer.iter().filter(|&&b| b < UNBIASED_BELOW).map(|&b| BASE62[usize::from(b % 62)] as char);
        out.extend(usable.take(len - out.len()));
    }
    out
}

pub fn new_key(random: &mut impl Random) -> String {
    format!("{KEY_PREFIX}{}", base62(SECRET_CHARS, random))
}

/// A principal token: `prefix` + 40 base62 characters.
pub fn new_token_with_prefix(prefix: &str, random: &mut impl Random) -> String {
    format!("{prefix}{}", base62(SECRET_CHARS, random))
}

/// A fresh id of `kind` (`key`, `prj`, `prn`).
pub fn new_id(kind: &str, random: &mut impl Random) -> String {
    format!("{kind}_{}", base62(ID_CHARS, random))
}

/// The form of a secret shown after its creation: its prefix and last four characters,
/// `tk_...WxYz`.
pub fn mask(secret: &str) -> String {
    let prefix = [TOKEN_PREFIX, KEY_PREFIX].into_iter().find(|p| secret.starts_with(p)).unwrap_or("");
    let tail: String = secret.chars().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect();
    format!("{prefix}...{tail}")
}

/// Randomness for tests: bytes 0, 1, 2, … wrapping, so every value comes (the biased ones
/// included).
#[cfg(test)]
pub(crate) fn counting() -> impl FnMut(&mut [u8]) {
    let mut next = 0u8;
    move |bytes: &mut [u8]| {
        for b in bytes {
            *b = next;
            next = next.wrapping_add(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_have_the_prefix_and_forty_base62_chars() {
        let key = new_key(&mut counting());
        assert!(key.starts_with("tk_"));
        assert_eq!(key.len(), 43);
        assert!(key[3..].bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_eq!(&key[3..13], "0123456789");
        let token = new_token_with_prefix(TOKEN_PREFIX, &mut counting());
        assert!(token.starts_with("tka_") && token.len() == 44);
        assert_eq!(new_id("prj", &mut counting()), "prj_0123456789ABCDEF");
    }

    #[test]
    fn biased_bytes_are_drawn_again() {
        let only_high = |bytes: &mut [u8]| bytes.fill(255);
        let mut calls = 0;
        let mut then_low = |bytes: &mut [u8]| {
            calls += 1;
            if calls == 1 {
                only_high(bytes)
            } else {
                bytes.fill(61)
            }
        };
        assert_eq!(new_id("key", &mut then_low), "key_zzzzzzzzzzzzzzzz");
    }

    #[test]
    fn distinct_randomness_gives_distinct_keys() {
        let mut seed = 7u8;
        let mut other = |bytes: &mut [u8]| {
            for b in bytes {
                seed = seed.wrapping_mul(31).wrapping_add(17);
                *b = seed;
            }
        };
        assert_ne!(new_key(&mut counting()), new_key(&mut other));
    }

    #[test]
    fn masking_keeps_prefix_and_last_four() {
        assert_eq!(mask("tk_abcdefghWXYZ"), "tk_...WXYZ");
        assert_eq!(mask("tka_abcdefghWXYZ"), "tka_...WXYZ");
        assert_eq!(mask("plain-token-1234"), "...1234");
        assert!(!mask(&new_key(&mut counting())).contains("0123456789"));
    }
}
