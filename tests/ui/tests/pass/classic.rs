//! Classic entities: a tree (one self-referential foreign key), a foreign key, `depends_on`, extra SeaORM keys,
//! a false-positive generic foreign key marked `not_generic_fk`, and a profile.

mod facility {
    use morango::{Syncable, SyncableRelations};
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel, Syncable)]
    #[sea_orm(table_name = "facility", comment = "a school")]
    #[morango(profile = "facilitydata", model_name = "facility", partition = "${id}", source_id = "${name}")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub _morango_source_id: String,
        pub _morango_partition: String,
        pub _morango_dirty_bit: bool,
        #[sea_orm(unique, indexed, column_type = "Text", comment = "shown to users")]
        pub name: String,
        pub parent_id: Option<String>,
        #[morango(not_generic_fk)]
        pub user_type: String,
        pub user_id: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation, SyncableRelations)]
    pub enum Relation {
        #[sea_orm(belongs_to = "Entity", from = "Column::ParentId", to = "Column::Id", on_delete = "Cascade")]
        Parent,
        #[sea_orm(has_many = "super::learner::Entity")]
        Learner,
    }

    impl Related<super::learner::Entity> for Entity {
        fn to() -> RelationDef {
            Relation::Learner.def()
        }
    }
}

mod learner {
    use morango::{Syncable, SyncableRelations};
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel, Syncable)]
    #[sea_orm(table_name = "learner")]
    #[morango(
        profile = "facilitydata",
        model_name = "facilityuser",
        partition = "${facility_id}:user-ro:${id}",
        source_id = "${facility_id}:${username}"
    )]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub _morango_source_id: String,
        pub _morango_partition: String,
        pub _morango_dirty_bit: bool,
        pub facility_id: String,
        pub username: String,
        #[morango(local)]
        pub last_login: Option<String>,
        #[morango(default = 7)]
        pub age: i32,
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

    impl Related<super::facility::Entity> for Entity {
        fn to() -> RelationDef {
            Relation::Facility.def()
        }
    }
}

mod log {
    use morango::{Syncable, SyncableRelations};
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel, Syncable)]
    #[sea_orm(table_name = "log")]
    #[morango(
        profile = "facilitydata",
        model_name = "log",
        partition = "${learner_id}",
        depends_on = "super::learner::Entity"
    )]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub _morango_source_id: String,
        pub _morango_partition: String,
        pub _morango_dirty_bit: bool,
        pub learner_id: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation, SyncableRelations)]
    pub enum Relation {}
}

morango::profile!(FACILITY_DATA = "facilitydata": [log::Entity, learner::Entity, facility::Entity]);

fn main() {
    let order: Vec<&str> = FACILITY_DATA.models().map(|m| m.model_name()).collect();
    assert_eq!(order, ["facility", "facilityuser", "log"]);
}
