//! Change tracking that loses nothing: database triggers on every syncable table.
//!
//! SeaORM runs `ActiveModelBehavior` hooks only for single-model `insert`/`update`/`save`/`delete`; bulk
//! statements, raw SQL and the database's own `ON DELETE CASCADE` bypass them. Triggers see all of those:
//! - an insert or update sets `_morango_dirty_bit` (unless Morango itself is writing, see [`Guard`]);
//! - a delete queues the id in `morango_deletedmodels`, and also in `morango_harddeletedmodels` inside
//!   [`hard_delete`].
//!
//! Morango's own writes to application tables (deserialization, clearing dirty bits) run inside a [`Guard`]:
//! on SQLite a row in `morango_apply_guard` that exists only inside the writing transaction, on PostgreSQL a
//! transaction-local setting. Other connections never see either.

use sea_orm::sea_query::{Alias, Expr, ExprTrait};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, QueryFilter, TransactionSession, TransactionTrait};

use crate::model::{Syncable, columns};
use crate::profile::Profile;

/// What Morango is doing inside a guarded transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Guard {
    /// Writing application rows that must not be marked dirty.
    Apply,
    /// Deleting rows whose deletion must also erase their payload on every peer.
    HardDelete,
}

impl Guard {
    fn key(self) -> &'static str {
        match self {
            Guard::Apply => "apply",
            Guard::HardDelete => "hard_delete",
        }
    }

    /// Turns the guard on for the rest of the transaction `txn` (or until [`Guard::leave`]).
    pub(crate) async fn enter<C: ConnectionTrait>(self, txn: &C) -> Result<(), DbErr> {
        self.set(txn, true).await
    }

    /// Turns the guard off again.
    pub(crate) async fn leave<C: ConnectionTrait>(self, txn: &C) -> Result<(), DbErr> {
        self.set(txn, false).await
    }

    async fn set<C: ConnectionTrait>(self, txn: &C, on: bool) -> Result<(), DbErr> {
        let backend = txn.get_database_backend();
        let stmt = match (backend, on) {
            (DbBackend::Postgres, _) => crate::sql::statement(
                backend,
                "SELECT set_config($1, $2, true)",
                vec![format!("morango.{}", self.key()).into(), (if on { "on" } else { "off" }).into()],
            ),
            (_, true) => crate::sql::statement(
                backend,
                "INSERT INTO morango_apply_guard (kind) VALUES ($1) ON CONFLICT DO NOTHING",
                vec![self.key().into()],
            ),
            (_, false) => crate::sql::statement(
                backend,
                "DELETE FROM morango_apply_guard WHERE kind = $1",
                vec![self.key().into()],
            ),
        };
        if backend == DbBackend::Postgres {
            txn.query_one_raw(stmt).await.map(|_| ())
        } else {
            txn.execute_raw(stmt).await.map(|_| ())
        }
    }
}

/// Deletes a record and erases its payload here and on every peer the deletion reaches (Morango's
/// `delete(hard_delete=True)`). Rows removed by the database's cascades are hard-deleted too.
pub async fn hard_delete<E, C>(db: &C, id: &str) -> Result<u64, DbErr>
where
    E: Syncable,
    C: TransactionTrait,
{
    let txn = db.begin().await?;
    Guard::HardDelete.enter(&txn).await?;
    let deleted = E::delete_many().filter(Expr::col(Alias::new(columns::ID)).eq(id)).exec(&txn).await?;
    Guard::HardDelete.leave(&txn).await?;
    txn.commit().await?;
    Ok(deleted.rows_affected)
}

/// Installs (or refreshes) the triggers of every table of `profile`. Idempotent.
pub async fn install<C: ConnectionTrait>(db: &C, profile: &Profile) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    check_name(profile.name(), "profile")?;
    if backend == DbBackend::Postgres {
        db.execute_unprepared(&postgres_delete_function()).await?;
    }
    for model in profile.models() {
        let table = model.table();
        check_name(table, "table")?;
        let dirty = model.column(columns::DIRTY_BIT);
        check_name(&dirty, "column")?;
        let statements = match backend {
            DbBackend::Postgres => postgres_triggers(table, &dirty, profile.name()),
            _ => sqlite_triggers(table, &dirty, profile.name()),
        };
        for statement in statements {
            db.execute_unprepared(&statement).await?;
        }
        db.execute_unprepared(&dirty_index(table, &dirty)).await?;
    }
    Ok(())
}

