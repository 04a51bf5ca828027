//! Kolibri 0.19.5's auth models as SeaORM entities, checked against one real record of each
//! (`fixtures/kolibri/auth_records.json`): every field reads and writes back to the same JSON, and the record's id,
//! partition and source id are what the model computes from its fields. Facilities, classrooms and groups share
//! Kolibri's collection table (a discriminator on `kind`); timezone-aware datetimes go through a field codec.

#![allow(non_snake_case)]

use morango::{Record, Syncable};
use serde_json::Value;

/// Kolibri's `DateTimeTzField` in record JSON: `"2026-11-26 06:38:45.198691(Etc/UTC)"`.
pub mod datetime_tz {
    use chrono::{DateTime, NaiveDateTime, Utc};
    use serde_json::Value;

    const FORMAT: &str = "%Y-%m-%d %H:%M:%S%.6f";
    const ZONE: &str = "(Etc/UTC)";

    pub fn to_json(value: &DateTime<Utc>) -> Value {
        Value::String(format!("{}{ZONE}", value.format(FORMAT)))
    }

    pub fn from_json(value: &Value) -> Result<DateTime<Utc>, String> {
        let text = value.as_str().ok_or_else(|| format!("expected a Kolibri datetime, got {value}"))?;
        let local = text.strip_suffix(ZONE).ok_or_else(|| format!("`{text}` is not a UTC Kolibri datetime"))?;
        NaiveDateTime::parse_from_str(local, FORMAT).map(|at| at.and_utc()).map_err(|e| format!("`{text}`: {e}"))
    }

    /// The same, for a nullable field.
    pub mod optional {
        use chrono::{DateTime, Utc};
        use serde_json::Value;

        pub fn to_json(value: &Option<DateTime<Utc>>) -> Value {
            value.as_ref().map_or(Value::Null, super::to_json)
        }

        pub fn from_json(value: &Value) -> Result<Option<DateTime<Utc>>, String> {
            if value.is_null() { Ok(None) } else { super::from_json(value).map(Some) }
        }
    }
}

pub mod facilitydataset {
    use morango::{IdError, Syncable};
    use sea_orm::entity::prelude::*;

    /// The dataset's id is its source id: the id of the facility's root certificate.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel, Syncable)]
    #[sea_orm(table_name = "kolibriauth_facilitydataset")]
    #[morango(
        profile = "facilitydata",
        model_name = "facilitydataset",
        partition = "${id}:allusers-ro",
        source_id_fn = certificate_id,
        id_fn = source_is_id
    )]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub _morango_source_id: String,
        pub _morango_partition: String,
        pub _morango_dirty_bit: bool,
        pub description: String,
        pub location: String,
        pub preset: String,
        pub learner_can_edit_username: bool,
        pub learner_can_edit_name: bool,
        pub learner_can_edit_password: bool,
        pub learner_can_sign_up: bool,
        pub learner_can_delete_account: bool,
        pub learner_can_login_with_no_password: bool,
        pub show_download_button_in_learn: bool,
        pub enable_mark_attendance: bool,
        pub picture_password_settings: String,
        pub extra_fields: String,
        pub registered: bool,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation, morango::SyncableRelations)]
    pub enum Relation {}

    fn certificate_id(model: &ActiveModel) -> Result<String, IdError> {
        model._morango_source_id.try_as_ref().cloned().ok_or(IdError::FieldNotSet("_morango_source_id"))
    }

    fn source_is_id(_partition_template: &str, source_id: &str, _model_name: &str) -> String {
        source_id.to_owned()
    }
}

macro_rules! collection {
    ($module:ident, $kind:literal) => {
        pub mod $module {
            use morango::Syncable;
            use sea_orm::entity::prelude::*;

            #[derive(Clone, Debug, PartialEq, DeriveEntityModel, Syncable)]
            #[sea_orm(table_name = "kolibriauth_collection")]
            #[morango(profile = "facilitydata", model_name = $kind, partition = "${dataset_id}:allusers-ro", discriminator(kind = $kind))]
            pub struct Model {
                #[sea_orm(primary_key, auto_increment = false)]
                pub id: String,
                pub _morango_source_id: String,
                pub _morango_partition: String,
                pub _morango_dirty_bit: bool,
                pub dataset_id: String,
                pub name: String,
                pub parent_id: Option<String>,
                pub kind: String,
            }

            #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation, morango::SyncableRelations)]
            pub enum Relation {}
        }
    };
}

collection!(facility, "facility");
collection!(classroom, "classroom");
collection!(learnergroup, "learnergroup");

