//! The pipeline's view of the client's request and of its answer; the edge converts both from
//! and to the platform's types.

use crate::error::ApiError;
use crate::gateway::metered_body::MeteredBody;
use crate::gateway::ports::header;

/// The client's request: what the pipeline reads of it.
pub struct ClientRequest<B> {
    pub method: String,
    pub path: String,
    /// Without the `?`.
    pub query: Option<String>,
    /// Lower-case names, one entry per name.
    pub headers: Vec<(String, String)>,
    /// Read only once the key is known ([`RequestBody`](super::ports::RequestBody)).
    pub body: B,
}

impl<B> ClientRequest<B> {
    /// The value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
}

/// The answer to send the client (errors are [`ApiError`]s).
pub struct Answer<B> {
    pub status: u16,
    /// Names are unique.
    pub headers: Vec<(String, String)>,
    pub body: AnswerBody<B>,
}

pub enum AnswerBody<B> {
    /// A whole body: a held or ledger refusal, a filtered model list.
    Bytes(Vec<u8>),
    /// The upstream's body, streamed through as it arrives.
    Streamed(MeteredBody<B>),
}

impl<B> Answer<B> {
    /// A refusal of the key's ledger: its status, `Retry-After` and JSON envelope.
    pub fn refusal(error: &ApiError) -> Answer<B> {
        let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
        if let Some(seconds) = error.retry_after_s() {
            headers.push(("retry-after".to_owned(), seconds.to_string()));
        }
        Answer { status: error.status(), headers, body: AnswerBody::Bytes(error.body().into_bytes()) }
    }
}
