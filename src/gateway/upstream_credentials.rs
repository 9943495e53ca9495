//! Where a call's routing targets find their credentials, and where each target is sent.
//!
//! - Platform routing ([`TargetUpstream::Secret`]): the Worker secret the target names, through
//!   the [`Upstream`] port; the target's own base URL.
//! - An organisation's routing ([`TargetUpstream::Stored`]): the organisation's stored
//!   credential of that name, opened with the keyring (`CREDENTIALS_KEYS`) for its slot
//!   (organisation, name); the credential's sealed `base_url`, else its provider's public API
//!   (see [`crate::policy::routing`] for why never a URL of the routing's). The credential's
//!   provider must speak the target's family.
//!
//! Every failure is answered 500 `upstream_credential_missing`. For a stored credential the
//! answer has no detail ([`unusable_credential`]) and the log line names the organisation, the
//! credential and the reason, never a secret. A plaintext lives in a [`Plaintext`] until the
//! upstream request's header is built from it, and is never formatted.

use crate::credentials::{unusable_credential, Keyring, Secret, Slot, StoredCredential};
use crate::error::{ApiError, Code};
use crate::gateway::ports::{Runtime, Upstream};
use crate::policy::{Target, TargetUpstream};
use std::collections::BTreeMap;

/// Where the targets of one call find their credentials.
#[derive(Debug, Clone, Copy)]
pub enum CredentialSource<'a> {
    /// The platform's Worker secrets.
    WorkerSecrets,
    /// One organisation's stored credentials, and the keyring to open them (`None` when
    /// `CREDENTIALS_KEYS` is not set or cannot be read).
    Stored { org_id: &'a str, credentials: &'a BTreeMap<String, StoredCredential>, keyring: Option<&'a Keyring> },
}

/// A credential's plaintext: `Debug` hides it, nothing formats it.
pub enum Plaintext {
    Worker(String),
    Stored(Secret),
}

impl Plaintext {
    /// The text, for the upstream request's header only.
    pub fn expose(&self) -> &str {
        match self {
            Plaintext::Worker(text) => text,
            Plaintext::Stored(secret) => secret.expose(),
        }
    }
}

impl std::fmt::Debug for Plaintext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Plaintext([redacted])")
    }
}

/// Where one target's request goes and the credential it carries.
#[derive(Debug)]
pub struct Destination<'a> {
    /// The family's base, without trailing `/`; the route's upstream path is appended.
    pub base_url: &'a str,
    pub credential: Plaintext,
}

impl<'a> CredentialSource<'a> {
    /// Where `target`'s calls would go, without opening any credential; `None` when a stored
    /// credential is missing or has no base URL (the call then fails at its destination).
    pub fn base_url(&self, target: &'a Target) -> Option<&'a str> {
        match (&target.upstream, *self) {
            (TargetUpstream::Secret { base_url, .. }, _) => Some(base_url),
            (TargetUpstream::Stored { credential }, CredentialSource::Stored { credentials, .. }) => {
                let stored = credentials.get(credential)?;
                stored.base_url().or(stored.provider().public_base_url())
            }
            (TargetUpstream::Stored { .. }, CredentialSource::WorkerSecrets) => None,
        }
    }

    /// The destination of `target` (see the module doc).
    pub fn destination(
        &self,
        target: &'a Target,
        upstream: &impl Upstream,
        runtime: &impl Runtime,
    ) -> Result<Destination<'a>, ApiError> {
        match (&target.upstream, *self) {
            (TargetUpstream::Secret { base_url, credential_secret }, CredentialSource::WorkerSecrets) => {
                let credential = upstream.credential(credential_secret).ok_or_else(|| {
                    ApiError::new(
                        Code::UpstreamCredentialMissing,
                        format!(
                            "The gateway has no credential for this upstream (secret '{credential_secret}' is not set)."
                        ),
                    )
                })?;
                Ok(Destination { base_url, credential: Plaintext::Worker(credential) })
            }
            (
                TargetUpstream::Stored { credential: name },
                CredentialSource::Stored { org_id, credentials, keyring },
            ) => {
                let unusable = |reason: &dyn std::fmt::Display| {
                    runtime.error(&format!("organisation {org_id}: credential '{name}' cannot be used: {reason}"));
                    unusable_credential()
                };
                let stored =
                    credentials.get(name).ok_or_else(|| unusable(&"the organisation has no such credential"))?;
                let provider = stored.provider();
                if provider.family() != target.family {
                    return Err(unusable(&format_args!(
                        "its provider {} does not speak the target's family {:?}",
                        provider.name(),
                        target.family
                    )));
                }
                let base_url = stored
                    .base_url()
                    .or(provider.public_base_url())
                    .ok_or_else(|| unusable(&"it has no base_url and its provider no public API"))?;
                let keyring = keyring.ok_or_else(|| unusable(&"CREDENTIALS_KEYS is not set or cannot be read"))?;
                let secret = stored.open(keyring, Slot { org_id, name }).map_err(|error| unusable(&error))?;
                Ok(Destination { base_url, credential: Plaintext::Stored(secret) })
            }
            // Unreachable by construction: the platform's routing is parsed to name Worker
            // secrets only, an organisation's to name its credentials only.
            _ => {
                runtime.error(&format!("target {target} names another kind of credential than its routing's"));
                Err(unusable_credential())
            }
        }
    }
}
