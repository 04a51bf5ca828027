//! Database-max counters (spec §5.3, §6): what this database knows, per partition and instance, and the FSIC
//! computed from it.
//!
//! Counters only move up here (spec §15 W4: Python's `update_fsics` can lower them).

use std::collections::HashSet;

use sea_orm::{ConnectionTrait, Value};

use crate::error::Result;
use crate::filter::Filter;
use crate::fsic::{self, DmcRow, FsicV1, FsicV2};
use crate::sql::{self, get, text};

/// Raises `DMC(instance, partition)` to `counter`; a higher stored counter is kept.
pub(crate) async fn raise<C: ConnectionTrait>(db: &C, instance_id: &str, partition: &str, counter: i64) -> Result<()> {
    sql::exec(
        db,
        "raising a database max counter",
        "INSERT INTO morango_databasemaxcounter (instance_id, partition, counter) VALUES ($1, $2, $3) \
         ON CONFLICT (instance_id, partition) DO UPDATE SET counter = CASE \
         WHEN excluded.counter > morango_databasemaxcounter.counter THEN excluded.counter \
         ELSE morango_databasemaxcounter.counter END",
        vec![text(instance_id), text(partition), counter.into()],
    )
    .await?;
    Ok(())
}

/// Raises the counters a sender's FSIC claims (after a successful receive), each capped by evidence: no higher
/// than the highest counter of that instance this database holds in a record history under that partition. A
/// sender can therefore not make this database believe it has records it never received (which, since counters
/// only rise, would keep them from ever being requested again); claims without evidence are dropped.
///
/// A claim this database already meets is skipped before its evidence is looked for (a scan of the instance's
/// record histories): a sync that brought nothing new raises nothing and reads nothing.
pub(crate) async fn raise_claimed<C: ConnectionTrait>(db: &C, claims: &[DmcRow]) -> Result<()> {
    for claim in claims {
        let current = sql::query_one(
            db,
            "reading a database max counter",
            "SELECT counter FROM morango_databasemaxcounter WHERE instance_id = $1 AND partition = $2",
            vec![text(&claim.instance_id), text(&claim.partition)],
        )
        .await?;
        if let Some(row) = current
            && get::<i64>(&row, "counter")? >= claim.counter
        {
            continue;
        }
        // The usual evidence, found through the store's version index: a record under the partition whose current
        // version is the instance's, at the claimed counter or later (its history holds that version).
        let recent = sql::query_one(
            db,
            "looking for a record that backs a claimed counter",
            "SELECT 1 AS one FROM morango_store s WHERE s.last_saved_instance = $1 AND s.last_saved_counter >= $3 \
             AND substr(s.partition, 1, length($2)) = $2 LIMIT 1",
            vec![text(&claim.instance_id), text(&claim.partition), claim.counter.into()],
        )
        .await?;
        if recent.is_some() {
            raise(db, &claim.instance_id, &claim.partition, claim.counter).await?;
            continue;
        }
        let row = sql::query_one(
            db,
            "checking a claimed counter",
            "SELECT MAX(r.counter) AS held FROM morango_recordmaxcounter r \
             JOIN morango_store s ON s.id = r.store_model_id \
             WHERE r.instance_id = $1 AND substr(s.partition, 1, length($2)) = $2",
            vec![text(&claim.instance_id), text(&claim.partition)],
        )
        .await?;
        let held: Option<i64> = match row {
            Some(row) => get(&row, "held")?,
            None => None,
        };
        if let Some(held) = held.filter(|held| *held > 0) {
            raise(db, &claim.instance_id, &claim.partition, claim.counter.min(held)).await?;
        }
    }
    Ok(())
}

/// `(condition, values)`: DMC rows whose partition is under a filter prefix, or is a prefix of one.
fn related_to(filter: &Filter, alias: &str, first: usize) -> (String, Vec<Value>) {
    let mut terms = Vec::new();
    let mut values = Vec::new();
    for (i, prefix) in filter.prefixes().iter().enumerate() {
        let p = first + i;
        terms.push(format!(
            "substr({alias}.partition, 1, length(${p})) = ${p} OR substr(${p}, 1, length({alias}.partition)) = {alias}.partition"
        ));
        values.push(text(prefix));
    }
    if terms.is_empty() { ("1 = 0".to_owned(), values) } else { (format!("({})", terms.join(" OR ")), values) }
}

async fn rows_for<C: ConnectionTrait>(db: &C, filter: &Filter) -> Result<Vec<DmcRow>> {
    let (condition, values) = related_to(filter, "d", 1);
    let rows = sql::query(
        db,
        "reading database max counters",
        &format!("SELECT d.partition, d.instance_id, d.counter FROM morango_databasemaxcounter d WHERE {condition}"),
        values,
    )
    .await?;
    rows.iter()
        .map(|row| {
            Ok(DmcRow {
                partition: get(row, "partition")?,
                instance_id: get(row, "instance_id")?,
                counter: get(row, "counter")?,
            })
        })
        .collect()
}

/// The `(partition, instance)` pairs still backed by data (Morango's FSIC reduction): for a producer, some store
/// record under the partition was last saved by the instance; for a receiver, some record under it has a
/// record-max counter of the instance.
async fn backed_pairs<C: ConnectionTrait>(
    db: &C,
    filter: &Filter,
    producer: bool,
) -> Result<HashSet<(String, String)>> {
    let (condition, values) = related_to(filter, "d", 1);
    let evidence = if producer {
        "SELECT 1 FROM morango_store s WHERE s.last_saved_instance = d.instance_id \
         AND substr(s.partition, 1, length(d.partition)) = d.partition"
    } else {
        "SELECT 1 FROM morango_recordmaxcounter r JOIN morango_store s ON s.id = r.store_model_id \
         WHERE r.instance_id = d.instance_id AND substr(s.partition, 1, length(d.partition)) = d.partition"
    };
    let rows = sql::query(
        db,
        "reducing the FSIC",
        &format!(
            "SELECT d.partition, d.instance_id FROM morango_databasemaxcounter d WHERE {condition} AND EXISTS ({evidence})"
        ),
        values,
    )
    .await?;
    rows.iter().map(|row| Ok((get(row, "partition")?, get(row, "instance_id")?))).collect()
}

/// This database's FSIC for `filter`, as JSON text in the format the session negotiated.
pub(crate) async fn own_fsic<C: ConnectionTrait>(db: &C, filter: &Filter, producer: bool, v2: bool) -> Result<String> {
    let rows = rows_for(db, filter).await?;
    if v2 {
        let backed = backed_pairs(db, filter, producer).await?;
        let fsic: FsicV2 = fsic::calculate_v2(&rows, filter, |partition, instance| {
            backed.contains(&(partition.to_owned(), instance.to_owned()))
        });
        Ok(fsic.to_json_text())
    } else {
        let fsic: FsicV1 = fsic::calculate_v1(&rows, filter, producer);
        Ok(fsic::v1_to_json_text(&fsic))
    }
}
