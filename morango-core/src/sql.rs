//! Bound SQL statements for both backends: every value is a parameter, written `$1`, `$2`, … in the text.

use sea_orm::{ConnectionTrait, DbBackend, QueryResult, Statement, Value};

use crate::error::{DbContext, Result};

/// Builds a statement for `conn`'s backend; `$n` placeholders become `?n` on SQLite.
pub(crate) fn statement(backend: DbBackend, sql: &str, values: Vec<Value>) -> Statement {
    let text = match backend {
        DbBackend::Sqlite => sqlite_placeholders(sql),
        _ => sql.to_owned(),
    };
    Statement::from_sql_and_values(backend, text, values)
}

/// `$n` → `?n` (SQLite's numbered parameters); a `$` not followed by a digit is kept.
fn sqlite_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('?');
        } else {
            out.push(c);
        }
    }
    out
}

/// Runs a statement, returning the number of rows it affected.
pub(crate) async fn exec<C: ConnectionTrait>(conn: &C, what: &str, sql: &str, values: Vec<Value>) -> Result<u64> {
    let stmt = statement(conn.get_database_backend(), sql, values);
    let result = conn.execute_raw(stmt).await.context(|| what.to_owned())?;
    Ok(result.rows_affected())
}

/// Runs a query, returning all rows.
pub(crate) async fn query<C: ConnectionTrait>(
    conn: &C,
    what: &str,
    sql: &str,
    values: Vec<Value>,
) -> Result<Vec<QueryResult>> {
    let stmt = statement(conn.get_database_backend(), sql, values);
    conn.query_all_raw(stmt).await.context(|| what.to_owned())
}

/// Runs a query expected to return at most one row.
pub(crate) async fn query_one<C: ConnectionTrait>(
    conn: &C,
    what: &str,
    sql: &str,
    values: Vec<Value>,
) -> Result<Option<QueryResult>> {
    let stmt = statement(conn.get_database_backend(), sql, values);
    conn.query_one_raw(stmt).await.context(|| what.to_owned())
}

/// Reads a column of a result row, with the column named in the error.
pub(crate) fn get<T: sea_orm::TryGetable>(row: &QueryResult, column: &str) -> Result<T> {
    row.try_get::<T>("", column).context(|| format!("reading column `{column}`"))
}

/// `$first, $first+1, …` — `count` placeholders for an `IN (...)` list.
pub(crate) fn placeholders(first: usize, count: usize) -> String {
    (first..first + count).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// Quotes an identifier (table or column name) for both backends.
pub(crate) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A string value.
pub(crate) fn text(value: impl Into<String>) -> Value {
    Value::String(Some(value.into()))
}

/// Sets a text column of many rows, each to its own value, in statements of a few hundred rows:
/// `UPDATE table SET column = CASE id WHEN … THEN … END WHERE id IN (…)`.
pub(crate) async fn set_by_id<C: ConnectionTrait>(
    conn: &C,
    what: &str,
    table: &str,
    column: &str,
    pairs: &[(String, String)],
) -> Result<()> {
    for chunk in pairs.chunks(500) {
        let mut values = Vec::with_capacity(chunk.len() * 2);
        let mut cases = String::new();
        for (i, (id, value)) in chunk.iter().enumerate() {
            cases.push_str(&format!(" WHEN ${} THEN ${}", 2 * i + 1, 2 * i + 2));
            values.push(text(id));
            values.push(text(value));
        }
        let ids = (0..chunk.len()).map(|i| format!("${}", 2 * i + 1)).collect::<Vec<_>>().join(", ");
        exec(
            conn,
            what,
            &format!("UPDATE {} SET {} = CASE id{cases} END WHERE id IN ({ids})", ident(table), ident(column)),
            values,
        )
        .await?;
    }
    Ok(())
}
