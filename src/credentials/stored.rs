//! A credential as the registry stores it and KV holds it for the request path
//! ([`StoredCredential`]), the form the admin API answers ([`CredentialView`]) and the form the
//! audit log records ([`audit_change`]).
//!
//! The stored form: `{"provider", "base_url"?, "sealed": {"kid", "nonce", "ciphertext"},
//! "masked", "created_at", "updated_at"}`, a versioned document ([`crate::versioned`]). Nothing
//! in it is usable without the master key. A credential is replaced whole (the secret is sent
//! again): its provider and base URL are bound into the sealed value, so neither can change
//! without sealing anew.

use super::input::{Provider, ValidCredential};
use super::keyring::Keyring;
use super::sealing::{self, Binding, CredentialError, Sealed};
use super::secret::Secret;
use crate::admin::audit::Change;
use crate::admin::secret::Random;
use crate::versioned::{stored_serde, Format};
use serde::{Deserialize, Serialize};

/// The organisation and name a credential is stored under.
#[derive(Debug, Clone, Copy)]
pub struct Slot<'a> {
    pub org_id: &'a str,
    pub name: &'a str,
}

/// A sealed credential. Invariant: `sealed` was sealed for its slot with this `provider` and
/// `base_url`, and `masked` is the mask of its plaintext.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct StoredCredential {
    provider: Provider,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    base_url: Option<String>,
    sealed: Sealed,
    masked: String,
    created_at: u64,
    updated_at: u64,
}

/// The stored format: version 1, today's members.
pub const CREDENTIAL_FORMAT: Format = Format {
    version: 1,
    members: &["provider", "base_url", "sealed", "masked", "created_at", "updated_at"],
    critical: &[],
};
stored_serde!(StoredCredential, CREDENTIAL_FORMAT);

/// A credential as the admin API shows it: never its plaintext, never its sealed form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct CredentialView {
    pub name: String,
    pub provider: Provider,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// The first 3 and last 4 characters of the secret, `sk-…abcd` (`…` for a short one).
    pub masked: String,
    pub created_at: u64,
    pub updated_at: u64,
}

impl StoredCredential {
    /// `credential` sealed for `slot` with the keyring's primary key, written at `now_ms`;
    /// `replaces` is the credential it replaces in the slot, if any (its `created_at` stays).
    pub fn seal(
        credential: ValidCredential,
        slot: Slot,
        keyring: &Keyring,
        now_ms: u64,
        replaces: Option<&StoredCredential>,
        random: &mut impl Random,
    ) -> StoredCredential {
        let ValidCredential { provider, secret, base_url } = credential;
        let binding = Binding { org_id: slot.org_id, name: slot.name, provider, base_url: base_url.as_deref() };
        let sealed = sealing::seal(keyring, &binding, &secret, random);
        StoredCredential {
            provider,
            base_url,
            sealed,
            masked: secret.mask(),
            created_at: replaces.map_or(now_ms, |previous| previous.created_at),
            updated_at: now_ms,
        }
    }

    fn binding<'a>(&'a self, slot: Slot<'a>) -> Binding<'a> {
        Binding { org_id: slot.org_id, name: slot.name, provider: self.provider, base_url: self.base_url.as_deref() }
    }

    /// The plaintext, on the request path: fails if the keyring lacks the key, or the value
    /// was altered or is read from another slot than the one it was sealed for.
    pub fn open(&self, keyring: &Keyring, slot: Slot) -> Result<Secret, CredentialError> {
        sealing::open(&self.sealed, keyring, &self.binding(slot))
    }

    /// The same credential sealed with the keyring's primary key, or `None` if it already is
    /// (the rotation job's step; not a change an admin made, so `updated_at` stays and nothing
    /// is audited). Fails as [`StoredCredential::open`] does: a credential that fails here
    /// will fail on the request path too once its key is removed.
    pub fn reseal_if_stale(
        &self,
        keyring: &Keyring,
        slot: Slot,
        random: &mut impl Random,
    ) -> Result<Option<StoredCredential>, CredentialError> {
        if self.sealed.kid() == keyring.primary_id() {
            return Ok(None);
        }
        let secret = self.open(keyring, slot)?;
        let sealed = sealing::seal(keyring, &self.binding(slot), &secret, random);
        Ok(Some(StoredCredential { sealed, ..self.clone() }))
    }

    pub fn provider(&self) -> Provider {
        self.provider
    }

    /// The base URL to call instead of the provider's default, if any.
    pub fn base_url(&self) -> Option<&str> {
        self.base_url.as_deref()
    }

    /// The id of the master key it is sealed with (what a rotation waits on).
    pub fn key_id(&self) -> &str {
        self.sealed.kid()
    }

