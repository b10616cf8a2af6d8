//! The shards as `fgs serve` runs them: tasks spread over every shard's runtime, and the
//! shards stop with the main future. A test binary of its own, because `shard::run` installs
//! the shards for the whole process.

use std::time::Duration;

use fgs_pool::shard;

#[test]
fn tasks_spread_over_the_shards_and_the_shards_stop_with_main() {
    let seen = shard::run(3, Duration::from_micros(50), async {
        let mut seen = Vec::new();
        for _ in 0..6 {
            let h = shard::spawn(async {
                // A timer and I/O readiness work on every shard's runtime.
                tokio::time::sleep(Duration::from_millis(1)).await;
                let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let addr = l.local_addr().unwrap();
                let (_c, _s) = tokio::join!(tokio::net::TcpStream::connect(addr), l.accept());
                shard::current()
            });
            seen.push(h.await.unwrap());
        }
        seen
    })
    .unwrap();
    let mut sorted = seen.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, [0, 0, 1, 1, 2, 2], "{seen:?}");
}
