//! Idempotency keys: a change sent with an `Idempotency-Key` header runs once; a retry of the
//! same request answers what the first one answered, the same plaintext key or token included,
//! without running again.
//!
//! Flow (in the registry's synchronous step, [`crate::admin::api::Registry::serve`]):
//! 1. [`IdempotencyKey::parse`] checks the header (1 to [`MAX_KEY_CHARS`] printable ASCII
//!    characters) and [`Idempotent::new`] names the entry: [`Idempotent::entry_id`], the SHA-256
//!    of the caller's id and the key (so the key itself is not stored, and two callers' keys
//!    never meet), and [`Idempotent::request_hash`], the SHA-256 of method, path and body.
//! 2. A kept, unexpired entry with the same request hash is opened and answered as it is
//!    ([`Idempotent::open`]); with another request hash it is 422 `idempotency_key_reused`.
//! 3. Otherwise the change runs; a successful answer is sealed ([`Idempotent::seal`]) and kept
//!    for [`WINDOW_MS`] in the same step. A refused request changed nothing and is not kept: a
//!    retry runs it again.
//!
//! Why a retry can never find the first request still running: the check, the change and the
//! keeping of its answer happen in one synchronous step of the registry's Durable Object, with
//! no `await` between them, and the object runs one step at a time. A second request with the
//! same key is served wholly before or wholly after the first's step; after it, the entry is
//! there.
//!
//! The kept answer holds a plaintext secret, so it is sealed with AES-256-GCM under the primary
//! key of `CREDENTIALS_KEYS` ([`crate::credentials::seal_bytes`]), bound to the caller, the
//! idempotency key and the request hash: a registry read yields ciphertext only, and a sealed
//! answer copied to another caller's or key's entry does not open. Entries are purged once
//! expired ([`crate::admin::retention`]), so the ciphertext exists for at most the window.
//! Deriving the secret from the idempotency key and a master key instead would need no stored
//! answer, but would make every secret created with a key recomputable, forever, by whoever
//! holds the master key; a sealed answer stops existing after 24 hours.

use crate::admin::api::step::Answer;
use crate::admin::secret::Random;
use crate::credentials::{open_bytes, seal_bytes, CredentialError, Keyring, Sealed};
use crate::error::{ApiError, Code};
use crate::policy::key_hash::sha256_hex;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// How long an answer is kept for a retry: 24 hours from the first request.
pub const WINDOW_MS: u64 = 86_400_000;
/// The longest idempotency key taken.
pub const MAX_KEY_CHARS: usize = 255;
/// The first bytes of the associated data of a sealed answer: its purpose and format.
const AAD_CONTEXT: &[u8] = b"teamkeys idempotent answer v1";

/// A checked `Idempotency-Key` header value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdempotencyKey<'a>(&'a str);

impl<'a> IdempotencyKey<'a> {
    /// 400 `invalid_idempotency_key` unless `header` is 1 to [`MAX_KEY_CHARS`] printable ASCII
    /// characters (space included).
    pub fn parse(header: &'a str) -> Result<IdempotencyKey<'a>, ApiError> {
        let printable = header.bytes().all(|b| b == b' ' || b.is_ascii_graphic());
        if (1..=MAX_KEY_CHARS).contains(&header.len()) && printable {
            return Ok(IdempotencyKey(header));
        }
        Err(ApiError::new(
            Code::InvalidIdempotencyKey,
            format!("The Idempotency-Key header must be 1 to {MAX_KEY_CHARS} printable ASCII characters."),
        ))
    }
}

/// One request sent with an idempotency key, by one caller.
#[derive(Debug, Clone)]
pub struct Idempotent<'a> {
    caller_id: &'a str,
    key: IdempotencyKey<'a>,
    request_hash: String,
}

/// What is kept of a successful answer: its status and body.
#[derive(Serialize, Deserialize)]
struct KeptAnswer {
    status: u16,
    body: Value,
}

/// A kept entry, as stored: the request it answered and the sealed answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptEntry {
    pub request_hash: String,
    pub sealed: Sealed,
}

