//! The conformance suite for triggers (limits per version, the timer's compare-and-set, what
//! goes with a function) and saved test events.

use fgs_core::trigger::{TriggerKind, TriggerStatus};
use serde_json::json;

use super::record;
use crate::*;

pub fn trigger(id: &str, name: &str, qualifier: &str, next: Option<i64>) -> TriggerRecord {
    TriggerRecord {
        trigger_id: id.into(),
        project: "p".into(),
        package: "default".into(),
        name: name.into(),
        qualifier: fgs_core::Qualifier::parse(qualifier).expect("a valid qualifier"),
        type_code: TriggerKind::Timer,
        status: TriggerStatus::Active,
        event_data: json!({"name": id, "schedule_type": "Rate", "schedule": "1m"}),
        created_ms: 1,
        updated_ms: 1,
        next_fire_ms: next,
        last_fire_ms: None,
    }
}

pub fn ev(id: &str, name: &str) -> TestEventRecord {
    TestEventRecord {
        event_id: id.into(),
        name: name.into(),
        content: "eyJrIjoidiJ9".into(),
        created_ms: 5,
        modified_ms: 5,
    }
}

pub async fn triggers_crud_limit_and_cascade(store: &Store) {
    store
        .create_function(record("p", "default", "f", 1), 10)
        .await
        .expect("create");
    let err = store
        .create_trigger(trigger("t0", "nope", "latest", None), 10)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::FunctionNotFound { .. }),
        "{err:?}"
    );
    for i in 0..3 {
        store
            .create_trigger(trigger(&format!("t{i}"), "f", "latest", Some(100)), 3)
            .await
            .unwrap();
    }
    let err = store
        .create_trigger(trigger("t9", "f", "latest", None), 3)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::TooManyTriggers { limit: 3, .. }),
        "{err:?}"
    );
    // The limit is per version.
    store
        .create_trigger(trigger("v1", "f", "v1", None), 3)
        .await
        .unwrap();
    let list = store
        .list_triggers("p", "default", "f", Some("latest"))
        .await
        .unwrap();
    assert_eq!(list.len(), 3);
    assert_eq!(list[0].event_data["schedule"], "1m");
    assert_eq!(
        store
            .list_triggers("p", "default", "f", None)
            .await
            .unwrap()
            .len(),
        4
    );

    let mut t = store
        .get_trigger("p", "default", "f", "t1")
        .await
        .unwrap()
        .unwrap();
    t.status = TriggerStatus::Disabled;
    t.next_fire_ms = None;
    assert!(store.update_trigger(&t).await.unwrap());
    let back = store
        .get_trigger("p", "default", "f", "t1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back, t);

    let gone = store
        .delete_triggers("p", "default", "f", None, Some("t0"))
        .await
        .unwrap();
    assert_eq!(gone.len(), 1);
    let gone = store
        .delete_triggers("p", "default", "f", Some("v1"), None)
        .await
        .unwrap();
    assert_eq!(gone.len(), 1);
    assert_eq!(store.all_triggers().await.unwrap().len(), 2);

    store
        .create_test_event(
            "p",
            "default",
            "f",
            TestEventRecord {
                event_id: "e1".into(),
                name: "ev".into(),
                content: "e30=".into(),
                created_ms: 1,
                modified_ms: 1,
            },
            10,
        )
        .await
        .unwrap();
    store.delete_function("p", "default", "f").await.unwrap();
    assert!(
        store.all_triggers().await.unwrap().is_empty(),
        "triggers go with the function"
    );
    store
        .create_function(record("p", "default", "f", 2), 10)
        .await
        .unwrap();
    assert!(
        store
            .list_test_events("p", "default", "f")
            .await
            .unwrap()
            .is_empty(),
        "test events go with the function"
    );
}

pub async fn triggers_advance_is_a_compare_and_set(store: &Store) {
    store
        .create_function(record("p", "default", "f", 1), 10)
        .await
        .expect("create");
    store
        .create_trigger(trigger("t", "f", "latest", Some(1000)), 10)
        .await
        .unwrap();
    assert!(
        !store.advance_timer("t", 999, Some(2000)).await.unwrap(),
        "wrong plan"
    );
    assert!(store.advance_timer("t", 1000, Some(2000)).await.unwrap());
    assert!(
        !store.advance_timer("t", 1000, Some(2000)).await.unwrap(),
        "taken once"
    );
    let t = store
        .get_trigger("p", "default", "f", "t")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((t.next_fire_ms, t.last_fire_ms), (Some(2000), Some(1000)));
    let mut off = t.clone();
    off.status = TriggerStatus::Disabled;
    store.update_trigger(&off).await.unwrap();
    assert!(
        !store.advance_timer("t", 2000, Some(3000)).await.unwrap(),
        "disabled"
    );
    assert!(!store.advance_timer("gone", 2000, None).await.unwrap());
}

pub async fn test_events_crud_names_and_limit(store: &Store) {
    store
        .create_function(record("p", "default", "f", 1), 10)
        .await
        .expect("create");
    store
        .create_test_event("p", "default", "f", ev("1", "a"), 2)
        .await
        .unwrap();
    let err = store
        .create_test_event("p", "default", "f", ev("2", "a"), 2)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::TestEventExists { .. }), "{err:?}");
    store
        .create_test_event("p", "default", "f", ev("2", "b"), 2)
        .await
        .unwrap();
    let err = store
        .create_test_event("p", "default", "f", ev("3", "c"), 2)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::TooManyTestEvents { limit: 2, .. }),
        "{err:?}"
    );
    let err = store
        .create_test_event("p", "default", "nope", ev("4", "d"), 2)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::FunctionNotFound { .. }),
        "{err:?}"
    );

    let list = store.list_test_events("p", "default", "f").await.unwrap();
    assert_eq!(
        list.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(),
        ["a", "b"]
    );
    let up = store
        .update_test_event("p", "default", "f", "1", "e30=", 9)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((up.content.as_str(), up.modified_ms), ("e30=", 9));
    assert!(store
        .update_test_event("p", "default", "f", "nope", "e30=", 9)
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        store
            .get_test_event("p", "default", "f", "1")
            .await
            .unwrap(),
        Some(up)
    );
    assert!(store
        .delete_test_event("p", "default", "f", "1")
        .await
        .unwrap());
    assert!(!store
        .delete_test_event("p", "default", "f", "1")
        .await
        .unwrap());
}
