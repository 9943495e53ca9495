//! Turning core answers into `worker` responses.

use crate::error::ApiError;
use worker::{Headers, Response, Result};

/// The error envelope with its status, `content-type` and, on 429/503, `Retry-After`.
pub fn error_response(error: &ApiError) -> Result<Response> {
    let headers = Headers::new();
    headers.set("content-type", "application/json")?;
    if let Some(seconds) = error.retry_after_s {
        headers.set("retry-after", &seconds.to_string())?;
    }
    if let Some(methods) = &error.allow {
        headers.set("allow", methods)?;
    }
    Ok(Response::from_bytes(error.body().into_bytes())?.with_status(error.status).with_headers(headers))
}
