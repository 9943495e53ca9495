//! Turning core answers into `worker` responses, and the edge's failures into answers (the
//! detail logged, never answered).

use crate::error::ApiError;
use std::fmt::Display;
use worker::{Headers, Response, Result};

/// A failure of the edge's own: `detail` is logged under `context`, the client gets the
/// generic 500 [`ApiError::internal`].
pub fn internal(context: &str, detail: impl Display) -> ApiError {
    logged(ApiError::internal(), context, detail)
}

/// `answer`, after logging `detail` under `context` (for a dependency that cannot be reached
/// or a configuration that cannot be read: the answer says what, the log says why).
pub fn logged(answer: ApiError, context: &str, detail: impl Display) -> ApiError {
    worker::console_error!("{context}: {detail}");
    answer
}

/// The error envelope with its status, `content-type` and, on 429/503, `Retry-After`.
pub fn error_response(error: &ApiError) -> Result<Response> {
    let headers = Headers::new();
    headers.set("content-type", "application/json")?;
    if let Some(seconds) = error.retry_after_s() {
        headers.set("retry-after", &seconds.to_string())?;
    }
    if let Some(methods) = error.allow() {
        headers.set("allow", methods)?;
    }
    Ok(Response::from_bytes(error.body().into_bytes())?.with_status(error.status()).with_headers(headers))
}
