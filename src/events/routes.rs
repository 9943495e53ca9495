//! The webhook routes of the admin API (the caller has already been checked to be an Admin):
//!
//! - `POST   /admin/v1/webhooks`                   create an endpoint; the answer shows its secret once
//! - `GET    /admin/v1/webhooks`                   list endpoints (no secrets)
//! - `DELETE /admin/v1/webhooks/{id}`              delete an endpoint and its pending deliveries
//! - `GET    /admin/v1/webhooks/{id}/deliveries`   recent deliveries to it, newest first

use super::endpoint::is_endpoint_id;
use crate::error::{ApiError, Code};

/// Every webhook route starts with this.
pub const WEBHOOKS_PATH: &str = "/admin/v1/webhooks";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookRoute {
    Create,
    List,
    Delete { id: String },
    Deliveries { id: String },
}

/// The route of `method` on `path`: 404 for an unknown path (or a malformed id), 405 for a
/// known path with another method.
pub fn webhook_route(method: &str, path: &str) -> Result<WebhookRoute, ApiError> {
    let not_found = || ApiError::new(Code::NotFound, format!("No webhook route {path}."));
    let rest = path.strip_prefix(WEBHOOKS_PATH).ok_or_else(not_found)?;
    let segments: Vec<&str> = rest.strip_prefix('/').map_or_else(Vec::new, |r| r.split('/').collect());
    let (allowed, route) = match segments.as_slice() {
        [] if rest.is_empty() => match method {
            "POST" => ("POST", Some(WebhookRoute::Create)),
            "GET" => ("GET", Some(WebhookRoute::List)),
            _ => ("GET, POST", None),
        },
        [id] if is_endpoint_id(id) => {
            ("DELETE", (method == "DELETE").then(|| WebhookRoute::Delete { id: (*id).to_owned() }))
        }
        [id, "deliveries"] if is_endpoint_id(id) => {
            ("GET", (method == "GET").then(|| WebhookRoute::Deliveries { id: (*id).to_owned() }))
        }
        _ => return Err(not_found()),
    };
    route.ok_or_else(|| ApiError::method_not_allowed(&[allowed], format!("{path} accepts {allowed}.")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "wh_0123456789abcdef";

    #[test]
    fn routes() {
        assert_eq!(webhook_route("POST", "/admin/v1/webhooks").unwrap(), WebhookRoute::Create);
        assert_eq!(webhook_route("GET", "/admin/v1/webhooks").unwrap(), WebhookRoute::List);
        assert_eq!(
            webhook_route("DELETE", &format!("/admin/v1/webhooks/{ID}")).unwrap(),
            WebhookRoute::Delete { id: ID.into() }
        );
        assert_eq!(
            webhook_route("GET", &format!("/admin/v1/webhooks/{ID}/deliveries")).unwrap(),
            WebhookRoute::Deliveries { id: ID.into() }
        );
    }

    #[test]
    fn refusals() {
        assert_eq!(webhook_route("PUT", "/admin/v1/webhooks").unwrap_err().status(), 405);
        assert_eq!(webhook_route("GET", &format!("/admin/v1/webhooks/{ID}")).unwrap_err().status(), 405);
        for path in [
            "/admin/v1/webhooksx",
            "/admin/v1/webhooks/",
            "/admin/v1/webhooks/wh_nope",
            "/admin/v1/webhooks/x/deliveries",
            "/admin/v1/keys",
        ] {
            assert_eq!(webhook_route("GET", path).unwrap_err().status(), 404, "{path}");
        }
    }
}
