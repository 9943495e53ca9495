//! The one port to a Durable Object's SQLite: run a statement, get its rows.
//!
//! Flow: a store in the core (the registry's [`crate::admin::store::Store`], the outbox's
//! [`crate::events::outbox_store::OutboxStore`], the producers' [`crate::events::pending::EventQueue`])
//! writes its statements as plain SQL with `?` placeholders → [`Sql::exec`] runs one statement
//! and answers its rows as JSON objects, column name → value → [`rows`] deserialises them into
//! the store's row structs. The edge implements [`Sql`] over `worker::SqlStorage`; the host tests
//! implement it over real SQLite, so the very same statements run in both.
//!
//! Atomicity: the Durable Object SQL API refuses `BEGIN`/`COMMIT`; statements run without an
//! `.await` between them are atomic there. So no statement here opens a transaction, and an
//! implementation need not offer one.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::fmt;

/// One row: column name → value (integers as JSON integers, `NULL` as `null`).
pub type Row = Map<String, Value>;

/// A bound parameter (the stores keep no floating-point values).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqlValue {
    Null,
    Integer(i64),
    Text(String),
}

/// A statement that failed to run, or rows that did not have the shape asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlError(pub String);

impl fmt::Display for SqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SqlError {}

/// A SQLite database that runs one statement at a time.
pub trait Sql {
    /// Runs `statement` with `params` bound to its `?`s, in order; its rows (none for a write).
    fn exec(&self, statement: &str, params: &[SqlValue]) -> Result<Vec<Row>, SqlError>;
}

/// Runs `statement` and deserialises its rows into `T`s.
pub fn rows<T: DeserializeOwned>(sql: &dyn Sql, statement: &str, params: &[SqlValue]) -> Result<Vec<T>, SqlError> {
    sql.exec(statement, params)?
        .into_iter()
        .map(|row| serde_json::from_value(Value::Object(row)).map_err(|e| SqlError(format!("{e} in {statement}"))))
        .collect()
}

/// Runs `statement`, which answers no rows worth reading.
pub fn run(sql: &dyn Sql, statement: &str, params: &[SqlValue]) -> Result<(), SqlError> {
    sql.exec(statement, params).map(drop)
}

/// `?, ?, ?` for `n` values.
pub fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// A time or count as an SQL integer (saturating: ours are far below 2^63).
pub fn int(n: u64) -> SqlValue {
    SqlValue::Integer(i64::try_from(n).unwrap_or(i64::MAX))
}

impl From<&str> for SqlValue {
    fn from(text: &str) -> SqlValue {
        SqlValue::Text(text.to_owned())
    }
}

impl From<String> for SqlValue {
    fn from(text: String) -> SqlValue {
        SqlValue::Text(text)
    }
}

impl From<i64> for SqlValue {
    fn from(n: i64) -> SqlValue {
        SqlValue::Integer(n)
    }
}

impl From<i32> for SqlValue {
    fn from(n: i32) -> SqlValue {
        SqlValue::Integer(n.into())
    }
}

impl<T: Into<SqlValue>> From<Option<T>> for SqlValue {
    fn from(value: Option<T>) -> SqlValue {
        value.map_or(SqlValue::Null, Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    /// Answers the same rows whatever it is asked.
    struct Canned(Vec<Row>);

    impl Sql for Canned {
        fn exec(&self, _: &str, _: &[SqlValue]) -> Result<Vec<Row>, SqlError> {
            Ok(self.0.clone())
        }
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Pair {
        n: u64,
        name: Option<String>,
    }

    #[test]
    fn rows_deserialise_by_column_name_and_a_wrong_shape_is_an_error() {
        let row = |v: Value| v.as_object().unwrap().clone();
        let sql = Canned(vec![row(serde_json::json!({"n": 3, "name": null}))]);
        assert_eq!(rows::<Pair>(&sql, "SELECT", &[]).unwrap(), vec![Pair { n: 3, name: None }]);
        let wrong = Canned(vec![row(serde_json::json!({"n": "three"}))]);
        assert!(rows::<Pair>(&wrong, "SELECT n", &[]).unwrap_err().0.contains("SELECT n"));
    }

    #[test]
    fn values_convert() {
        assert_eq!(SqlValue::from(None::<&str>), SqlValue::Null);
        assert_eq!(SqlValue::from(Some(5i64)), SqlValue::Integer(5));
        assert_eq!(int(u64::MAX), SqlValue::Integer(i64::MAX));
        assert_eq!(placeholders(3), "?, ?, ?");
    }
}
