//! Places for instances across the nodes (`SlotStore`). Claims of one function version are
//! serialized by a transaction-scoped advisory lock on the version's name: the count and the
//! insert it allows happen under it, and the next claimer's count (a new snapshot once it holds
//! the lock, under READ COMMITTED) sees the place taken. Claims of other versions do not wait.

use super::{pg, Postgres};
use crate::{FunctionKey, SlotClaim, SlotHolder, SlotPlace, StoreError};

impl Postgres {
    pub(crate) async fn claim_slot(
        &self,
        node_id: &str,
        function: &FunctionKey,
        version: &str,
        limit: u32,
        now_ms: i64,
        silence_ms: i64,
    ) -> Result<SlotClaim, StoreError> {
        let since = now_ms.saturating_sub(silence_ms);
        let (project, package, name) = (&function.project, &function.package, &function.name);
        let mut client = self.client("claim an instance slot").await?;
        let tx = client.transaction().await.map_err(pg("begin claim"))?;
        // A hash collision only makes two versions' claims wait for each other.
        let lock = format!("instance slots\n{project}\n{package}\n{name}\n{version}");
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            &[&lock],
        )
        .await
        .map_err(pg("lock the version's slots"))?;
        let live = tx
            .query_opt(
                "SELECT 1 FROM nodes WHERE node_id = $1 AND last_seen_ms >= $2",
                &[&node_id, &since],
            )
            .await
            .map_err(pg("read the claiming node"))?;
        if live.is_none() {
            return Ok(SlotClaim::NotLive);
        }
        let holders: Vec<SlotHolder> = tx
            .query(
                "SELECT s.node_id, n.advertise_url, COUNT(*) FROM instance_slots s
                 JOIN nodes n ON n.node_id = s.node_id
                 WHERE s.project = $1 AND s.package = $2 AND s.name = $3 AND s.version = $4
                   AND n.last_seen_ms >= $5
                 GROUP BY s.node_id, n.advertise_url ORDER BY s.node_id",
                &[project, package, name, &version, &since],
            )
            .await
            .map_err(pg("count slots"))?
            .iter()
            .map(|r| SlotHolder {
                node_id: r.get(0),
                advertise_url: r.get(1),
                slots: u32::try_from(r.get::<_, i64>(2)).unwrap_or(u32::MAX),
            })
            .collect();
        let held: u64 = holders.iter().map(|h| u64::from(h.slots)).sum();
        if held >= u64::from(limit) {
            return Ok(SlotClaim::Full(holders));
        }
        let row = tx
            .query_one(
                "INSERT INTO instance_slots (project, package, name, version, node_id, claimed_ms)
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING slot_id",
                &[project, package, name, &version, &node_id, &now_ms],
            )
            .await
            .map_err(pg("insert slot"))?;
        tx.commit().await.map_err(pg("commit claim"))?;
        Ok(SlotClaim::Granted(row.get(0)))
    }

    pub(crate) async fn version_slots(
        &self,
        function: &FunctionKey,
        version: &str,
        now_ms: i64,
        silence_ms: i64,
    ) -> Result<Vec<SlotPlace>, StoreError> {
        let since = now_ms.saturating_sub(silence_ms);
        let (project, package, name) = (&function.project, &function.package, &function.name);
        let client = self.client("list a version's instance slots").await?;
        let rows = client
            .query(
                "SELECT s.slot_id, s.node_id FROM instance_slots s
                 JOIN nodes n ON n.node_id = s.node_id
                 WHERE s.project = $1 AND s.package = $2 AND s.name = $3 AND s.version = $4
                   AND n.last_seen_ms >= $5
                 ORDER BY s.slot_id",
                &[project, package, name, &version, &since],
            )
            .await
            .map_err(pg("list slots"))?;
        Ok(rows
            .iter()
            .map(|r| SlotPlace {
                slot_id: r.get(0),
                node_id: r.get(1),
            })
            .collect())
    }

    pub(crate) async fn release_slot(&self, slot_id: i64) -> Result<(), StoreError> {
        let client = self.client("release an instance slot").await?;
        client
            .execute("DELETE FROM instance_slots WHERE slot_id = $1", &[&slot_id])
            .await
            .map_err(pg("release slot"))?;
        Ok(())
    }

    pub(crate) async fn release_node_slots(&self, node_id: &str) -> Result<usize, StoreError> {
        let client = self.client("release a node's instance slots").await?;
        let n = client
            .execute("DELETE FROM instance_slots WHERE node_id = $1", &[&node_id])
            .await
            .map_err(pg("release node slots"))?;
        Ok(n as usize)
    }
}
