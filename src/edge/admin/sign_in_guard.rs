//! `SignInGuard`, the Durable Object that counts one client address's failed sign-ins (one per
//! address, [`guard_name`]; the only writer of its counter) with the pure
//! [`SignInWindow`], and the worker's client of it.

use super::unavailable;
use crate::admin::session::throttle::{guard_name, SignInWindow};
use crate::edge::objects::stub;
use crate::edge::respond::{error_response, internal};
use crate::error::ApiError;
use std::cell::RefCell;
use worker::{
    durable_object, Date, DurableObject, Env, Method, Request, RequestInit, Response, Result, SqlStorage, State, Stub,
};

#[durable_object]
pub struct SignInGuard {
    sql: SqlStorage,
    window: RefCell<Option<SignInWindow>>,
}

#[derive(serde::Deserialize)]
struct WindowRow {
    json: String,
}

impl DurableObject for SignInGuard {
    fn new(state: State, _env: Env) -> Self {
        let sql = state.storage().sql();
        sql.exec("CREATE TABLE IF NOT EXISTS window (id INTEGER PRIMARY KEY CHECK (id = 1), json TEXT NOT NULL)", None)
            .expect("create the sign-in window table");
        SignInGuard { sql, window: RefCell::new(None) }
    }

    /// `POST /reserve`: 204, or the 429; `POST /release`: 204. One synchronous step each.
    async fn fetch(&self, req: Request) -> Result<Response> {
        let now_ms = Date::now().as_millis();
        let mut slot = self.window.borrow_mut();
        let window = match slot.as_mut() {
            Some(window) => window,
            None => slot.insert(self.load()?),
        };
        let before = *window;
        let reserved = match req.path().as_str() {
            "/reserve" => window.reserve(now_ms),
            _ => {
                window.release(now_ms);
                Ok(())
            }
        };
        if *window != before {
            let json = serde_json::to_string(&*window).map_err(|e| worker::Error::RustError(e.to_string()))?;
            if let Err(e) = self.sql.exec("INSERT OR REPLACE INTO window (id, json) VALUES (1, ?)", vec![json.into()]) {
                *slot = None;
                return Err(e);
            }
        }
        match reserved {
            Ok(()) => Ok(Response::empty()?.with_status(204)),
            Err(refusal) => error_response(&refusal),
        }
    }
}

impl SignInGuard {
    fn load(&self) -> Result<SignInWindow> {
        let rows: Vec<WindowRow> = self.sql.exec("SELECT json FROM window WHERE id = 1", None)?.to_array()?;
        match rows.first() {
            Some(row) => serde_json::from_str(&row.json).map_err(|e| worker::Error::RustError(e.to_string())),
            None => Ok(SignInWindow::default()),
        }
    }
}

/// A client address's guard, as the worker reaches it.
pub struct Guard(Stub);

impl Guard {
    pub fn of(env: &Env, client_ip: Option<&str>) -> std::result::Result<Guard, ApiError> {
        stub(env, "SIGNIN_GUARD", &guard_name(client_ip), None, None).map(Guard).map_err(unavailable)
    }

    async fn post(&self, path: &str) -> std::result::Result<Response, ApiError> {
        let mut init = RequestInit::new();
        init.with_method(Method::Post);
        let request =
            Request::new_with_init(&format!("https://guard{path}"), &init).map_err(|e| internal("guard", e))?;
        self.0.fetch_with_request(request).await.map_err(unavailable)
    }

    /// Reserves one failed sign-in; the guard's 429 as an error (fail closed: an unreachable
    /// guard is 503).
    pub async fn reserve(&self) -> std::result::Result<(), ApiError> {
        let mut answer = self.post("/reserve").await?;
        if answer.status_code() == 204 {
            return Ok(());
        }
        let body: serde_json::Value = answer.json().await.map_err(unavailable)?;
        let refusal: ApiError = serde_json::from_value(body["error"].clone()).map_err(|e| internal("guard", e))?;
        let retry = answer.headers().get("retry-after").ok().flatten().and_then(|s| s.parse().ok()).unwrap_or(60);
        Err(refusal.with_retry_after(retry))
    }

    /// Gives the reservation back (a failure here only leaves it counted: logged).
    pub async fn release(&self) {
        if let Err(e) = self.post("/release").await {
            worker::console_error!("sign-in guard release: {}", e.message);
        }
    }
}
