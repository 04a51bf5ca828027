//! Change capture loses nothing: SeaORM's bulk statements and raw SQL are tracked like ActiveModel saves,
//! because the tracking lives in database triggers.

use morango::Filter;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, Statement};

use crate::fixtures::{self, find_learner};
use crate::on_both_backends;
use crate::schema::{FACILITY_DATA, Tables, learner, note};
use crate::support::{Backend, Peer};

on_both_backends!(
    bulk_updates_and_deletes_are_synced,
    insert_many_through_morango_assigns_ids_and_syncs,
    raw_sql_updates_deletes_and_inserts_are_synced,
    deleting_and_recreating_a_row_before_syncing_keeps_it,
    rows_written_by_a_sync_are_not_sent_back_as_changes,
);

async fn bulk_updates_and_deletes_are_synced(backend: Backend) {
    let (a, b) = (Peer::new(backend).await, Peer::new(backend).await);
    let facility = fixtures::facility(a.db(), "Riverside").await;
    let ada = fixtures::learner(a.db(), &facility, "ada").await;
    let bob = fixtures::learner(a.db(), &facility, "bob").await;
    let cy = fixtures::learner(a.db(), &facility, "cy").await;
    b.sync_all(&a).await;

    learner::Entity::update_many()
        .col_expr(learner::Column::Active, Expr::value(false))
        .filter(learner::Column::Username.ne("cy"))
        .exec(a.db())
        .await
        .unwrap();
    learner::Entity::delete_by_id(cy.id.clone()).exec(a.db()).await.unwrap();
    b.sync_all(&a).await;
    assert!(!find_learner(b.db(), &ada.id).await.unwrap().active);
    assert!(!find_learner(b.db(), &bob.id).await.unwrap().active);
    assert!(find_learner(b.db(), &cy.id).await.is_none());

    learner::Entity::delete_many()
        .filter(learner::Column::FacilityId.eq(facility.id.clone()))
        .exec(b.db())
        .await
        .unwrap();
    a.sync_all(&b).await;
    assert_eq!(learner::Entity::find().count(a.db()).await.unwrap(), 0);
    a.finish().await;
    b.finish().await;
}

async fn insert_many_through_morango_assigns_ids_and_syncs(backend: Backend) {
    let (a, b) = (Peer::new(backend).await, Peer::new(backend).await);
    let facility = fixtures::facility(a.db(), "Riverside").await;
    let models = ["ada", "bob"]
        .map(|name| learner::ActiveModel {
            facility_id: Set(facility.id.clone()),
            username: Set(name.into()),
            full_name: Set(name.into()),
            score: Set(0.0),
            active: Set(true),
            birth_date: Set(None),
            joined_at: Set(None),
            ..Default::default()
        })
        .to_vec();
    morango::insert_many::<learner::Entity, _>(a.db(), models).await.unwrap();
    b.sync_all(&a).await;

    let (expected_id, _) = morango::ids::record_id(
        &format!("{}:user-ro:${{id}}", facility.id),
        &format!("{}:ada", facility.id),
        "learner",
    )
    .unwrap();
    assert!(find_learner(b.db(), &expected_id).await.is_some(), "ids follow Morango's formula");
    assert_eq!(learner::Entity::find().count(b.db()).await.unwrap(), 2);
    a.finish().await;
    b.finish().await;
}

async fn raw_sql_updates_deletes_and_inserts_are_synced(backend: Backend) {
    let (a, b) = (Peer::new(backend).await, Peer::new(backend).await);
    let facility = fixtures::facility(a.db(), "Riverside").await;
    let ada = fixtures::learner(a.db(), &facility, "ada").await;
    let bob = fixtures::learner(a.db(), &facility, "bob").await;
    b.sync_all(&a).await;

    let db = a.db();
    let raw = |sql: &str, values: Vec<sea_orm::Value>| {
        let sql = if a.backend() == sea_orm::DbBackend::Sqlite { sql.replace('$', "?") } else { sql.to_owned() };
        Statement::from_sql_and_values(a.backend(), sql, values)
    };
    db.execute_raw(raw(
        "UPDATE learner SET full_name = $1 WHERE id = $2",
        vec!["Ada (raw)".into(), ada.id.clone().into()],
    ))
    .await
    .unwrap();
    db.execute_raw(raw("DELETE FROM learner WHERE id = $1", vec![bob.id.clone().into()])).await.unwrap();
    // A raw INSERT must compute the record id and the bookkeeping columns itself.
    let template = format!("{}:user-ro:${{id}}", facility.id);
    let source_id = format!("{}:cy", facility.id);
    let (id, partition) = morango::ids::record_id(&template, &source_id, "learner").unwrap();
    db.execute_raw(raw(
        "INSERT INTO learner (id, morango_source_id, morango_partition, morango_dirty_bit, facility_id, username, \
         full_name, score, active, local_views) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        vec![
            id.clone().into(),
            source_id.into(),
            partition.into(),
            true.into(),
            facility.id.clone().into(),
            "cy".into(),
            "Cy (raw)".into(),
            0.25f64.into(),
            true.into(),
            0i32.into(),
        ],
    ))
    .await
    .unwrap();
    b.sync_all(&a).await;

    assert_eq!(find_learner(b.db(), &ada.id).await.unwrap().full_name, "Ada (raw)");
    assert!(find_learner(b.db(), &bob.id).await.is_none());
    assert_eq!(find_learner(b.db(), &id).await.unwrap().full_name, "Cy (raw)");
    a.finish().await;
    b.finish().await;
}