/// A partial index on the dirty rows of `table`: serialization finds them without reading the clean ones, so a
/// sync with nothing to do costs nothing however large the table. Queries must test the column with the same
/// literal ([`DIRTY`]) for the databases to use it.
fn dirty_index(table: &str, dirty: &str) -> String {
    format!(
        "CREATE INDEX IF NOT EXISTS \"morango_dirty_{table}\" ON \"{table}\" (\"{}\") WHERE {}",
        columns::ID,
        dirty_condition(dirty)
    )
}

/// The condition that selects dirty rows, as the partial index of [`install`] states it.
pub(crate) fn dirty_condition(dirty_column: &str) -> String {
    format!("\"{dirty_column}\" = {DIRTY}")
}

/// The literal the dirty-row index and its queries compare with (a bound value would hide it from the planner).
const DIRTY: &str = "TRUE";

/// Removes the triggers of every table of `profile`.
pub async fn uninstall<C: ConnectionTrait>(db: &C, profile: &Profile) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    for model in profile.models() {
        let table = model.table();
        check_name(table, "table")?;
        for name in ["dirty_ins", "dirty_upd", "delete", "dirty"] {
            let statement = match backend {
                DbBackend::Postgres => format!("DROP TRIGGER IF EXISTS \"morango_{name}_{table}\" ON \"{table}\""),
                _ => format!("DROP TRIGGER IF EXISTS \"morango_{name}_{table}\""),
            };
            db.execute_unprepared(&statement).await?;
        }
        db.execute_unprepared(&format!("DROP INDEX IF EXISTS \"morango_dirty_{table}\"")).await?;
        if backend == DbBackend::Postgres {
            db.execute_unprepared(&format!("DROP FUNCTION IF EXISTS \"morango_dirty_{table}\"()")).await?;
        }
    }
    Ok(())
}

/// Trigger DDL cannot take bound parameters, so names embedded in it are restricted to a safe alphabet.
fn check_name(name: &str, what: &str) -> Result<(), DbErr> {
    let ok = !name.is_empty()
        && name.len() <= 48
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(DbErr::Custom(format!(
            "Morango change tracking: {what} name `{name}` must use only ASCII letters, digits, `_` and `-`"
        )))
    }
}

fn sqlite_triggers(table: &str, dirty: &str, profile: &str) -> Vec<String> {
    let mark_dirty = |event: &str, name: &str| {
        format!(
            "CREATE TRIGGER IF NOT EXISTS \"morango_{name}_{table}\" AFTER {event} ON \"{table}\" \
             WHEN NEW.\"{dirty}\" = 0 AND NOT EXISTS (SELECT 1 FROM morango_apply_guard WHERE kind = 'apply') \
             BEGIN UPDATE \"{table}\" SET \"{dirty}\" = 1 WHERE \"id\" = NEW.\"id\"; END"
        )
    };
    vec![
        mark_dirty("INSERT", "dirty_ins"),
        mark_dirty("UPDATE", "dirty_upd"),
        format!(
            "CREATE TRIGGER IF NOT EXISTS \"morango_delete_{table}\" AFTER DELETE ON \"{table}\" BEGIN \
             INSERT OR IGNORE INTO morango_deletedmodels (id, profile) VALUES (OLD.\"id\", '{profile}'); \
             INSERT OR IGNORE INTO morango_harddeletedmodels (id, profile) SELECT OLD.\"id\", '{profile}' \
             WHERE EXISTS (SELECT 1 FROM morango_apply_guard WHERE kind = 'hard_delete'); END"
        ),
    ]
}

