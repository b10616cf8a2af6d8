//! Resolution through the invoker: the cache, the feed's changes and resyncs, alias routing.

use super::*;

#[tokio::test(start_paused = true)]
async fn a_cache_hit_does_not_call_the_source() {
    let s = setup();
    s.source.put(
        key("f"),
        Qualifier::Latest,
        resolved(record("f", 128), "latest"),
    );
    s.call("f", Qualifier::Latest).await;
    s.call("f", Qualifier::Latest).await;
    s.call("f", Qualifier::Latest).await;
    assert_eq!(s.calls(), 1);
    assert_eq!(s.counters.launched.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_change_on_the_feed_invalidates_that_function_only() {
    let s = setup();
    s.source.put(
        key("f"),
        Qualifier::Latest,
        resolved(record("f", 128), "latest"),
    );
    s.source.put(
        key("g"),
        Qualifier::Latest,
        resolved(record("g", 128), "latest"),
    );
    s.call("f", Qualifier::Latest).await;
    s.call("g", Qualifier::Latest).await;
    assert_eq!(s.calls(), 2);

    s.source.put(
        key("f"),
        Qualifier::Latest,
        resolved(record("f", 256), "latest"),
    );
    s.change("f", ChangeKind::Function).await;
    let calls = s.calls();
    assert_eq!(s.call("f", Qualifier::Latest).await.memory_size_mb, 256);
    s.call("g", Qualifier::Latest).await;
    assert_eq!(s.calls(), calls, "only f was read again, and only once");

    // A trigger change does not change what f resolves to.
    s.change("f", ChangeKind::Trigger).await;
    s.call("f", Qualifier::Latest).await;
    assert_eq!(s.calls(), calls);
}

#[tokio::test(start_paused = true)]
async fn a_lagging_follower_resyncs_by_forgetting_everything() {
    let s = setup_with(LocalFeed::with_capacity(2));
    s.source.put(
        key("f"),
        Qualifier::Latest,
        resolved(record("f", 128), "latest"),
    );
    s.call("f", Qualifier::Latest).await;
    s.source.put(
        key("f"),
        Qualifier::Latest,
        resolved(record("f", 512), "latest"),
    );
    // f's own change is among those lost: five changes, none awaited, into a buffer of two.
    let mut rev = s.feed.publish(key("f"), ChangeKind::Function).await;
    for i in 0..4 {
        rev = s
            .feed
            .publish(key(&format!("other{i}")), ChangeKind::Alias)
            .await;
    }
    s.feed.settled(rev, Duration::from_secs(1)).await;
    assert_eq!(s.call("f", Qualifier::Latest).await.memory_size_mb, 512);
}

#[tokio::test(start_paused = true)]
async fn an_alias_routes_by_its_weights() {
    let s = setup();
    for v in ["v1", "v2"] {
        s.source.put(
            key("f"),
            Qualifier::Version(v.into()),
            resolved(record("f", 128), v),
        );
    }
    s.source.put(
        key("f"),
        Qualifier::Alias("prod".into()),
        Resolution::Alias(AliasRecord {
            name: "prod".into(),
            version: "v1".into(),
            description: String::new(),
            additional_version_weights: BTreeMap::from([("v2".to_string(), 30)]),
            additional_version_strategy: BTreeMap::new(),
            created_ms: 0,
            modified_ms: 0,
        }),
    );
    let mut seen: HashMap<String, usize> = HashMap::new();
    for _ in 0..400 {
        let o = s.call("f", Qualifier::Alias("prod".into())).await;
        *seen.entry(o.version).or_default() += 1;
    }
    let v2 = seen.get("v2").copied().unwrap_or(0);
    assert_eq!(seen.values().sum::<usize>(), 400, "{seen:?}");
    // 30 % of 400 is 120; a fair roll lands within 60 of it with overwhelming odds.
    assert!((60..=180).contains(&v2), "{seen:?}");
    // The alias and both versions were each read once.
    assert_eq!(s.calls(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_missing_function_is_an_error_not_an_outcome() {
    let s = setup();
    let err = s
        .invoker
        .invoke(
            &key("nope"),
            &Qualifier::Latest,
            Bytes::new(),
            InvokeOptions::default(),
        )
        .await
        .expect_err("nothing to run");
    assert!(
        matches!(err, InvokeError::Resolve(ResolveError::FunctionNotFound(ref n)) if n == "nope"),
        "{err}"
    );
}
