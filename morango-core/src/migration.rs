//! Morango's bookkeeping tables, as `sea-orm-migration` migrations.
//!
//! Add [`Migration`], [`FieldReady`] and [`RecordOrder`] to your own migrator before your app tables, and
//! [`ChangeTracking`] after them:
//!
//! ```ignore
//! impl MigratorTrait for Migrator {
//!     fn migrations() -> Vec<Box<dyn MigrationTrait>> {
//!         vec![
//!             Box::new(morango::migration::Migration),
//!             Box::new(morango::migration::FieldReady),
//!             Box::new(morango::migration::RecordOrder),
//!             Box::new(m20260101_000001_app_tables::Migration),
//!             Box::new(morango::migration::ChangeTracking::new(&FACILITY_DATA)),
//!         ]
//!     }
//! }
//! ```
//! Applications without a migrator call [`migrate`] instead. Table names are Python Morango's.

use sea_orm::DbErr;
use sea_orm_migration::prelude::*;

use crate::profile::Profile;
use crate::tracking;

/// Creates Morango's bookkeeping tables.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261126_000001_morango_bookkeeping"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in tables() {
            manager.create_table(table).await?;
        }
        for index in indexes() {
            manager.create_index(index).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in tables().iter().rev() {
            let name = table.get_table_name().cloned();
            if let Some(name) = name {
                manager.drop_table(Table::drop().table(name).if_exists().to_owned()).await?;
            }
        }
        Ok(())
    }
}

/// What field-ready syncs keep: refused records, the producer's queue of record ids, and per transfer the counts of
/// refused records and records of undeclared models and the bytes it buffers.
pub struct FieldReady;

impl MigrationName for FieldReady {
    fn name(&self) -> &str {
        "m20261205_000001_morango_field_ready"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for FieldReady {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [counter("records_refused"), counter("records_of_unknown_models"), counter("bytes_buffered")] {
            // One column per statement: SQLite alters one at a time.
            manager.alter_table(Table::alter().table(T::TransferSession).add_column(column).to_owned()).await?;
        }
        let refused = Table::create()
            .table(T::RefusedRecord)
            .if_not_exists()
            .col(ColumnDef::new(Alias::new("id")).big_integer().not_null().auto_increment().primary_key())
            .col(id32("transfer_session_id"))
            .col(ColumnDef::new(Alias::new("peer_instance_id")).string_len(32).null())
            // False: this database refused a record it received. True: the peer refused one this database sent.
            .col(flag("by_peer"))
            .col(text("model_uuid"))
            .col(text("model_name"))
            .col(text("partition"))
            .col(text("source_id"))
            .col(text("last_saved_instance"))
            .col(counter("last_saved_counter"))
            .col(text("reason"))
            .col(timestamp("refused_at"))
            .to_owned();
        let queue = Table::create()
            .table(T::TransferQueue)
            .if_not_exists()
            .col(id32("transfer_session_id"))
            .col(counter("seq"))
            .col(id32("model_uuid"))
            .primary_key(Index::create().col(Alias::new("transfer_session_id")).col(Alias::new("seq")))
            .to_owned();
        for table in [refused, queue] {
            manager.create_table(table).await?;
        }
        for index in [
            index(
                "morango_refusedrecord_record",
                T::RefusedRecord,
                &["transfer_session_id", "model_uuid", "by_peer"],
                true,
            ),
            index("morango_refusedrecord_time", T::RefusedRecord, &["refused_at"], false),
            index("morango_transferqueue_record", T::TransferQueue, &["transfer_session_id", "model_uuid"], true),
            index(
                "morango_transfersession_activity",
                T::TransferSession,
                &["active", "last_activity_timestamp"],
                false,
            ),
            index(
                "morango_syncsession_client",
                T::SyncSession,
                &["client_instance_id", "client_certificate_id"],
                false,
            ),
        ] {
            manager.create_index(index).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [T::RefusedRecord, T::TransferQueue] {
            manager.drop_table(Table::drop().table(table).if_exists().to_owned()).await?;
        }
        for column in ["records_refused", "records_of_unknown_models", "bytes_buffered"] {
            manager
                .alter_table(Table::alter().table(T::TransferSession).drop_column(Alias::new(column)).to_owned())
                .await?;
        }
        Ok(())
    }
}

/// The order in which the store received its records, so that records leave in the order they were saved or
/// received (within the profile's dependency order): a relay passes records on in the order their sender sent
/// them, and applications that check one record against earlier ones (Kolibri's memberships) accept them. SQLite
/// keeps that order in the store's rowids; PostgreSQL gets a `seq` column numbered as rows are inserted.
pub struct RecordOrder;

impl MigrationName for RecordOrder {
    fn name(&self) -> &str {
        "m20261205_000002_morango_record_order"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for RecordOrder {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == sea_orm::DbBackend::Postgres {
            manager
                .get_connection()
                .execute_unprepared("ALTER TABLE morango_store ADD COLUMN IF NOT EXISTS seq BIGSERIAL")
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == sea_orm::DbBackend::Postgres {
            manager.get_connection().execute_unprepared("ALTER TABLE morango_store DROP COLUMN IF EXISTS seq").await?;
        }
        Ok(())
    }
}

/// Installs the change-tracking triggers of a profile's tables (run it after the migrations creating them).
pub struct ChangeTracking {
    profile: &'static Profile,
    name: String,
}

impl ChangeTracking {
    /// The change-tracking migration of `profile`.
    pub fn new(profile: &'static Profile) -> Self {
        ChangeTracking { profile, name: format!("m20261126_000002_morango_change_tracking_{}", profile.name()) }
    }

    /// The same migration under another name, for a profile whose tables changed in a later migration.
    pub fn named(profile: &'static Profile, name: impl Into<String>) -> Self {
        ChangeTracking { profile, name: name.into() }
    }
}

impl MigrationName for ChangeTracking {
    fn name(&self) -> &str {
        &self.name
    }
}

#[async_trait::async_trait]
impl MigrationTrait for ChangeTracking {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        tracking::install(manager.get_connection(), self.profile).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        tracking::uninstall(manager.get_connection(), self.profile).await
    }
}

/// A migrator holding only Morango's bookkeeping migration, for applications without their own.
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(Migration), Box::new(FieldReady), Box::new(RecordOrder)]
    }
}

