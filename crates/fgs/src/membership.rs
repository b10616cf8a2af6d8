//! Membership: the node heartbeats into the store every `--heartbeat-interval`, and forgets the
//! nodes silent for longer than `--node-timeout` (dead: their leases run out on their own). A
//! single node on SQLite heartbeats its one row the same way. In a cluster, each heartbeat that
//! lands keeps the node's instance places valid ([`ClusterLimits`], its fence) and reads the
//! live nodes, over which the reserved instances are spread.

use std::sync::Arc;
use std::time::Duration;

use fgs_invoke::cluster::ClusterLimits;
use fgs_store::Store;

#[derive(Debug, Clone, clap::Args)]
pub struct MembershipArgs {
    /// How often this node tells the store it is alive.
    #[arg(long, env = "FGS_HEARTBEAT_INTERVAL", default_value = "2s", value_parser = humantime::parse_duration)]
    pub heartbeat_interval: Duration,
    /// A node silent for longer than this is dead and forgotten.
    #[arg(long, env = "FGS_NODE_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub node_timeout: Duration,
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Heartbeats until the task is dropped. `now_ms` is the wall clock (a parameter for tests). A
/// failed heartbeat (the store is unreachable) is logged and the next one tried on time; one
/// that landed is told to the cluster's `limits`, sent when it was.
pub async fn heartbeat(
    store: Store,
    node_id: String,
    advertise_url: String,
    args: MembershipArgs,
    limits: Option<Arc<ClusterLimits>>,
    now_ms: impl Fn() -> i64,
) {
    let mut tick = tokio::time::interval(args.heartbeat_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let timeout = millis(args.node_timeout);
    loop {
        tick.tick().await;
        let sent = tokio::time::Instant::now();
        let now = now_ms();
        if let Err(e) = store.nodes().heartbeat(&node_id, &advertise_url, now).await {
            tracing::warn!(error = %e, "heartbeat failed");
            continue;
        }
        if let Some(limits) = &limits {
            // The live nodes first, then the fence opens: reserved instances started once it
            // is open are this node's share among them.
            match store.nodes().live_nodes(now, timeout).await {
                Ok(live) => {
                    limits.set_members(live.into_iter().map(|n| n.node_id).collect());
                }
                Err(e) => tracing::warn!(error = %e, "reading the live nodes failed"),
            }
            if let Err(e) = limits.heartbeat_landed(sent).await {
                tracing::warn!(error = %e, "giving back this node's instance places failed");
            }
        }
        match store.nodes().forget_dead(now, timeout).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(nodes = n, "forgot nodes silent past --node-timeout"),
            Err(e) => tracing::warn!(error = %e, "forgetting dead nodes failed"),
        }
    }
}

/// The wall clock in Unix milliseconds.
pub fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Node "me" beating every 2 s with a 10 s timeout, on `clock`.
    fn beating_as_me(
        store: &Store,
        limits: Option<Arc<ClusterLimits>>,
        clock: impl Fn() -> i64 + Send + 'static,
    ) -> tokio::task::JoinHandle<()> {
        let args = MembershipArgs {
            heartbeat_interval: Duration::from_secs(2),
            node_timeout: Duration::from_secs(10),
        };
        tokio::spawn(heartbeat(
            store.clone(),
            "me".into(),
            "http://me".into(),
            args,
            limits,
            clock,
        ))
    }

    #[tokio::test(start_paused = true)]
    async fn a_node_heartbeats_on_time_and_forgets_the_silent() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("fgs.db")).expect("open");
        store
            .nodes()
            .heartbeat("gone", "http://gone", 0)
            .await
            .expect("beat");
        let start = tokio::time::Instant::now();
        // Paused time: the clock is tokio's, 1 000 000 ms after the epoch at the start.
        let clock = move || 1_000_000 + millis(start.elapsed());
        let task = beating_as_me(&store, None, clock);
        settle().await;
        for _ in 0..3 {
            tokio::time::advance(Duration::from_secs(2)).await;
            settle().await;
        }
        let live = store
            .nodes()
            .live_nodes(clock(), 10_000)
            .await
            .expect("live");
        assert_eq!(live.len(), 1, "{live:?}");
        assert_eq!(live[0].node_id, "me");
        assert_eq!(live[0].started_ms, 1_000_000, "the first beat is at once");
        assert_eq!(live[0].last_seen_ms, 1_006_000, "then one every 2 s");
        assert!(
            store
                .nodes()
                .live_nodes(clock(), i64::MAX / 2)
                .await
                .expect("all")
                .len()
                == 1,
            "the silent node was forgotten"
        );
        task.abort();
    }

    /// The store runs on blocking threads: give each beat real time to land.
    async fn settle() {
        for _ in 0..100 {
            tokio::task::yield_now().await;
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn each_heartbeat_that_lands_tells_the_cluster_which_nodes_are_live() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("fgs.db")).expect("open");
        let start = tokio::time::Instant::now();
        let clock = move || 1_000_000 + millis(start.elapsed());
        // Another node beat once, just now, and then dies.
        store
            .nodes()
            .heartbeat("other", "http://other", clock())
            .await
            .expect("beat");
        let limits = Arc::new(ClusterLimits::new(
            Arc::clone(store.slots()),
            "me".into(),
            Duration::from_secs(10),
        ));
        let f = fgs_store::FunctionKey {
            project: "p".into(),
            package: "default".into(),
            name: "f".into(),
        };
        assert_eq!(
            limits.reserved_share(&f, "latest", 2),
            0,
            "no live nodes known before a heartbeat landed"
        );
        let task = beating_as_me(&store, Some(Arc::clone(&limits)), clock);
        settle().await;
        assert!(limits.fence().open(), "the first beat opens the fence");
        assert_eq!(limits.reserved_share(&f, "latest", 2), 1, "one of two");
        let seen = limits.members_generation();
        // 10 s on, the other node is still live; past 10 s of silence it is not.
        for _ in 0..5 {
            tokio::time::advance(Duration::from_secs(2)).await;
            settle().await;
        }
        assert_eq!(limits.members_generation(), seen, "nothing changed yet");
        tokio::time::advance(Duration::from_secs(2)).await;
        settle().await;
        assert!(limits.members_generation() > seen);
        assert_eq!(
            limits.reserved_share(&f, "latest", 2),
            2,
            "alone, this node keeps both"
        );
        task.abort();
    }
}
