//! The bench's `queue` measurement (bench/README.md, docs/cluster.md): fgs's PostgreSQL async
//! queue through its store trait against a JetStream work-queue stream, the same events, payload
//! and concurrency on both.
//!
//! `queue_bench --store postgres://USER@HOST:PORT/EMPTY_DB --nats nats://HOST:PORT
//!  [--events 5000] [--producers 64] [--consumers 3] [--batch 64] [--payload 64]`
//!
//! Per engine, producers and consumers run at once. Each producer submits one event at a time
//! and waits until it is durable, as an HTTP caller waits for its 202: on PostgreSQL through a
//! batching writer, as fgs's dispatcher accepts (one transaction for what arrived meanwhile);
//! on JetStream a publish waiting for its acknowledgement. Each consumer (a node) takes up to
//! `--batch` events at a time and completes them: on PostgreSQL a claim under a lease
//! (`FOR UPDATE SKIP LOCKED`) and one settle of the batch; on JetStream a pull of a durable
//! consumer (explicit acks, ack wait 30 s, 5 deliveries at most) and an ack per message. Prints
//! one JSON line per engine: events, seconds until every event was accepted and until every
//! event was completed, and the rates.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::{self, consumer, stream};
use fgs_core::flows::AsyncStatus;
use fgs_store::conformance::{async_row, record};
use fgs_store::{AsyncRow, StoreKind};
use futures_util::StreamExt;
use tokio::sync::{mpsc, oneshot};

type Error = Box<dyn std::error::Error + Send + Sync>;

struct Args {
    store: String,
    nats: String,
    events: usize,
    producers: usize,
    consumers: usize,
    batch: usize,
    payload: usize,
}

fn args() -> Result<Args, Error> {
    let mut a = Args {
        store: String::new(),
        nats: String::new(),
        events: 5000,
        producers: 64,
        consumers: 3,
        batch: 64,
        payload: 64,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--store" => a.store = value,
            "--nats" => a.nats = value,
            "--events" => a.events = value.parse()?,
            "--producers" => a.producers = value.parse()?,
            "--consumers" => a.consumers = value.parse()?,
            "--batch" => a.batch = value.parse()?,
            "--payload" => a.payload = value.parse()?,
            other => return Err(format!("unknown flag {other}").into()),
        }
    }
    if a.store.is_empty() || a.nats.is_empty() {
        return Err("usage: queue_bench --store postgres://... --nats nats://... [...]".into());
    }
    Ok(a)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// `n` split over `parts`: the share of part `i`.
fn share(n: usize, parts: usize, i: usize) -> usize {
    n / parts + usize::from(i < n % parts)
}

struct Timing {
    accepted: Duration,
    completed: Duration,
}

fn report(engine: &str, a: &Args, t: &Timing) {
    let rate = |d: Duration| a.events as f64 / d.as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "engine": engine, "events": a.events, "producers": a.producers,
            "consumers": a.consumers, "batch": a.batch, "payload": a.payload,
            "accepted_s": t.accepted.as_secs_f64(), "completed_s": t.completed.as_secs_f64(),
            "accepted_per_s": rate(t.accepted), "completed_per_s": rate(t.completed),
        })
    );
}

type Pending = (AsyncRow, oneshot::Sender<bool>);

/// fgs's accepting path: what arrived while the previous batch was written is one transaction.
async fn accept_batches(queue: Arc<dyn fgs_store::AsyncQueue>, mut rx: mpsc::Receiver<Pending>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < 512 {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        let (rows, acks): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
        let results = queue.accept(rows).await;
        for (i, ack) in acks.into_iter().enumerate() {
            let ok = matches!(&results, Ok(r) if r.get(i).is_some_and(Result::is_ok));
            let _ = ack.send(ok);
        }
    }
}

