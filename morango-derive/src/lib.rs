//! `#[derive(Syncable)]` and `#[derive(SyncableRelations)]` for SeaORM entities.
