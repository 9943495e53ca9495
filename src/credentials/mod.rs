//! An organisation's own upstream credentials (its OpenAI, Anthropic, Gemini or
//! OpenAI-compatible API keys): write-only, encrypted at rest, opened only on the request path.
//!
//! # Flow
//! 1. An Admin of the organisation sends `{provider, secret, base_url?}` for a credential name
//!    ([`CredentialInput`], [`check_name`]); [`CredentialInput::validate`] refuses a malformed one
//!    with 400 `invalid_credential` naming the field, and nothing is stored.
//! 2. [`StoredCredential::seal`] encrypts the secret with the primary key of the [`Keyring`]
//!    (from the deploy-time secret `CREDENTIALS_KEYS`), bound to the organisation, the name, the
//!    provider and the base URL. The registry stores the [`StoredCredential`]; the admin API
//!    answers its [`CredentialView`] (the mask, `sk-…abcd`); the audit log records
//!    [`audit_change`] (views on both sides). The plaintext is dropped.
//! 3. The registry projects the [`StoredCredential`] to KV, next to the key records.
//! 4. The request path reads it from KV, [`StoredCredential::open`]s it with the same keyring,
//!    and puts the [`Secret`] into the upstream request's header. A credential that does not
//!    open is answered 500 `upstream_credential_missing` with no detail (`From<CredentialError>
//!    for ApiError`); the [`CredentialError`]'s `Display` is the reason for the log.
//!
//! # Threat model
//! - A read of the registry, of KV, of the audit log or of an admin answer yields the mask, the
//!   provider, the base URL and ciphertext: nothing usable without the master key.
//! - A write to the registry or KV cannot move a credential to another organisation or name,
//!   nor point it at another base URL (which would send the secret there): the sealed value is
//!   bound to all of them and stops opening.
//! - The master keys protect every organisation's credentials at once. They live only in a
//!   Cloudflare secret (`wrangler secret put CREDENTIALS_KEYS`), outside the code, the
//!   configuration file and every store; whoever holds them and a registry or KV read holds
//!   the credentials. Plaintexts exist only in the worker's memory while a call is sent.
//! - `Debug` of every type here hides the secret, [`Secret`] has no `Serialize`, and errors
//!   never repeat an input value.
//!
//! # Rotating the master key (no downtime)
//! 1. Generate a key (`openssl rand -base64 32`) under a new id and put it *first* in
//!    `CREDENTIALS_KEYS`, keeping the old one: `k2:<new>,k1:<old>`. Deploy. New writes seal
//!    with `k2`; values sealed with `k1` still open.
//! 2. Run the reseal job for every organisation: `POST /admin/v1/orgs/{id}/credentials/reseal`
//!    (the operator's; [`crate::admin::api::org::reseal_credentials`]) runs
//!    [`StoredCredential::reseal_if_stale`] on each of its credentials and writes back what it
//!    returns in one step of the registry's single-threaded object (no `await` between reading,
//!    resealing and writing, so a concurrent admin write is never overwritten), then re-projects
//!    the KV record through the pending work. Repeat until every organisation reports nothing
//!    resealed and nothing failed.
//! 3. Remove the old key: `k2:<new>`. Deploy. Never reuse the id `k1` for other key material.
//!
//! If step 3 happens too early, the credentials still on `k1` fail to open (500 on their
//! calls) until `k1` is put back; nothing is lost.
//!
//! # Why AES-256-GCM from RustCrypto's `aes-gcm`, not WebCrypto
//! WebCrypto's `encrypt`/`decrypt` are asynchronous JavaScript calls: they exist only in the
//! worker, so the core could not be tested on the host, every open would add a promise to the
//! request path, and tests could not fix the nonce. `aes-gcm` is audited, widely used, pure
//! Rust, synchronous and deterministic given the nonce, and runs the same on the host and in
//! wasm. Its cost, with `base64ct`: the release wasm (`cargo build --release --target
//! wasm32-unknown-unknown`, before `wasm-opt`) grows from 3,080,130 to 3,149,624 bytes
//! (+69 KB, +2.3 %; gzip +19.5 KB, +2.5 %), measured with every function of this module
//! called from the fetch entry; wasm has no AES instructions, so AES and GHASH run in
//! (constant-time) software. Unused, it costs nothing (LTO drops it). The keys are decoded with RustCrypto's `base64ct`
//! (constant-time decoding: no timing that depends on key bytes).
//!
//! # Why no `zeroize`
//! The master keys arrive as a JavaScript string (the secret binding) and a plaintext leaves
//! as a JavaScript header value; both copies live in the JavaScript heap, out of reach of
//! zeroing. Zeroing the wasm-side copies would not shorten the time a plaintext exists, so it
//! is not worth a dependency. The defence is that plaintexts are short-lived and never
//! formatted, serialized or logged.

