//! Sessions as a registry (or the platform object) keeps them: one row per session, keyed by the
//! SHA-256 of its id (the id itself is never stored), with the principal, the sign-in time, the
//! last use and the absolute expiry. Every method is synchronous, like the registry's store.

use super::{ABSOLUTE_MS, IDLE_MS};
use crate::error::{ApiError, Code};
use crate::policy::key_hash::sha256_hex;
use crate::sql::{int, Sql, SqlError, SqlValue};
use serde::{Deserialize, Serialize};

/// A principal's sessions beyond this many: the oldest is revoked at the next sign-in.
pub const MAX_SESSIONS_PER_PRINCIPAL: u64 = 20;

const SCHEMA: [&str; 2] = [
    "CREATE TABLE IF NOT EXISTS sessions (hash TEXT PRIMARY KEY, principal TEXT NOT NULL, created_at INTEGER NOT NULL, last_seen INTEGER NOT NULL, expires_at INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS sessions_by_principal ON sessions (principal, created_at)",
];

/// A live session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub principal: String,
    pub created_at: u64,
    /// When it ends whatever its use (sign-in + [`ABSOLUTE_MS`]).
    pub expires_at: u64,
    /// When it ends unless used before (last use + [`IDLE_MS`], never past `expires_at`).
    pub idle_expires_at: u64,
}

#[derive(Deserialize)]
struct Row {
    principal: String,
    created_at: u64,
    last_seen: u64,
    expires_at: u64,
}

impl Row {
    fn session(self) -> Session {
        let idle_expires_at = (self.last_seen + IDLE_MS).min(self.expires_at);
        Session { principal: self.principal, created_at: self.created_at, expires_at: self.expires_at, idle_expires_at }
    }
}

pub struct SessionStore<'a> {
    sql: &'a dyn Sql,
}

fn failed(_: impl std::fmt::Display) -> ApiError {
    ApiError::new(Code::RegistryError, "The session store failed to read or write its storage.")
}

impl<'a> SessionStore<'a> {
    /// Creates the table if missing (once per object start).
    pub fn create_tables(sql: &dyn Sql) -> Result<(), SqlError> {
        SCHEMA.iter().try_for_each(|statement| sql.exec(statement, &[]).map(drop))
    }

    pub fn new(sql: &'a dyn Sql) -> SessionStore<'a> {
        SessionStore { sql }
    }

    fn exec(&self, statement: &str, params: Vec<SqlValue>) -> Result<Vec<crate::sql::Row>, ApiError> {
        self.sql.exec(statement, &params).map_err(failed)
    }

    /// Stores session `id` of `principal`, signed in at `now_ms`; first drops the principal's
    /// ended sessions and, past [`MAX_SESSIONS_PER_PRINCIPAL`], its oldest.
    pub fn create(&self, id: &str, principal: &str, now_ms: u64) -> Result<Session, ApiError> {
        self.exec(
            "DELETE FROM sessions WHERE principal = ? AND (expires_at <= ? OR last_seen <= ?)",
            vec![principal.into(), int(now_ms), int(now_ms.saturating_sub(IDLE_MS))],
        )?;
        self.exec(
            "DELETE FROM sessions WHERE hash IN (SELECT hash FROM sessions WHERE principal = ? ORDER BY created_at DESC, rowid DESC LIMIT -1 OFFSET ?)",
            vec![principal.into(), int(MAX_SESSIONS_PER_PRINCIPAL - 1)],
        )?;
        let expires_at = now_ms + ABSOLUTE_MS;
        self.exec(
            "INSERT INTO sessions (hash, principal, created_at, last_seen, expires_at) VALUES (?, ?, ?, ?, ?)",
            vec![sha256_hex(id).into(), principal.into(), int(now_ms), int(now_ms), int(expires_at)],
        )?;
        Ok(Row { principal: principal.to_owned(), created_at: now_ms, last_seen: now_ms, expires_at }.session())
    }

    /// The live session `id`, its idle expiry slid to `now_ms` + [`IDLE_MS`]; an ended one is
    /// deleted and answered 401 `session_expired`, like an unknown one.
    pub fn touch(&self, id: &str, now_ms: u64) -> Result<Session, ApiError> {
        let hash = sha256_hex(id);
        let rows = self.exec(
            "SELECT principal, created_at, last_seen, expires_at FROM sessions WHERE hash = ?",
            vec![hash.as_str().into()],
        )?;
        let row = rows.into_iter().next().map(|row| serde_json::from_value::<Row>(row.into()).map_err(failed));
        match row.transpose()? {
            Some(row) if now_ms < row.expires_at && now_ms < row.last_seen + IDLE_MS => {
                self.exec("UPDATE sessions SET last_seen = ? WHERE hash = ?", vec![int(now_ms), hash.into()])?;
                Ok(Row { last_seen: now_ms, ..row }.session())
            }
            Some(_) => {
                self.exec("DELETE FROM sessions WHERE hash = ?", vec![hash.into()])?;
                Err(expired())
            }
            None => Err(expired()),
        }
    }

    /// Revokes session `id` (nothing if it is unknown).
    pub fn revoke(&self, id: &str) -> Result<(), ApiError> {
        self.exec("DELETE FROM sessions WHERE hash = ?", vec![sha256_hex(id).into()]).map(drop)
    }

    /// Revokes every session of `principal`.
    pub fn revoke_all(&self, principal: &str) -> Result<(), ApiError> {
        self.exec("DELETE FROM sessions WHERE principal = ?", vec![principal.into()]).map(drop)
    }
}

/// 401 `session_expired`.
pub fn expired() -> ApiError {
    ApiError::new(Code::SessionExpired, "This console session has ended; sign in again.")
}
