//! Key records and the checks applied to every call.
//!
//! A key's rules ([`KeyRules`]) are one type with one validation, shared by the KV record and
//! the admin API.
//!
//! Flow: [`extract_key`] reads the team key from the family's header; the gateway looks its
//! record up and validates it into a [`KeyPolicy`]; [`authorize`] checks the call against it and
//! the organisation's [`RoutingConfig`] and returns where to send it, or a [`Denial`].
mod authorize;
mod budget_link;
mod credential;
mod denial;
pub mod end_user;
pub mod glob;
mod ip;
pub mod key_hash;
mod model_access;
mod org_record;
mod placement;
mod record;
mod routing;
pub mod rules;

pub use authorize::{authorize, authorize_key, client_ip, visible_models, CallFacts};
pub use budget_link::BudgetLink;
pub use credential::extract_key;
pub use denial::Denial;
pub use ip::IpAllowlist;
pub use model_access::ModelAccess;
pub use org_record::{Jurisdiction, OrgRecord, OrgStatus, ORG_RECORD_FORMAT};
pub use placement::LocationHint;
pub use record::{InvalidKeyRecord, KeyPolicy, KeyRecord, KeyStatus};
pub use routing::{
    deserialize_org_routing, CredentialHolder, Group, InvalidRoutingConfig, ResolvedRoute, RoutingConfig, Target,
    TargetUpstream,
};
pub use rules::{Admission, InvalidRule, KeyRules, RulesPatch};
