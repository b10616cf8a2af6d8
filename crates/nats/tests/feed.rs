//! The NATS feed against a real nats-server (Debian's `nats-server`, started by each test on a
//! free port with its own JetStream store). Without the binary the tests say so and pass,
//! unless `FGS_TEST_REQUIRE_ENGINES=1` (scripts/test sets it).

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fgs_nats::NatsFeed;
use fgs_store::{ChangeFeed, ChangeKind, FunctionKey, Notice, Subscription};

struct Server {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Server {
    /// A fresh nats-server, or `None` when the binary is missing and engines are optional.
    fn start() -> Option<Server> {
        let found = Command::new("nats-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok();
        if !found {
            assert!(
                std::env::var("FGS_TEST_REQUIRE_ENGINES").as_deref() != Ok("1"),
                "nats-server is required (FGS_TEST_REQUIRE_ENGINES=1) but not installed"
            );
            eprintln!("skipped: nats-server is not installed (apt-get install nats-server)");
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let dir = tempfile::tempdir().expect("temp dir");
        let child = spawn(port, dir.path());
        Some(Server { child, port, dir })
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts it again on the same port and store: the stream is still there.
    fn restart(&mut self) {
        self.child = spawn(self.port, self.dir.path());
    }
}

fn spawn(port: u16, dir: &Path) -> Child {
    let child = Command::new("nats-server")
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nats-server starts");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nats-server did not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn key(name: &str) -> FunctionKey {
    FunctionKey {
        project: "p".into(),
        package: "default".into(),
        name: name.into(),
    }
}

async fn node(server: &Server, name: &str) -> Arc<NatsFeed> {
    NatsFeed::connect(&server.url(), name, Duration::from_secs(3))
        .await
        .expect("connects")
}

/// The next notice, within `limit`.
async fn next(sub: &mut Subscription, limit: Duration) -> Notice {
    tokio::time::timeout(limit, sub.recv())
        .await
        .expect("a notice in time")
        .expect("the feed is open")
}

#[tokio::test]
async fn a_change_published_on_one_node_is_followed_on_another_within_a_second() {
    let Some(server) = Server::start() else {
        return;
    };
    let a = node(&server, "a").await;
    let b = node(&server, "b").await;
    let mut on_a = a.subscribe();
    let mut on_b = b.subscribe();
    let mut worst = Duration::ZERO;
    let mut revisions = Vec::new();
    for (i, feed) in [&a, &b, &a, &b].into_iter().enumerate() {
        let start = Instant::now();
        let revision = feed
            .publish(key(&format!("f{i}")), ChangeKind::Function)
            .await;
        revisions.push(revision);
        for sub in [&mut on_a, &mut on_b] {
            match next(sub, Duration::from_secs(1)).await {
                Notice::Changed(c) => {
                    assert_eq!(c.revision, revision);
                    assert_eq!(c.key, key(&format!("f{i}")));
                    assert_eq!(c.kind, ChangeKind::Function);
                    sub.applied(c.revision);
                }
                other => panic!("expected the change, got {other:?}"),
            }
        }
        worst = worst.max(start.elapsed());
    }
    println!("publish to applied on both nodes: at most {worst:?}");
    assert!(worst < Duration::from_secs(1), "{worst:?}");
    let first = revisions[0];
    assert_eq!(
        revisions,
        (first..first + 4).collect::<Vec<_>>(),
        "one sequence for all nodes"
    );
}

#[tokio::test]
async fn settled_waits_until_this_nodes_followers_applied_the_change() {
    let Some(server) = Server::start() else {
        return;
    };
    let a = node(&server, "a").await;
    let mut sub = a.subscribe();
    let revision = a.publish(key("f"), ChangeKind::Alias).await;
    let start = Instant::now();
    a.settled(revision, Duration::from_millis(300)).await;
    assert!(
        start.elapsed() >= Duration::from_millis(300),
        "nothing applied it yet"
    );
    let follower = tokio::spawn(async move {
        if let Some(Notice::Changed(c)) = sub.recv().await {
            sub.applied(c.revision);
        }
        sub
    });
    let start = Instant::now();
    a.settled(revision, Duration::from_secs(5)).await;
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    drop(follower.await);
}

#[tokio::test]
async fn a_node_that_starts_later_follows_from_there_without_a_resync() {
    let Some(server) = Server::start() else {
        return;
    };
    let a = node(&server, "a").await;
    for i in 0..3 {
        a.publish(key(&format!("old{i}")), ChangeKind::Function)
            .await;
    }
    let b = node(&server, "b").await;
    let mut on_b = b.subscribe();
    let revision = a.publish(key("new"), ChangeKind::Trigger).await;
    match next(&mut on_b, Duration::from_secs(1)).await {
        Notice::Changed(c) => assert_eq!((c.revision, c.key), (revision, key("new"))),
        other => panic!("the old changes are in the store already: {other:?}"),
    }
}

#[tokio::test]
async fn after_nats_comes_back_followers_resync_and_follow_again() {
    let Some(mut server) = Server::start() else {
        return;
    };
    let a = node(&server, "a").await;
    let b = node(&server, "b").await;
    let mut on_b = b.subscribe();
    a.publish(key("before"), ChangeKind::Function).await;
    assert!(matches!(
        next(&mut on_b, Duration::from_secs(1)).await,
        Notice::Changed(_)
    ));
    server.stop();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!a.is_connected(), "the loss is seen");
    let why = a.unavailable().expect("writes are refused meanwhile");
    assert!(why.contains("NATS at nats://127.0.0.1:"), "{why}");
    server.restart();
    let start = Instant::now();
    match next(&mut on_b, Duration::from_secs(10)).await {
        Notice::Resync { .. } => {}
        other => panic!("expected a resync after the reconnection, got {other:?}"),
    }
    println!("resync {:?} after NATS was back", start.elapsed());
    while !a.is_connected() {
        assert!(start.elapsed() < Duration::from_secs(10), "a reconnects");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(a.unavailable(), None, "writes are taken again");
    let revision = a.publish(key("after"), ChangeKind::Function).await;
    assert!(revision > 0, "published once NATS is back");
    loop {
        match next(&mut on_b, Duration::from_secs(5)).await {
            Notice::Changed(c) if c.key == key("after") => break,
            // a's own reconnection may come after b's
            Notice::Resync { .. } | Notice::Changed(_) => continue,
        }
    }
    println!(
        "a change {:?} after NATS was back is followed",
        start.elapsed()
    );
}

#[tokio::test]
async fn a_change_published_while_nats_is_down_reaches_the_others_once_it_is_back() {
    let Some(mut server) = Server::start() else {
        return;
    };
    let a = node(&server, "a").await;
    let b = node(&server, "b").await;
    let mut on_b = b.subscribe();
    server.stop();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let start = Instant::now();
    let revision = a.publish(key("meanwhile"), ChangeKind::Version).await;
    assert_eq!(revision, 0, "not taken while NATS is down");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    server.restart();
    loop {
        match next(&mut on_b, Duration::from_secs(10)).await {
            Notice::Changed(c) if c.key == key("meanwhile") => break,
            Notice::Resync { .. } | Notice::Changed(_) => continue,
        }
    }
}

#[tokio::test]
async fn an_unreachable_nats_is_a_clear_error_in_time() {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let url = format!("nats://fgs:secret@127.0.0.1:{port}");
    let start = Instant::now();
    let err = match NatsFeed::connect(&url, "a", Duration::from_secs(2)).await {
        Ok(_) => panic!("nothing listens there"),
        Err(e) => e.to_string(),
    };
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "{:?}",
        start.elapsed()
    );
    assert!(
        err.contains("cannot connect to NATS at nats://127.0.0.1:"),
        "{err}"
    );
    assert!(!err.contains("secret"), "{err}");
}
