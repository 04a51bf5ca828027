//! A classic model with two self-referential foreign keys.

mod person {
    use morango::{Syncable, SyncableRelations};
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel, Syncable)]
    #[sea_orm(table_name = "person")]
    #[morango(profile = "facilitydata", model_name = "person", partition = "p")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub _morango_source_id: String,
        pub _morango_partition: String,
        pub _morango_dirty_bit: bool,
        pub mother_id: Option<String>,
        pub father_id: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation, SyncableRelations)]
    pub enum Relation {
        #[sea_orm(belongs_to = "Entity", from = "Column::MotherId", to = "Column::Id")]
        Mother,
        #[sea_orm(belongs_to = "Entity", from = "Column::FatherId", to = "Column::Id")]
        Father,
    }
}

fn main() {}
