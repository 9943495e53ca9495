//! The organisation of a call, read right after the key's record and before anything else is
//! asked (the body, the ledger, the upstream).
//!
//! - A key record without `org` (written before organisations) is the default organisation's
//!   ([`crate::naming::DEFAULT_ORG`]) and is served as before: the platform's routing and Worker
//!   secrets, nothing more read.
//! - A key record naming an organisation: its record ([`crate::naming::org_record`]) is read
//!   through the same [`KeyStore`] as key records, so it is cached at the edge the same way.
//!   The store unreachable → 503 `key_store_unavailable`; no record → 401 `invalid_api_key`, as
//!   for an unknown key (fail closed: a deleted organisation's keys stop), except for the
//!   default organisation, which is served as before until its registry projects a record; a
//!   record that cannot be read or names another organisation → 500 `invalid_org_record`
//!   (logged); a suspended organisation → 403 `organisation_suspended`; an organisation with no
//!   routing of its own that may not use the platform's → 403 `no_routing`.
//! - Routing and credentials: the organisation's own routing and stored credentials when its
//!   record has a routing, else the platform's routing and Worker secrets.
//! - Prices: the operator's overrides in its record for the models they price, else the
//!   platform's pricing table.
//!
//! Bound: a change to the record (a suspension, new routing or credentials) reaches every call
//! within [`RECORD_STALENESS_MS`](super::record_memo::RECORD_STALENESS_MS) (KV's edge cache,
//! then the isolate's memo of the organisation: [`super::record_memo`]) plus KV's propagation.

use crate::credentials::Keyring;
use crate::error::{ApiError, Code};
use crate::gateway::ports::{KeyStore, Runtime};
use crate::gateway::record_memo::record_weight;
use crate::gateway::upstream_credentials::CredentialSource;
use crate::naming;
use crate::policy::{KeyRecord, OrgRecord, OrgStatus, RoutingConfig, ORG_RECORD_FORMAT};
use crate::usage::{Price, Pricing};
use crate::versioned;

/// Whose key a call carries.
#[derive(Debug)]
pub enum Organisation {
    /// A key from before organisations.
    Legacy,
    /// An active organisation's key.
    Active(OrgRecord),
}

impl Organisation {
    /// The organisation of the key `record` (see the module doc for every answer), with its
    /// weight in the isolate's memo ([`record_weight`] of the record it was read from).
    pub async fn of_key(
        keys: &impl KeyStore,
        runtime: &impl Runtime,
        record: &KeyRecord,
    ) -> Result<(Organisation, usize), ApiError> {
        let legacy = || Ok((Organisation::Legacy, record_weight(b"")));
        let Some(org_id) = record.org.as_deref() else {
            return legacy();
        };
        let stored = keys.get(&naming::org_record(org_id)).await.map_err(|_| key_store_unavailable())?;
        let Some(stored) = stored else {
            // The organisation a deployment from before organisations became may have no record
            // until its registry first projects one: it is active, on the platform's routing.
            if org_id == naming::DEFAULT_ORG {
                return legacy();
            }
            runtime.warn(&format!("key {} names organisation {org_id}, which has no record", record.id));
            return Err(unknown_key());
        };
        let invalid = |reason: String| {
            runtime.error(&format!("organisation record {org_id} is invalid: {reason}"));
            ApiError::new(Code::InvalidOrgRecord, "The organisation's stored record cannot be read.")
        };
        let org = versioned::from_slice(&ORG_RECORD_FORMAT, &stored, |members| OrgRecord::deserialize(members))
            .map_err(|error| invalid(error.to_string()))?;
        if org.id != org_id {
            return Err(invalid(format!("it names organisation {}", org.id)));
        }
        match org.status {
            OrgStatus::Active if org.routing.is_none() && !org.platform_routing => Err(ApiError::new(
                Code::NoRouting,
                "The organisation this key belongs to has no routing of its own and may not use the platform's.",
            )),
            OrgStatus::Active => Ok((Organisation::Active(org), record_weight(&stored))),
            OrgStatus::Suspended => Err(ApiError::new(
                Code::OrganisationSuspended,
                "The organisation this key belongs to is suspended; its keys are refused.",
            )),
        }
    }

    /// The routing the call follows: the organisation's own, else the platform's.
    pub fn routing<'a>(&'a self, platform: &'a RoutingConfig) -> &'a RoutingConfig {
        match self {
            Organisation::Active(OrgRecord { routing: Some(routing), .. }) => routing,
            _ => platform,
        }
    }

    /// The price of `model`: the operator's override for the organisation if it has one, else
    /// the platform's.
    pub fn price<'a>(&'a self, platform: &'a Pricing, model: &str) -> Option<&'a Price> {
        let overrides = match self {
            Organisation::Active(record) => record.pricing.as_ref(),
            Organisation::Legacy => None,
        };
        platform.price_with(overrides, model)
    }

    /// Where the targets of [`Organisation::routing`] find their credentials.
    pub fn credentials<'a>(&'a self, keyring: Option<&'a Keyring>) -> CredentialSource<'a> {
        match self {
            Organisation::Active(OrgRecord { id, routing: Some(_), credentials, .. }) => {
                CredentialSource::Stored { org_id: id, credentials, keyring }
            }
            _ => CredentialSource::WorkerSecrets,
        }
    }
}

/// 503 for a key store (KV) that cannot be reached: nothing is forwarded.
pub fn key_store_unavailable() -> ApiError {
    ApiError::new(Code::KeyStoreUnavailable, "The key store cannot be reached; retry shortly.").with_retry_after(1)
}

/// 401 for a key the store does not know.
pub fn unknown_key() -> ApiError {
    ApiError::new(Code::InvalidApiKey, "Incorrect API key provided.")
}
