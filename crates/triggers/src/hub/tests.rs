//! The hub following the change feed over a real SQLite store.

use std::time::Duration;

use fgs_core::function::{CodeInfo, CodeType, Reserved};
use fgs_core::{FunctionRecord, FunctionSpec, Qualifier};
use fgs_store::{Catalog, ChangeFeed, LocalFeed};
use serde_json::json;

use super::*;

fn function(name: &str) -> FunctionRecord {
    let spec = FunctionSpec {
        handler: "bootstrap".into(),
        ..FunctionSpec::new(fgs_core::Runtime::Custom)
    };
    FunctionRecord {
        project: "p".into(),
        package: "default".into(),
        name: name.into(),
        func_id: format!("id-{name}"),
        spec,
        code: CodeInfo {
            code_type: CodeType::Zip,
            code_filename: "code.zip".into(),
            sha256: "00".into(),
            digest: "00".into(),
            size: 1,
        },
        reserved: Reserved::default(),
        created_ms: 0,
        modified_ms: 0,
        revision: 1,
        async_config: None,
        meta: Default::default(),
    }
}

fn apig(id: &str, function: &str, path: &str) -> TriggerRecord {
    TriggerRecord {
        trigger_id: id.into(),
        project: "p".into(),
        package: "default".into(),
        name: function.into(),
        qualifier: Qualifier::Latest,
        type_code: fgs_core::trigger::TriggerKind::Apig,
        status: fgs_core::trigger::TriggerStatus::Active,
        event_data: json!({"path": path, "auth": "NONE"}),
        created_ms: 0,
        updated_ms: 0,
        next_fire_ms: None,
        last_fire_ms: None,
    }
}

async fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("a temporary dir");
    let store = Store::open(&dir.path().join("fgs.db")).expect("the store opens");
    for f in ["f", "g"] {
        store
            .create_function(function(f), 10)
            .await
            .expect("create");
    }
    (dir, store)
}

#[tokio::test]
async fn routes_follow_trigger_writes_through_the_catalog() {
    let (_dir, store) = store().await;
    let feed = LocalFeed::new();
    let hub = TriggerHub::new();
    hub.follow(store.clone(), feed.subscribe());
    let catalog = Catalog::new(store.clone(), feed);
    catalog
        .create_trigger(apig("t1", "f", "/one"), 10)
        .await
        .expect("create");
    // The write answered only once the hub had followed it.
    assert_eq!(hub.routes().len(), 1);
    catalog
        .delete_triggers("p", "default", "f", None, Some("t1"))
        .await
        .expect("delete");
    assert_eq!(hub.routes().len(), 0);
}

#[tokio::test]
async fn a_lagging_hub_resyncs_every_trigger_from_storage() {
    let (_dir, store) = store().await;
    let feed = LocalFeed::with_capacity(2);
    let hub = TriggerHub::new();
    hub.follow(store.clone(), feed.subscribe());
    // Stored without the catalog, as another node would: only a resync can find them.
    store
        .create_trigger(apig("t1", "f", "/one"), 10)
        .await
        .expect("create");
    store
        .create_trigger(apig("t2", "g", "/two"), 10)
        .await
        .expect("create");
    let mut rev = 0;
    for _ in 0..5 {
        // Configuration changes, which alone would move no route: the loss is what reloads.
        rev = feed
            .publish(
                fgs_store::FunctionKey {
                    project: "p".into(),
                    package: "default".into(),
                    name: "f".into(),
                },
                ChangeKind::Function,
            )
            .await;
    }
    feed.settled(rev, Duration::from_secs(5)).await;
    assert_eq!(hub.routes().len(), 2);
}
