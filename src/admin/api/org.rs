//! The organisation's own settings, for its Admins: upstream credentials (write-only: stored
//! sealed, answered and audited masked, [`crate::credentials`]) and routing groups whose
//! targets name those credentials (`credential`, never a Worker secret's `credential_secret`;
//! see [`crate::policy::routing`]). Every change re-projects the organisation's KV record.
//!
//! The operator's job for a rotation of the master keys, [`reseal_credentials`], runs here too:
//! in one step (no `await` between reading, resealing and writing, so no admin write in
//! between is lost), every credential sealed under an older key is sealed again under the
//! primary one; the KV record is re-projected through the pending work.

use super::step::{Answer, Step};
use crate::admin::audit::Change;
use crate::admin::membership::Standing;
use crate::admin::org::OrgState;
use crate::admin::permission::{check, Action, Target};
use crate::admin::work::Work;
use crate::credentials::{audit_change, check_name, CredentialInput, Slot, StoredCredential};
use crate::error::{ApiError, Code};
use crate::policy::{RoutingConfig, TargetUpstream};
use serde::Serialize;
use serde_json::json;

fn org_check(step: &Step, action: Action) -> Result<(), ApiError> {
    check(step.caller, action, Standing::default(), Target::Org).map_err(ApiError::from)
}

/// Writes the organisation's new state and queues its KV record.
pub fn save(step: &Step, state: &OrgState) -> Result<(), ApiError> {
    step.store.set_org_state(state)?;
    step.work([Work::ProjectOrg])
}

pub fn list_credentials(step: &Step) -> Result<Answer, ApiError> {
    org_check(step, Action::OrgCredentialsRead)?;
    let views: Vec<_> = step.org.credentials.iter().map(|(name, credential)| credential.view(name)).collect();
    Ok(Answer::ok(&json!({ "data": views })))
}

/// Seals and stores the credential `name` (replacing one of that name); answers its masked view.
pub fn put_credential(step: &Step, name: &str) -> Result<Answer, ApiError> {
    org_check(step, Action::OrgCredentialsWrite)?;
    check_name(name)?;
    // serde's messages may quote the input (a secret pasted into the wrong field): not repeated.
    let input: CredentialInput = serde_json::from_slice(step.body).map_err(|_| {
        ApiError::new(
            Code::InvalidCredential,
            "The body must be {\"provider\", \"secret\", \"base_url\"?} with a known provider and nothing else.",
        )
    })?;
    let valid = input.validate(step.config.base_urls)?;
    let keyring = step.config.keyring.ok_or_else(keys_missing)?;
    let mut state = step.org.clone();
    let before = state.credentials.get(name);
    let slot = Slot { org_id: &state.id, name };
    let stored = StoredCredential::seal(valid, slot, keyring, step.now_ms, before, &mut step.random());
    step.audit(audit_change(Action::OrgCredentialsWrite.permission(), name, before, Some(&stored)))?;
    let view = stored.view(name);
    state.credentials.insert(name.to_owned(), stored);
    save(step, &state)?;
    Ok(Answer::ok(&view))
}

/// Deletes the credential `name`; refused while a routing target names it.
pub fn delete_credential(step: &Step, name: &str) -> Result<Answer, ApiError> {
    org_check(step, Action::OrgCredentialsWrite)?;
    let mut state = step.org.clone();
    let Some(before) = state.credentials.remove(name) else {
        return Err(ApiError::new(Code::NotFound, format!("There is no credential '{name}'.")));
    };
    if let Some(routing) = &state.routing {
        if targets(routing).any(|t| matches!(&t.upstream, TargetUpstream::Stored { credential } if credential == name))
        {
            return Err(ApiError::new(
                Code::InvalidRouting,
                format!("A routing target names credential '{name}'; change the routing first."),
            ));
        }
    }
    step.audit(audit_change(Action::OrgCredentialsWrite.permission(), name, Some(&before), None))?;
    save(step, &state)?;
    Ok(Answer::no_content())
}

