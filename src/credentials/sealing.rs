//! A credential's plaintext sealed with AES-256-GCM under the keyring's primary key, bound to
//! where it may be used.
//!
//! - The nonce is 96 random bits from the randomness passed in, fresh for every seal. Random
//!   nonces are safe for up to 2^32 seals per key; credentials are written by hand, far below.
//! - The associated data is the [`Binding`]: organisation id, credential name, provider and
//!   base URL. A sealed value copied to another organisation or name, or a stored base URL
//!   changed to point elsewhere (which would send the secret there), no longer opens.
//! - The sealed value names its key by id ([`Sealed::kid`]), so a keyring holding old and new
//!   keys opens both during a rotation.

use super::input::Provider;
use super::keyring::Keyring;
use super::secret::Secret;
use crate::admin::secret::Random;
use crate::error::{ApiError, Code};
use aes_gcm::aead::{Aead, Payload};
use aes_gcm::Nonce;
use serde::{Deserialize, Serialize};
use std::fmt;

const NONCE_BYTES: usize = 12;
/// The first bytes of the associated data: the purpose and format of what follows.
const AAD_CONTEXT: &[u8] = b"teamkeys credential v1";

/// Where a sealed value may be opened.
#[derive(Debug, Clone, Copy)]
pub struct Binding<'a> {
    pub org_id: &'a str,
    /// The credential's name within the organisation.
    pub name: &'a str,
    pub provider: Provider,
    /// Never empty when present (a validated base URL), so absent and present are told apart.
    pub base_url: Option<&'a str>,
}

impl Binding<'_> {
    /// The context, then each field as its byte length (8 bytes, big-endian) and its bytes: no
    /// two bindings share an encoding.
    fn associated_data(&self) -> Vec<u8> {
        let mut data = AAD_CONTEXT.to_vec();
        for field in [self.org_id, self.name, self.provider.name(), self.base_url.unwrap_or("")] {
            data.extend_from_slice(&(field.len() as u64).to_be_bytes());
            data.extend_from_slice(field.as_bytes());
        }
        data
    }
}

/// A sealed plaintext, as stored: `{"kid": "k2", "nonce": "<base64>", "ciphertext": "<base64>"}`
/// (the ciphertext ends with the 16-byte GCM tag).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sealed {
    pub(super) kid: String,
    #[serde(with = "base64_bytes")]
    pub(super) nonce: [u8; NONCE_BYTES],
    #[serde(with = "base64_bytes")]
    pub(super) ciphertext: Vec<u8>,
}

impl Sealed {
    /// The id of the master key it was sealed with.
    pub fn kid(&self) -> &str {
        &self.kid
    }
}

/// The key id and the sizes only.
impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealed").field("kid", &self.kid).field("ciphertext_bytes", &self.ciphertext.len()).finish()
    }
}

/// Why a sealed credential cannot be opened. Its `Display` is the reason for the log; it holds
/// no secret. The caller answers it as a bare 500 (`From<CredentialError> for ApiError`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialError {
    /// Sealed with a key the keyring no longer (or does not yet) hold.
    UnknownKey { kid: String },
    /// The tag does not verify: the value was altered, copied to another binding, or sealed
    /// with other key material under the same id.
    NotAuthentic,
    /// It opened, but to bytes that are not a valid secret (not printable ASCII).
    NotACredential,
}

impl fmt::Display for CredentialError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialError::UnknownKey { kid } => {
                write!(f, "the credential is sealed with key `{kid}`, which CREDENTIALS_KEYS does not hold")
            }
            CredentialError::NotAuthentic => f.write_str(
                "the credential does not authenticate: altered, moved to another organisation, name or \
                 base URL, or sealed with other key material under the same key id",
            ),
            CredentialError::NotACredential => f.write_str("the credential opened to bytes that are not a secret"),
        }
    }
}

impl std::error::Error for CredentialError {}

impl From<CredentialError> for ApiError {
    fn from(_: CredentialError) -> ApiError {
        unusable_credential()
    }
}

/// The answer to a call whose stored credential cannot be used, whatever the reason (which
/// the caller logs): 500 `upstream_credential_missing`, with no detail.
pub fn unusable_credential() -> ApiError {
    ApiError::new(Code::UpstreamCredentialMissing, "The upstream credential for this call cannot be used.")
}