/// Creates (or brings up to date) Morango's bookkeeping tables in `db`. On PostgreSQL, processes that start
/// together on one database take turns (an advisory lock around one transaction): the second finds the tables
/// made.
pub async fn migrate(db: &sea_orm::DatabaseConnection) -> Result<(), DbErr> {
    use sea_orm::TransactionTrait;
    if db.get_database_backend() != sea_orm::DbBackend::Postgres {
        return Migrator::up(db, None).await;
    }
    let txn = db.begin().await?;
    crate::engine::lock_for(&txn, "morango:migrate").await.map_err(|error| DbErr::Custom(error.to_string()))?;
    Migrator::up(&txn, None).await?;
    txn.commit().await
}

#[derive(DeriveIden)]
enum T {
    #[sea_orm(iden = "morango_databaseidmodel")]
    DatabaseId,
    #[sea_orm(iden = "morango_instanceidmodel")]
    InstanceId,
    #[sea_orm(iden = "morango_store")]
    Store,
    #[sea_orm(iden = "morango_recordmaxcounter")]
    RecordMaxCounter,
    #[sea_orm(iden = "morango_databasemaxcounter")]
    DatabaseMaxCounter,
    #[sea_orm(iden = "morango_buffer")]
    Buffer,
    #[sea_orm(iden = "morango_recordmaxcounterbuffer")]
    RecordMaxCounterBuffer,
    #[sea_orm(iden = "morango_syncsession")]
    SyncSession,
    #[sea_orm(iden = "morango_transfersession")]
    TransferSession,
    #[sea_orm(iden = "morango_deletedmodels")]
    DeletedModels,
    #[sea_orm(iden = "morango_harddeletedmodels")]
    HardDeletedModels,
    #[sea_orm(iden = "morango_certificate")]
    Certificate,
    #[sea_orm(iden = "morango_scopedefinition")]
    ScopeDefinition,
    #[sea_orm(iden = "morango_nonce")]
    Nonce,
    #[sea_orm(iden = "morango_sharedkey")]
    SharedKey,
    #[sea_orm(iden = "morango_apply_guard")]
    ApplyGuard,
    #[sea_orm(iden = "morango_refusedrecord")]
    RefusedRecord,
    #[sea_orm(iden = "morango_transferqueue")]
    TransferQueue,
}

fn id32(name: &'static str) -> ColumnDef {
    ColumnDef::new(Alias::new(name)).string_len(32).not_null().to_owned()
}

fn text(name: &'static str) -> ColumnDef {
    ColumnDef::new(Alias::new(name)).text().not_null().to_owned()
}

fn text_default(name: &'static str) -> ColumnDef {
    ColumnDef::new(Alias::new(name)).text().not_null().default("").to_owned()
}

fn nullable_text(name: &'static str) -> ColumnDef {
    ColumnDef::new(Alias::new(name)).text().null().to_owned()
}

fn flag(name: &'static str) -> ColumnDef {
    ColumnDef::new(Alias::new(name)).boolean().not_null().default(false).to_owned()
}

