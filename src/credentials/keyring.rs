//! The master keys that seal credentials, parsed from the deploy-time secret
//! `CREDENTIALS_KEYS`: one or more `id:key` entries separated by commas, the primary first,
//!
//! ```text
//! k2:q83vEjRWeJASNFZ4kBI0VniQEjRWeJASNFZ4kBI0Vng=,k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=
//! ```
//!
//! - an id is 1 to 32 characters of `A-Z a-z 0-9 _ -`, unique in the list; it is stored next to
//!   every value sealed with its key, so it must never be reused for other key material;
//! - a key is 32 bytes (AES-256) in standard padded base64, e.g. from `openssl rand -base64 32`;
//! - whitespace around entries is ignored (a secret pasted with a trailing newline still parses).
//!
//! The primary seals; every key opens. A parse error names the entry by its position or id,
//! never by its text, since the text may be key material.

use aes_gcm::{Aes256Gcm, KeyInit};
use base64ct::{Base64, Encoding};
use std::fmt;

const KEY_BYTES: usize = 32;
const MAX_ID_CHARS: usize = 32;

/// One master key and its id.
struct MasterKey {
    id: String,
    cipher: Aes256Gcm,
}

/// The master keys, primary first. Invariant: at least one key, ids unique and well formed.
pub struct Keyring {
    keys: Vec<MasterKey>,
}

/// Why `CREDENTIALS_KEYS` cannot be read. Entries are counted from 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyringError {
    /// No entry at all.
    Empty,
    /// An entry without `:` (or with nothing before it).
    MissingId {
        entry: usize,
    },
    /// An id that is not 1 to 32 characters of `A-Z a-z 0-9 _ -`.
    InvalidId {
        entry: usize,
    },
    DuplicateId {
        id: String,
    },
    NotBase64 {
        id: String,
    },
    /// A key of the wrong length (bytes after decoding).
    WrongLength {
        id: String,
        bytes: usize,
    },
}

impl fmt::Display for KeyringError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const FORMAT: &str = "expected `id:base64key` entries separated by commas, the primary first";
        match self {
            KeyringError::Empty => write!(f, "CREDENTIALS_KEYS is empty: {FORMAT}"),
            KeyringError::MissingId { entry } => write!(f, "CREDENTIALS_KEYS entry {entry} has no `id:` ({FORMAT})"),
            KeyringError::InvalidId { entry } => write!(
                f,
                "CREDENTIALS_KEYS entry {entry}: the id must be 1 to {MAX_ID_CHARS} characters of A-Z a-z 0-9 _ -"
            ),
            KeyringError::DuplicateId { id } => write!(f, "CREDENTIALS_KEYS lists the id `{id}` twice"),
            KeyringError::NotBase64 { id } => {
                write!(f, "CREDENTIALS_KEYS key `{id}` is not standard padded base64 (`openssl rand -base64 32`)")
            }
            KeyringError::WrongLength { id, bytes } => {
                write!(f, "CREDENTIALS_KEYS key `{id}` is {bytes} bytes, not {KEY_BYTES} (`openssl rand -base64 32`)")
            }
        }
    }
}

impl std::error::Error for KeyringError {}

fn is_valid_id(id: &str) -> bool {
    (1..=MAX_ID_CHARS).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl Keyring {
    /// Parses the text of `CREDENTIALS_KEYS` (format in the module doc).
    pub fn parse(text: &str) -> Result<Keyring, KeyringError> {
        if text.trim().is_empty() {
            return Err(KeyringError::Empty);
        }
        let mut keys: Vec<MasterKey> = Vec::new();
        for (index, entry) in text.split(',').map(str::trim).enumerate() {
            let entry_number = index + 1;
            let (id, encoded) = entry.split_once(':').ok_or(KeyringError::MissingId { entry: entry_number })?;
            if id.is_empty() {
                return Err(KeyringError::MissingId { entry: entry_number });
            }
            if !is_valid_id(id) {
                return Err(KeyringError::InvalidId { entry: entry_number });
            }
            if keys.iter().any(|key| key.id == id) {
                return Err(KeyringError::DuplicateId { id: id.to_owned() });
            }
            let bytes = Base64::decode_vec(encoded).map_err(|_| KeyringError::NotBase64 { id: id.to_owned() })?;
            let cipher = Aes256Gcm::new_from_slice(&bytes)
                .map_err(|_| KeyringError::WrongLength { id: id.to_owned(), bytes: bytes.len() })?;
            keys.push(MasterKey { id: id.to_owned(), cipher });
        }
        Ok(Keyring { keys })
    }

    /// The id of the key that seals.
    pub fn primary_id(&self) -> &str {
        &self.keys[0].id
    }

    /// The primary key's id and cipher.
    pub(super) fn primary(&self) -> (&str, &Aes256Gcm) {
        (&self.keys[0].id, &self.keys[0].cipher)
    }

    /// The cipher of the key with id `id`, if the keyring holds it.
    pub(super) fn cipher(&self, id: &str) -> Option<&Aes256Gcm> {
        self.keys.iter().find(|key| key.id == id).map(|key| &key.cipher)
    }

    /// Every id, primary first (for a startup log line).
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|key| key.id.as_str())
    }
}

/// The ids only: the key material never reaches a log.
impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring").field("ids", &self.ids().collect::<Vec<_>>()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::key_text;
    use super::*;

    #[test]
    fn the_first_entry_is_the_primary_and_every_entry_is_held() {
        let text = format!(" k2:{} ,\nk1:{}\n", key_text(2), key_text(1));
        let keyring = Keyring::parse(&text).unwrap();
        assert_eq!(keyring.primary_id(), "k2");
        assert_eq!(keyring.ids().collect::<Vec<_>>(), ["k2", "k1"]);
        assert!(keyring.cipher("k1").is_some() && keyring.cipher("k0").is_none());
        assert_eq!(format!("{keyring:?}"), r#"Keyring { ids: ["k2", "k1"] }"#);
    }

    #[test]
    fn parse_errors_name_the_entry_and_never_the_key() {
        let good = key_text(7);
        let short = Base64::encode_string(&[7; 16]);
        let cases: Vec<(String, KeyringError)> = vec![
            (String::new(), KeyringError::Empty),
            (" \n".to_owned(), KeyringError::Empty),
            (good.clone(), KeyringError::MissingId { entry: 1 }),
            (format!("k1:{good},{good}"), KeyringError::MissingId { entry: 2 }),
            (format!(":{good}"), KeyringError::MissingId { entry: 1 }),
            (format!("k1:{good},"), KeyringError::MissingId { entry: 2 }),
            (format!("k 1:{good}"), KeyringError::InvalidId { entry: 1 }),
            (format!("{}:{good}", "k".repeat(33)), KeyringError::InvalidId { entry: 1 }),
            (format!("k1:{good},k1:{}", key_text(8)), KeyringError::DuplicateId { id: "k1".into() }),
            ("k1:not base64!".to_owned(), KeyringError::NotBase64 { id: "k1".into() }),
            (format!("k1:{}", good.trim_end_matches('=')), KeyringError::NotBase64 { id: "k1".into() }),
            (format!("k1:{short}"), KeyringError::WrongLength { id: "k1".into(), bytes: 16 }),
        ];
        for (text, expected) in cases {
            let error = Keyring::parse(&text).expect_err(&text);
            assert_eq!(error, expected, "{text}");
            let message = error.to_string();
            assert!(!message.contains(&good) && !message.contains(&short), "{message}");
        }
    }
}
