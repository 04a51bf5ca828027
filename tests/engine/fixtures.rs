//! Creating and editing application rows the way an application does: through SeaORM's ActiveModels.

use sea_orm::{ActiveModelTrait, ActiveValue::Set, DatabaseConnection, EntityTrait, IntoActiveModel};

use crate::schema::{facility, group, learner, log, note};

/// A facility whose dataset (and record) id is random.
pub async fn facility(db: &DatabaseConnection, name: &str) -> facility::Model {
    facility_of_dataset(db, name, &morango::ids::random_id()).await
}

/// A facility whose dataset id is given, e.g. the id of its root certificate.
pub async fn facility_of_dataset(db: &DatabaseConnection, name: &str, dataset_id: &str) -> facility::Model {
    facility::ActiveModel { name: Set(name.into()), dataset_id: Set(dataset_id.into()), ..Default::default() }
        .insert(db)
        .await
        .expect("insert facility")
}

pub async fn learner(db: &DatabaseConnection, facility: &facility::Model, username: &str) -> learner::Model {
    learner::ActiveModel {
        facility_id: Set(facility.id.clone()),
        username: Set(username.into()),
        full_name: Set(format!("{username} Learner")),
        score: Set(0.5),
        active: Set(true),
        birth_date: Set(chrono::NaiveDate::from_ymd_opt(2015, 2, 28)),
        joined_at: Set(None),
        ..Default::default()
    }
    .insert(db)
    .await
    .expect("insert learner")
}

pub async fn log(db: &DatabaseConnection, learner: &learner::Model, content: &str) -> log::Model {
    log::ActiveModel {
        facility_id: Set(learner.facility_id.clone()),
        learner_id: Set(learner.id.clone()),
        content: Set(content.into()),
        progress: Set(0.0),
        extra: Set(Some(serde_json::json!({"attempts": [1, 2], "hint": "é"}))),
        ..Default::default()
    }
    .insert(db)
    .await
    .expect("insert log")
}

pub async fn group(
    db: &DatabaseConnection,
    facility: &facility::Model,
    name: &str,
    parent: Option<&group::Model>,
) -> group::Model {
    group::ActiveModel {
        facility_id: Set(facility.id.clone()),
        name: Set(name.into()),
        parent_id: Set(parent.map(|p| p.id.clone())),
        ..Default::default()
    }
    .insert(db)
    .await
    .expect("insert group")
}

pub async fn note(db: &DatabaseConnection, facility: &facility::Model, text: &str) -> note::Model {
    note::ActiveModel { facility_id: Set(facility.id.clone()), text: Set(text.into()), ..Default::default() }
        .insert(db)
        .await
        .expect("insert note")
}

/// Loads a learner on `db` and renames it.
pub async fn rename_learner(db: &DatabaseConnection, id: &str, full_name: &str) -> learner::Model {
    let model = learner::Entity::find_by_id(id.to_owned()).one(db).await.expect("query").expect("learner exists");
    let mut active = model.into_active_model();
    active.full_name = Set(full_name.into());
    active.update(db).await.expect("update learner")
}

pub async fn find_learner(db: &DatabaseConnection, id: &str) -> Option<learner::Model> {
    learner::Entity::find_by_id(id.to_owned()).one(db).await.expect("query learner")
}