fn counter(name: &'static str) -> ColumnDef {
    ColumnDef::new(Alias::new(name)).big_integer().not_null().default(0).to_owned()
}

fn timestamp(name: &'static str) -> ColumnDef {
    ColumnDef::new(Alias::new(name)).timestamp_with_time_zone().not_null().to_owned()
}

/// The columns a store row and a buffer row share (Morango's `AbstractStore`).
fn abstract_store(table: &mut TableCreateStatement) {
    table
        .col(text("profile"))
        .col(text("serialized"))
        .col(flag("deleted"))
        .col(flag("hard_deleted"))
        .col(id32("last_saved_instance"))
        .col(counter("last_saved_counter"))
        .col(text("partition"))
        .col(text("source_id"))
        .col(text("model_name"))
        .col(text_default("conflicting_serialized_data"))
        .col(text_default("_self_ref_fk"));
}

fn tables() -> Vec<TableCreateStatement> {
    let mut store = Table::create().table(T::Store).if_not_exists().col(id32("id").primary_key()).to_owned();
    abstract_store(&mut store);
    store
        .col(ColumnDef::new(Alias::new("dirty_bit")).boolean().not_null().default(false))
        .col(nullable_text("deserialization_error"))
        .col(ColumnDef::new(Alias::new("last_transfer_session_id")).string_len(32).null())
        // blake3 of the application-side record JSON at the last serialization; NULL when unknown.
        .col(ColumnDef::new(Alias::new("app_digest")).string_len(64).null());

    let mut buffer = Table::create()
        .table(T::Buffer)
        .if_not_exists()
        .col(ColumnDef::new(Alias::new("id")).big_integer().not_null().auto_increment().primary_key())
        .col(id32("transfer_session_id"))
        .col(id32("model_uuid"))
        // Position in the transfer's queue (0-based): pages are `seq` ranges, not OFFSET scans.
        .col(counter("seq"))
        .to_owned();
    abstract_store(&mut buffer);

    vec![
        Table::create()
            .table(T::DatabaseId)
            .if_not_exists()
            .col(id32("id").primary_key())
            .col(flag("current"))
            .col(timestamp("date_generated"))
            .col(ColumnDef::new(Alias::new("initial_instance_id")).string_len(32).null())
            .to_owned(),
        Table::create()
            .table(T::InstanceId)
            .if_not_exists()
            .col(id32("id").primary_key())
            .col(text_default("platform"))
            .col(text_default("hostname"))
            .col(text_default("sysversion"))
            .col(text_default("node_id"))
            .col(counter("counter"))
            .col(flag("current"))
            .col(text_default("db_path"))
            .col(text_default("system_id"))
            .col(id32("database_id"))
            .to_owned(),
        store,
        Table::create()
            .table(T::RecordMaxCounter)
            .if_not_exists()
            .col(id32("store_model_id"))
            .col(id32("instance_id"))
            .col(counter("counter"))
            .primary_key(Index::create().col(Alias::new("store_model_id")).col(Alias::new("instance_id")))
            .to_owned(),
        Table::create()
            .table(T::DatabaseMaxCounter)
            .if_not_exists()
            .col(id32("instance_id"))
            .col(text("partition"))
            .col(counter("counter"))
            .primary_key(Index::create().col(Alias::new("instance_id")).col(Alias::new("partition")))
            .to_owned(),
        buffer,
        Table::create()
            .table(T::RecordMaxCounterBuffer)
            .if_not_exists()
            .col(id32("transfer_session_id"))
            .col(id32("model_uuid"))
            .col(id32("instance_id"))
            .col(counter("counter"))
            .primary_key(
                Index::create()
                    .col(Alias::new("transfer_session_id"))
                    .col(Alias::new("model_uuid"))
                    .col(Alias::new("instance_id")),
            )
            .to_owned(),
        Table::create()
            .table(T::SyncSession)
            .if_not_exists()
            .col(id32("id").primary_key())
            .col(timestamp("start_timestamp"))
            .col(timestamp("last_activity_timestamp"))
            .col(flag("active"))
            .col(flag("is_server"))
            .col(ColumnDef::new(Alias::new("client_certificate_id")).string_len(32).null())
            .col(ColumnDef::new(Alias::new("server_certificate_id")).string_len(32).null())
            .col(text("profile"))
            .col(text("connection_kind"))
            .col(text_default("connection_path"))
            .col(text_default("client_ip"))
            .col(text_default("server_ip"))
            .col(ColumnDef::new(Alias::new("client_instance_id")).string_len(32).null())
            .col(text_default("client_instance_json"))
            .col(ColumnDef::new(Alias::new("server_instance_id")).string_len(32).null())
            .col(text_default("server_instance_json"))
            .col(text_default("extra_fields"))
            .col(text_default("process_id"))
            // MORANGO_RS_SIGNED_REQUESTS: every request of the session is signed by the client certificate, with
            // a sequence number that must grow (spec §15 W2).
            .col(flag("signed_requests"))
            .col(counter("request_sequence"))
            .to_owned(),
        Table::create()
            .table(T::TransferSession)
            .if_not_exists()
            .col(id32("id").primary_key())
            .col(text("filter"))
            .col(flag("push"))
            .col(flag("active"))
            .col(counter("records_transferred"))
            .col(ColumnDef::new(Alias::new("records_total")).big_integer().null())
            .col(counter("bytes_sent"))
            .col(counter("bytes_received"))
            .col(id32("sync_session_id"))
            .col(timestamp("start_timestamp"))
            .col(timestamp("last_activity_timestamp"))
            .col(ColumnDef::new(Alias::new("client_fsic")).text().not_null().default("{}"))
            .col(ColumnDef::new(Alias::new("server_fsic")).text().not_null().default("{}"))
            .col(flag("fsic_v2"))
            .col(text_default("transfer_stage"))
            .col(text_default("transfer_stage_status"))
            .to_owned(),
        Table::create()
            .table(T::DeletedModels)
            .if_not_exists()
            .col(id32("id").primary_key())
            .col(text("profile"))
            .to_owned(),
        Table::create()
            .table(T::HardDeletedModels)
            .if_not_exists()
            .col(id32("id").primary_key())
            .col(text("profile"))
            .to_owned(),
        Table::create()
            .table(T::Certificate)
            .if_not_exists()
            .col(id32("id").primary_key())
            .col(ColumnDef::new(Alias::new("parent_id")).string_len(32).null())
            .col(text("profile"))
            .col(text("scope_definition_id"))
            .col(ColumnDef::new(Alias::new("scope_version")).integer().not_null())
            .col(text("scope_params"))
            .col(text("public_key"))
            .col(text_default("salt"))
            .col(text("serialized"))
            .col(text("signature"))
            .col(nullable_text("private_key"))
            .to_owned(),
        Table::create()
            .table(T::ScopeDefinition)
            .if_not_exists()
            .col(ColumnDef::new(Alias::new("id")).string_len(20).not_null().primary_key())
            .col(text("profile"))
            .col(ColumnDef::new(Alias::new("version")).integer().not_null())
            .col(text_default("primary_scope_param_key"))
            .col(text_default("description"))
            .col(text_default("read_filter_template"))
            .col(text_default("write_filter_template"))
            .col(text_default("read_write_filter_template"))
            .to_owned(),
        Table::create()
            .table(T::Nonce)
            .if_not_exists()
            .col(id32("id").primary_key())
            .col(timestamp("timestamp"))
            .col(text_default("ip"))
            .to_owned(),
        Table::create()
            .table(T::SharedKey)
            .if_not_exists()
            .col(ColumnDef::new(Alias::new("id")).integer().not_null().auto_increment().primary_key())
            .col(text("public_key"))
            .col(text("private_key"))
            .col(flag("current"))
            .to_owned(),
        // Holds one row only inside a transaction in which Morango itself writes app tables (SQLite), so the
        // change-tracking triggers can tell those writes from the application's.
        Table::create()
            .table(T::ApplyGuard)
            .if_not_exists()
            .col(ColumnDef::new(Alias::new("kind")).string_len(16).not_null().primary_key())
            .to_owned(),
    ]
}

fn index(name: &str, table: T, cols: &[&'static str], unique: bool) -> IndexCreateStatement {
    let mut stmt = Index::create().name(name).table(table).if_not_exists().to_owned();
    for col in cols {
        stmt.col(Alias::new(*col));
    }
    if unique {
        stmt.unique();
    }
    stmt
}

fn indexes() -> Vec<IndexCreateStatement> {
    vec![
        // Deserialization pages through one model's dirty rows in id order.
        index("morango_store_dirty", T::Store, &["dirty_bit", "profile", "model_name", "deleted", "id"], false),
        index("morango_store_version", T::Store, &["last_saved_instance", "last_saved_counter"], false),
        index("morango_buffer_model", T::Buffer, &["transfer_session_id", "model_uuid"], true),
        index("morango_buffer_seq", T::Buffer, &["transfer_session_id", "seq"], false),
        index("morango_recordmaxcounter_instance", T::RecordMaxCounter, &["instance_id"], false),
        index("morango_transfersession_sync", T::TransferSession, &["sync_session_id", "push", "active"], false),
        // Descendants of a certificate (`primary_partition`) are found through parent_id.
        index("morango_certificate_parent", T::Certificate, &["parent_id"], false),
    ]
}
