//! Reserved instances of a cluster: three invokers as three nodes, sharing places for instances
//! in memory; each keeps its share of a function's reserved count, and the shares follow the
//! live nodes and the count.

use fgs_store::{SlotClaim, SlotPlace, SlotStore, StoreFuture};

use super::*;
use crate::cluster::ClusterLimits;

/// The cluster's places for instances, in memory: every node is live; `limit` holds.
#[derive(Debug, Default)]
struct Places {
    held: Mutex<HashMap<i64, String>>,
    next: AtomicUsize,
}

impl SlotStore for Places {
    fn claim_slot<'a>(
        &'a self,
        node_id: &'a str,
        _function: &'a FunctionKey,
        _version: &'a str,
        limit: u32,
        _now_ms: i64,
        _silence_ms: i64,
    ) -> StoreFuture<'a, SlotClaim> {
        Box::pin(async move {
            let mut held = self.held.lock().unwrap();
            if held.len() >= limit as usize {
                return Ok(SlotClaim::Full(Vec::new()));
            }
            let id = self.next.fetch_add(1, Ordering::SeqCst) as i64;
            held.insert(id, node_id.to_owned());
            Ok(SlotClaim::Granted(id))
        })
    }

    fn version_slots<'a>(
        &'a self,
        _function: &'a FunctionKey,
        _version: &'a str,
        _now_ms: i64,
        _silence_ms: i64,
    ) -> StoreFuture<'a, Vec<SlotPlace>> {
        Box::pin(async move {
            let mut places: Vec<_> = (self.held.lock().unwrap().iter())
                .map(|(&slot_id, n)| SlotPlace {
                    slot_id,
                    node_id: n.clone(),
                })
                .collect();
            places.sort_by_key(|p| p.slot_id);
            Ok(places)
        })
    }

    fn release_slot(&self, slot_id: i64) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            self.held.lock().unwrap().remove(&slot_id);
            Ok(())
        })
    }

    fn release_node_slots<'a>(&'a self, node_id: &'a str) -> StoreFuture<'a, usize> {
        Box::pin(async move {
            let mut held = self.held.lock().unwrap();
            let before = held.len();
            held.retain(|_, n| n != node_id);
            Ok(before - held.len())
        })
    }
}

struct Node {
    setup: Setup,
    limits: Arc<ClusterLimits>,
}

impl Node {
    fn instances(&self) -> usize {
        self.setup
            .invoker
            .instance_counts()
            .iter()
            .map(|(_, _, s)| s.instances)
            .sum()
    }
}

/// `n` nodes following one feed, with function `f` (reserved `count`) in each one's source.
async fn cluster(n: usize, count: u32) -> (Vec<Node>, Arc<Places>, Arc<LocalFeed>) {
    let places = Arc::new(Places::default());
    let feed = LocalFeed::new();
    let mut nodes = Vec::new();
    for i in 0..n {
        let setup = setup_with(Arc::clone(&feed));
        let limits = Arc::new(ClusterLimits::new(
            Arc::clone(&places) as Arc<dyn SlotStore>,
            format!("node-{i}"),
            Duration::from_secs(3600),
        ));
        setup.invoker.set_cluster_limits(Arc::clone(&limits));
        limits
            .heartbeat_landed(Instant::now())
            .await
            .expect("the fence opens");
        nodes.push(Node { setup, limits });
    }
    for node in &nodes {
        put_reserved(node, count);
    }
    (nodes, places, feed)
}

fn put_reserved(node: &Node, count: u32) {
    let mut rec = record("f", 128);
    rec.reserved.count = count;
    node.setup
        .source
        .put(key("f"), Qualifier::Latest, resolved(rec, "latest"));
}

/// Every node sees `members` live, as its next heartbeat would read them.
fn live(nodes: &[&Node], members: &[&Node]) {
    let ids: Vec<String> = members
        .iter()
        .map(|m| m.limits.node_id().to_owned())
        .collect();
    for n in nodes {
        n.limits.set_members(ids.clone());
    }
}

