//! A profile member whose foreign-key target is not listed.

mod facility {
    use morango::{Syncable, SyncableRelations};
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel, Syncable)]
    #[sea_orm(table_name = "facility")]
    #[morango(profile = "facilitydata", model_name = "facility", partition = "p")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub _morango_source_id: String,
        pub _morango_partition: String,
        pub _morango_dirty_bit: bool,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation, SyncableRelations)]
    pub enum Relation {}
}

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
        pub _morango_partition: String,
        pub _morango_dirty_bit: bool,
        pub facility_id: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation, SyncableRelations)]
    pub enum Relation {
        #[sea_orm(
            belongs_to = "super::facility::Entity",
            from = "Column::FacilityId",
            to = "super::facility::Column::Id"
        )]
        Facility,
    }
}

morango::profile!(FACILITY_DATA = "facilitydata": [learner::Entity]);

fn main() {}
