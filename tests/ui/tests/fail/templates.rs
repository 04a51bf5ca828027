//! Template placeholders must name fields of the model; `${id}` only fits the partition.

mod learner {
    use morango::{Syncable, SyncableRelations};
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel, Syncable)]
    #[sea_orm(table_name = "learner")]
    #[morango(
        profile = "facilitydata",
        model_name = "learner",
        partition = "${facility}:user-ro:${id}",
        source_id = "${id}:${username}"
    )]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub _morango_source_id: String,
        pub _morango_partition: String,
        pub _morango_dirty_bit: bool,
        pub facility_id: String,
        pub username: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation, SyncableRelations)]
    pub enum Relation {}
}
mod log {
    use morango::{Syncable, SyncableRelations};
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel, Syncable)]
    #[sea_orm(table_name = "log")]
    #[morango(
        profile = "facilitydata",
        model_name = "log",
        partition = "${user_id",
        source_id = "${_morango_partition}"
    )]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub _morango_source_id: String,
        pub _morango_partition: String,
        pub _morango_dirty_bit: bool,
        pub user_id: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation, SyncableRelations)]
    pub enum Relation {}
}

fn main() {}