/// Time for the fence task (every 200 ms) to notice and the starts to run.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(500)).await;
}

#[tokio::test(start_paused = true)]
async fn the_reserved_count_is_the_clusters_and_follows_the_live_nodes_and_the_count() {
    let (nodes, places, feed) = cluster(3, 2).await;
    let all: Vec<&Node> = nodes.iter().collect();
    live(&all, &all);
    for n in &nodes {
        n.setup.invoker.warm(&key("f")).await;
    }
    settle().await;
    let counts: Vec<usize> = nodes.iter().map(Node::instances).collect();
    assert_eq!(
        counts.iter().sum::<usize>(),
        2,
        "two in the cluster: {counts:?}"
    );
    assert!(counts.iter().all(|&c| c <= 1), "spread: {counts:?}");
    assert_eq!(places.held.lock().unwrap().len(), 2, "each took a place");
    for (n, &c) in nodes.iter().zip(&counts) {
        let share = n.limits.reserved_share(&key("f"), "latest", 2);
        assert_eq!(c, share as usize, "{} keeps its share", n.limits.node_id());
    }

    // The node holding one dies: once the survivors see it gone, they keep two between them.
    let dead = counts.iter().position(|&c| c == 1).expect("a holder");
    let survivors: Vec<&Node> = all
        .iter()
        .copied()
        .filter(|n| !std::ptr::eq(*n, &nodes[dead]))
        .collect();
    live(&survivors, &survivors);
    settle().await;
    let after: Vec<usize> = survivors.iter().map(|n| n.instances()).collect();
    assert_eq!(after, [1, 1], "the dead node's instance started elsewhere");

    // The count grows to 5 (the API or a cron policy, followed over the feed): 3 + 2.
    for n in &survivors {
        put_reserved(n, 5);
    }
    let rev = feed.publish(key("f"), ChangeKind::Function).await;
    feed.settled(rev, Duration::from_secs(1)).await;
    settle().await;
    let mut grown: Vec<usize> = survivors.iter().map(|n| n.instances()).collect();
    grown.sort();
    assert_eq!(grown, [2, 3], "five spread over two nodes");

    // A node that fenced itself keeps none: past the idle timeout its instances that are no
    // longer reserved stop, while the other node keeps all it has to.
    survivors[0].limits.forget_members();
    settle().await;
    tokio::time::advance(Duration::from_secs(601)).await;
    for n in &survivors {
        n.setup.invoker.reclaim_idle();
    }
    settle().await;
    assert_eq!(
        survivors[0].instances(),
        0,
        "a fenced node keeps no reserved instance"
    );
    let other = survivors[1].limits.reserved_share(&key("f"), "latest", 5) as usize;
    assert_eq!(survivors[1].instances(), other);
}

#[tokio::test(start_paused = true)]
async fn a_node_that_joins_takes_its_share_and_the_others_keep_only_theirs() {
    let (nodes, _places, _feed) = cluster(2, 1).await;
    let first = [&nodes[0]];
    // Only node 0 is live: it keeps the one reserved instance.
    live(&first, &first);
    nodes[0].setup.invoker.warm(&key("f")).await;
    settle().await;
    assert_eq!(nodes[0].instances(), 1);

    // Node 1 joins; the instance goes to whichever node ranks first for `f`.
    let both = [&nodes[0], &nodes[1]];
    live(&both, &both);
    nodes[1].setup.invoker.warm(&key("f")).await;
    settle().await;
    tokio::time::advance(Duration::from_secs(601)).await;
    for n in &nodes {
        n.setup.invoker.reclaim_idle();
    }
    settle().await;
    let counts: Vec<usize> = nodes.iter().map(Node::instances).collect();
    assert_eq!(
        counts.iter().sum::<usize>(),
        1,
        "one in the cluster: {counts:?}"
    );
    for (n, &c) in nodes.iter().zip(&counts) {
        assert_eq!(c, n.limits.reserved_share(&key("f"), "latest", 1) as usize);
    }
}