    pub fn view(&self, name: &str) -> CredentialView {
        CredentialView {
            name: name.to_owned(),
            provider: self.provider,
            base_url: self.base_url.clone(),
            masked: self.masked.clone(),
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// The audit entry of a change to the credential `name` (`before`/`after` absent when it did
/// not or no longer exists), recorded as [`CredentialView`]s: the mask, never the plaintext or
/// the sealed value.
pub fn audit_change(
    action: &'static str,
    name: &str,
    before: Option<&StoredCredential>,
    after: Option<&StoredCredential>,
) -> Change {
    let view = |credential: Option<&StoredCredential>| credential.map(|credential| credential.view(name));
    Change::new(action, "credential", name, view(before).as_ref(), view(after).as_ref())
}

#[cfg(test)]
mod tests {
    use super::super::input::{BaseUrlPolicy, CredentialInput};
    use super::super::testing::{counting, keyring};
    use super::*;
    use crate::versioned::check;
    use serde_json::json;

    const SECRET: &str = "sk-ant-api03-0123456789abcdefghijWXYZ";
    const HOME: Slot = Slot { org_id: "org_a", name: "main" };

    fn valid(base_url: Option<&str>) -> ValidCredential {
        let input = CredentialInput {
            provider: Provider::Anthropic,
            secret: SECRET.to_owned(),
            base_url: base_url.map(str::to_owned),
        };
        input.validate(BaseUrlPolicy::HttpsOnly).unwrap()
    }

    fn stored(keys: &Keyring) -> StoredCredential {
        StoredCredential::seal(valid(Some("https://eu.example.com")), HOME, keys, 1_000, None, &mut counting())
    }

    #[test]
    fn a_sealed_credential_opens_in_its_slot_only() {
        let keys = keyring(&[("k1", 1)]);
        let credential = stored(&keys);
        assert_eq!(credential.open(&keys, HOME).unwrap().expose(), SECRET);
        assert_eq!(
            (credential.provider(), credential.base_url()),
            (Provider::Anthropic, Some("https://eu.example.com"))
        );
        for slot in [Slot { org_id: "org_b", name: "main" }, Slot { org_id: "org_a", name: "backup" }] {
            assert_eq!(credential.open(&keys, slot).unwrap_err(), CredentialError::NotAuthentic, "{slot:?}");
        }
    }

    #[test]
    fn a_changed_base_url_does_not_open() {
        let keys = keyring(&[("k1", 1)]);
        let mut json = serde_json::to_value(stored(&keys)).unwrap();
        json["base_url"] = json!("https://attacker.example");
        let redirected: StoredCredential = serde_json::from_value(json).unwrap();
        assert_eq!(redirected.open(&keys, HOME).unwrap_err(), CredentialError::NotAuthentic);
    }

    #[test]
    fn replacing_keeps_created_at() {
        let keys = keyring(&[("k1", 1)]);
        let first = stored(&keys);
        let second = StoredCredential::seal(valid(None), HOME, &keys, 5_000, Some(&first), &mut counting());
        assert_eq!((second.view("main").created_at, second.view("main").updated_at), (1_000, 5_000));
        assert_eq!(second.base_url(), None);
    }

    /// The rotation as an operator runs it: add k2 first, reseal, remove k1.
    #[test]
    fn rotation_without_downtime() {
        let old = keyring(&[("k1", 1)]);
        let during = keyring(&[("k2", 2), ("k1", 1)]);
        let after = keyring(&[("k2", 2)]);
        let sealed_with_k1 = stored(&old);
        assert_eq!(sealed_with_k1.key_id(), "k1");

        // Both keys held: the old value still opens, new writes use k2.
        assert_eq!(sealed_with_k1.open(&during, HOME).unwrap().expose(), SECRET);
        assert_eq!(stored(&during).key_id(), "k2");

        // The job moves it to k2, once.
        let resealed = sealed_with_k1.reseal_if_stale(&during, HOME, &mut counting()).unwrap().unwrap();
        assert_eq!(resealed.key_id(), "k2");
        assert_eq!(resealed.view("main"), sealed_with_k1.view("main"), "nothing an admin sees changes");
        assert_eq!(resealed.reseal_if_stale(&during, HOME, &mut counting()).unwrap(), None);

        // k1 removed: the resealed value opens, the old one does not.
        assert_eq!(resealed.open(&after, HOME).unwrap().expose(), SECRET);
        assert_eq!(sealed_with_k1.open(&after, HOME).unwrap_err(), CredentialError::UnknownKey { kid: "k1".into() });
        // A value the job cannot open is reported, not skipped.
        let unknown = sealed_with_k1.reseal_if_stale(&after, HOME, &mut counting()).unwrap_err();
        assert_eq!(unknown, CredentialError::UnknownKey { kid: "k1".into() });
    }

    #[test]
    fn views_and_audit_entries_show_the_mask_only() {
        let keys = keyring(&[("k1", 1)]);
        let credential = stored(&keys);
        let view = serde_json::to_value(credential.view("main")).unwrap();
        assert_eq!(
            view,
            json!({"name": "main", "provider": "anthropic", "base_url": "https://eu.example.com",
                   "masked": "sk-…WXYZ", "created_at": 1_000, "updated_at": 1_000})
        );
        let replaced = StoredCredential::seal(valid(None), HOME, &keys, 2_000, Some(&credential), &mut counting());
        let change = audit_change("credentials.put", "main", Some(&credential), Some(&replaced));
        assert_eq!((change.target_type, change.target_id.as_str()), ("credential", "main"));
        assert_eq!(change.before, Some(view));
        assert_eq!(change.after.as_ref().unwrap()["masked"], "sk-…WXYZ");
        let ciphertext = serde_json::to_value(&credential).unwrap()["sealed"]["ciphertext"].clone();
        let entry = format!("{change:?}");
        assert!(!entry.contains(SECRET) && !entry.contains(ciphertext.as_str().unwrap()), "{entry}");
    }

    #[test]
    fn the_stored_form_is_a_versioned_document() {
        let credential = stored(&keyring(&[("k1", 1)]));
        let json = serde_json::to_value(&credential).unwrap();
        assert_eq!(json["sealed"]["kid"], "k1");
        assert!(json.get("v").is_none());
        assert_eq!(serde_json::from_value::<StoredCredential>(json).unwrap(), credential);
        check::members_match(&CREDENTIAL_FORMAT, &credential);
        check::version_rule(&CREDENTIAL_FORMAT, &credential, "label", json!("x"));
    }
}