pub mod facilityuser {
    use chrono::{DateTime, Utc};
    use morango::Syncable;
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel, Syncable)]
    #[sea_orm(table_name = "kolibriauth_facilityuser")]
    #[morango(profile = "facilitydata", model_name = "facilityuser", partition = "${dataset_id}:user-ro:${id}")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub _morango_source_id: String,
        pub _morango_partition: String,
        pub _morango_dirty_bit: bool,
        pub password: String,
        pub last_login: Option<DateTime<Utc>>,
        pub dataset_id: String,
        pub username: String,
        pub full_name: String,
        #[morango(with = crate::kolibri::datetime_tz)]
        pub date_joined: DateTime<Utc>,
        pub facility_id: String,
        pub gender: String,
        pub birth_year: String,
        pub id_number: String,
        pub extra_demographics: String,
        #[morango(with = crate::kolibri::datetime_tz::optional)]
        pub date_deleted: Option<DateTime<Utc>>,
        pub picture_password: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation, morango::SyncableRelations)]
    pub enum Relation {}
}

pub mod role {
    use morango::Syncable;
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel, Syncable)]
    #[sea_orm(table_name = "kolibriauth_role")]
    #[morango(
        profile = "facilitydata",
        model_name = "role",
        partition = "${dataset_id}:user-ro:${user_id}",
        source_id = "${collection_id}:${kind}"
    )]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub _morango_source_id: String,
        pub _morango_partition: String,
        pub _morango_dirty_bit: bool,
        pub dataset_id: String,
        pub user_id: String,
        pub collection_id: String,
        pub kind: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation, morango::SyncableRelations)]
    pub enum Relation {}
}

pub mod membership {
    use morango::Syncable;
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel, Syncable)]
    #[sea_orm(table_name = "kolibriauth_membership")]
    #[morango(
        profile = "facilitydata",
        model_name = "membership",
        partition = "${dataset_id}:user-ro:${user_id}",
        source_id = "${collection_id}"
    )]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub _morango_source_id: String,
        pub _morango_partition: String,
        pub _morango_dirty_bit: bool,
        pub dataset_id: String,
        pub user_id: String,
        pub collection_id: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation, morango::SyncableRelations)]
    pub enum Relation {}
}

/// Reads `record` as model `E`, writes it back, and computes its identity: what Kolibri wrote must come back.
fn check<E>(record: &Record)
where
    E: Syncable,
    E::ActiveModel: sea_orm::TryIntoModel<E::Model>,
{
    use sea_orm::TryIntoModel;
    let name = E::MODEL_NAME;
    let model = E::from_record(record).unwrap_or_else(|errors| panic!("{name}: {errors}"));
    let model = model.try_into_model().unwrap_or_else(|error| panic!("{name}: every field is set: {error}"));
    assert_eq!(&E::to_record(&model), record, "{name}: the record written back is the record read");

    let text = |key: &str| record[key].as_str().unwrap_or_default().to_owned();
    let (id, partition, source) = (text("id"), text("_morango_partition"), text("_morango_source_id"));
    let identity = E::record_identity(record).unwrap_or_else(|error| panic!("{name}: {error}"));
    assert_eq!(identity.partition_template.replace("${id}", &id), partition, "{name}: partition");
    if let Some(computed) = &identity.source_id {
        assert_eq!(computed, &source, "{name}: source id");
    }
    assert_eq!(E::compute_namespaced_id(&identity.partition_template, &source, name), id, "{name}: id");
}

#[test]
fn kolibris_auth_records_read_write_and_identify_as_kolibri_wrote_them() {
    let fixture: Value = serde_json::from_str(include_str!("../../fixtures/kolibri/auth_records.json")).unwrap();
    let records = fixture["records"].as_array().expect("records");
    let mut seen = Vec::new();
    for entry in records {
        let record = entry["record"].as_object().expect("a record").clone();
        let name = entry["model_name"].as_str().expect("a model name");
        match name {
            "facilitydataset" => check::<facilitydataset::Entity>(&record),
            "facility" => check::<facility::Entity>(&record),
            "classroom" => check::<classroom::Entity>(&record),
            "learnergroup" => check::<learnergroup::Entity>(&record),
            "facilityuser" => check::<facilityuser::Entity>(&record),
            "role" => check::<role::Entity>(&record),
            "membership" => check::<membership::Entity>(&record),
            other => panic!("no entity for {other}"),
        }
        seen.push(name);
    }
    assert_eq!(seen.len(), 7, "{seen:?}");

    // A classroom's record is not a facility's: the discriminator says whose row it is.
    let classroom = records.iter().find(|e| e["model_name"] == "classroom").unwrap()["record"].as_object().unwrap();
    use morango::registry::SyncableModel;
    let error = morango::registry::ModelOf::<facility::Entity>::NEW.record_identity(classroom);
    assert!(error.is_err_and(|e| e.to_string().contains("`kind` is not \"facility\"")));
}