async fn postgres(a: &Args) -> Result<Timing, Error> {
    let dir = tempfile::tempdir()?;
    let store = StoreKind::Postgres(a.store.clone())
        .open(dir.path())
        .await?;
    let rec = record("bench", "default", "queue", now_ms());
    store.create_function(rec.clone(), 10).await?;
    let queue = Arc::clone(store.queue());
    let (tx, rx) = mpsc::channel(4096);
    tokio::spawn(accept_batches(Arc::clone(&queue), rx));
    let body = vec![b'x'; a.payload];
    let start = Instant::now();
    let done = Arc::new(AtomicUsize::new(0));
    let consumers: Vec<_> = (0..a.consumers)
        .map(|c| {
            let (queue, done, total, batch) = (Arc::clone(&queue), done.clone(), a.events, a.batch);
            tokio::spawn(async move {
                let owner = format!("bench-{c}");
                while done.load(Ordering::Acquire) < total {
                    let now = now_ms();
                    let rows = queue.claim(&owner, now, now + 30_000, batch).await?;
                    if rows.is_empty() {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                        continue;
                    }
                    let finished: Vec<AsyncRow> = rows
                        .into_iter()
                        .map(|r| AsyncRow {
                            status: AsyncStatus::Success,
                            attempts: 1,
                            ended_ms: Some(now_ms()),
                            ..r
                        })
                        .collect();
                    let settled = queue.settle(finished).await?;
                    done.fetch_add(settled.iter().filter(|s| **s).count(), Ordering::AcqRel);
                }
                Ok::<(), fgs_store::StoreError>(())
            })
        })
        .collect();
    let producers: Vec<_> = (0..a.producers)
        .map(|p| {
            let (tx, rec, body, n) = (
                tx.clone(),
                rec.clone(),
                body.clone(),
                share(a.events, a.producers, p),
            );
            tokio::spawn(async move {
                for i in 0..n {
                    let mut row = async_row(&format!("p{p}-{i}"), &rec, now_ms());
                    row.body = body.clone();
                    let (ack, acked) = oneshot::channel();
                    tx.send((row, ack))
                        .await
                        .map_err(|_| "the writer stopped")?;
                    if !acked.await? {
                        return Err::<(), Error>("an accept failed".into());
                    }
                }
                Ok(())
            })
        })
        .collect();
    for p in producers {
        p.await??;
    }
    let accepted = start.elapsed();
    for c in consumers {
        c.await??;
    }
    Ok(Timing {
        accepted,
        completed: start.elapsed(),
    })
}

const STREAM: &str = "FGS_QUEUE_BENCH";

async fn jetstream(a: &Args) -> Result<Timing, Error> {
    let client = async_nats::connect(&a.nats).await?;
    let js = jetstream::new(client);
    // A fresh stream per run: a work queue, on disk, as the change feed's stream.
    let _ = js.delete_stream(STREAM).await;
    let stream = js
        .create_stream(stream::Config {
            name: STREAM.to_owned(),
            subjects: vec!["fgs-queue-bench.>".to_owned()],
            retention: stream::RetentionPolicy::WorkQueue,
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await?;
    let consumer: consumer::PullConsumer = stream
        .create_consumer(consumer::pull::Config {
            durable_name: Some("workers".to_owned()),
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: Duration::from_secs(30),
            max_deliver: 5,
            max_ack_pending: 100_000,
            ..Default::default()
        })
        .await?;
    let body = bytes::Bytes::from(vec![b'x'; a.payload]);
    let start = Instant::now();
    let done = Arc::new(AtomicUsize::new(0));
    let consumers: Vec<_> = (0..a.consumers)
        .map(|_| {
            let (consumer, done, total, batch) =
                (consumer.clone(), done.clone(), a.events, a.batch);
            tokio::spawn(async move {
                while done.load(Ordering::Acquire) < total {
                    let mut msgs = consumer
                        .batch()
                        .max_messages(batch)
                        .expires(Duration::from_millis(50))
                        .messages()
                        .await?;
                    while let Some(m) = msgs.next().await {
                        m?.ack().await?;
                        done.fetch_add(1, Ordering::AcqRel);
                    }
                }
                Ok::<(), Error>(())
            })
        })
        .collect();
    let producers: Vec<_> = (0..a.producers)
        .map(|p| {
            let (js, body, n) = (js.clone(), body.clone(), share(a.events, a.producers, p));
            tokio::spawn(async move {
                for _ in 0..n {
                    js.publish(format!("fgs-queue-bench.{p}"), body.clone())
                        .await?
                        .await?;
                }
                Ok::<(), Error>(())
            })
        })
        .collect();
    for p in producers {
        p.await??;
    }
    let accepted = start.elapsed();
    for c in consumers {
        c.await??;
    }
    let completed = start.elapsed();
    js.delete_stream(STREAM).await?;
    Ok(Timing {
        accepted,
        completed,
    })
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let a = args()?;
    let t = postgres(&a).await?;
    report("postgres", &a, &t);
    let t = jetstream(&a).await?;
    report("jetstream", &a, &t);
    Ok(())
}
