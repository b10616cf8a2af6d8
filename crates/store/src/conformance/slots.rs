//! The conformance suite for places of instances across nodes (`SlotStore`).

use crate::*;

fn key(name: &str) -> FunctionKey {
    FunctionKey {
        project: "p".into(),
        package: "default".into(),
        name: name.into(),
    }
}

fn granted(c: SlotClaim) -> i64 {
    match c {
        SlotClaim::Granted(id) => id,
        other => panic!("expected a place, got {other:?}"),
    }
}

fn holders(c: SlotClaim) -> Vec<(String, u32)> {
    match c {
        SlotClaim::Full(h) => h.into_iter().map(|h| (h.node_id, h.slots)).collect(),
        other => panic!("expected the limit reached, got {other:?}"),
    }
}

pub async fn slots_hold_a_limit_across_nodes_and_come_back(store: &Store) {
    let (nodes, slots) = (store.nodes(), store.slots());
    for n in ["a", "b"] {
        nodes
            .heartbeat(n, &format!("http://{n}"), 1_000)
            .await
            .expect("beat");
    }
    let f = key("f");
    let claim = |node: &'static str, version: &'static str, limit: u32| {
        let f = f.clone();
        async move {
            slots
                .claim_slot(node, &f, version, limit, 2_000, 10_000)
                .await
                .expect("claim")
        }
    };
    let a1 = granted(claim("a", "latest", 2).await);
    let b1 = granted(claim("b", "latest", 2).await);
    assert_ne!(a1, b1);
    assert_eq!(
        holders(claim("a", "latest", 2).await),
        [("a".to_owned(), 1), ("b".to_owned(), 1)],
        "two places of two are held, one on each node"
    );
    // Another version, another function: places of their own.
    granted(claim("a", "v1", 1).await);
    granted(
        slots
            .claim_slot("a", &key("g"), "latest", 1, 2_000, 10_000)
            .await
            .expect("claim g"),
    );
    slots.release_slot(b1).await.expect("release");
    slots
        .release_slot(b1)
        .await
        .expect("a place already gone is no error");
    let b2 = granted(claim("b", "latest", 2).await);
    assert!(b2 > b1, "place ids are never reused");
    assert_eq!(
        slots.release_node_slots("a").await.expect("release a"),
        3,
        "a held latest, v1 and g"
    );
    granted(claim("a", "latest", 2).await);
    holders(claim("a", "latest", 2).await);
}

pub async fn slots_of_dead_nodes_count_for_nobody(store: &Store) {
    let (nodes, slots) = (store.nodes(), store.slots());
    let f = key("f");
    nodes.heartbeat("a", "http://a", 1_000).await.expect("beat");
    nodes.heartbeat("b", "http://b", 1_000).await.expect("beat");
    granted(
        slots
            .claim_slot("a", &f, "latest", 1, 1_000, 10_000)
            .await
            .expect("claim"),
    );
    assert_eq!(
        holders(
            slots
                .claim_slot("b", &f, "latest", 1, 5_000, 10_000)
                .await
                .expect("claim")
        ),
        [("a".to_owned(), 1)]
    );
    // At 12 s, a (last seen at 1 s) is dead: b, which heartbeats on, takes the place.
    nodes
        .heartbeat("b", "http://b", 12_000)
        .await
        .expect("beat");
    let taken = slots
        .claim_slot("b", &f, "latest", 1, 12_000, 10_000)
        .await
        .expect("claim");
    granted(taken);
    // A node that is not live gets no place, whatever is free.
    assert_eq!(
        slots
            .claim_slot("a", &key("other"), "latest", 5, 12_000, 10_000)
            .await
            .expect("claim"),
        SlotClaim::NotLive
    );
    assert_eq!(
        slots
            .claim_slot("nobody", &key("other"), "latest", 5, 12_000, 10_000)
            .await
            .expect("claim"),
        SlotClaim::NotLive,
        "a node never heard of is not live"
    );
    // Forgetting a dead node forgets its places: a comes back with none.
    assert_eq!(nodes.forget_dead(12_000, 10_000).await.expect("forget"), 1);
    nodes
        .heartbeat("a", "http://a", 13_000)
        .await
        .expect("beat");
    assert_eq!(
        holders(
            slots
                .claim_slot("a", &f, "latest", 1, 13_000, 10_000)
                .await
                .expect("claim")
        ),
        [("b".to_owned(), 1)]
    );
    assert_eq!(slots.release_node_slots("a").await.expect("release"), 0);
}

pub async fn slots_concurrent_claims_never_exceed_the_limit(store: &Store) {
    let nodes = store.nodes();
    for n in 0..4 {
        nodes
            .heartbeat(&format!("n{n}"), "http://n", 1_000)
            .await
            .expect("beat");
    }
    let mut tasks = Vec::new();
    for i in 0..16 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .slots()
                .claim_slot(
                    &format!("n{}", i % 4),
                    &key("f"),
                    "latest",
                    3,
                    1_000,
                    10_000,
                )
                .await
                .expect("claim")
        }));
    }
    let mut granted_ids = Vec::new();
    for t in tasks {
        if let SlotClaim::Granted(id) = t.await.expect("task joins") {
            granted_ids.push(id);
        }
    }
    assert_eq!(granted_ids.len(), 3, "exactly the limit: {granted_ids:?}");
}

pub async fn slots_of_a_version_are_listed_in_claim_order(store: &Store) {
    let (nodes, slots) = (store.nodes(), store.slots());
    for n in ["a", "b", "c"] {
        nodes
            .heartbeat(n, &format!("http://{n}"), 1_000)
            .await
            .expect("beat");
    }
    let f = key("f");
    let mut ids = Vec::new();
    for node in ["b", "a", "c", "a"] {
        ids.push(granted(
            slots
                .claim_slot(node, &f, "latest", 5, 1_000, 10_000)
                .await
                .expect("claim"),
        ));
    }
    // Another version and another function are not listed.
    granted(
        slots
            .claim_slot("a", &f, "v1", 5, 1_000, 10_000)
            .await
            .expect("claim v1"),
    );
    granted(
        slots
            .claim_slot("a", &key("g"), "latest", 5, 1_000, 10_000)
            .await
            .expect("claim g"),
    );
    slots.release_slot(ids[2]).await.expect("release c's");
    let listed = |now_ms: i64| {
        let f = f.clone();
        async move {
            slots
                .version_slots(&f, "latest", now_ms, 10_000)
                .await
                .expect("list")
                .into_iter()
                .map(|p| (p.slot_id, p.node_id))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        listed(2_000).await,
        [
            (ids[0], "b".to_owned()),
            (ids[1], "a".to_owned()),
            (ids[3], "a".to_owned())
        ],
        "the places held, by claim order"
    );
    // At 12 s only b heartbeats on: a's places count for nobody.
    nodes
        .heartbeat("b", "http://b", 12_000)
        .await
        .expect("beat");
    assert_eq!(listed(12_000).await, [(ids[0], "b".to_owned())]);
    assert!(slots
        .version_slots(&key("none"), "latest", 12_000, 10_000)
        .await
        .expect("list")
        .is_empty());
}
