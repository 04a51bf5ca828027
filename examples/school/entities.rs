//! The school's data: a facility, its classrooms (a tree), its learners and their lesson progress.
//!
//! Every table carries Morango's bookkeeping columns (`id`, `_morango_source_id`, `_morango_partition`,
//! `_morango_dirty_bit`); `#[derive(Syncable)]` fills them in when a row is inserted. The partitions follow
//! Kolibri's: data everyone in the facility may read, data only a learner's devices get, and data a learner
//! writes.

use sea_orm::{ConnectionTrait, DbErr, Schema};

/// A school.
pub mod facility {
    use morango::Syncable;
    use sea_orm::entity::prelude::*;

    /// Like Kolibri's facility dataset: the record id is the dataset id, which is the id of the facility's root
    /// certificate when it syncs over the network, so that every partition of the school starts with it.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel, Syncable)]
    #[sea_orm(table_name = "facility")]
    #[morango(
        profile = "facilitydata",
        model_name = "facility",
        partition = "${id}:allusers-ro",
        source_id = "${dataset_id}",
        id_fn = dataset_id_is_the_id
    )]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub _morango_source_id: String,
        pub _morango_partition: String,
        pub _morango_dirty_bit: bool,
        pub dataset_id: String,
        pub name: String,
    }

    fn dataset_id_is_the_id(_partition_template: &str, source_id: &str, _model_name: &str) -> String {
        source_id.to_owned()
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation, morango::SyncableRelations)]
    pub enum Relation {}
}

/// A classroom, or a group inside one (`parent_id`).
pub mod classroom {
    use morango::Syncable;
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel, Syncable)]
    #[sea_orm(table_name = "classroom")]
    #[morango(
        profile = "facilitydata",
        model_name = "classroom",
        partition = "${facility_id}:allusers-ro",
        source_id = "${facility_id}:${name}"
    )]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub _morango_source_id: String,
        pub _morango_partition: String,
        pub _morango_dirty_bit: bool,
        pub facility_id: String,
        pub parent_id: Option<String>,
        pub name: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation, morango::SyncableRelations)]
    pub enum Relation {
        #[sea_orm(
            belongs_to = "super::facility::Entity",
            from = "Column::FacilityId",
            to = "super::facility::Column::Id",
            on_delete = "Cascade"
        )]
        Facility,
        #[sea_orm(belongs_to = "Entity", from = "Column::ParentId", to = "Column::Id", on_delete = "Cascade")]
        Parent,
    }
}

/// A learner: readable by the learner's own devices (`user-ro`), one per username in a facility.
pub mod learner {
    use morango::Syncable;
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel, Syncable)]
    #[sea_orm(table_name = "learner")]
    #[morango(
        profile = "facilitydata",
        model_name = "learner",
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
        pub full_name: String,
        /// The learner's classroom, if any.
        pub classroom_id: Option<String>,
        pub birth_date: Option<Date>,
        #[sea_orm(default_value = 0)]
        pub points: i32,
        #[sea_orm(default_value = true)]
        pub active: bool,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation, morango::SyncableRelations)]
    pub enum Relation {
        #[sea_orm(
            belongs_to = "super::facility::Entity",
            from = "Column::FacilityId",
            to = "super::facility::Column::Id",
            on_delete = "Cascade"
        )]
        Facility,
        #[sea_orm(
            belongs_to = "super::classroom::Entity",
            from = "Column::ClassroomId",
            to = "super::classroom::Column::Id",
            on_delete = "SetNull"
        )]
        Classroom,
    }
}

/// How far a learner got in a lesson: written by the learner's devices (`user-rw`).
pub mod lesson_progress {
    use morango::Syncable;
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel, Syncable)]
    #[sea_orm(table_name = "lessonprogress")]
    #[morango(
        profile = "facilitydata",
        model_name = "lessonprogress",
        partition = "${facility_id}:user-rw:${learner_id}",
        source_id = "${learner_id}:${lesson}"
    )]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub _morango_source_id: String,
        pub _morango_partition: String,
        pub _morango_dirty_bit: bool,
        pub facility_id: String,
        pub learner_id: String,
        pub lesson: String,
        /// From 0.0 (not started) to 1.0 (done).
        pub progress: f64,
        pub started_at: Option<DateTimeUtc>,
        /// Free-form details (answers, hints used).
        pub details: Option<Json>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation, morango::SyncableRelations)]
    pub enum Relation {
        #[sea_orm(
            belongs_to = "super::facility::Entity",
            from = "Column::FacilityId",
            to = "super::facility::Column::Id",
            on_delete = "Cascade"
        )]
        Facility,
        #[sea_orm(
            belongs_to = "super::learner::Entity",
            from = "Column::LearnerId",
            to = "super::learner::Column::Id",
            on_delete = "Cascade"
        )]
        Learner,
    }
}

morango::profile!(pub FACILITY_DATA = "facilitydata": [
    facility::Entity,
    classroom::Entity,
    learner::Entity,
    lesson_progress::Entity,
]);

/// The application tables, parents first.
pub const TABLES: [&str; 4] = ["facility", "classroom", "learner", "lessonprogress"];

/// Creates the application tables that do not exist yet, parents first.
pub async fn create_tables<C: ConnectionTrait>(db: &C) -> Result<(), DbErr> {
    let schema = Schema::new(db.get_database_backend());
    let statements = [
        schema.create_table_from_entity(facility::Entity),
        schema.create_table_from_entity(classroom::Entity),
        schema.create_table_from_entity(learner::Entity),
        schema.create_table_from_entity(lesson_progress::Entity),
    ];
    for mut statement in statements {
        statement.if_not_exists();
        db.execute(&statement).await?;
    }
    Ok(())
}
