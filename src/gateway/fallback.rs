//! Forwarding a checked call to its routing group's targets, in order.
//!
//! For each target: its [`Destination`] (base URL and credential, from the call's
//! [`CredentialSource`]), the body (model renamed by the target's `model_map`, usage requested
//! on OpenAI streams; built once per target), the client's forwardable headers plus the
//! credential in the family's header, the query without any `key` parameter. A failure to build
//! or send, a credential that cannot be used, a 5xx or a 429 moves on to the next target; the
//! last target's answer is final. No credential or no target → 500; a request that got no
//! answer is mapped by [`upstream_errors::failed`] (an upstream 5xx, by the caller through the
//! same module).

use crate::error::{ApiError, Code};
use crate::gateway::forwarding::{credential_header, forwarded_query, forwarded_request_header};
use crate::gateway::ports::{Runtime, Upstream, UpstreamAnswer, UpstreamRequest};
use crate::gateway::request::{forward_body, RequestFacts};
use crate::gateway::route::Route;
use crate::gateway::upstream_credentials::{CredentialSource, Destination};
use crate::gateway::upstream_errors;
use crate::policy::Target;
use std::borrow::Cow;

/// A checked call, as the client sent it.
pub struct Call<'a> {
    pub route: &'a Route,
    pub facts: &'a RequestFacts,
    pub body: &'a [u8],
    pub query: Option<&'a str>,
    /// Lower-case names.
    pub client_headers: &'a [(String, String)],
    /// Where the targets' credentials come from.
    pub credentials: CredentialSource<'a>,
    pub timeout_ms: u64,
}

/// The first acceptable answer from `targets` (see the module doc), or the error of the last.
pub async fn forward<U: Upstream>(
    upstream: &U,
    runtime: &impl Runtime,
    call: &Call<'_>,
    targets: &[&Target],
) -> Result<UpstreamAnswer<U::Body>, ApiError> {
    let mut last_error = None;
    for (index, target) in targets.iter().enumerate() {
        let is_last = index + 1 == targets.len();
        match attempt(upstream, runtime, call, target).await {
            Ok(answer) if is_last || !retryable(answer.status) => return Ok(answer),
            Ok(answer) => {
                runtime.warn(&format!("upstream {target} answered {}; trying the next target", answer.status))
            }
            Err(error) => {
                runtime.warn(&format!("upstream {target}: {}", error.message));
                last_error = Some(error);
            }
        }
    }
    Err(last_error
        .unwrap_or_else(|| ApiError::new(Code::NoTarget, "The routing group has no target for this API family.")))
}

fn retryable(status: u16) -> bool {
    status == 429 || status >= 500
}

async fn attempt<U: Upstream>(
    upstream: &U,
    runtime: &impl Runtime,
    call: &Call<'_>,
    target: &Target,
) -> Result<UpstreamAnswer<U::Body>, ApiError> {
    let Destination { base_url, credential } = call.credentials.destination(target, upstream, runtime)?;
    let upstream_model = call.facts.model.as_deref().map(|model| target.upstream_model(model));
    let body = forward_body(call.route, call.facts, call.body, upstream_model)?;
    let path = upstream_model.map_or(call.route.upstream_path.as_str().into(), |m| call.route.upstream_path_for(m));
    let mut url = [base_url, path.as_ref()].concat();
    if let Some(query) = forwarded_query(call.query) {
        url.push('?');
        url.push_str(&query);
    }
    let (credential_name, credential_value) = credential_header(target.family, credential.expose());
    let mut headers: Vec<(&str, Cow<str>)> = call
        .client_headers
        .iter()
        .filter_map(|(name, value)| Some((name.as_str(), forwarded_request_header(name, value)?)))
        .collect();
    headers.push((credential_name, credential_value.as_str().into()));
    let request = UpstreamRequest {
        method: call.route.endpoint.method(),
        url,
        headers,
        body: &body,
        timeout_ms: call.timeout_ms,
    };
    upstream.send(&request).await.map_err(|failure| upstream_errors::failed(failure, call.timeout_ms))
}
