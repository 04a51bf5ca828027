//! Missing, mistyped and renamed bookkeeping fields.

mod learner {
    use morango::{Syncable, SyncableRelations};
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel, Syncable)]
    #[sea_orm(table_name = "learner")]
    #[morango(profile = "facilitydata", model_name = "learner", partition = "p")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub _morango_source_id: String,
        pub username: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation, SyncableRelations)]
    pub enum Relation {}
}
mod log {
    use morango::{Syncable, SyncableRelations};
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel, Syncable)]
    #[sea_orm(table_name = "log", rename_all = "camelCase")]
    #[morango(profile = "facilitydata", model_name = "log", partition = "p")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        #[sea_orm(column_name = "source")]
        pub _morango_source_id: String,
        pub _morango_partition: Option<String>,
        #[morango(local)]
        pub _morango_dirty_bit: i32,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation, SyncableRelations)]
    pub enum Relation {}
}

fn main() {}
