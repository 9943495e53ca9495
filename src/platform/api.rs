//! The platform's use-cases: the operator's endpoints over the directory ([`PlatformStore`]) and
//! the organisations' registries ([`Registries`]). See [`crate::platform`] for the flow.

use super::directory::{NewOrg, OrgEntry, OrgPatch, PlatformStatus};
use super::order::Order;
use super::org_id::new_org_id;
use super::route::{classify, OperatorEndpoint};
use super::store::PlatformStore;
use crate::admin::api::step::Answer;
use crate::admin::api::{is_operator, Call};
use crate::admin::input::parse;
use crate::admin::query::Query;
use crate::admin::role::OPERATOR_ID;
use crate::admin::route::{classify as admin_classify, Endpoint, SESSIONS_PATH};
use crate::admin::secret::Random;
use crate::admin::session::store::Session;
use crate::admin::session::whoami::{signed_in, WhoAmI};
use crate::admin::session::{new_session_id, Credential, OPERATOR_SCOPE};
use crate::error::{ApiError, Code};
use crate::naming::registry_object;
use serde_json::json;

/// The organisations' registry objects, as the platform reaches them.
#[allow(async_fn_in_trait)]
pub trait Registries {
    /// The answer of `org`'s registry (created in its jurisdiction, with its location hint) to
    /// `order`; a refusal of the registry is its error, an unreachable registry 503
    /// `registry_unavailable`.
    async fn order(&self, org: &OrgEntry, order: &Order) -> Result<Answer, ApiError>;
}

pub struct Platform {
    store: PlatformStore,
}

impl Platform {
    pub fn new(store: PlatformStore) -> Platform {
        Platform { store }
    }

    /// Answers an operator call: its credential must be `ADMIN_TOKEN` or one of the operator's
    /// sessions (else 401); the session endpoints (`/admin/v1/sessions…`) are the operator's
    /// sign-in, who-am-I and sign-outs.
    pub async fn serve(
        &self,
        call: &Call<'_>,
        admin_token: Option<&str>,
        registries: &impl Registries,
        now_ms: u64,
        random: &mut dyn Random,
    ) -> Result<Answer, ApiError> {
        let session = match call.credential {
            Credential::Token(token) if is_operator(token, admin_token) => None,
            Credential::Session(id) => Some((id, self.store.sessions().touch(id, now_ms)?)),
            _ => return Err(ApiError::new(Code::InvalidAdminToken, "Unknown admin token.")),
        };
        if call.path.starts_with(SESSIONS_PATH) {
            return self.session(call, session, now_ms, random);
        }
        self.store.ensure_default(now_ms)?;
        use OperatorEndpoint::*;
        match classify(call.method, call.path)? {
            CreateOrg => self.create(call.body, registries, now_ms, random).await,
            ListOrgs => {
                let query = Query::parse(call.query, &["limit", "cursor"])?;
                Ok(Answer::list(self.store.list(query.page()?)?))
            }
            GetOrg(id) => Ok(Answer::ok(&self.entry(&id)?)),
            UpdateOrg(id) => self.update(&id, call.body, registries).await,
            SuspendOrg(id) => self.set_status(&id, PlatformStatus::Suspended, Order::Suspend, registries).await,
            ResumeOrg(id) => self.set_status(&id, PlatformStatus::Active, Order::Resume, registries).await,
            DeleteOrg(id) => self.set_status(&id, PlatformStatus::Deleted, Order::Delete, registries).await,
        }
    }

    /// The operator's session endpoints.
    fn session(
        &self,
        call: &Call<'_>,
        session: Option<(&str, Session)>,
        now_ms: u64,
        random: &mut dyn Random,
    ) -> Result<Answer, ApiError> {
        let current = session.as_ref().map(|(id, session)| (*id, session));
        match admin_classify(call.method, call.path)? {
            Endpoint::CreateSession if session.is_none() => {
                let id = new_session_id(OPERATOR_SCOPE, &mut |bytes: &mut [u8]| random.fill(bytes));
                let created = self.store.sessions().create(&id, OPERATOR_ID, now_ms)?;
                let me = WhoAmI::operator(Some((&id, &created)));
                Ok(Answer::created(&signed_in(&id, &created, &me)))
            }
            Endpoint::CreateSession => Err(ApiError::new(Code::InvalidBody, "Sign in with a token.")),
            Endpoint::CurrentSession => Ok(Answer::ok(&WhoAmI::operator(current))),
            Endpoint::EndSession => {
                if let Some((id, _)) = current {
                    self.store.sessions().revoke(id)?;
                }
                Ok(Answer::no_content())
            }
            Endpoint::EndSessions => self.store.sessions().revoke_all(OPERATOR_ID).map(|()| Answer::no_content()),
            _ => Err(ApiError::new(Code::NotFound, "No such admin endpoint; see /admin/v1/openapi.json.")),
        }
    }

    fn entry(&self, id: &str) -> Result<OrgEntry, ApiError> {
        self.store.org(id)?.ok_or_else(|| ApiError::new(Code::NotFound, format!("There is no organisation '{id}'.")))
    }

    /// An entry that is not deleted (a deleted one is answered like a missing one).
    fn live_entry(&self, id: &str) -> Result<OrgEntry, ApiError> {
        let entry = self.entry(id)?;
        match entry.status {
            PlatformStatus::Deleted => Err(ApiError::new(Code::NotFound, format!("There is no organisation '{id}'."))),
            _ => Ok(entry),
        }
    }

    async fn create(
        &self,
        body: &[u8],
        registries: &impl Registries,
        now_ms: u64,
        random: &mut dyn Random,
    ) -> Result<Answer, ApiError> {
        let new: NewOrg = parse(body)?;
        let jurisdiction = new.check()?;
        let id = new_org_id(jurisdiction, &mut |bytes: &mut [u8]| random.fill(bytes));
        let entry = OrgEntry {
            registry: registry_object(&id),
            id,
            name: new.name,
            status: PlatformStatus::Active,
            jurisdiction,
            location_hint: new.location_hint,
            platform_routing: new.platform_routing.unwrap_or(true),
            created_at: now_ms,
        };
        let open = Order::Open {
            org_id: entry.id.clone(),
            jurisdiction,
            admin_name: new.admin.name,
            platform_routing: entry.platform_routing,
        };
        let admin = registries.order(&entry, &open).await?;
        self.store.put(&entry)?;
        Ok(Answer::created(&json!({ "org": entry, "admin": admin.body })))
    }

    async fn update(&self, id: &str, body: &[u8], registries: &impl Registries) -> Result<Answer, ApiError> {
        let mut entry = self.live_entry(id)?;
        let patch: OrgPatch = parse(body)?;
        patch.check()?;
        if let Some(platform_routing) = patch.platform_routing.filter(|&p| p != entry.platform_routing) {
            registries.order(&entry, &Order::Settings { platform_routing }).await?;
            entry.platform_routing = platform_routing;
        }
        if let Some(name) = patch.name {
            entry.name = name;
        }
        self.store.put(&entry)?;
        Ok(Answer::ok(&entry))
    }

    async fn set_status(
        &self,
        id: &str,
        status: PlatformStatus,
        order: Order,
        registries: &impl Registries,
    ) -> Result<Answer, ApiError> {
        let mut entry = self.live_entry(id)?;
        registries.order(&entry, &order).await?;
        entry.status = status;
        self.store.put(&entry)?;
        Ok(Answer::ok(&entry))
    }
}
