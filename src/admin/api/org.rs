//! The organisation's own settings, for its Admins: upstream credentials (write-only: stored
//! sealed, answered and audited masked, [`crate::credentials`]) and routing groups whose
//! targets name those credentials (`credential`, never a Worker secret's `credential_secret`;
//! see [`crate::policy::routing`]). Every change re-projects the organisation's KV record.

use super::step::{Answer, Step};
use crate::admin::audit::Change;
use crate::admin::membership::Standing;
use crate::admin::org::OrgState;
use crate::admin::permission::{check, Action, Target};
use crate::admin::work::Work;
use crate::credentials::{audit_change, check_name, CredentialInput, Slot, StoredCredential};
use crate::error::{ApiError, Code};
use crate::policy::{RoutingConfig, TargetUpstream};
use serde_json::json;

fn org_check(step: &Step, action: Action) -> Result<(), ApiError> {
    check(step.caller, action, Standing::default(), Target::Org).map_err(ApiError::from)
}

/// Writes the organisation's new state and queues its KV record.
fn save(step: &Step, state: &OrgState) -> Result<(), ApiError> {
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
    let keyring = step.config.keyring.ok_or_else(|| {
        ApiError::new(Code::CredentialsKeysMissing, "Stored credentials need the CREDENTIALS_KEYS secret.")
    })?;
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