mod input;
mod keyring;
mod sealing;
mod secret;
mod stored;

pub use input::{check_base_url, check_name, BaseUrlPolicy, CredentialInput, Provider, ValidCredential};
pub use keyring::{Keyring, KeyringError};
pub use sealing::{open_bytes, seal_bytes, unusable_credential, CredentialError, Sealed};
pub use secret::Secret;
pub use stored::{audit_change, CredentialView, Slot, StoredCredential, CREDENTIAL_FORMAT};

/// Helpers shared by the tests of this module.
#[cfg(test)]
mod testing {
    use base64ct::{Base64, Encoding};

    /// 32 bytes of `byte`, in base64.
    pub fn key_text(byte: u8) -> String {
        Base64::encode_string(&[byte; 32])
    }

    /// A keyring of `(id, byte)` entries, each key 32 bytes of `byte`, primary first.
    pub fn keyring(keys: &[(&str, u8)]) -> super::Keyring {
        let text: Vec<String> = keys.iter().map(|(id, byte)| format!("{id}:{}", key_text(*byte))).collect();
        super::Keyring::parse(&text.join(",")).unwrap()
    }

    pub(crate) use crate::admin::secret::counting;
}

#[cfg(test)]
mod tests {
    use super::testing::{counting, keyring};
    use super::*;
    use crate::error::ApiError;

    const SECRET: &str = "sk-proj-s3cr3tPlaintextValue0123456789";
    const SLOT: Slot = Slot { org_id: "org_a", name: "main" };

    fn input() -> CredentialInput {
        CredentialInput {
            provider: Provider::OpenAiCompatible,
            secret: SECRET.to_owned(),
            base_url: Some("https://llm.example.com".to_owned()),
        }
    }

    /// No type of the module shows the plaintext through `Debug`, and no serializable one
    /// through `Serialize`.
    #[test]
    fn the_plaintext_never_shows() {
        let keys = keyring(&[("k1", 1)]);
        let stored = StoredCredential::seal(
            input().validate(BaseUrlPolicy::HttpsOnly).unwrap(),
            SLOT,
            &keys,
            1,
            None,
            &mut counting(),
        );
        let opened = stored.open(&keys, SLOT).unwrap();
        let failure = stored.open(&keys, Slot { org_id: "org_b", ..SLOT }).unwrap_err();
        let debug = [
            format!("{:?}", input()),
            format!("{:?}", input().validate(BaseUrlPolicy::HttpsOnly).unwrap()),
            format!("{stored:?}"),
            format!("{opened:?}"),
            format!("{opened}"),
            format!("{failure:?}"),
            format!("{failure}"),
            format!("{keys:?}"),
            format!("{:?}", stored.view("main")),
            format!("{:?}", audit_change("credentials.put", "main", None, Some(&stored))),
        ];
        let serialized = [
            serde_json::to_string(&stored).unwrap(),
            serde_json::to_string(&stored.view("main")).unwrap(),
            ApiError::from(failure).body(),
        ];
        for text in debug.iter().chain(&serialized) {
            assert!(!text.contains(SECRET) && !text.contains("s3cr3t"), "{text}");
        }
        assert_eq!(opened.expose(), SECRET, "the test would see the secret if it were there");
    }
}
