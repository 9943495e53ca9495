//! What the client gets when the upstream fails: the one mapping of upstream statuses and
//! failures to error answers, tagged by source. The request could not be sent → 500 (the
//! gateway's fault), the upstream could not be reached → 502, did not answer in time → 504,
//! answered a 5xx, or a 401/403 about the gateway's own credential → 502. Every other upstream
//! answer reaches the client as the upstream wrote it.

use crate::error::{ApiError, Code};
use crate::gateway::ports::UpstreamFailure;

/// The error the client gets instead of an upstream answer of `status`, if it must not see the
/// answer as is: a 5xx, or a 401/403 about the gateway's own upstream credential (its message
/// may quote that credential, and the client's key is not what is wrong).
pub fn withheld(status: u16) -> Option<ApiError> {
    (status >= 500 || status == 401 || status == 403).then(|| unusable(status))
}

/// 502 for an upstream answer of `status` the gateway cannot use (withheld, or a body it
/// must read and could not). Nothing is charged for it.
pub fn unusable(status: u16) -> ApiError {
    let message = match status {
        401 | 403 => format!(
            "The upstream refused the gateway's credential (status {status}); an operator must check the upstream credential. Nothing was charged."
        ),
        _ => format!("The upstream failed to answer (status {status}). Nothing was charged."),
    };
    ApiError::new(Code::UpstreamError, message)
}

/// The error for a request that got no upstream answer; `timeout_ms` is the time it was given.
pub fn failed(failure: UpstreamFailure, timeout_ms: u64) -> ApiError {
    match failure {
        UpstreamFailure::Unbuildable => {
            ApiError::new(Code::InternalError, "The gateway failed to build the upstream request.")
        }
        UpstreamFailure::Unreachable(reason) => {
            ApiError::new(Code::UpstreamUnreachable, format!("The upstream could not be reached: {reason}"))
        }
        UpstreamFailure::TimedOut => {
            ApiError::new(Code::UpstreamTimeout, format!("The upstream did not answer within {timeout_ms} ms."))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_5xx_and_credential_refusals_are_withheld() {
        for status in [500, 502, 503, 504, 401, 403] {
            assert_eq!(withheld(status).map(|e| e.code()), Some(Code::UpstreamError), "{status}");
        }
        for status in [200, 400, 404, 409, 413, 422, 429] {
            assert_eq!(withheld(status), None, "{status}");
        }
        assert!(withheld(403).unwrap().message.contains("credential"));
    }

    #[test]
    fn failures_are_tagged_by_source() {
        let code = |failure| failed(failure, 5).code();
        assert_eq!(code(UpstreamFailure::Unbuildable), Code::InternalError);
        assert_eq!(code(UpstreamFailure::Unreachable("dns".into())), Code::UpstreamUnreachable);
        assert_eq!(code(UpstreamFailure::TimedOut), Code::UpstreamTimeout);
    }
}