/// The body of PostgreSQL's deletion trigger function.
const POSTGRES_DELETE_BODY: &str = " BEGIN \
    INSERT INTO morango_deletedmodels (id, profile) VALUES (OLD.id, TG_ARGV[0]) ON CONFLICT DO NOTHING; \
    IF current_setting('morango.hard_delete', true) = 'on' THEN \
      INSERT INTO morango_harddeletedmodels (id, profile) VALUES (OLD.id, TG_ARGV[0]) ON CONFLICT DO NOTHING; \
    END IF; \
    RETURN OLD; END ";

/// The function PostgreSQL's deletion triggers call.
fn postgres_delete_function() -> String {
    format!(
        "CREATE OR REPLACE FUNCTION morango_track_delete() RETURNS trigger LANGUAGE plpgsql AS \
         $fn${POSTGRES_DELETE_BODY}$fn$"
    )
}

/// The body of the PostgreSQL function that marks a row of a table dirty.
fn postgres_dirty_body(dirty: &str) -> String {
    format!(
        " BEGIN IF coalesce(current_setting('morango.apply', true), '') <> 'on' THEN NEW.\"{dirty}\" := true; END IF; \
         RETURN NEW; END "
    )
}

/// True when PostgreSQL already holds the change tracking of `profile` exactly as [`install`] makes it: the
/// trigger functions with the same bodies, both triggers of every table and its dirty-row index. Re-creating
/// triggers takes a lock on the table that waits for every running write, so a start up skips it when it can.
pub(crate) async fn installed<C: ConnectionTrait>(db: &C, profile: &Profile) -> crate::error::Result<bool> {
    if !postgres_holds(
        db,
        "SELECT prosrc = $1 AS here FROM pg_proc WHERE oid = to_regprocedure($2)",
        vec![POSTGRES_DELETE_BODY.into(), "morango_track_delete()".into()],
    )
    .await?
    {
        return Ok(false);
    }
    for model in profile.models() {
        let table = model.table();
        let holds = postgres_holds(
            db,
            "SELECT COALESCE((SELECT prosrc FROM pg_proc WHERE oid = to_regprocedure($1)) = $2, FALSE) \
             AND (SELECT COUNT(*) FROM pg_trigger WHERE tgrelid = to_regclass($3) AND tgname IN ($4, $5)) = 2 \
             AND to_regclass($6) IS NOT NULL AS here",
            vec![
                format!("\"morango_dirty_{table}\"()").into(),
                postgres_dirty_body(&model.column(columns::DIRTY_BIT)).into(),
                format!("\"{table}\"").into(),
                format!("morango_dirty_{table}").into(),
                format!("morango_delete_{table}").into(),
                format!("\"morango_dirty_{table}\"").into(),
            ],
        )
        .await?;
        if !holds {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Runs a query answering `here`: false when it returns no row.
async fn postgres_holds<C: ConnectionTrait>(
    db: &C,
    sql: &str,
    values: Vec<sea_orm::Value>,
) -> crate::error::Result<bool> {
    match crate::sql::query_one(db, "looking at the installed change tracking", sql, values).await? {
        Some(row) => crate::sql::get::<bool>(&row, "here"),
        None => Ok(false),
    }
}

fn postgres_triggers(table: &str, dirty: &str, profile: &str) -> Vec<String> {
    vec![
        format!(
            "CREATE OR REPLACE FUNCTION \"morango_dirty_{table}\"() RETURNS trigger LANGUAGE plpgsql AS \
             $fn${}$fn$",
            postgres_dirty_body(dirty)
        ),
        format!(
            "CREATE OR REPLACE TRIGGER \"morango_dirty_{table}\" BEFORE INSERT OR UPDATE ON \"{table}\" \
             FOR EACH ROW EXECUTE FUNCTION \"morango_dirty_{table}\"()"
        ),
        format!(
            "CREATE OR REPLACE TRIGGER \"morango_delete_{table}\" AFTER DELETE ON \"{table}\" \
             FOR EACH ROW EXECUTE FUNCTION morango_track_delete('{profile}')"
        ),
    ]
}
