//! Places for instances on SQLite (`SlotStore`), in the same shape as a cluster's: a single node
//! never claims any (its pools count their own instances), but the behaviour is the one the
//! conformance suite asks of every backend.

use rusqlite::{params, OptionalExtension, TransactionBehavior};

use super::{db, Sqlite};
use crate::{FunctionKey, SlotClaim, SlotHolder, SlotPlace, StoreError};

impl Sqlite {
    pub(crate) async fn claim_slot(
        &self,
        node_id: &str,
        function: &FunctionKey,
        version: &str,
        limit: u32,
        now_ms: i64,
        silence_ms: i64,
    ) -> Result<SlotClaim, StoreError> {
        let (node, f, v) = (node_id.to_owned(), function.clone(), version.to_owned());
        let since = now_ms.saturating_sub(silence_ms);
        self.run("claim an instance slot", move |conn| {
            // Immediate: the count and the insert it allows see the same rows.
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db("begin claim"))?;
            let seen: Option<i64> = tx
                .query_row(
                    "SELECT last_seen_ms FROM nodes WHERE node_id = ?1",
                    params![node],
                    |r| r.get(0),
                )
                .optional()
                .map_err(db("read the claiming node"))?;
            if seen.is_none_or(|s| s < since) {
                return Ok(SlotClaim::NotLive);
            }
            let holders = {
                let mut stmt = tx
                    .prepare(
                        "SELECT s.node_id, n.advertise_url, COUNT(*) FROM instance_slots s
                         JOIN nodes n ON n.node_id = s.node_id
                         WHERE s.project = ?1 AND s.package = ?2 AND s.name = ?3
                           AND s.version = ?4 AND n.last_seen_ms >= ?5
                         GROUP BY s.node_id, n.advertise_url ORDER BY s.node_id",
                    )
                    .map_err(db("prepare count slots"))?;
                let rows = stmt
                    .query_map(params![f.project, f.package, f.name, v, since], |r| {
                        Ok(SlotHolder {
                            node_id: r.get(0)?,
                            advertise_url: r.get(1)?,
                            slots: u32::try_from(r.get::<_, i64>(2)?).unwrap_or(u32::MAX),
                        })
                    })
                    .map_err(db("count slots"))?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(db("read slot count"))?;
                rows
            };
            let held: u64 = holders.iter().map(|h| u64::from(h.slots)).sum();
            if held >= u64::from(limit) {
                return Ok(SlotClaim::Full(holders));
            }
            tx.execute(
                "INSERT INTO instance_slots (project, package, name, version, node_id, claimed_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![f.project, f.package, f.name, v, node, now_ms],
            )
            .map_err(db("insert slot"))?;
            let id = tx.last_insert_rowid();
            tx.commit().map_err(db("commit claim"))?;
            Ok(SlotClaim::Granted(id))
        })
        .await
    }

    pub(crate) async fn version_slots(
        &self,
        function: &FunctionKey,
        version: &str,
        now_ms: i64,
        silence_ms: i64,
    ) -> Result<Vec<SlotPlace>, StoreError> {
        let (f, v) = (function.clone(), version.to_owned());
        let since = now_ms.saturating_sub(silence_ms);
        self.run("list a version's instance slots", move |conn| {
            let mut stmt = conn
                .prepare(
                    "SELECT s.slot_id, s.node_id FROM instance_slots s
                     JOIN nodes n ON n.node_id = s.node_id
                     WHERE s.project = ?1 AND s.package = ?2 AND s.name = ?3
                       AND s.version = ?4 AND n.last_seen_ms >= ?5
                     ORDER BY s.slot_id",
                )
                .map_err(db("prepare list slots"))?;
            let rows = stmt
                .query_map(params![f.project, f.package, f.name, v, since], |r| {
                    Ok(SlotPlace {
                        slot_id: r.get(0)?,
                        node_id: r.get(1)?,
                    })
                })
                .map_err(db("list slots"))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(db("read slots"));
            rows
        })
        .await
    }

    pub(crate) async fn release_slot(&self, slot_id: i64) -> Result<(), StoreError> {
        self.run("release an instance slot", move |conn| {
            conn.execute(
                "DELETE FROM instance_slots WHERE slot_id = ?1",
                params![slot_id],
            )
            .map(drop)
            .map_err(db("release slot"))
        })
        .await
    }

    pub(crate) async fn release_node_slots(&self, node_id: &str) -> Result<usize, StoreError> {
        let node = node_id.to_owned();
        self.run("release a node's instance slots", move |conn| {
            conn.execute(
                "DELETE FROM instance_slots WHERE node_id = ?1",
                params![node],
            )
            .map_err(db("release node slots"))
        })
        .await
    }
}
