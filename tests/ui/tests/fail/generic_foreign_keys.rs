//! Django and Rails generic foreign keys; the target table is only known at run time.

mod comment {
    use morango::{Syncable, SyncableRelations};
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel, Syncable)]
    #[sea_orm(table_name = "comment")]
    #[morango(profile = "facilitydata", model_name = "comment", partition = "p")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub _morango_source_id: String,
        pub _morango_partition: String,
        pub _morango_dirty_bit: bool,
        pub content_type_id: i32,
        pub object_id: String,
        pub commentable_type: String,
        pub commentable_id: String,
        #[morango(not_generic_fk)]
        pub file_type: String,
        pub file_id: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation, SyncableRelations)]
    pub enum Relation {}
}

fn main() {}