impl<'a> Idempotent<'a> {
    pub fn new(caller_id: &'a str, key: IdempotencyKey<'a>, method: &str, path: &str, body: &[u8]) -> Idempotent<'a> {
        let mut request = Sha256::new();
        for part in [method.as_bytes(), b"\n", path.as_bytes(), b"\n", body] {
            request.update(part);
        }
        Idempotent { caller_id, key, request_hash: hex::encode(request.finalize()) }
    }

    /// The entry's id: the SHA-256 of the caller's id and the key, separated by a byte neither
    /// contains.
    pub fn entry_id(&self) -> String {
        sha256_hex(&format!("{}\n{}", self.caller_id, self.key.0))
    }

    pub fn request_hash(&self) -> &str {
        &self.request_hash
    }

    /// The context, then the caller's id, the key and the request hash, each as its byte length
    /// (8 bytes, big-endian) and its bytes.
    fn associated_data(&self) -> Vec<u8> {
        let mut data = AAD_CONTEXT.to_vec();
        for field in [self.caller_id, self.key.0, self.request_hash.as_str()] {
            data.extend_from_slice(&(field.len() as u64).to_be_bytes());
            data.extend_from_slice(field.as_bytes());
        }
        data
    }

    /// `answer` sealed for this caller, key and request.
    pub fn seal(&self, answer: &Answer, keyring: &Keyring, random: &mut impl Random) -> KeptEntry {
        let kept = KeptAnswer { status: answer.status, body: answer.body.clone() };
        let plaintext = serde_json::to_vec(&kept).expect("answers serialize");
        let sealed = seal_bytes(keyring, &self.associated_data(), &plaintext, random);
        KeptEntry { request_hash: self.request_hash.clone(), sealed }
    }

    /// The answer kept in `entry`: 422 `idempotency_key_reused` if it answered another request,
    /// 500 if it cannot be opened (a master key removed too early: the request is not run
    /// again, which could mint a second secret).
    pub fn open(&self, entry: &KeptEntry, keyring: &Keyring) -> Result<Answer, ApiError> {
        if entry.request_hash != self.request_hash {
            return Err(ApiError::new(
                Code::IdempotencyKeyReused,
                "This Idempotency-Key was used with another request (method, path or body) in the last 24 hours; \
                 use a new key for a new request.",
            ));
        }
        let plaintext = open_bytes(&entry.sealed, keyring, &self.associated_data()).map_err(unopenable)?;
        let kept: KeptAnswer =
            serde_json::from_slice(&plaintext).map_err(|_| unopenable(CredentialError::NotAuthentic))?;
        Ok(Answer { status: kept.status, body: kept.body, propagation_pending: false, replayed: true })
    }
}

fn unopenable(_: CredentialError) -> ApiError {
    ApiError::new(Code::RegistryError, "The answer kept for this Idempotency-Key cannot be opened.")
}

/// 500 `invalid_config`: an idempotency key cannot be honoured without a master key to seal
/// the answer with; the request is not run.
pub fn no_keyring() -> ApiError {
    ApiError::new(
        Code::InvalidConfig,
        "Idempotency keys need the CREDENTIALS_KEYS secret, which is not set; the request was not run.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::secret::counting;
    use base64ct::{Base64, Encoding};
    use serde_json::json;

    fn keyring(byte: u8) -> Keyring {
        Keyring::parse(&format!("k1:{}", Base64::encode_string(&[byte; 32]))).unwrap()
    }

    fn request<'a>(caller: &'a str, key: &'a str, body: &[u8]) -> Idempotent<'a> {
        Idempotent::new(caller, IdempotencyKey::parse(key).unwrap(), "POST", "/admin/v1/keys", body)
    }

    #[test]
    fn keys_are_one_to_255_printable_ascii_characters() {
        for good in ["a", "order 42/retry", &"x".repeat(255), "~!"] {
            assert!(IdempotencyKey::parse(good).is_ok(), "{good}");
        }
        for bad in ["", &"x".repeat(256), "tab\there", "é", "line\n"] {
            assert_eq!(IdempotencyKey::parse(bad).unwrap_err().code(), Code::InvalidIdempotencyKey, "{bad:?}");
        }
    }

    #[test]
    fn a_kept_answer_opens_for_the_same_request_only() {
        let keys = keyring(1);
        let first = request("prn_a", "k-1", b"{\"name\":\"ci\"}");
        let answer = Answer::created(&json!({"id": "key_1", "key": "tk_secret"}));
        let entry = first.seal(&answer, &keys, &mut counting());
        assert!(!serde_json::to_string(&entry.sealed).unwrap().contains("tk_secret"));
        let replay = request("prn_a", "k-1", b"{\"name\":\"ci\"}").open(&entry, &keys).unwrap();
        assert_eq!((replay.status, replay.body, replay.replayed), (201, answer.body, true));

        let other_body = request("prn_a", "k-1", b"{\"name\":\"cd\"}").open(&entry, &keys).unwrap_err();
        assert_eq!((other_body.status(), other_body.code()), (422, Code::IdempotencyKeyReused));
        // Moved to another caller's or key's entry (same request), it does not open.
        for (caller, key) in [("prn_b", "k-1"), ("prn_a", "k-2")] {
            let moved = request(caller, key, b"{\"name\":\"ci\"}").open(&entry, &keys).unwrap_err();
            assert_eq!(moved.code(), Code::RegistryError, "{caller} {key}");
        }
        assert_eq!(first.open(&entry, &keyring(2)).unwrap_err().code(), Code::RegistryError);
    }

    #[test]
    fn entries_are_named_by_caller_and_key_and_requests_by_method_path_and_body() {
        let a = request("prn_a", "k", b"{}");
        assert_ne!(a.entry_id(), request("prn_b", "k", b"{}").entry_id());
        assert_ne!(a.entry_id(), request("prn_a", "k2", b"{}").entry_id());
        let key = IdempotencyKey::parse("k").unwrap();
        let rotate = Idempotent::new("prn_a", key, "POST", "/admin/v1/keys/key_1/rotate", b"{}");
        assert_ne!(a.request_hash(), rotate.request_hash());
        assert_ne!(a.request_hash(), request("prn_a", "k", b"{ }").request_hash());
    }
}
