//! The entities the engine tests sync: a facility, its learners, their logs, a tree of groups and notes with
//! a conflict hook. `v2` is the same profile as a newer peer has it: learners carry an extra `nickname`.

use sea_orm::{ConnectionTrait, DbErr, Schema};

pub mod facility {
    use morango::Syncable;
    use sea_orm::entity::prelude::*;

    /// Like Kolibri's `FacilityDataset`: the record id is the dataset id, which is the id of the facility's root
    /// certificate, so every partition of the facility starts with it.
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
        pub score: f64,
        pub active: bool,
        pub birth_date: Option<Date>,
        pub joined_at: Option<DateTimeUtc>,
        #[morango(local)]
        #[sea_orm(default_value = 0)]
        pub local_views: i32,
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
    }
}

pub mod log {
    use morango::Syncable;
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel, Syncable)]
    #[sea_orm(table_name = "contentlog")]
    #[morango(profile = "facilitydata", model_name = "contentlog", partition = "${facility_id}:user-rw:${learner_id}")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub _morango_source_id: String,
        pub _morango_partition: String,
        pub _morango_dirty_bit: bool,
        pub facility_id: String,
        pub learner_id: String,
        pub content: String,
        pub progress: f64,
        pub extra: Option<Json>,
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

pub mod group {
    use morango::Syncable;
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel, Syncable)]
    #[sea_orm(table_name = "learnergroup")]
    #[morango(
        profile = "facilitydata",
        model_name = "learnergroup",
        partition = "${facility_id}",
        source_id = "${facility_id}:${name}"
    )]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub _morango_source_id: String,
        pub _morango_partition: String,
        pub _morango_dirty_bit: bool,
        pub facility_id: String,
        pub name: String,
        pub parent_id: Option<String>,
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

pub mod note {
    use morango::{Conflict, Resolution, Syncable};
    use sea_orm::entity::prelude::*;

    /// Concurrent edits of a note keep both texts.
    pub fn merge_texts(conflict: &Conflict<'_>) -> Resolution {
        let text = |r: &morango::Record| r.get("text").and_then(|v| v.as_str()).unwrap_or_default().to_owned();
        let mut merged = conflict.local.clone();
        merged.insert("text".into(), format!("{} | {}", text(conflict.local), text(conflict.incoming)).into());
        Resolution::Merged(merged)
    }

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel, Syncable)]
    #[sea_orm(table_name = "note")]
    #[morango(profile = "facilitydata", model_name = "note", partition = "${facility_id}", on_conflict = merge_texts)]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub _morango_source_id: String,
        pub _morango_partition: String,
        pub _morango_dirty_bit: bool,
        pub facility_id: String,
        pub text: String,
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
    }
}

morango::profile!(pub FACILITY_DATA = "facilitydata": [facility::Entity, learner::Entity, log::Entity, group::Entity, note::Entity]);

/// The same profile on a peer with a newer schema: learners have a `nickname`.
pub mod v2 {
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
            pub score: f64,
            pub active: bool,
            pub birth_date: Option<Date>,
            pub joined_at: Option<DateTimeUtc>,
            pub nickname: Option<String>,
        }

        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation, morango::SyncableRelations)]
        pub enum Relation {
            #[sea_orm(
                belongs_to = "crate::schema::facility::Entity",
                from = "Column::FacilityId",
                to = "crate::schema::facility::Column::Id",
                on_delete = "Cascade"
            )]
            Facility,
        }
    }

    morango::profile!(pub FACILITY_DATA_V2 = "facilitydata": [crate::schema::facility::Entity, learner::Entity]);
}

/// Kolibri's way with collections: classrooms and learner groups are rows of one table, told apart by `kind`.
pub mod collections {
    // rustfmt re-indents attribute arguments inside `macro_rules!` on every run.
    #[rustfmt::skip]
    macro_rules! collection_model {
        ($module:ident, $model_name:literal, $kind:literal) => {
            pub mod $module {
                use morango::Syncable;
                use sea_orm::entity::prelude::*;

                #[derive(Clone, Debug, PartialEq, DeriveEntityModel, Syncable)]
                #[sea_orm(table_name = "collection")]
                #[morango(
                    profile = "facilitydata",
                    model_name = $model_name,
                    partition = "${facility_id}",
                    source_id = "${facility_id}:${kind}:${name}",
                    discriminator(kind = $kind)
                )]
                pub struct Model {
                    #[sea_orm(primary_key, auto_increment = false)]
                    pub id: String,
                    pub _morango_source_id: String,
                    pub _morango_partition: String,
                    pub _morango_dirty_bit: bool,
                    pub facility_id: String,
                    pub kind: String,
                    pub name: String,
                }

                #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation, morango::SyncableRelations)]
                pub enum Relation {
                    #[sea_orm(
                        belongs_to = "crate::schema::facility::Entity",
                        from = "Column::FacilityId",
                        to = "crate::schema::facility::Column::Id"
                    )]
                    Facility,
                }
            }
        };
    }

    collection_model!(classroom, "classroom", "classroom");
    collection_model!(learnergroup, "learnergroup", "learnergroup");

    morango::profile!(pub COLLECTIONS = "facilitydata": [crate::schema::facility::Entity, classroom::Entity, learnergroup::Entity]);
}

/// Which application tables a test database gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tables {
    /// The full test profile.
    Current,
    /// Facility and the newer learner table.
    Newer,
    /// Facility and the collection table of classrooms and learner groups.
    Collections,
}

/// Creates the application tables of a schema, parents first.
pub async fn create_tables<C: ConnectionTrait>(db: &C, tables: Tables) -> Result<(), DbErr> {
    let builder = Schema::new(db.get_database_backend());
    let mut statements = vec![builder.create_table_from_entity(facility::Entity)];
    match tables {
        Tables::Current => {
            statements.push(builder.create_table_from_entity(learner::Entity));
            statements.push(builder.create_table_from_entity(log::Entity));
            statements.push(builder.create_table_from_entity(group::Entity));
            statements.push(builder.create_table_from_entity(note::Entity));
        }
        Tables::Newer => statements.push(builder.create_table_from_entity(v2::learner::Entity)),
        Tables::Collections => statements.push(builder.create_table_from_entity(collections::classroom::Entity)),
    }
    for statement in statements {
        db.execute(&statement).await?;
    }
    Ok(())
}
