//! Reading a request body with a size cap: refused by its declared length before reading when
//! it has one, and by its real length after.

use crate::error::{ApiError, Code};
use worker::Request;

/// The body of `req`, or `too_large()` past `max` bytes.
pub async fn read_capped(req: &mut Request, max: usize, too_large: fn() -> ApiError) -> Result<Vec<u8>, ApiError> {
    let declared = req.headers().get("content-length").ok().flatten().and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > max) {
        return Err(too_large());
    }
    let body =
        req.bytes().await.map_err(|_| ApiError::new(Code::InvalidBody, "The request body could not be read."))?;
    if body.len() > max {
        return Err(too_large());
    }
    Ok(body)
}
