//! `GET /v1/key`: a key holder reads its own key's limits, usage and headroom with the key
//! itself, whichever family's key header carries it (family-neutral: [`gateway_route`]).
//!
//! Flow: the key from any family's header (`Authorization: Bearer`, `x-api-key`,
//! `x-goog-api-key`) → its record → its organisation (suspended → 403) → the key's own checks
//! ([`authorize_key`]: status, expiry, IP allowlists) → the end user, if the
//! [`END_USER_HEADER`] is sent (checked as on a call) → the key's ledger answers `Quota`
//! (revocation checked first, the limits in force as for an admission, read-only) → the JSON
//! below. Nothing about other keys is answered: the key's own ledger holds only its own counts,
//! and of the budgets above it (the levels the record names) only what its lease replies told it
//! ([`LevelQuota`](crate::ledger::LevelQuota): the budget's headroom as of `as_of_ms`, the slice
//! the key still holds).
//!
//! ```json
//! {"object":"key_quota","id":"k_…","name":"…",
//!  "key":{"limits":[{"scope":"rpm","limit":60,"used":3,"remaining":57,"reset_at_ms":…}],"usage":{…}},
//!  "models":[{"pattern":"o3*","limits":[…]}],
//!  "end_user":{"id":"u-42","limits":[…]},
//!  "budgets":[{"level":"project","as_of_ms":…,"headroom":{"requests":{…},"tokens":null,"spend":{…}},
//!              "slice":{"requests":6,"ends_at_ms":…}}]}
//! ```
//!
//! [`gateway_route`]: crate::gateway::route::gateway_route

use crate::error::{ApiError, Code};
use crate::gateway::call::{ledger_unavailable, Gateway};
use crate::gateway::exchange::{Answer, AnswerBody};
use crate::gateway::ports::{header, KeyLedger, KeyLedgers, KeyStore, LedgerAddress, Runtime, Upstream};
use crate::gateway::route::FAMILIES;
use crate::ledger::{Command, KeyQuota, Reply};
use crate::policy::end_user::{end_user, END_USER_HEADER};
use crate::policy::{authorize_key, client_ip, extract_key};
use serde::Serialize;

/// The answer's body: the key's name beside what its ledger answered.
#[derive(Debug, Serialize)]
struct QuotaView<'a> {
    object: &'static str,
    id: &'a str,
    name: &'a str,
    #[serde(flatten)]
    quota: KeyQuota,
}

impl<K: KeyStore, L: KeyLedgers, U: Upstream, R: Runtime> Gateway<'_, K, L, U, R> {
    /// Answers `GET /v1/key` (see the module doc).
    pub(crate) async fn key_quota(
        &self,
        headers: &[(String, String)],
        now_ms: u64,
    ) -> Result<Answer<U::Body>, ApiError> {
        let key = FAMILIES.into_iter().find_map(|family| extract_key(family, |name| header(headers, name)));
        let policy = self.authenticate(key, now_ms).await?;
        let record = policy.record();
        self.organisation(record, now_ms).await?;
        authorize_key(&policy, client_ip(header(headers, "cf-connecting-ip")), now_ms)?;
        let end_user = end_user(header(headers, END_USER_HEADER))?;
        let ledger = self.ledgers.ledger(&LedgerAddress::of(record)).map_err(|_| ledger_unavailable())?;
        let command = Command::Quota {
            secret_version: record.secret_version,
            limits: record.rules.limits.clone(),
            policy_version: record.policy_version,
            scopes: record.rules.scopes(),
            end_user: end_user.map(str::to_owned),
            budgets: record.budgets.iter().map(|link| link.level).collect(),
        };
        let quota = match ledger.send(&command).await.map_err(|_| ledger_unavailable())? {
            Reply::Quota(quota) => quota,
            Reply::Refused(refusal) => return Err(refusal.error),
            _ => return Err(ApiError::new(Code::LedgerUnavailable, "The ledger gave no quota.")),
        };
        let view = QuotaView { object: "key_quota", id: &record.id, name: &record.name, quota };
        let body = serde_json::to_vec(&view).map_err(|_| ApiError::internal())?;
        let headers = vec![("content-type".to_owned(), "application/json".to_owned())];
        Ok(Answer { status: 200, headers, body: AnswerBody::Bytes(body) })
    }
}