/// `secret` sealed with the keyring's primary key for `binding`.
pub(super) fn seal(keyring: &Keyring, binding: &Binding, secret: &Secret, random: &mut impl Random) -> Sealed {
    seal_bytes(keyring, &binding.associated_data(), secret.expose().as_bytes(), random)
}

/// The plaintext of `sealed`, if the keyring holds its key and it was sealed for `binding`.
pub(super) fn open(sealed: &Sealed, keyring: &Keyring, binding: &Binding) -> Result<Secret, CredentialError> {
    let plaintext = open_bytes(sealed, keyring, &binding.associated_data())?;
    match String::from_utf8(plaintext) {
        Ok(text) if text.bytes().all(|b| b.is_ascii_graphic()) => Ok(Secret::new(text)),
        _ => Err(CredentialError::NotACredential),
    }
}

/// Any `plaintext` sealed with the keyring's primary key, bound to `associated_data`, for
/// another secret than a credential (the registry's kept idempotent answers). The associated
/// data must begin with a context of its own, distinct from every other user's (as
/// [`AAD_CONTEXT`] is for credentials), so no sealed value opens in another's place.
pub fn seal_bytes(keyring: &Keyring, associated_data: &[u8], plaintext: &[u8], random: &mut impl Random) -> Sealed {
    let (kid, cipher) = keyring.primary();
    let mut nonce = [0u8; NONCE_BYTES];
    random.fill(&mut nonce);
    let payload = Payload { msg: plaintext, aad: associated_data };
    let ciphertext =
        cipher.encrypt(Nonce::from_slice(&nonce), payload).expect("AES-GCM seals any message shorter than 64 GiB");
    Sealed { kid: kid.to_owned(), nonce, ciphertext }
}

/// The plaintext of a value [`seal_bytes`] sealed for `associated_data`.
pub fn open_bytes(sealed: &Sealed, keyring: &Keyring, associated_data: &[u8]) -> Result<Vec<u8>, CredentialError> {
    let cipher = keyring.cipher(&sealed.kid).ok_or_else(|| CredentialError::UnknownKey { kid: sealed.kid.clone() })?;
    let payload = Payload { msg: &sealed.ciphertext, aad: associated_data };
    cipher.decrypt(Nonce::from_slice(&sealed.nonce), payload).map_err(|_| CredentialError::NotAuthentic)
}

