//! Durability and shutdown: data survives `kill -9`; SIGTERM and SIGINT stop cleanly.

use std::time::Duration;

use fgs_e2e::{alive, instances, json, unique, wait_until, Server, ServerOpts};

#[test]
fn functions_survive_kill_9() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let mark = unique("rst");
    let (config, code) = {
        let s = Server::start(ServerOpts::default().data_dir(&data));
        s.create_fixture(
            "durable",
            &mark,
            &[("KEPT", "yes")],
            json!({"memory_size": 256}),
        );
        s.put(
            "/functions/durable/config-max-instance",
            &json!({"max_instance_num": 3}),
        )
        .expect(200);
        s.invoke_pid("durable");
        let config = s.get("/functions/durable/config").json();
        let code = s.get("/functions/durable/code").json();
        s.kill9();
        (config, code)
    };

    let s = Server::start(ServerOpts::default().data_dir(&data));
    let list = s.get("/functions").json();
    assert_eq!(list["count"], 1, "{list}");
    let again = s.get("/functions/durable/config").json();
    for k in [
        "func_urn",
        "func_id",
        "memory_size",
        "user_data",
        "digest",
        "code_size",
        "last_modified",
    ] {
        assert_eq!(again[k], config[k], "{k} changed across the restart");
    }
    assert_eq!(
        s.get("/functions/durable/code").json()["digest"],
        code["digest"]
    );
    let env = s.invoke("durable", &json!({"op": "env"}));
    env.expect(200);
    assert!(env.text().contains("KEPT=yes"), "{}", env.text());
    assert!(env.text().contains("RUNTIME_MEMORY=256"), "{}", env.text());
}

fn stops_cleanly_on(signal: &str) {
    let s = Server::start(ServerOpts::default());
    let mark = unique("stop");
    s.create_fixture("stopper", &mark, &[], json!({}));
    let busy = s.invoke_pid("stopper");
    std::thread::scope(|sc| {
        // One instance in the middle of an invocation, whether it is drained or cut off, must
        // not keep fgs from exiting; a second one idle.
        sc.spawn(|| {
            s.req("POST", &s.api("/functions/stopper/invocations"))
                .json(&json!({"op": "sleep", "secs": "5"}))
                .try_send()
        });
        std::thread::sleep(Duration::from_millis(500));
        let idle = s.invoke_pid("stopper");
        assert_ne!(idle, busy);
        assert_eq!(instances(&mark).len(), 2);
        s.signal(signal);
        let status = s
            .wait_exit(Duration::from_secs(30))
            .expect("fgs did not exit within 30 s");
        assert_eq!(
            status.code(),
            Some(0),
            "exit status after SIG{signal}: {status}"
        );
        assert!(!alive(idle));
    });
    assert!(!alive(busy));
    assert!(
        wait_until(Duration::from_secs(2), || instances(&mark).is_empty()),
        "bootstraps left behind after SIG{signal}: {:?}",
        instances(&mark)
    );
}

#[test]
fn sigterm_exits_0_and_stops_every_instance() {
    stops_cleanly_on("TERM");
}

#[test]
fn sigint_exits_0_and_stops_every_instance() {
    stops_cleanly_on("INT");
}
