//! One attempt at one delivery: a signed `POST` of the event body, redirects not followed,
//! at most [`TIMEOUT_MS`] for the answer's headers.

use crate::events::{signature, Attempt, ID_HEADER, SIGNATURE_HEADER};
use futures_util::future::{select, Either};
use std::time::Duration;
use worker::{AbortController, Delay, Fetch, Headers, Method, Request, RequestInit, RequestRedirect};

/// How long a receiver has to answer.
const TIMEOUT_MS: u64 = 10_000;

/// What to send where.
pub struct Outgoing<'a> {
    pub url: &'a str,
    pub secret: &'a str,
    pub event_id: &'a str,
    pub body: &'a str,
}

/// Sends `outgoing` signed at `now_s` (Unix seconds); the receiver's status, or why none came.
pub async fn send(outgoing: &Outgoing<'_>, now_s: u64) -> Attempt {
    match try_send(outgoing, now_s).await {
        Ok(attempt) => attempt,
        Err(e) => Attempt::Failed(e.to_string()),
    }
}

async fn try_send(outgoing: &Outgoing<'_>, now_s: u64) -> worker::Result<Attempt> {
    let headers = Headers::new();
    headers.set("content-type", "application/json")?;
    headers.set("user-agent", "teamkeys-webhooks/1")?;
    headers.set(ID_HEADER, outgoing.event_id)?;
    headers.set(SIGNATURE_HEADER, &signature(outgoing.secret, now_s, outgoing.body))?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_redirect(RequestRedirect::Manual)
        .with_body(Some(outgoing.body.into()));
    let request = Request::new_with_init(outgoing.url, &init)?;
    let controller = AbortController::default();
    let signal = controller.signal();
    let fetch = Fetch::Request(request);
    let send = std::pin::pin!(fetch.send_with_signal(&signal));
    let timeout = std::pin::pin!(Delay::from(Duration::from_millis(TIMEOUT_MS)));
    Ok(match select(send, timeout).await {
        Either::Left((Ok(response), _)) => Attempt::Answered(response.status_code()),
        Either::Left((Err(e), _)) => Attempt::Failed(format!("no answer: {e}")),
        Either::Right(_) => {
            controller.abort();
            Attempt::Failed(format!("no answer within {TIMEOUT_MS} ms"))
        }
    })
}