/// What [`reseal_credentials`] did.
#[derive(Debug, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct ResealReport {
    /// The id of the key every credential is now sealed with, unless it failed.
    pub primary_key_id: String,
    /// The credentials sealed anew in this run.
    pub resealed: Vec<String>,
    /// How many were already sealed with the primary key.
    pub current: usize,
    /// The credentials that could not be opened, left as they were.
    pub failed: Vec<ResealFailure>,
}

#[derive(Debug, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct ResealFailure {
    pub name: String,
    /// The id of the key it is sealed with.
    pub key_id: String,
    /// Why it does not open (never a secret).
    pub reason: String,
}

/// Reseals every credential not sealed with the keyring's primary key
/// ([`StoredCredential::reseal_if_stale`]), writes the state and re-projects the KV record if
/// any was; answers the [`ResealReport`]. A credential that cannot be opened (its key already
/// removed, or altered) is reported and left as it is; the rotation is done when a run reports
/// nothing resealed and nothing failed. Nothing an admin sees changes (`updated_at` stays); the
/// audit log records which credentials were resealed, under which key id.
pub fn reseal_credentials(step: &Step) -> Result<Answer, ApiError> {
    let keyring = step.config.keyring.ok_or_else(keys_missing)?;
    let mut state = step.org.clone();
    let (mut resealed, mut failed) = (Vec::new(), Vec::new());
    for (name, credential) in &mut state.credentials {
        let slot = Slot { org_id: &step.org.id, name };
        match credential.reseal_if_stale(keyring, slot, &mut step.random()) {
            Ok(Some(fresh)) => {
                *credential = fresh;
                resealed.push(name.clone());
            }
            Ok(None) => {}
            Err(error) => failed.push(ResealFailure {
                name: name.clone(),
                key_id: credential.key_id().to_owned(),
                reason: error.to_string(),
            }),
        }
    }
    let primary_key_id = keyring.primary_id().to_owned();
    if !resealed.is_empty() {
        let after = json!({ "resealed": resealed, "key_id": primary_key_id });
        step.audit(Change::new("orgs.reseal_credentials", "credential", &state.id, None, Some(&after)))?;
        save(step, &state)?;
    }
    let current = state.credentials.len() - resealed.len() - failed.len();
    Ok(Answer::ok(&ResealReport { primary_key_id, resealed, current, failed }))
}

fn keys_missing() -> ApiError {
    ApiError::new(Code::CredentialsKeysMissing, "Stored credentials need the CREDENTIALS_KEYS secret.")
}

fn targets(routing: &RoutingConfig) -> impl Iterator<Item = &crate::policy::Target> {
    routing.groups().iter().flat_map(|group| &group.targets)
}

/// Replaces the organisation's routing groups. Every target names a stored credential
/// (`credential`) and no Worker secret; its base URL obeys the credential base-URL policy and
/// starts with the credential's own base URL when it has one.
pub fn put_routing(step: &Step) -> Result<Answer, ApiError> {
    org_check(step, Action::OrgRoutingWrite)?;
    let text =
        std::str::from_utf8(step.body).map_err(|_| ApiError::new(Code::InvalidBody, "The body is not UTF-8."))?;
    // An organisation's targets name its credentials, never a Worker secret; each call goes to
    // the credential's own (sealed) base URL or its provider's public API.
    let routing = RoutingConfig::from_org_json(text)
        .map_err(|e| ApiError::new(Code::InvalidRouting, format!("The routing is not valid: {e}.")))?;
    for target in targets(&routing) {
        if let TargetUpstream::Stored { credential: name } = &target.upstream {
            let Some(credential) = step.org.credentials.get(name) else {
                return Err(ApiError::new(
                    Code::InvalidRouting,
                    format!("A target names credential '{name}', which does not exist."),
                ));
            };
            if credential.provider().family() != target.family {
                return Err(ApiError::new(
                    Code::InvalidRouting,
                    format!("Credential '{name}' is for {}, not the target's family.", credential.provider().name()),
                ));
            }
        }
    }
    let mut state = step.org.clone();
    step.audit(Change::new(
        Action::OrgRoutingWrite.permission(),
        "org_routing",
        &state.id,
        state.routing.as_ref(),
        Some(&routing),
    ))?;
    state.routing = Some(routing.clone());
    save(step, &state)?;
    Ok(Answer::ok(&routing))
}