async fn deleting_and_recreating_a_row_before_syncing_keeps_it(backend: Backend) {
    let (a, b) = (Peer::new(backend).await, Peer::new(backend).await);
    let facility = fixtures::facility(a.db(), "Riverside").await;
    let ada = fixtures::learner(a.db(), &facility, "ada").await;
    b.sync_all(&a).await;

    learner::Entity::delete_by_id(ada.id.clone()).exec(a.db()).await.unwrap();
    let again = fixtures::learner(a.db(), &facility, "ada").await;
    assert_eq!(again.id, ada.id, "same source id, same record id");
    b.sync_all(&a).await;

    assert!(!a.store(&ada.id).await.unwrap().deleted, "Python Morango would mark it deleted here");
    assert!(find_learner(b.db(), &ada.id).await.is_some());
    a.finish().await;
    b.finish().await;
}

async fn rows_written_by_a_sync_are_not_sent_back_as_changes(backend: Backend) {
    let (a, b) = (Peer::new(backend).await, Peer::new(backend).await);
    let facility = fixtures::facility(a.db(), "Riverside").await;
    fixtures::learner(a.db(), &facility, "ada").await;
    b.sync(&a, &Filter::everything()).await;

    let dirty = learner::Entity::find().filter(Expr::col("morango_dirty_bit").eq(true)).count(b.db()).await.unwrap();
    assert_eq!(dirty, 0, "deserialized rows are clean");
    let report = b.engine.serialize(None).await.unwrap();
    assert_eq!(report.versions, 0, "nothing to send back");
    a.finish().await;
    b.finish().await;
}

/// Many dirty rows (here more than one chunk) have their dirty bits cleared in one statement on SQLite, in storage
/// order; a table created `WITHOUT ROWID` has no rowid to order by and is cleared too, and both sync.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_dirty_rows_are_cleared_in_rowid_and_without_rowid_tables() {
    if !Backend::Sqlite.enabled() {
        return eprintln!("skipped: sqlite not in MORANGO_TEST_BACKENDS");
    }
    let (mut a, b) =
        (Peer::with(Backend::Sqlite, Tables::Current, &FACILITY_DATA, 2).await, Peer::new(Backend::Sqlite).await);
    // The note table again, stored without rowids; opening an engine again puts its change tracking back.
    let create = a.db().query_one_raw(Statement::from_string(
        a.backend(),
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'note'",
    ));
    let create: String = create.await.unwrap().unwrap().try_get("", "sql").unwrap();
    a.db().execute_unprepared("DROP TABLE note").await.unwrap();
    a.db().execute_unprepared(&format!("{create} WITHOUT ROWID")).await.unwrap();
    a.engine = morango::Engine::builder(a.db().clone(), &FACILITY_DATA).chunk_size(2).open().await.unwrap();

    let facility = fixtures::facility(a.db(), "Riverside").await;
    for i in 0..5 {
        fixtures::learner(a.db(), &facility, &format!("learner {i}")).await;
        fixtures::note(a.db(), &facility, &format!("note {i}")).await;
    }
    assert_eq!((dirty(&a, "learner").await, dirty(&a, "note").await), (5, 5));
    assert_eq!(a.engine.serialize(None).await.unwrap().versions, 11);
    assert_eq!((dirty(&a, "learner").await, dirty(&a, "note").await), (0, 0));

    fixtures::note(a.db(), &facility, "one more").await;
    assert_eq!(dirty(&a, "note").await, 1, "the table is still tracked");
    b.sync_all(&a).await;
    assert_eq!(note::Entity::find().count(b.db()).await.unwrap(), 6);
    assert_eq!(learner::Entity::find().count(b.db()).await.unwrap(), 5);
    a.finish().await;
    b.finish().await;
}

async fn dirty(peer: &Peer, table: &str) -> i64 {
    let sql = format!("SELECT COUNT(*) AS n FROM {table} WHERE morango_dirty_bit");
    let row = peer.db().query_one_raw(Statement::from_string(peer.backend(), sql)).await.unwrap().unwrap();
    row.try_get::<i64>("", "n").unwrap()
}
