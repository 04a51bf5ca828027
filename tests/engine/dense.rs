//! SeaORM 2's dense (`#[sea_orm::model]`) and compact entity formats sync like classic ones: the entities of
//! the derive tests (a compact facility and learner, a dense tree of collections, a dense junction) between
//! two real databases.

#[path = "../derive/entities.rs"]
mod entities;

use entities::{collection, facility, learner, membership};
use morango::{Engine, Filter, SyncOptions};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ConnectionTrait, EntityTrait, QueryOrder, Schema};

use crate::on_both_backends;
use crate::support::{Backend, TestDb};

on_both_backends!(dense_and_compact_entities_sync_a_tree_and_a_junction);

async fn peer(backend: Backend) -> (TestDb, Engine) {
    let test_db = TestDb::new(backend).await;
    morango::migration::migrate(&test_db.db).await.unwrap();
    let schema = Schema::new(test_db.db.get_database_backend());
    for table in [
        schema.create_table_from_entity(facility::Entity),
        schema.create_table_from_entity(learner::Entity),
        schema.create_table_from_entity(collection::Entity),
        schema.create_table_from_entity(membership::Entity),
        schema.create_table_from_entity(entities::note::Entity),
    ] {
        test_db.db.execute(&table).await.unwrap();
    }
    let engine = Engine::builder(test_db.db.clone(), &entities::FACILITY_DATA).chunk_size(2).open().await.unwrap();
    (test_db, engine)
}

async fn dense_and_compact_entities_sync_a_tree_and_a_junction(backend: Backend) {
    let ((a_db, a), (b_db, b)) = (peer(backend).await, peer(backend).await);
    let db = a.db();
    let school =
        facility::ActiveModel { name: Set("Riverside".into()), ..Default::default() }.insert(db).await.unwrap();
    let ada = learner::ActiveModel {
        facility_id: Set(school.id.clone()),
        username: Set("ada".into()),
        fullname: Set(Some("Ada".into())),
        last_login: Set(None),
        age: Set(9),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap();
    let mut parent: Option<String> = None;
    let mut leaf = String::new();
    for depth in 0..5 {
        let node = collection::ActiveModel {
            facility_id: Set(school.id.clone()),
            parent_id: Set(parent.clone()),
            name: Set(format!("level {depth}")),
            ..Default::default()
        }
        .insert(db)
        .await
        .unwrap();
        parent = Some(node.id.clone());
        leaf = node.id;
    }
    membership::ActiveModel { collection_id: Set(leaf.clone()), learner_id: Set(ada.id.clone()), ..Default::default() }
        .insert(db)
        .await
        .unwrap();

    morango::sync_local(&b, &a, &SyncOptions::new(Filter::everything())).await.unwrap();

    let tree = |db: &sea_orm::DatabaseConnection| {
        let db = db.clone();
        async move {
            collection::Entity::find()
                .order_by_asc(collection::Column::Id)
                .all(&db)
                .await
                .unwrap()
                .into_iter()
                .map(|c| (c.id, c.parent_id, c.name))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(tree(b.db()).await, tree(a.db()).await, "the whole tree arrived, parents first");
    let joined = membership::Entity::find().all(b.db()).await.unwrap();
    assert_eq!(joined.len(), 1);
    assert_eq!((joined[0].collection_id.as_str(), joined[0].learner_id.as_str()), (leaf.as_str(), ada.id.as_str()));
    let here = learner::Entity::find_by_id(ada.id.clone()).one(b.db()).await.unwrap().unwrap();
    assert_eq!((here.fullname.as_deref(), here.age, here.last_login), (Some("Ada"), 9, None));
    drop((a, b));
    a_db.finish().await;
    b_db.finish().await;
}
