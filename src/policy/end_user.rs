//! The end user of a call: a tenant's server that calls through one key on behalf of its own
//! users names the user in the [`END_USER_HEADER`] request header, and a key with end-user
//! limits counts each end user in a ledger of its own ([`crate::limits::ScopeLedgers`]).
//!
//! The value is an id of the tenant's choosing, 1 to [`MAX_END_USER_BYTES`] printable ASCII
//! characters without spaces (`0x21..=0x7e`), compared exactly. It is required on a key with
//! end-user limits (400 `missing_end_user`), checked whenever it is sent (400
//! `invalid_end_user`), and never forwarded upstream (every `x-teamkeys-` header stays behind:
//! [`crate::gateway::forwarding`]).

use crate::error::{ApiError, Code};

/// The request header naming the end user.
pub const END_USER_HEADER: &str = "x-teamkeys-end-user";

/// The longest end-user id, in bytes.
pub const MAX_END_USER_BYTES: usize = 128;

/// The end user a request names (`value`: its [`END_USER_HEADER`], if sent), or 400
/// `invalid_end_user` for a value that is not a valid id (surrounding spaces are trimmed first).
pub fn end_user(value: Option<&str>) -> Result<Option<&str>, ApiError> {
    let Some(value) = value.map(str::trim) else { return Ok(None) };
    let valid = !value.is_empty() && value.len() <= MAX_END_USER_BYTES && value.bytes().all(|b| b.is_ascii_graphic());
    if !valid {
        return Err(ApiError::new(
            Code::InvalidEndUser,
            format!(
                "The '{END_USER_HEADER}' header must be 1 to {MAX_END_USER_BYTES} printable ASCII characters \
                 without spaces."
            ),
        ));
    }
    Ok(Some(value))
}

/// 400 `missing_end_user`: the key has end-user limits and the call names no end user.
pub fn missing_end_user() -> ApiError {
    ApiError::new(
        Code::MissingEndUser,
        format!(
            "This key has per-end-user limits: send the end user's id in the '{END_USER_HEADER}' header \
             (1 to {MAX_END_USER_BYTES} printable ASCII characters)."
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_user_ids_are_checked() {
        assert_eq!(end_user(None), Ok(None));
        assert_eq!(end_user(Some(" user-42@acme.example ")), Ok(Some("user-42@acme.example")));
        let longest = "u".repeat(MAX_END_USER_BYTES);
        assert_eq!(end_user(Some(&longest)), Ok(Some(longest.as_str())));
        for bad in ["", "  ", "two words", "tab\there", "é", &"u".repeat(MAX_END_USER_BYTES + 1)] {
            assert_eq!(end_user(Some(bad)).unwrap_err().code(), Code::InvalidEndUser, "{bad:?}");
        }
        assert_eq!(missing_end_user().status(), 400);
    }
}
