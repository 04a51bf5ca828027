//! A small "facilitydata" profile in both SeaORM entity formats.
//!
//! `facility` and `learner` use the compact format (`#[sea_orm::compact_model]`: `Model` + `enum Relation`, which
//! dense entities can refer to), `collection` (a tree) and `membership` (the junction of a many-to-many relation)
//! the dense `#[sea_orm::model]` format, and `note` the plain classic format; it also opts out of the generated
//! behaviour and computes its ids with functions.

// SeaORM's `ActiveModelEx` (compact and dense formats) names a field's setter `set_<field>`, so the bookkeeping
// fields get `set__morango_partition` and friends.
#![allow(non_snake_case)]

pub mod facility {
    use morango::{Syncable, SyncableRelations};
    use sea_orm::entity::prelude::*;

    #[sea_orm::compact_model]
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel, Syncable)]
    #[sea_orm(table_name = "facility")]
    #[morango(profile = "facilitydata", model_name = "facility", partition = "${id}", source_id = "${name}")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub _morango_source_id: String,
        pub _morango_partition: String,
        pub _morango_dirty_bit: bool,
        pub name: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation, SyncableRelations)]
    pub enum Relation {}
}

pub mod learner {
    use morango::{Syncable, SyncableRelations};
    use sea_orm::entity::prelude::*;

    /// Kolibri's `FacilityUser`: partition `<facility>:user-ro:${id}`, source `<facility>:<username>`.
    #[sea_orm::compact_model]
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
        #[sea_orm(column_name = "full_name")]
        pub fullname: Option<String>,
        #[morango(local)]
        pub last_login: Option<String>,
        #[morango(default = 7)]
        pub age: i32,
        #[sea_orm(ignore)]
        pub scratch: u8,
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

pub mod collection {
    use morango::Syncable;
    use sea_orm::entity::prelude::*;

    /// A tree: the one self-referential foreign key is allowed.
    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel, Syncable)]
    #[sea_orm(table_name = "collection")]
    #[morango(profile = "facilitydata", model_name = "collection", partition = "${facility_id}")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub _morango_source_id: String,
        pub _morango_partition: String,
        pub _morango_dirty_bit: bool,
        pub facility_id: String,
        pub parent_id: Option<String>,
        pub name: String,
        #[sea_orm(belongs_to, from = "facility_id", to = "id")]
        pub facility: BelongsTo<super::facility::Entity>,
        #[sea_orm(self_ref, relation_enum = "Parent", from = "parent_id", to = "id")]
        pub parent: BelongsTo<Option<Entity>>,
        #[sea_orm(has_many, via = "membership")]
        pub learners: HasMany<super::learner::Entity>,
    }
}

pub mod membership {
    use morango::Syncable;
    use sea_orm::entity::prelude::*;

    /// The junction of `collection.learners`, itself a syncable model of the profile.
    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel, Syncable)]
    #[sea_orm(table_name = "membership")]
    #[morango(
        profile = "facilitydata",
        model_name = "membership",
        partition = "${collection_id}",
        source_id = "${collection_id}:${learner_id}"
    )]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub _morango_source_id: String,
        pub _morango_partition: String,
        pub _morango_dirty_bit: bool,
        pub collection_id: String,
        pub learner_id: String,
        #[sea_orm(belongs_to, from = "collection_id", to = "id")]
        pub collection: BelongsTo<super::collection::Entity>,
        #[sea_orm(belongs_to, from = "learner_id", to = "id")]
        pub learner: BelongsTo<super::learner::Entity>,
    }
}

pub mod note {
    use morango::{Conflict, IdError, Resolution, Syncable, SyncableRelations};
    use sea_orm::entity::prelude::*;

    /// Ids from functions, a conflict hook, an ordering dependency without a foreign key, and its own behaviour.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel, Syncable)]
    #[sea_orm(table_name = "note")]
    #[morango(
        profile = "facilitydata",
        model_name = "note",
        partition_fn = partition,
        source_id_fn = source_id,
        id_fn = namespaced_id,
        on_conflict = keep_longer,
        depends_on = ["super::collection::Entity", super::learner::Entity],
        custom_behavior
    )]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub _morango_source_id: String,
        pub _morango_partition: String,
        pub _morango_dirty_bit: bool,
        pub collection_id: String,
        pub text: String,
        #[morango(with = kolibri_datetime)]
        pub written: Option<chrono::NaiveDateTime>,
    }

    /// Kolibri's `DateTimeTzField` in record JSON: `"2026-01-01 10:00:00.000000(Etc/UTC)"`.
    pub mod kolibri_datetime {
        use chrono::NaiveDateTime;
        use serde_json::Value;

        const FORMAT: &str = "%Y-%m-%d %H:%M:%S%.6f(Etc/UTC)";

        pub fn to_json(value: &Option<NaiveDateTime>) -> Value {
            value.map_or(Value::Null, |at| Value::String(at.format(FORMAT).to_string()))
        }

        pub fn from_json(value: &Value) -> Result<Option<NaiveDateTime>, String> {
            match value {
                Value::Null => Ok(None),
                Value::String(text) => NaiveDateTime::parse_from_str(text, FORMAT).map(Some).map_err(|e| e.to_string()),
                other => Err(format!("expected a date and time, got {other}")),
            }
        }
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation, SyncableRelations)]
    pub enum Relation {}

    fn partition(model: &ActiveModel) -> Result<String, IdError> {
        let collection = model.collection_id.try_as_ref().ok_or(IdError::FieldNotSet("collection_id"))?;
        Ok(format!("{collection}:notes:${{id}}"))
    }

    fn source_id(model: &ActiveModel) -> Result<String, IdError> {
        model.text.try_as_ref().map(|text| format!("note:{text}")).ok_or(IdError::Custom("no text".into()))
    }

    fn namespaced_id(partition_template: &str, source_id: &str, model_name: &str) -> String {
        morango::ids::sha2_uuid(&[model_name, source_id, partition_template])
    }

    fn keep_longer(conflict: &Conflict<'_>) -> Resolution {
        let len = |record: &morango::Record| record.get("text").and_then(|t| t.as_str()).map_or(0, str::len);
        if len(conflict.incoming) > len(conflict.local) { Resolution::TakeIncoming } else { Resolution::KeepLocal }
    }

    #[async_trait::async_trait]
    impl ActiveModelBehavior for ActiveModel {
        async fn before_save<C>(self, _db: &C, insert: bool) -> Result<Self, DbErr>
        where
            C: ConnectionTrait,
        {
            let mut model = if insert {
                morango::registry::assign_ids::<Entity>(self).map_err(|e| DbErr::Custom(e.to_string()))?
            } else {
                self
            };
            model._morango_dirty_bit = sea_orm::ActiveValue::Set(true);
            Ok(model)
        }
    }
}

morango::profile!(pub FACILITY_DATA = "facilitydata": [
    membership::Entity,
    note::Entity,
    learner::Entity,
    collection::Entity,
    facility::Entity,
]);
