//! A dense model with two self-referential foreign keys.

#![allow(non_snake_case)]

mod person {
    use morango::Syncable;
    use sea_orm::entity::prelude::*;

    #[sea_orm::model]
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
        #[sea_orm(self_ref, relation_enum = "Mother", from = "mother_id", to = "id")]
        pub mother: BelongsTo<Option<Entity>>,
        #[sea_orm(self_ref, relation_enum = "Father", from = "father_id", to = "id")]
        pub father: BelongsTo<Option<Entity>>,
    }
}

fn main() {}
