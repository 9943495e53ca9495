//! The registry's SQLite tables and every statement run on them, over the [`Sql`] port. Each
//! method is synchronous; a handler calls several without awaiting in between, so they form one
//! atomic step (the Durable Object runs them so; the host tests run them on SQLite alike).
//!
//! Resources are stored as JSON documents (`doc`) with the columns lists filter and order on
//! beside them; `rowid` gives list order and cursor positions. Secrets appear only as SHA-256
//! hashes (`principals.token_hash`, `previous_tokens.hash`, `key_secrets.hash`) or sealed
//! (`idempotency.sealed`, [`crate::admin::idempotency`]).

use crate::admin::audit::{AuditEntry, Change};
use crate::admin::boundary::Boundary;
use crate::admin::idempotency::KeptEntry;
use crate::admin::key::Key;
use crate::admin::lifecycle::{Secret, SecretState, Status};
use crate::admin::membership::{Memberships, ProjectRole};
use crate::admin::org::OrgState;
use crate::admin::permission::Scope;
use crate::admin::principal::{Membership, PrincipalDoc};
use crate::admin::project::{Member, Project};
use crate::admin::query::Page;
use crate::admin::session::store::SessionStore;
use crate::admin::sso::AccessSettings;
use crate::admin::work::Work;
use crate::error::{ApiError, Code};
use crate::sql::{int, placeholders, Row, Sql, SqlError, SqlValue};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS org (id INTEGER PRIMARY KEY CHECK (id = 1), policy TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS principals (id TEXT PRIMARY KEY, token_hash TEXT NOT NULL UNIQUE, doc TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS projects (id TEXT PRIMARY KEY, doc TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS memberships (project TEXT NOT NULL, principal TEXT NOT NULL, role TEXT NOT NULL, PRIMARY KEY (project, principal))",
    "CREATE TABLE IF NOT EXISTS keys (id TEXT PRIMARY KEY, project TEXT NOT NULL, creator TEXT NOT NULL, status TEXT NOT NULL, doc TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS keys_by_project ON keys (project)",
    "CREATE TABLE IF NOT EXISTS key_secrets (hash TEXT PRIMARY KEY, key_id TEXT NOT NULL, version INTEGER NOT NULL, valid_until INTEGER)",
    "CREATE INDEX IF NOT EXISTS key_secrets_by_key ON key_secrets (key_id)",
    "CREATE TABLE IF NOT EXISTS audit (id INTEGER PRIMARY KEY AUTOINCREMENT, doc TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS pending_work (id INTEGER PRIMARY KEY AUTOINCREMENT, lane TEXT NOT NULL, work TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, not_before INTEGER NOT NULL DEFAULT 0, last_error TEXT)",
    "CREATE INDEX IF NOT EXISTS pending_work_by_lane ON pending_work (lane, id)",
    "CREATE TABLE IF NOT EXISTS policy_versions (key_id TEXT PRIMARY KEY, version INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS previous_tokens (hash TEXT PRIMARY KEY, principal TEXT NOT NULL, valid_until INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS previous_tokens_by_end ON previous_tokens (valid_until)",
    "CREATE TABLE IF NOT EXISTS idempotency (id TEXT PRIMARY KEY, request_hash TEXT NOT NULL, sealed TEXT NOT NULL, expires_at INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS idempotency_by_expiry ON idempotency (expires_at)",
    "CREATE TABLE IF NOT EXISTS org_state (id INTEGER PRIMARY KEY CHECK (id = 1), doc TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS access_sso (id INTEGER PRIMARY KEY CHECK (id = 1), doc TEXT NOT NULL)",
];

/// The tables a deleted organisation's registry empties once its other work is done (the
/// pending work and the organisation's own state, marked deleted, stay).
const PURGED_TABLES: [&str; 13] = [
    "org",
    "principals",
    "projects",
    "memberships",
    "keys",
    "key_secrets",
    "audit",
    "policy_versions",
    "outbox_pending",
    "previous_tokens",
    "idempotency",
    "sessions",
    "access_sso",
];

pub struct Store {
    sql: Box<dyn Sql>,
}

/// A page of a list and the cursor to the next page, if more follow.
pub type Listed<T> = (Vec<T>, Option<String>);

/// A JSON document and its list position.
#[derive(Deserialize)]
struct DocRow {
    pos: i64,
    doc: String,
}

/// A row of pending work.
#[derive(Debug, Deserialize)]
pub struct WorkRow {
    pub id: i64,
    pub lane: String,
    pub work: String,
    pub attempts: i64,
}

/// The filters of the key list.
#[derive(Debug, Default)]
pub struct KeyFilter<'a> {
    pub project: Option<&'a str>,
    pub creator: Option<&'a str>,
    pub tag: Option<&'a str>,
    /// `None`: every status but `deleted`.
    pub status: Option<&'a str>,
}

/// A selected id (text or integer) as a parameter again.
fn json_value(value: Value) -> SqlValue {
    match value {
        Value::String(text) => SqlValue::Text(text),
        Value::Number(n) => n.as_i64().map_or(SqlValue::Null, SqlValue::Integer),
        _ => SqlValue::Null,
    }
}

fn to_json(value: &impl Serialize) -> String {
    serde_json::to_string(value).expect("registry documents serialize")
}

/// A storage failure: 500 `registry_error` (the edge's [`Sql`] logs what failed).
fn failed(_: impl std::fmt::Display) -> ApiError {
    ApiError::new(Code::RegistryError, "The registry failed to read or write its storage.")
}

impl Store {
    /// The store, its tables created if missing.
    pub fn open(sql: Box<dyn Sql>) -> Result<Store, SqlError> {
        for statement in SCHEMA {
            sql.exec(statement, &[])?;
        }
        SessionStore::create_tables(&*sql)?;
        Ok(Store { sql })
    }

    /// The console sessions of the organisation, in the same database.
    pub fn sessions(&self) -> SessionStore<'_> {
        SessionStore::new(&*self.sql)
    }

    /// The organisation's Cloudflare Access sign-in settings, if its Admin set them.
    pub fn access_settings(&self) -> Result<Option<AccessSettings>, ApiError> {
        let rows = self.exec("SELECT doc FROM access_sso WHERE id = 1", vec![])?;
        let doc = rows.into_iter().next().and_then(|mut row| row.remove("doc"));
        doc.and_then(|doc| doc.as_str().map(|doc| serde_json::from_str(doc).map_err(failed))).transpose()
    }

    /// Sets (or, with `None`, removes) the Access sign-in settings.
    pub fn set_access_settings(&self, settings: Option<&AccessSettings>) -> Result<(), ApiError> {
        match settings {
            Some(settings) => self.exec(
                "INSERT INTO access_sso (id, doc) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET doc = excluded.doc",
                vec![to_json(settings).into()],
            ),
            None => self.exec("DELETE FROM access_sso", vec![]),
        }
        .map(drop)
    }

    fn exec(&self, query: &str, params: Vec<SqlValue>) -> Result<Vec<Row>, ApiError> {
        self.sql.exec(query, &params).map_err(failed)
    }

    fn rows<T: DeserializeOwned>(&self, query: &str, params: Vec<SqlValue>) -> Result<Vec<T>, ApiError> {
        crate::sql::rows(&*self.sql, query, &params).map_err(failed)
    }

    /// The documents of a query selecting `pos, doc`.
    fn docs<T: DeserializeOwned>(&self, query: &str, params: Vec<SqlValue>) -> Result<Vec<(i64, T)>, ApiError> {
        let rows: Vec<DocRow> = self.rows(query, params)?;
        rows.into_iter().map(|row| Ok((row.pos, serde_json::from_str(&row.doc).map_err(failed)?))).collect()
    }

    fn doc<T: DeserializeOwned>(&self, query: &str, params: Vec<SqlValue>) -> Result<Option<T>, ApiError> {
        Ok(self.docs(query, params)?.into_iter().next().map(|(_, doc)| doc))
    }

    /// A page of a list: `query` selects `pos, doc` with `{after}` where the cursor condition
    /// goes (`AND pos > ?` unless `descending`) and `{order}`; the page's limit is appended.
    fn page<T: DeserializeOwned>(
        &self,
        query: &str,
        mut params: Vec<SqlValue>,
        page: Page,
        descending: bool,
    ) -> Result<Listed<(i64, T)>, ApiError> {
        let after = match (page.after, descending) {
            (None, _) => "",
            (Some(_), false) => "AND pos > ?",
            (Some(_), true) => "AND pos < ?",
        };
        params.extend(page.after.map(SqlValue::Integer));
        params.push(SqlValue::Integer(page.fetch() as i64));
        let order = if descending { "ORDER BY pos DESC" } else { "ORDER BY pos" };
        let query = query.replace("{after}", after).replace("{order}", order) + " LIMIT ?";
        Ok(page.cut(self.docs(&query, params)?, |(pos, _)| *pos))
    }

    /// [`Store::page`] without the positions.
    fn page_of_docs<T: DeserializeOwned>(
        &self,
        query: &str,
        params: Vec<SqlValue>,
        page: Page,
    ) -> Result<Listed<T>, ApiError> {
        let (rows, next) = self.page(query, params, page, false)?;
        Ok((rows.into_iter().map(|(_, doc)| doc).collect(), next))
    }

    /// `AND (<project> IN (…) OR (<creator> = ? AND <project> IN (…)))` for a scope that is not
    /// everything, with its values; nothing for one that is.
    fn scope_condition(scope: &Scope, caller: &str, project: &str, creator: Option<&str>) -> (String, Vec<SqlValue>) {
        if scope.all {
            return (String::new(), Vec::new());
        }
        let values = |ids: &[String]| ids.iter().map(|id| SqlValue::from(id.as_str())).collect::<Vec<_>>();
        let mut params = values(&scope.projects);
        let mut condition = format!("AND ({project} IN ({})", placeholders(scope.projects.len()));
        if let Some(creator) = creator {
            condition += &format!(" OR ({creator} = ? AND {project} IN ({}))", placeholders(scope.created_in.len()));
            params.push(caller.into());
            params.extend(values(&scope.created_in));
        }
        condition.push(')');
        (condition, params)
    }

    // Organisation policy.

    pub fn org_policy(&self) -> Result<Boundary, ApiError> {
        #[derive(Deserialize)]
        struct Row {
            policy: String,
        }
        let rows: Vec<Row> = self.rows("SELECT policy FROM org WHERE id = 1", vec![])?;
        rows.first().map_or(Ok(Boundary::default()), |row| serde_json::from_str(&row.policy).map_err(failed))
    }

    pub fn set_org_policy(&self, policy: &Boundary) -> Result<(), ApiError> {
        self.exec("INSERT OR REPLACE INTO org (id, policy) VALUES (1, ?)", vec![to_json(policy).into()]).map(drop)
    }

    // The organisation served.

    /// What the platform told the registry about its organisation; `None` for a registry from
    /// before organisations (or one never opened).
    pub fn org_state(&self) -> Result<Option<OrgState>, ApiError> {
        #[derive(Deserialize)]
        struct Row {
            doc: String,
        }
        let rows: Vec<Row> = self.rows("SELECT doc FROM org_state WHERE id = 1", vec![])?;
        rows.first().map(|row| serde_json::from_str(&row.doc).map_err(failed)).transpose()
    }

    pub fn set_org_state(&self, state: &OrgState) -> Result<(), ApiError> {
        self.exec("INSERT OR REPLACE INTO org_state (id, doc) VALUES (1, ?)", vec![to_json(state).into()]).map(drop)
    }

    /// Empties every table of a deleted organisation but its state and pending work.
    pub fn purge_deleted_org(&self) -> Result<(), ApiError> {
        for table in PURGED_TABLES {
            let exists: Vec<Row> =
                self.exec("SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?", vec![table.into()])?;
            if !exists.is_empty() {
                self.exec(&format!("DELETE FROM {table}"), vec![])?;
            }
        }
        Ok(())
    }

    /// How many rows of pending work there are besides `except_id`.
    pub fn other_work(&self, except_id: i64) -> Result<usize, ApiError> {
        Ok(self.exec("SELECT id FROM pending_work WHERE id <> ?", vec![except_id.into()])?.len())
    }

    // Principals.

    pub fn principal_by_token(&self, token_hash: &str) -> Result<Option<PrincipalDoc>, ApiError> {
        self.doc("SELECT rowid AS pos, doc FROM principals WHERE token_hash = ?", vec![token_hash.into()])
    }

    /// The principal with `email` (stored lower-case), for Access sign-in.
    pub fn principal_by_email(&self, email: &str) -> Result<Option<PrincipalDoc>, ApiError> {
        self.doc("SELECT rowid AS pos, doc FROM principals WHERE json_extract(doc, '$.email') = ?", vec![email.into()])
    }

    pub fn principal(&self, id: &str) -> Result<Option<PrincipalDoc>, ApiError> {
        self.doc("SELECT rowid AS pos, doc FROM principals WHERE id = ?", vec![id.into()])
    }

    pub fn insert_principal(&self, doc: &PrincipalDoc, token_hash: &str) -> Result<(), ApiError> {
        self.exec(
            "INSERT INTO principals (id, token_hash, doc) VALUES (?, ?, ?)",
            vec![doc.id.as_str().into(), token_hash.into(), to_json(doc).into()],
        )
        .map(drop)
    }

    /// The principal whose previous token (rotated, in its grace period at `now_ms`) has
    /// `token_hash`.
    pub fn principal_by_previous_token(&self, token_hash: &str, now_ms: u64) -> Result<Option<PrincipalDoc>, ApiError> {
        self.doc(
            "SELECT p.rowid AS pos, p.doc FROM previous_tokens t JOIN principals p ON p.id = t.principal
             WHERE t.hash = ? AND t.valid_until > ?",
            vec![token_hash.into(), int(now_ms)],
        )
    }

    /// Replaces a principal's token by `token_hash` (and its document by `doc`); the old one
    /// stays valid until `previous_valid_until` if given, else stops at once. An older previous
    /// token stops at once either way.
    pub fn rotate_token(
        &self,
        doc: &PrincipalDoc,
        token_hash: &str,
        previous_valid_until: Option<u64>,
    ) -> Result<(), ApiError> {
        let id = doc.id.as_str();
        self.sessions().revoke_all(id)?;
        self.exec("DELETE FROM previous_tokens WHERE principal = ?", vec![id.into()])?;
        if let Some(until) = previous_valid_until {
            self.exec(
                "INSERT INTO previous_tokens (hash, principal, valid_until) SELECT token_hash, id, ? FROM principals WHERE id = ?",
                vec![int(until), id.into()],
            )?;
        }
        self.exec(
            "UPDATE principals SET token_hash = ?, doc = ? WHERE id = ?",
            vec![token_hash.into(), to_json(doc).into(), id.into()],
        )
        .map(drop)
    }

    pub fn delete_principal(&self, id: &str) -> Result<(), ApiError> {
        self.exec("DELETE FROM previous_tokens WHERE principal = ?", vec![id.into()])?;
        self.exec("DELETE FROM memberships WHERE principal = ?", vec![id.into()])?;
        self.sessions().revoke_all(id)?;
        self.exec("DELETE FROM principals WHERE id = ?", vec![id.into()]).map(drop)
    }

    /// Principals in `scope`: everyone, or the members of `scope.projects`.
    pub fn list_principals(&self, scope: &Scope, caller: &str, page: Page) -> Result<Listed<PrincipalDoc>, ApiError> {
        let (condition, params) = Self::scope_condition(scope, caller, "m.project", None);
        let scoped = if scope.all {
            String::new()
        } else {
            format!("AND EXISTS (SELECT 1 FROM memberships m WHERE m.principal = p.id {condition})")
        };
        let query = format!(
            "SELECT * FROM (SELECT rowid AS pos, id, doc FROM principals) p WHERE 1 = 1 {scoped} {{after}} {{order}}"
        );
        self.page_of_docs(&query, params, page)
    }

    // Memberships.

    pub fn memberships(&self, principal: &str) -> Result<Memberships, ApiError> {
        Ok(Memberships::new(self.memberships_of(principal)?.into_iter().map(|m| (m.project, m.role)).collect()))
    }

    pub fn memberships_of(&self, principal: &str) -> Result<Vec<Membership>, ApiError> {
        self.rows("SELECT project, role FROM memberships WHERE principal = ? ORDER BY rowid", vec![principal.into()])
    }

    pub fn members(&self, project: &str) -> Result<Vec<Member>, ApiError> {
        #[derive(Deserialize)]
        struct Row {
            principal: String,
            role: ProjectRole,
            doc: String,
        }
        let rows: Vec<Row> = self.rows(
            "SELECT m.principal, m.role, p.doc FROM memberships m JOIN principals p ON p.id = m.principal WHERE m.project = ? ORDER BY m.rowid",
            vec![project.into()],
        )?;
        rows.into_iter()
            .map(|row| {
                let doc: PrincipalDoc = serde_json::from_str(&row.doc).map_err(failed)?;
                Ok(Member { principal: row.principal, name: doc.name, role: row.role })
            })
            .collect()
    }

    pub fn put_membership(&self, project: &str, principal: &str, role: ProjectRole) -> Result<(), ApiError> {
        self.exec(
            "INSERT OR REPLACE INTO memberships (project, principal, role) VALUES (?, ?, ?)",
            vec![project.into(), principal.into(), role.name().into()],
        )
        .map(drop)
    }

    pub fn delete_membership(&self, project: &str, principal: &str) -> Result<(), ApiError> {
        self.exec("DELETE FROM memberships WHERE project = ? AND principal = ?", vec![project.into(), principal.into()])
            .map(drop)
    }

    // Projects.

    pub fn project(&self, id: &str) -> Result<Option<Project>, ApiError> {
        self.doc("SELECT rowid AS pos, doc FROM projects WHERE id = ?", vec![id.into()])
    }

    pub fn put_project(&self, project: &Project) -> Result<(), ApiError> {
        self.exec(
            "INSERT OR REPLACE INTO projects (id, doc) VALUES (?, ?)",
            vec![project.id.as_str().into(), to_json(project).into()],
        )
        .map(drop)
    }

    pub fn delete_project(&self, id: &str) -> Result<(), ApiError> {
        self.exec("DELETE FROM memberships WHERE project = ?", vec![id.into()])?;
        self.exec("DELETE FROM projects WHERE id = ?", vec![id.into()]).map(drop)
    }

    /// Every project in `scope`, oldest first.
    pub fn projects_in(&self, scope: &Scope, caller: &str) -> Result<Vec<Project>, ApiError> {
        let (condition, params) = Self::scope_condition(scope, caller, "id", None);
        let query = format!("SELECT rowid AS pos, doc FROM projects WHERE 1 = 1 {condition} ORDER BY rowid");
        Ok(self.docs(&query, params)?.into_iter().map(|(_, project)| project).collect())
    }

    pub fn list_projects(&self, scope: &Scope, caller: &str, page: Page) -> Result<Listed<Project>, ApiError> {
        let (condition, params) = Self::scope_condition(scope, caller, "id", None);
        let query = format!(
            "SELECT * FROM (SELECT rowid AS pos, id, doc FROM projects) WHERE 1 = 1 {condition} {{after}} {{order}}"
        );
        self.page_of_docs(&query, params, page)
    }

    // Keys.

    pub fn key(&self, id: &str) -> Result<Option<Key>, ApiError> {
        self.doc("SELECT rowid AS pos, doc FROM keys WHERE id = ?", vec![id.into()])
    }

    /// Inserts or replaces a key (its row keeps its list position).
    pub fn put_key(&self, key: &Key) -> Result<(), ApiError> {
        let params = vec![
            key.id.as_str().into(),
            key.project.as_str().into(),
            key.creator.as_str().into(),
            key.status.name().into(),
            to_json(key).into(),
        ];
        self.exec(
            "INSERT INTO keys (id, project, creator, status, doc) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (id) DO UPDATE SET project = excluded.project, creator = excluded.creator, status = excluded.status, doc = excluded.doc",
            params,
        )
        .map(drop)
    }

    pub fn list_keys(
        &self,
        filter: &KeyFilter,
        scope: &Scope,
        caller: &str,
        page: Page,
    ) -> Result<Listed<Key>, ApiError> {
        let mut conditions = String::new();
        let mut params: Vec<SqlValue> = Vec::new();
        let mut add = |condition: &str, value: &str| {
            conditions += condition;
            params.push(value.into());
        };
        filter.project.inspect(|p| add(" AND project = ?", p));
        filter.creator.inspect(|c| add(" AND creator = ?", c));
        filter.tag.inspect(|t| add(" AND EXISTS (SELECT 1 FROM json_each(doc, '$.tags') WHERE value = ?)", t));
        match filter.status {
            Some(status) => add(" AND status = ?", status),
            None => conditions += " AND status <> 'deleted'",
        }
        let (scoped, scope_params) = Self::scope_condition(scope, caller, "project", Some("creator"));
        params.extend(scope_params);
        let query = format!(
            "SELECT * FROM (SELECT rowid AS pos, project, creator, status, doc FROM keys) WHERE 1 = 1 {conditions} {scoped} {{after}} {{order}}"
        );
        self.page_of_docs(&query, params, page)
    }

    pub fn keys_of_project(&self, project: &str) -> Result<Vec<Key>, ApiError> {
        Ok(self
            .docs("SELECT rowid AS pos, doc FROM keys WHERE project = ? ORDER BY rowid", vec![project.into()])?
            .into_iter()
            .map(|(_, k)| k)
            .collect())
    }

    /// Ids of every key that is not deleted.
    pub fn live_key_ids(&self) -> Result<Vec<String>, ApiError> {
        #[derive(Deserialize)]
        struct Row {
            id: String,
        }
        let rows: Vec<Row> = self.rows("SELECT id FROM keys WHERE status <> 'deleted' ORDER BY rowid", vec![])?;
        Ok(rows.into_iter().map(|row| row.id).collect())
    }

    pub fn live_keys_in(&self, project: &str) -> Result<Vec<String>, ApiError> {
        Ok(self.keys_of_project(project)?.into_iter().filter(|k| k.status != Status::Deleted).map(|k| k.id).collect())
    }

    // Secrets.

    pub fn secrets(&self, key_id: &str) -> Result<SecretState, ApiError> {
        #[derive(Deserialize)]
        struct Row {
            hash: String,
            version: u32,
            valid_until: Option<f64>,
        }
        let rows: Vec<Row> = self.rows(
            "SELECT hash, version, valid_until FROM key_secrets WHERE key_id = ? ORDER BY version",
            vec![key_id.into()],
        )?;
        let secrets = rows
            .into_iter()
            .map(|row| Secret {
                hash: row.hash,
                version: row.version,
                valid_until_ms: row.valid_until.map(|ms| ms as u64),
            })
            .collect();
        Ok(SecretState { secrets })
    }

    /// Replaces the stored secrets of `key_id` by `state`.
    pub fn set_secrets(&self, key_id: &str, state: &SecretState) -> Result<(), ApiError> {
        self.exec("DELETE FROM key_secrets WHERE key_id = ?", vec![key_id.into()])?;
        for secret in &state.secrets {
            self.exec(
                "INSERT INTO key_secrets (hash, key_id, version, valid_until) VALUES (?, ?, ?, ?)",
                vec![
                    secret.hash.as_str().into(),
                    key_id.into(),
                    i64::from(secret.version).into(),
                    secret.valid_until_ms.map(int).unwrap_or(SqlValue::Null),
                ],
            )?;
        }
        Ok(())
    }

    /// Forgets secrets KV no longer holds.
    pub fn forget_secrets(&self, hashes: &[String]) -> Result<(), ApiError> {
        for hash in hashes {
            self.exec("DELETE FROM key_secrets WHERE hash = ?", vec![hash.as_str().into()])?;
        }
        Ok(())
    }

    /// Keys holding a secret whose grace ended by `now_ms` (their KV copies are to be deleted).
    pub fn keys_with_ended_grace(&self, now_ms: u64) -> Result<Vec<String>, ApiError> {
        #[derive(Deserialize)]
        struct Row {
            key_id: String,
        }
        let rows: Vec<Row> = self.rows(
            "SELECT DISTINCT key_id FROM key_secrets WHERE valid_until IS NOT NULL AND valid_until <= ?",
            vec![int(now_ms)],
        )?;
        Ok(rows.into_iter().map(|row| row.key_id).collect())
    }

    /// When the next grace period ends, if one is running after `now_ms`.
    pub fn next_grace_end(&self, now_ms: u64) -> Result<Option<u64>, ApiError> {
        self.min("SELECT MIN(valid_until) AS at FROM key_secrets WHERE valid_until > ?", vec![int(now_ms)])
    }

    fn min(&self, query: &str, params: Vec<SqlValue>) -> Result<Option<u64>, ApiError> {
        #[derive(Deserialize)]
        struct Row {
            at: Option<f64>,
        }
        let rows: Vec<Row> = self.rows(query, params)?;
        Ok(rows.first().and_then(|row| row.at).map(|at| at as u64))
    }

    // Audit.

    pub fn audit(&self, change: &Change, actor: &str, now_ms: u64) -> Result<(), ApiError> {
        let entry = AuditEntry {
            id: 0,
            at_ms: now_ms,
            actor: actor.to_owned(),
            action: change.action.to_owned(),
            target_type: change.target_type.to_owned(),
            target_id: change.target_id.clone(),
            before: change.before.clone(),
            after: change.after.clone(),
        };
        self.exec("INSERT INTO audit (doc) VALUES (?)", vec![to_json(&entry).into()]).map(drop)
    }

    /// The audit log, newest first.
    pub fn list_audit(&self, page: Page) -> Result<Listed<AuditEntry>, ApiError> {
        let (entries, next) = self.page::<AuditEntry>(
            "SELECT * FROM (SELECT id AS pos, doc FROM audit) WHERE 1 = 1 {after} {order}",
            vec![],
            page,
            true,
        )?;
        Ok((entries.into_iter().map(|(id, entry)| AuditEntry { id, ..entry }).collect(), next))
    }

    // Idempotency.

    /// The entry kept under `id`, unless it expired by `now_ms`.
    pub fn kept_entry(&self, id: &str, now_ms: u64) -> Result<Option<KeptEntry>, ApiError> {
        #[derive(Deserialize)]
        struct Row {
            request_hash: String,
            sealed: String,
        }
        let rows: Vec<Row> = self.rows(
            "SELECT request_hash, sealed FROM idempotency WHERE id = ? AND expires_at > ?",
            vec![id.into(), int(now_ms)],
        )?;
        rows.into_iter()
            .next()
            .map(|row| {
                Ok(KeptEntry {
                    request_hash: row.request_hash,
                    sealed: serde_json::from_str(&row.sealed).map_err(failed)?,
                })
            })
            .transpose()
    }

    /// Keeps `entry` under `id` until `expires_at` (replacing an expired one not yet purged).
    pub fn keep_entry(&self, id: &str, entry: &KeptEntry, expires_at: u64) -> Result<(), ApiError> {
        self.exec(
            "INSERT OR REPLACE INTO idempotency (id, request_hash, sealed, expires_at) VALUES (?, ?, ?, ?)",
            vec![id.into(), entry.request_hash.as_str().into(), to_json(&entry.sealed).into(), int(expires_at)],
        )
        .map(drop)
    }

    // Retention.

    /// Deletes at most `batch` rows of each kind expired by `now_ms`: kept idempotent answers,
    /// previous tokens past their grace, and audit entries written by `audit_written_by_ms`
    /// (among the oldest `batch`). What remains expired is due again at once
    /// ([`Store::next_expiry`]).
    pub fn purge(&self, now_ms: u64, audit_written_by_ms: u64, batch: usize) -> Result<(), ApiError> {
        #[derive(Deserialize)]
        struct Row {
            id: Value,
        }
        let limit = || SqlValue::Integer(batch as i64);
        let batches = [
            (
                "SELECT id FROM idempotency WHERE expires_at <= ? ORDER BY expires_at LIMIT ?",
                vec![int(now_ms), limit()],
                "idempotency",
                "id",
            ),
            (
                "SELECT hash AS id FROM previous_tokens WHERE valid_until <= ? ORDER BY valid_until LIMIT ?",
                vec![int(now_ms), limit()],
                "previous_tokens",
                "hash",
            ),
            (
                "SELECT id FROM (SELECT id, json_extract(doc, '$.at_ms') AS at FROM audit ORDER BY id LIMIT ?) WHERE at <= ?",
                vec![limit(), int(audit_written_by_ms)],
                "audit",
                "id",
            ),
        ];
        for (select, params, table, column) in batches {
            let rows: Vec<Row> = self.rows(select, params)?;
            if rows.is_empty() {
                continue;
            }
            let ids: Vec<SqlValue> = rows.into_iter().map(|row| json_value(row.id)).collect();
            let delete = format!("DELETE FROM {table} WHERE {column} IN ({})", placeholders(ids.len()));
            self.exec(&delete, ids)?;
        }
        Ok(())
    }

    /// When the next row [`Store::purge`] deletes expires, audit entries being kept `audit_ms`.
    pub fn next_expiry(&self, audit_ms: u64) -> Result<Option<u64>, ApiError> {
        let idempotency = self.min("SELECT MIN(expires_at) AS at FROM idempotency", vec![])?;
        let tokens = self.min("SELECT MIN(valid_until) AS at FROM previous_tokens", vec![])?;
        let audit = self.min("SELECT json_extract(doc, '$.at_ms') AS at FROM audit ORDER BY id LIMIT 1", vec![])?;
        Ok(idempotency.into_iter().chain(tokens).chain(audit.map(|at| at.saturating_add(audit_ms))).min())
    }

    // Pending work.

    /// Queues `work`; state-based work already pending is not queued twice. Queuing a
    /// `PushLimits` bumps the key's policy version, pending or not: its limits may have changed.
    pub fn push_work(&self, work: &Work) -> Result<(), ApiError> {
        if let Work::PushLimits { key_id } = work {
            let bump = "INSERT INTO policy_versions (key_id, version) VALUES (?, 1)
                        ON CONFLICT (key_id) DO UPDATE SET version = version + 1";
            self.exec(bump, vec![key_id.as_str().into()])?;
        }
        let (lane, json) = (work.lane(), serde_json::to_string(work).expect("work serializes"));
        let duplicate = "SELECT 1 FROM pending_work WHERE lane = ? AND work = ?";
        if work.is_state_based() && !self.exec(duplicate, vec![lane.as_str().into(), json.as_str().into()])?.is_empty()
        {
            return Ok(());
        }
        self.exec("INSERT INTO pending_work (lane, work) VALUES (?, ?)", vec![lane.into(), json.into()]).map(drop)
    }

    /// The key's policy version: 1 plus one per change that may have changed its effective
    /// limits (see [`Store::push_work`]); 0 before the first. KV records and pushes carry it.
    pub fn policy_version(&self, key_id: &str) -> Result<u64, ApiError> {
        #[derive(Deserialize)]
        struct Version {
            version: i64,
        }
        let rows: Vec<Version> =
            self.rows("SELECT version FROM policy_versions WHERE key_id = ?", vec![key_id.into()])?;
        Ok(rows.first().map_or(0, |row| u64::try_from(row.version).unwrap_or(0)))
    }

    /// Work due at `now_ms`, oldest first: rows whose time has come and that no earlier row of
    /// their lane waits before (a failed row holds back the rest of its lane until its retry).
    pub fn due_work(&self, now_ms: u64, limit: usize) -> Result<Vec<WorkRow>, ApiError> {
        self.rows(
            "SELECT id, lane, work, attempts FROM pending_work w WHERE not_before <= ?
             AND NOT EXISTS (SELECT 1 FROM pending_work e WHERE e.lane = w.lane AND e.id < w.id AND e.not_before > ?)
             ORDER BY id LIMIT ?",
            vec![int(now_ms), int(now_ms), (limit as i64).into()],
        )
    }

    pub fn work_done(&self, id: i64) -> Result<(), ApiError> {
        self.exec("DELETE FROM pending_work WHERE id = ?", vec![id.into()]).map(drop)
    }

    pub fn work_failed(&self, id: i64, error: &str, retry_at_ms: u64) -> Result<(), ApiError> {
        self.exec(
            "UPDATE pending_work SET attempts = attempts + 1, not_before = ?, last_error = ? WHERE id = ?",
            vec![int(retry_at_ms), error.into(), id.into()],
        )
        .map(drop)
    }

    /// When the earliest pending work is due, if any waits: the soonest time of a lane's first row.
    pub fn next_work(&self) -> Result<Option<u64>, ApiError> {
        self.min(
            "SELECT MIN(not_before) AS at FROM pending_work w
             WHERE NOT EXISTS (SELECT 1 FROM pending_work e WHERE e.lane = w.lane AND e.id < w.id)",
            vec![],
        )
    }
}