/// Byte strings as standard padded base64 in JSON, read into any type a `Vec<u8>` converts to
/// (a fixed-size array refuses another length).
mod base64_bytes {
    use base64ct::{Base64, Encoding};
    use serde::de::Error;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &impl AsRef<[u8]>, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&Base64::encode_string(bytes.as_ref()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>, T: TryFrom<Vec<u8>>>(deserializer: D) -> Result<T, D::Error> {
        let text = String::deserialize(deserializer)?;
        let bytes = Base64::decode_vec(&text).map_err(|_| D::Error::custom("not standard padded base64"))?;
        let length = bytes.len();
        T::try_from(bytes).map_err(|_| D::Error::custom(format!("{length} bytes is not the expected length")))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{counting, keyring};
    use super::*;
    use proptest::prelude::*;

    const SECRET: &str = "sk-proj-0123456789abcdefghijWXYZ";

    fn binding<'a>(org_id: &'a str, name: &'a str) -> Binding<'a> {
        Binding { org_id, name, provider: Provider::OpenAi, base_url: None }
    }

    fn secret(text: &str) -> Secret {
        Secret::new(text.to_owned())
    }

    #[test]
    fn sealed_values_open_with_the_same_binding() {
        let keys = keyring(&[("k1", 1)]);
        let sealed = seal(&keys, &binding("org_a", "main"), &secret(SECRET), &mut counting());
        assert_eq!(sealed.kid(), "k1");
        assert_eq!(sealed.nonce, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
        assert_eq!(sealed.ciphertext.len(), SECRET.len() + 16);
        assert_eq!(open(&sealed, &keys, &binding("org_a", "main")).unwrap().expose(), SECRET);
    }

    #[test]
    fn fresh_nonces_give_different_ciphertexts() {
        let keys = keyring(&[("k1", 1)]);
        let mut random = counting();
        let first = seal(&keys, &binding("org_a", "main"), &secret(SECRET), &mut random);
        let second = seal(&keys, &binding("org_a", "main"), &secret(SECRET), &mut random);
        assert_ne!((first.nonce, &first.ciphertext), (second.nonce, &second.ciphertext));
    }

    #[test]
    fn another_binding_does_not_open() {
        let keys = keyring(&[("k1", 1)]);
        let home = binding("org_a", "main");
        let sealed = seal(&keys, &home, &secret(SECRET), &mut counting());
        let elsewhere = [
            binding("org_b", "main"),
            binding("org_a", "other"),
            // The field boundary is part of the encoding.
            binding("org_am", "ain"),
            Binding { provider: Provider::OpenAiCompatible, ..home },
            Binding { base_url: Some("https://attacker.example"), ..home },
        ];
        for other in elsewhere {
            assert_eq!(open(&sealed, &keys, &other).unwrap_err(), CredentialError::NotAuthentic, "{other:?}");
        }
    }

    #[test]
    fn tampered_or_unknown_key_does_not_open() {
        let keys = keyring(&[("k1", 1)]);
        let home = binding("org_a", "main");
        let sealed = seal(&keys, &home, &secret(SECRET), &mut counting());
        let mut nonce_changed = sealed.clone();
        nonce_changed.nonce[0] ^= 1;
        let mut truncated = sealed.clone();
        truncated.ciphertext.pop();
        for tampered in [nonce_changed, truncated] {
            assert_eq!(open(&tampered, &keys, &home).unwrap_err(), CredentialError::NotAuthentic);
        }
        let unknown = open(&sealed, &keyring(&[("k2", 1)]), &home).unwrap_err();
        assert_eq!(unknown, CredentialError::UnknownKey { kid: "k1".into() });
        // The same id over other key material: the tag does not verify.
        assert_eq!(open(&sealed, &keyring(&[("k1", 9)]), &home).unwrap_err(), CredentialError::NotAuthentic);
    }

    #[test]
    fn failures_answer_a_bare_500_and_log_no_secret() {
        let error = ApiError::from(CredentialError::NotAuthentic);
        assert_eq!((error.status(), error.code().as_str()), (500, "upstream_credential_missing"));
        let keys = keyring(&[("k1", 1)]);
        let sealed = seal(&keys, &binding("org_a", "main"), &secret(SECRET), &mut counting());
        for failure in [
            open(&sealed, &keys, &binding("org_b", "main")).unwrap_err(),
            open(&sealed, &keyring(&[("k2", 1)]), &binding("org_a", "main")).unwrap_err(),
        ] {
            assert!(!failure.to_string().contains(SECRET) && !format!("{failure:?}").contains(SECRET));
        }
    }

    #[test]
    fn the_stored_form_is_base64_and_checks_lengths() {
        let sealed = seal(&keyring(&[("k1", 1)]), &binding("o", "n"), &secret("abc"), &mut counting());
        let json = serde_json::to_value(&sealed).unwrap();
        assert_eq!(json["kid"], "k1");
        assert_eq!(json["nonce"], "AAECAwQFBgcICQoL");
        assert_eq!(serde_json::from_value::<Sealed>(json.clone()).unwrap(), sealed);
        let short_nonce = serde_json::json!({"kid": "k1", "nonce": "AAEC", "ciphertext": json["ciphertext"]});
        assert!(serde_json::from_value::<Sealed>(short_nonce).is_err());
        let not_base64 = serde_json::json!({"kid": "k1", "nonce": json["nonce"], "ciphertext": "!!"});
        assert!(serde_json::from_value::<Sealed>(not_base64).is_err());
        assert_eq!(format!("{sealed:?}"), r#"Sealed { kid: "k1", ciphertext_bytes: 19 }"#);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Any valid secret round-trips, and flipping any bit of any single ciphertext byte
        /// makes it fail to open.
        #[test]
        fn random_secrets_round_trip_and_every_byte_flip_fails(
            text in "[!-~]{1,80}",
            nonce in any::<[u8; NONCE_BYTES]>(),
            flip in 1u8..=255,
        ) {
            let keys = keyring(&[("k1", 1)]);
            let home = binding("org_a", "main");
            let sealed = seal(&keys, &home, &secret(&text), &mut |bytes: &mut [u8]| bytes.copy_from_slice(&nonce));
            let opened = open(&sealed, &keys, &home).unwrap();
            prop_assert_eq!(opened.expose(), text.as_str());
            for index in 0..sealed.ciphertext.len() {
                let mut tampered = sealed.clone();
                tampered.ciphertext[index] ^= flip;
                prop_assert_eq!(open(&tampered, &keys, &home).unwrap_err(), CredentialError::NotAuthentic);
            }
        }
    }
}
