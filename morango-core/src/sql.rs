//! Bound SQL statements for both backends: every value is a parameter, written `$1`, `$2`, … in the text.

use sea_orm::{ConnectionTrait, DbBackend, QueryResult, Statement, Value};

use crate::error::{DbContext, Result};

/// Builds a statement for `conn`'s backend from SQL written with `$1`, `$2`, … placeholders.
///
/// On SQLite they become plain `?` with the values reordered (and repeated) to match: sqlx looks up the name of
/// every parameter when binding, and for numbered `?NNN` parameters SQLite finds it by walking the whole list,
/// which makes binding a 7 000-value statement quadratic.
pub(crate) fn statement(backend: DbBackend, sql: &str, values: Vec<Value>) -> Statement {
    match backend {
        DbBackend::Sqlite => {
            let (text, values) = positional(sql, &values);
            Statement::from_sql_and_values(backend, text, values)
        }
        _ => Statement::from_sql_and_values(backend, sql, values),
    }
}

/// `$n` → `?`, with the values in the order their placeholders appear. A `$` not followed by a digit is kept;
/// a placeholder without a value binds NULL.
fn positional(sql: &str, values: &[Value]) -> (String, Vec<Value>) {
    let mut text = String::with_capacity(sql.len());
    let mut ordered = Vec::with_capacity(values.len());
    let mut chars = sql.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        if c != '$' || !chars.peek().is_some_and(|(_, d)| d.is_ascii_digit()) {
            text.push(c);
            continue;
        }
        let mut number = 0usize;
        while let Some((_, d)) = chars.peek().copied().filter(|(_, d)| d.is_ascii_digit()) {
            number = number.saturating_mul(10).saturating_add(d as usize - '0' as usize);
            chars.next();
        }
        text.push('?');
        ordered.push(number.checked_sub(1).and_then(|i| values.get(i)).cloned().unwrap_or(Value::String(None)));
    }
    (text, ordered)
}

/// Runs a statement, returning the number of rows it affected.
pub(crate) async fn exec<C: ConnectionTrait>(conn: &C, what: &str, sql: &str, values: Vec<Value>) -> Result<u64> {
    let stmt = statement(conn.get_database_backend(), sql, values);
    let result = patiently(|| conn.execute_raw(stmt.clone())).await.context(|| what.to_owned())?;
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
    patiently(|| conn.query_all_raw(stmt.clone())).await.context(|| what.to_owned())
}

/// Runs a query expected to return at most one row.
pub(crate) async fn query_one<C: ConnectionTrait>(
    conn: &C,
    what: &str,
    sql: &str,
    values: Vec<Value>,
) -> Result<Option<QueryResult>> {
    let stmt = statement(conn.get_database_backend(), sql, values);
    patiently(|| conn.query_one_raw(stmt.clone())).await.context(|| what.to_owned())
}

/// How long a statement waits for SQLite's write lock, beyond sqlx's own 5 s busy timeout.
const BUSY_WAIT: std::time::Duration = std::time::Duration::from_secs(120);

/// Runs a statement again while SQLite answers "database is locked" (another connection holds the write lock
/// for a long transaction), with a growing pause, for up to [`BUSY_WAIT`]. Other errors return at once.
async fn patiently<T, F, Fut>(run: F) -> std::result::Result<T, sea_orm::DbErr>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = std::result::Result<T, sea_orm::DbErr>>,
{
    let started = std::time::Instant::now();
    let mut pause = std::time::Duration::from_millis(20);
    loop {
        match run().await {
            Err(error) if is_busy(&error) && started.elapsed() < BUSY_WAIT => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(std::time::Duration::from_secs(1));
            }
            result => return result,
        }
    }
}

fn is_busy(error: &sea_orm::DbErr) -> bool {
    let text = error.to_string();
    text.contains("database is locked") || text.contains("database table is locked")
}

/// Reads a column of a result row, with the column named in the error.
pub(crate) fn get<T: sea_orm::TryGetable>(row: &QueryResult, column: &str) -> Result<T> {
    row.try_get::<T>("", column).context(|| format!("reading column `{column}`"))
}

/// `$first, $first+1, …` — `count` placeholders for an `IN (...)` list.
pub(crate) fn placeholders(first: usize, count: usize) -> String {
    (first..first + count).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// ` AND (<column> starts with one of `prefixes`)`, binding each prefix after the `values` already bound (no prefix:
/// a condition nothing meets).
pub(crate) fn under_prefixes(column: &str, prefixes: &[String], values: &mut Vec<Value>) -> String {
    let terms: Vec<String> = prefixes
        .iter()
        .map(|prefix| {
            values.push(text(prefix));
            let p = values.len();
            format!("substr({column}, 1, length(${p})) = ${p}")
        })
        .collect();
    if terms.is_empty() { " AND 1 = 0".into() } else { format!(" AND ({})", terms.join(" OR ")) }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_placeholders_become_positional_with_values_in_order() {
        let values: Vec<Value> = vec![text("a"), text("b"), 3i64.into()];
        let (sql, ordered) = positional("SELECT $2, $1 WHERE x = $2 AND y = $3 AND z LIKE '$x'", &values);
        assert_eq!(sql, "SELECT ?, ? WHERE x = ? AND y = ? AND z LIKE '$x'");
        assert_eq!(ordered, vec![text("b"), text("a"), text("b"), 3i64.into()]);
        let (_, missing) = positional("SELECT $12", &values);
        assert_eq!(missing, vec![Value::String(None)]);
    }
}
