//! The session endpoints a registry answers (see [`crate::admin::session`] for the design):
//! sign-in, who-am-I, sign-out and sign-out everywhere, and the organisation's Access sign-in
//! settings. The worker sets and clears the cookie; the registry keeps the sessions.

use super::step::Answer;
use crate::admin::audit::Change;
use crate::admin::input::parse;
use crate::admin::membership::Standing;
use crate::admin::org::OrgState;
use crate::admin::permission::{check, Action, Target};
use crate::admin::role::Principal;
use crate::admin::route::Endpoint;
use crate::admin::secret::Random;
use crate::admin::session::store::Session;
use crate::admin::session::whoami::{signed_in, WhoAmI};
use crate::admin::session::{new_session_id, Credential};
use crate::admin::sso::AccessSettings;
use crate::admin::store::Store;
use crate::error::{ApiError, Code};
use serde_json::json;

/// Who calls, as the registry authenticated it: the principal and, for a call made with a
/// session, its id and state.
pub struct Authenticated<'a> {
    pub caller: Principal,
    pub credential: Credential<'a>,
    pub session: Option<Session>,
}

/// The answer to a session endpoint.
pub fn answer(
    store: &Store,
    org: &OrgState,
    endpoint: &Endpoint,
    who: &Authenticated,
    now_ms: u64,
    random: &mut dyn Random,
) -> Result<Answer, ApiError> {
    let session = match (who.credential, &who.session) {
        (Credential::Session(id), Some(session)) => Some((id, session)),
        _ => None,
    };
    let whoami = |session| {
        Ok::<_, ApiError>(WhoAmI::new(who.caller.clone(), &org.id, store.memberships_of(&who.caller.id)?, session))
    };
    match endpoint {
        Endpoint::CreateSession => {
            let via = match who.credential {
                Credential::Token(_) => "token",
                Credential::Email(_) => "access",
                Credential::Session(_) | Credential::Access(_) => {
                    return Err(ApiError::new(
                        Code::InvalidBody,
                        "Sign in with a token or a Cloudflare Access assertion.",
                    ))
                }
            };
            let id = new_session_id(&org.id, &mut |bytes: &mut [u8]| random.fill(bytes));
            let created = store.sessions().create(&id, &who.caller.id, now_ms)?;
            let change = Change::new("sessions.create", "session", &who.caller.id, None, Some(&json!({ "via": via })));
            store.audit(&change, &who.caller.id, now_ms)?;
            let me = whoami(Some((&id, &created)))?;
            Ok(Answer::created(&signed_in(&id, &created, &me)))
        }
        Endpoint::CurrentSession => Ok(Answer::ok(&whoami(session)?)),
        Endpoint::EndSession => {
            if let Some((id, _)) = session {
                store.sessions().revoke(id)?;
            }
            Ok(Answer::no_content())
        }
        Endpoint::EndSessions => {
            store.sessions().revoke_all(&who.caller.id)?;
            let change = Change::new("sessions.revoke_all", "session", &who.caller.id, None, None::<&()>);
            store.audit(&change, &who.caller.id, now_ms)?;
            Ok(Answer::no_content())
        }
        _ => Err(ApiError::new(Code::NotFound, "Not a session endpoint.")),
    }
}

/// `GET|PUT|DELETE /org/access`: the Access settings, part of the organisation's policy
/// (`org.policy.read` / `org.policy.write`).
pub fn access(
    store: &Store,
    endpoint: &Endpoint,
    caller: &Principal,
    body: &[u8],
    now_ms: u64,
) -> Result<Answer, ApiError> {
    let write = !matches!(endpoint, Endpoint::GetAccess);
    let action = if write { Action::OrgPolicyWrite } else { Action::OrgPolicyRead };
    check(caller, action, Standing::default(), Target::Org)?;
    let before = store.access_settings()?;
    let after = match endpoint {
        Endpoint::GetAccess => {
            let none = || ApiError::new(Code::NotFound, "This organisation has no Cloudflare Access sign-in.");
            return before.ok_or_else(none).map(|settings| Answer::ok(&settings));
        }
        Endpoint::PutAccess => {
            let settings: AccessSettings = parse(body)?;
            settings.check()?;
            Some(settings)
        }
        _ => None,
    };
    store.set_access_settings(after.as_ref())?;
    store.audit(
        &Change::new("org.access.write", "org_access", "org", before.as_ref(), after.as_ref()),
        &caller.id,
        now_ms,
    )?;
    Ok(after.map_or_else(Answer::no_content, |settings| Answer::ok(&settings)))
}
