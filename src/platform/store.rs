//! The platform's SQLite table: one row per organisation ever created (a deleted one keeps its
//! row, status `deleted`, so its id is never handed out again), as a JSON document; `rowid` gives
//! list order and cursor positions.

use super::directory::OrgEntry;
use crate::admin::query::Page;
use crate::admin::session::store::SessionStore;
use crate::admin::store::Listed;
use crate::error::{ApiError, Code};
use crate::naming::DEFAULT_ORG;
use crate::sql::{Sql, SqlError, SqlValue};
use serde::Deserialize;

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS orgs (id TEXT PRIMARY KEY, doc TEXT NOT NULL)";

pub struct PlatformStore {
    sql: Box<dyn Sql>,
}

#[derive(Deserialize)]
struct DocRow {
    pos: i64,
    doc: String,
}

fn failed(_: impl std::fmt::Display) -> ApiError {
    ApiError::new(Code::RegistryError, "The platform failed to read or write its storage.")
}

impl PlatformStore {
    pub fn open(sql: Box<dyn Sql>) -> Result<PlatformStore, SqlError> {
        sql.exec(SCHEMA, &[])?;
        SessionStore::create_tables(&*sql)?;
        Ok(PlatformStore { sql })
    }

    /// The operator's console sessions, in the same database.
    pub fn sessions(&self) -> SessionStore<'_> {
        SessionStore::new(&*self.sql)
    }

    fn docs(&self, query: &str, params: Vec<SqlValue>) -> Result<Vec<(i64, OrgEntry)>, ApiError> {
        let rows: Vec<DocRow> = crate::sql::rows(&*self.sql, query, &params).map_err(failed)?;
        rows.into_iter().map(|row| Ok((row.pos, serde_json::from_str(&row.doc).map_err(failed)?))).collect()
    }

    /// Lists the organisation a deployment from before organisations was ([`DEFAULT_ORG`]), once.
    pub fn ensure_default(&self, now_ms: u64) -> Result<(), ApiError> {
        let entry = serde_json::to_string(&OrgEntry::default_org(now_ms)).expect("entries serialize");
        self.sql
            .exec("INSERT OR IGNORE INTO orgs (id, doc) VALUES (?, ?)", &[DEFAULT_ORG.into(), entry.into()])
            .map(drop)
            .map_err(failed)
    }

    pub fn org(&self, id: &str) -> Result<Option<OrgEntry>, ApiError> {
        Ok(self.docs("SELECT rowid AS pos, doc FROM orgs WHERE id = ?", vec![id.into()])?.pop().map(|(_, e)| e))
    }

    /// Inserts or replaces an entry (its row keeps its list position).
    pub fn put(&self, entry: &OrgEntry) -> Result<(), ApiError> {
        let doc = serde_json::to_string(entry).expect("entries serialize");
        self.sql
            .exec(
                "INSERT INTO orgs (id, doc) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET doc = excluded.doc",
                &[entry.id.as_str().into(), doc.into()],
            )
            .map(drop)
            .map_err(failed)
    }

    /// A page of the directory, oldest first.
    pub fn list(&self, page: Page) -> Result<Listed<OrgEntry>, ApiError> {
        let mut params = Vec::new();
        let after = match page.after {
            Some(after) => {
                params.push(SqlValue::Integer(after));
                "WHERE rowid > ?"
            }
            None => "",
        };
        params.push(SqlValue::Integer(page.fetch() as i64));
        let rows = self.docs(&format!("SELECT rowid AS pos, doc FROM orgs {after} ORDER BY rowid LIMIT ?"), params)?;
        let (rows, next) = page.cut(rows, |(pos, _)| *pos);
        Ok((rows.into_iter().map(|(_, entry)| entry).collect(), next))
    }
}
