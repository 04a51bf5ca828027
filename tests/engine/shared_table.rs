//! Several models in one table, told apart by a discriminator column (Kolibri keeps facilities, classrooms and
//! groups in one collection table, with a `kind`): each model serializes, deletes and applies only its own rows, and
//! a received record whose discriminator is not its model's is refused.

use morango::{BufferRecord, Filter, RmcbRecord};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ConnectionTrait, DatabaseConnection, EntityTrait, Statement};

use crate::fixtures;
use crate::on_both_backends;
use crate::schema::Tables;
use crate::schema::collections::{COLLECTIONS, classroom, learnergroup};
use crate::support::{Backend, Peer};

on_both_backends!(
    models_sharing_a_table_each_sync_their_own_rows,
    models_sharing_a_table_without_a_discriminator_are_refused
);

/// Two models on one table, one of them without a discriminator.
mod undiscriminated {
    pub mod room {
        use morango::Syncable;
        use sea_orm::entity::prelude::*;

        #[derive(Clone, Debug, PartialEq, DeriveEntityModel, Syncable)]
        #[sea_orm(table_name = "collection")]
        #[morango(
            profile = "facilitydata",
            model_name = "room",
            partition = "${facility_id}",
            discriminator(kind = "room")
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
        pub enum Relation {}
    }

    pub mod anything {
        use morango::Syncable;
        use sea_orm::entity::prelude::*;

        #[derive(Clone, Debug, PartialEq, DeriveEntityModel, Syncable)]
        #[sea_orm(table_name = "collection")]
        #[morango(profile = "facilitydata", model_name = "anything", partition = "${facility_id}")]
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
        pub enum Relation {}
    }

    morango::profile!(pub PROFILE = "facilitydata": [room::Entity, anything::Entity]);
}

/// The engine does not open on a profile whose models share a table without each saying which rows are theirs: the
/// one without would serialize the other's rows as its own.
async fn models_sharing_a_table_without_a_discriminator_are_refused(backend: Backend) {
    let db = crate::support::TestDb::new(backend).await;
    morango::migration::migrate(&db.db).await.expect("Morango's tables");
    let error = morango::Engine::open(db.db.clone(), &undiscriminated::PROFILE).await.expect_err("refused");
    let message = error.to_string();
    assert!(message.contains("models `room` and `anything` share the table `collection`"), "{message}");
    assert!(message.contains("discriminator"), "{message}");
    db.finish().await;
}

/// The model name and deletion flag of every store row, by id.
async fn stored(db: &DatabaseConnection) -> Vec<(String, String, bool)> {
    let sql = "SELECT id, model_name, deleted FROM morango_store ORDER BY model_name, id";
    let rows = db.query_all_raw(Statement::from_string(db.get_database_backend(), sql)).await.unwrap();
    rows.iter()
        .map(|row| {
            (
                row.try_get("", "id").unwrap(),
                row.try_get("", "model_name").unwrap(),
                row.try_get("", "deleted").unwrap(),
            )
        })
        .collect()
}

/// The `(kind, name)` of every row of the shared table.
async fn collection_rows(db: &DatabaseConnection) -> Vec<(String, String)> {
    let sql = "SELECT kind, name FROM collection ORDER BY kind, name";
    let rows = db.query_all_raw(Statement::from_string(db.get_database_backend(), sql)).await.unwrap();
    rows.iter().map(|row| (row.try_get("", "kind").unwrap(), row.try_get("", "name").unwrap())).collect()
}

async fn models_sharing_a_table_each_sync_their_own_rows(backend: Backend) {
    let tablet = Peer::with(backend, Tables::Collections, &COLLECTIONS, 500).await;
    let office = Peer::with(backend, Tables::Collections, &COLLECTIONS, 500).await;
    let facility = fixtures::facility(tablet.db(), "Riverside").await;
    let class = classroom::ActiveModel {
        facility_id: Set(facility.id.clone()),
        kind: Set("classroom".into()),
        name: Set("Class A".into()),
        ..Default::default()
    }
    .insert(tablet.db())
    .await
    .expect("a classroom");
    let group = learnergroup::ActiveModel {
        facility_id: Set(facility.id.clone()),
        kind: Set("learnergroup".into()),
        name: Set("Group 1".into()),
        ..Default::default()
    }
    .insert(tablet.db())
    .await
    .expect("a group");

    tablet.sync_all(&office).await;
    let expected = |group_deleted: bool| {
        let mut rows = vec![
            (class.id.clone(), "classroom".to_owned(), false),
            (facility.id.clone(), "facility".to_owned(), false),
            (group.id.clone(), "learnergroup".to_owned(), group_deleted),
        ];
        rows.sort_by(|a, b| (&a.1, &a.0).cmp(&(&b.1, &b.0)));
        rows
    };
    assert_eq!(stored(tablet.db()).await, expected(false), "each row serialized once, under its own model");
    assert_eq!(stored(office.db()).await, expected(false));
    let both = vec![("classroom".to_owned(), "Class A".to_owned()), ("learnergroup".to_owned(), "Group 1".to_owned())];
    assert_eq!(collection_rows(office.db()).await, both, "each applied once");

    // Deleting the group deletes the group's record, not the classroom's.
    learnergroup::Entity::delete_by_id(group.id.clone()).exec(office.db()).await.expect("delete the group");
    office.sync_all(&tablet).await;
    assert_eq!(stored(office.db()).await, expected(true));
    assert_eq!(stored(tablet.db()).await, expected(true));
    assert_eq!(collection_rows(tablet.db()).await, both[..1]);

    // A record that says it is a classroom but whose kind says otherwise is refused.
    let json = serde_json::json!({
        "id": class.id, "_morango_source_id": class._morango_source_id, "_morango_partition": facility.id,
        "facility_id": facility.id, "kind": "learnergroup", "name": "Class A",
    });
    let forged = BufferRecord {
        serialized: json.to_string(),
        deleted: false,
        last_saved_instance: "0123456789abcdef0123456789abcdef".into(),
        last_saved_counter: 99,
        hard_deleted: false,
        partition: facility.id.clone(),
        source_id: class._morango_source_id.clone(),
        model_name: "classroom".into(),
        conflicting_serialized_data: String::new(),
        model_uuid: class.id.clone(),
        transfer_session: "0123456789abcdef0123456789abcdef".into(),
        profile: "facilitydata".into(),
        rmcb_list: vec![RmcbRecord {
            transfer_session: "0123456789abcdef0123456789abcdef".into(),
            model_uuid: class.id.clone(),
            instance_id: "0123456789abcdef0123456789abcdef".into(),
            counter: 99,
        }],
        _self_ref_fk: String::new(),
    };
    let filter = Filter::new([facility.id.clone()]);
    let checked =
        morango::validation::check_chunk(vec![forged], "0123456789abcdef0123456789abcdef", &filter, &COLLECTIONS)
            .expect("a well-formed chunk");
    assert!(checked.accepted.is_empty(), "refused");
    assert!(checked.refused[0].reason.contains("`kind` is not \"classroom\""), "{:?}", checked.refused);
    tablet.finish().await;
    office.finish().await;
}
