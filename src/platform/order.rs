//! What the platform tells an organisation's registry: one [`Order`] per operator change,
//! `POST` [`ORDER_PATH`] with the operator's token (`ADMIN_TOKEN`) as bearer. The registry
//! applies it in one step (audit entry and pending work included) and answers it like an
//! admin call; only [`Order::Open`] answers a body the platform passes on (the first Admin and
//! its token, shown once).

use crate::policy::Jurisdiction;
use crate::usage::Pricing;
use serde::{Deserialize, Serialize};

/// The registry path orders are sent to (never routed from outside: the worker forwards only
/// `/admin/v1/…` paths to registries).
pub const ORDER_PATH: &str = "/platform/order";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "order", rename_all = "snake_case")]
pub enum Order {
    /// Become organisation `org_id`'s registry, with a first Admin named `admin_name`. Refused
    /// by a registry that is already some organisation's.
    Open { org_id: String, jurisdiction: Option<Jurisdiction>, admin_name: String, platform_routing: bool },
    /// Refuse changes by its admins and calls of its keys.
    Suspend,
    /// Undo [`Order::Suspend`].
    Resume,
    /// The operator's settings.
    Settings { platform_routing: bool },
    /// The operator's price overrides for the organisation (`None`: the platform's prices only).
    Pricing { pricing: Option<Pricing> },
    /// Reseal every stored credential sealed under another master key than the primary one
    /// (the rotation of `CREDENTIALS_KEYS`, [`crate::credentials`]).
    ResealCredentials,
    /// Remove what the organisation holds (see the README); every later call is 401.
    Delete,
}
