//! [`Sql`] over a Durable Object's SQLite (`worker::SqlStorage`): the statements of the core's
//! stores run here as written. Failures are logged under the store's name before they are
//! answered as errors.

use crate::sql::{Row, Sql, SqlError, SqlValue};
use worker::{SqlStorage, SqlStorageValue};

pub struct ObjectSql {
    sql: SqlStorage,
    /// Names the store in the log.
    store: &'static str,
}

impl ObjectSql {
    pub fn boxed(sql: SqlStorage, store: &'static str) -> Box<dyn Sql> {
        Box::new(ObjectSql { sql, store })
    }
}

impl Sql for ObjectSql {
    fn exec(&self, statement: &str, params: &[SqlValue]) -> Result<Vec<Row>, SqlError> {
        let params: Vec<SqlStorageValue> = params.iter().map(bound).collect();
        self.sql.exec(statement, params).and_then(|cursor| cursor.to_array()).map_err(|e| {
            worker::console_error!("{} storage: {e}", self.store);
            SqlError(e.to_string())
        })
    }
}

fn bound(value: &SqlValue) -> SqlStorageValue {
    match value {
        SqlValue::Null => SqlStorageValue::Null,
        SqlValue::Integer(n) => SqlStorageValue::Integer(*n),
        SqlValue::Text(text) => SqlStorageValue::String(text.clone()),
    }
}

impl From<SqlError> for worker::Error {
    fn from(e: SqlError) -> worker::Error {
        worker::Error::RustError(e.0)
    }
}
