//! Keys that contradict each other or the model; all errors are reported at once.

mod learner {
    use morango::{Syncable, SyncableRelations};
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel, Syncable)]
    #[sea_orm(table_name = "learner")]
    #[morango(profile = "", model_name = "learner", partition = "p", partition_fn = partition, custom_behavior = true, depends_on = "Entity")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub _morango_source_id: String,
        pub _morango_partition: String,
        pub _morango_dirty_bit: bool,
        #[sea_orm(ignore)]
        #[morango(local)]
        pub cache: i32,
        #[morango(local, with = codec)]
        pub draft: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation, SyncableRelations)]
    pub enum Relation {}

    fn partition(_: &ActiveModel) -> Result<String, morango::IdError> {
        Ok(String::new())
    }
}

fn main() {}
