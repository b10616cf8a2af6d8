//! `fgs serve`: configuration, start-up (storage, credentials, sandbox, invoker, HTTP) and the
//! graceful stop.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use fgs_api::auth::Keyring;
use fgs_api::AppState;
use fgs_invoke::{AsyncConfig, AsyncDispatcher, Invoker, InvokerConfig, LeaseConfig, StoreSource};
use fgs_package::PackageStore;
use fgs_sandbox::{Isolation, Sandbox, SandboxConfig};
use fgs_store::{Catalog, Store, StoreKind};
use fgs_triggers::TriggerHub;

use crate::demo;

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address the API listens on. Instances use 127.0.0.1:8000 and 8081-8090 themselves.
    #[arg(long, env = "FGS_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Where functions, code packages and the database live.
    #[arg(long, env = "FGS_DATA_DIR", default_value = "./fgs-data")]
    pub data_dir: PathBuf,
    /// Which store holds functions, triggers, logs and the async queue: `sqlite` (in the data
    /// dir, a single node) or `postgres://USER[:PASSWORD]@HOST:PORT/DB`, a PostgreSQL database
    /// the nodes of a cluster share (plain TCP or a unix socket, no TLS; docs/cluster.md).
    #[arg(
        long,
        env = "FGS_STORE",
        default_value = "sqlite",
        hide_env_values = true
    )]
    pub store: String,
    /// This node's name, the owner of the async events it runs (their leases); default
    /// `<host name>:<port of --listen>`. Unique among the nodes sharing a store.
    #[arg(long, env = "FGS_NODE_ID")]
    pub node_id: Option<String>,
    /// MiB an upload must leave free on the data dir's file system, else it is refused with
    /// FSS.0507; 0 turns the check off.
    #[arg(long, env = "FGS_MIN_FREE_DISK", default_value_t = 256)]
    pub min_free_disk: u64,
    /// Region named in function URNs.
    #[arg(long, env = "FGS_REGION", default_value = "local")]
    pub region: String,
    /// How long an idle instance is kept warm (humantime: 30s, 10m, 1h).
    #[arg(long, env = "FGS_INSTANCE_IDLE_TIMEOUT", default_value = "10m", value_parser = humantime::parse_duration)]
    pub instance_idle_timeout: Duration,
    #[command(flatten)]
    pub credentials: crate::credentials::CredentialArgs,
    /// A static token accepted in `X-Auth-Token` for any project.
    #[arg(long, env = "FGS_AUTH_TOKEN", hide_env_values = true)]
    pub auth_token: Option<String>,
    /// Callers that may wait per function version when all its allowed instances are busy.
    #[arg(long, env = "FGS_QUEUE_LIMIT", default_value_t = 64)]
    pub queue_limit: usize,
    /// How long in-flight invocations may take to finish at shutdown.
    #[arg(long, env = "FGS_SHUTDOWN_GRACE", default_value = "30s", value_parser = humantime::parse_duration)]
    pub shutdown_grace: Duration,
    /// How long a function's extensions may take to register at cold start (SPEC.md 5).
    #[arg(long, env = "FGS_EXTENSION_INIT_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub extension_init_timeout: Duration,
    /// Async invocations run at once, across all functions.
    #[arg(long, env = "FGS_ASYNC_CONCURRENCY", default_value_t = 64)]
    pub async_concurrency: usize,
    /// Wait before the first retry of a failed async invocation; each next retry waits twice
    /// as long.
    #[arg(long, env = "FGS_ASYNC_RETRY_BASE", default_value = "1s", value_parser = humantime::parse_duration)]
    pub async_retry_base: Duration,
    /// Threads serving requests, each with its own connections and instances (thread-per-core,
    /// docs/architecture.md); 0 is one per cpu.
    #[arg(long, env = "FGS_THREADS", default_value_t = 0)]
    pub threads: usize,
    /// How long a serving thread keeps polling its sockets after its last work before it
    /// sleeps (docs/architecture.md); 0s never.
    #[arg(long, env = "FGS_POLL_WINDOW", default_value = "50us", value_parser = humantime::parse_duration)]
    pub poll_window: Duration,
    /// Base URL callers reach fgs at, for APIG triggers' `invoke_url` (`https://fgs.example.com`,
    /// with a path prefix if a proxy adds one); default `http://<listen address>`.
    #[arg(long, env = "FGS_PUBLIC_URL", value_parser = parse_public_url)]
    pub public_url: Option<String>,
    /// Create a demo function `hello` (if missing) and print how to invoke it.
    #[arg(long)]
    pub demo: bool,
    /// Serve `GET /metrics` without credentials, for scrapers that send none (docs/metrics.md).
    #[arg(long, env = "FGS_METRICS_PUBLIC")]
    pub metrics_public: bool,
    /// An OpenTelemetry collector's OTLP/HTTP base URL (`http://localhost:4318`): each
    /// invocation of a function whose tracing is on (`PUT .../tracing`) is exported there as
    /// a span, posted in batches to `<URL>/v1/traces` (docs/api.md).
    #[arg(long, env = "FGS_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
    #[command(flatten)]
    pub logs: crate::logging::LogArgs,
    #[command(flatten)]
    pub conn: crate::listen::ConnLimits,
    #[command(flatten)]
    pub cluster: crate::cluster::ClusterArgs,
    #[command(flatten)]
    pub membership: crate::membership::MembershipArgs,
    #[command(flatten)]
    pub sandbox: SandboxArgs,
    #[command(flatten)]
    pub runtimes: crate::runtimes_cmd::RuntimeArgs,
    #[command(flatten)]
    pub registries: crate::images::RegistryArgs,
}

/// [FGS] Removes the code packages (zips, unpacked and merged trees) no function, version or
/// dependency version uses any more: replaced code, deleted functions and dependencies. At
/// start only, before any instance runs, since a running instance reads its package's tree.
async fn collect_package_garbage(
    store: &Store,
    packages: &PackageStore,
) -> Result<fgs_package::Collected> {
    let used = store
        .package_use()
        .await
        .context("reading which packages are used")?;
    // The shared copy (a no-op where nothing is shared): only packages no record of any node
    // uses, and old enough that no upload is still waiting for its record.
    let grace = crate::shared_packages::SHARED_PACKAGE_GRACE.as_millis() as i64;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let before = now.saturating_sub(grace);
    match store.blobs().collect_blobs(&used.packages, before).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            packages = n,
            "removed unused packages from the shared store"
        ),
        Err(e) => tracing::warn!(error = %e, "unused packages kept in the shared store"),
    }
    let packages = packages.clone();
    Ok(tokio::task::spawn_blocking(move || {
        packages.collect_garbage(&used.packages, &used.dependency_lists)
    })
    .await??)
}

/// `--public-url`: an absolute http(s) URL without query or fragment; returned without its
/// trailing slashes, since the routes it prefixes begin with `/`.
pub(crate) fn parse_public_url(s: &str) -> Result<String, String> {
    let uri: axum::http::Uri = s.parse().map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err("must begin with http:// or https://".into());
    }
    if uri.authority().is_none_or(|a| a.host().is_empty()) {
        return Err("names no host".into());
    }
    if s.contains(['?', '#']) {
        return Err("must have no query or fragment".into());
    }
    Ok(s.trim_end_matches('/').to_string())
}

/// `--sandbox`: whether instances run in the sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SandboxMode {
    On,
    Off,
}

/// How instances are isolated (docs/sandbox.md).
#[derive(Debug, clap::Args)]
pub struct SandboxArgs {
    /// `on`: namespaces, cgroups, seccomp (without root: the same namespaces inside a user
    /// namespace, cgroup limits reported as not enforced); `off`: plain process groups on the
    /// host, no isolation at all (reported as a warning in the log and in /healthz).
    #[arg(
        long = "sandbox",
        env = "FGS_SANDBOX",
        default_value = "on",
        value_enum
    )]
    pub mode: SandboxMode,
    /// Sandboxes kept prepared ahead of need, so that a cold start pays only the runtime's start.
    #[arg(long, env = "FGS_PREWARM", default_value_t = 2)]
    pub prewarm: usize,
    /// Interpreters kept started ahead of cold starts, per class: `python=N,nodejs=N` (0 turns
    /// a class off). Held for each runtime version once a function of it has started, in
    /// pre-warmed sandboxes; needs the sandbox as root. Default `python=2,nodejs=2`.
    #[arg(long, env = "FGS_PRESTART", value_parser = parse_prestart)]
    pub prestart: Option<PrestartCounts>,
    /// Name of the cgroup instance cgroups are created under, at each hierarchy's root.
    #[arg(long, env = "FGS_CGROUP_PARENT", default_value = "fgs")]
    pub cgroup_parent: String,
    /// Host directory for sandbox mount points, namespace files and pasta pid files. Without root
    /// and without write access here: `$XDG_RUNTIME_DIR/fgs`, else `/tmp/fgs-<uid>`.
    #[arg(long, env = "FGS_SANDBOX_RUN_DIR", default_value = "/run/fgs")]
    pub sandbox_run_dir: PathBuf,
    /// Give instances no network beyond their own loopback (no egress, no host.fgs.internal).
    #[arg(long, env = "FGS_NO_EGRESS")]
    pub no_egress: bool,
    /// As root: the bridge instances' veth pairs join (the next free name, fgs1..., while
    /// another running fgs has it).
    #[arg(long, env = "FGS_EGRESS_BRIDGE", default_value = "fgs0")]
    pub egress_bridge: String,
    /// As root: the private IPv4 range instance addresses come from (the bridge takes the
    /// first, host.fgs.internal). Default: the first of 10.200-255.0.0/16, 172.16-31.0.0/16
    /// that none of the host's routes overlaps.
    #[arg(long, env = "FGS_EGRESS_SUBNET")]
    pub egress_subnet: Option<fgs_sandbox::Subnet>,
}

impl SandboxArgs {
    fn config(&self) -> SandboxConfig {
        SandboxConfig {
            isolation: match self.mode {
                SandboxMode::On => Isolation::Namespaces,
                SandboxMode::Off => Isolation::Off,
            },
            cgroup_parent: self.cgroup_parent.clone(),
            run_dir: self.sandbox_run_dir.clone(),
            prewarm: self.prewarm,
            prestart: self.prestart.clone().map(|p| p.0).unwrap_or_else(|| {
                fgs_sandbox::DEFAULT_PRESTART
                    .iter()
                    .map(|(c, n)| (c.to_string(), *n))
                    .collect()
            }),
            egress: !self.no_egress,
            bridge: self.egress_bridge.clone(),
            egress_subnet: self.egress_subnet,
            ..SandboxConfig::default()
        }
    }
}

/// `--prestart`'s counts per class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrestartCounts(pub Vec<(String, usize)>);

/// `--prestart python=2,nodejs=1`: counts per class; a class not named keeps its default.
fn parse_prestart(s: &str) -> Result<PrestartCounts, String> {
    let mut out: Vec<(String, usize)> = fgs_sandbox::DEFAULT_PRESTART
        .iter()
        .map(|(c, n)| (c.to_string(), *n))
        .collect();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (class, n) = part
            .split_once('=')
            .ok_or_else(|| format!("{part:?} is not CLASS=N"))?;
        let n: usize = n
            .trim()
            .parse()
            .map_err(|_| format!("{n:?} in {part:?} is not a count"))?;
        let slot = out
            .iter_mut()
            .find(|(c, _)| c == class.trim())
            .ok_or_else(|| format!("unknown class {class:?}: python or nodejs"))?;
        slot.1 = n;
    }
    Ok(PrestartCounts(out))
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// `--node-id`, or the host name and the listen port: unique per node as long as each host runs
/// one fgs per port.
fn node_id(args: &ServeArgs) -> Result<String> {
    if let Some(id) = &args.node_id {
        if id.trim().is_empty() || id.len() > 128 {
            bail!("--node-id must be 1 to 128 characters, not {id:?}");
        }
        return Ok(id.clone());
    }
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    Ok(format!("{host}:{}", args.listen.port()))
}

pub async fn run(args: ServeArgs) -> Result<()> {
    // Refused before anything is created: a wrong --store must not leave an empty data dir.
    let store_kind: StoreKind = args.store.parse()?;
    crate::cluster::check(&store_kind, &args.cluster)?;
    let node_id = node_id(&args)?;
    // Before the data dir too: a node that cannot reach its cluster leaves nothing behind.
    let feed = crate::cluster::feed(&args.cluster, &node_id).await?;
    let create_data_dir = || {
        std::fs::create_dir_all(&args.data_dir)
            .with_context(|| format!("creating data dir {}", args.data_dir.display()))
    };
    // SQLite lives in the data dir; a shared store is reached first, so that an unreachable
    // one leaves nothing behind either.
    if !store_kind.is_shared() {
        create_data_dir()?;
    }
    let store = store_kind
        .open(&args.data_dir)
        .await
        .with_context(|| format!("opening the store {}", store_kind.describe()))?;
    create_data_dir()?;
    tracing::info!(store = store_kind.describe(), node_id, "store");
    let mut packages = PackageStore::open(&args.data_dir)
        .context("opening the package store")?
        .with_min_free_disk(args.min_free_disk.saturating_mul(1024 * 1024));
    if store_kind.is_shared() {
        // A node lacking a package (made on another node) gets it from the shared store.
        packages = packages.with_source(std::sync::Arc::new(
            crate::shared_packages::SharedPackages::new(store.clone()),
        ));
    }
    match collect_package_garbage(&store, &packages).await {
        Ok(c) if c == fgs_package::Collected::default() => {}
        Ok(c) => tracing::info!(
            packages = c.packages,
            trees = c.trees,
            "removed unused code packages"
        ),
        // Nothing is lost by keeping them: the next start tries again.
        Err(e) => tracing::warn!(error = format!("{e:#}"), "unused code packages kept"),
    }
    let images = crate::images::open(&args.data_dir, &args.registries)?;
    match crate::images::collect_garbage(&store, &images).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(images = n, "removed unused images"),
        Err(e) => tracing::warn!(error = format!("{e:#}"), "unused images kept"),
    }
    let creds = crate::credentials::load_credentials(&args.credentials, &args.data_dir)?;
    let demo_project = creds[0].project_id.clone();
    let keyring = Keyring::new(creds, args.auth_token.clone().filter(|t| !t.is_empty()));

    let (runtimes, runtime_dir) = crate::runtimes_cmd::prepare(&args.data_dir, &args.runtimes)?;
    // Probing, sweeping what a killed fgs left and the first pre-warm block for a moment.
    let sandbox_cfg = args.sandbox.config();
    let sandbox = tokio::task::spawn_blocking(move || Sandbox::new(sandbox_cfg)).await?;
    let report = sandbox.report();
    tracing::info!(
        mode = %report.mode,
        not_enforced = ?report.not_enforced,
        cgroups = report.cgroups.layout,
        egress = report.egress,
        prewarm = report.prewarm,
        warnings = report.warnings.len(),
        "instance isolation"
    );
    let isolation = serde_json::to_value(report).context("serializing the isolation report")?;

    let invoker = Invoker::new(
        StoreSource {
            store: store.clone(),
            packages: packages.clone(),
            images: Arc::clone(&images),
        },
        sandbox.clone(),
        InvokerConfig {
            idle_timeout: args.instance_idle_timeout,
            queue_limit: args.queue_limit,
            stop_grace: Duration::from_secs(3),
            extension_init_timeout: args.extension_init_timeout,
            runtime_mounts: Arc::new(fgs_instance::runtime_mounts(&runtimes)),
            runtimes: Arc::clone(&runtimes),
            runtime_dir,
        },
    );
    if let Some(endpoint) = &args.otlp_endpoint {
        invoker.set_tracer(fgs_invoke::Tracer::new(endpoint)?);
        tracing::info!(
            url = fgs_invoke::traces_url(endpoint),
            "exporting the spans of traced functions"
        );
    }
    // Accepted async events run through the same invoker, at most this many at once.
    let dispatcher = AsyncDispatcher::new(
        Arc::clone(&invoker),
        Arc::clone(store.queue()),
        AsyncConfig {
            concurrency: args.async_concurrency,
            retry_base: args.async_retry_base,
            region: args.region.clone(),
            lease: LeaseConfig::new(node_id.clone()),
        },
    );
    let dispatch_task = tokio::spawn(Arc::clone(&dispatcher).run());
    // In a cluster, `max_instance_num` counts the instances of every node (docs/cluster.md).
    let cluster_limits = args.cluster.nats.is_some().then(|| {
        Arc::new(fgs_invoke::cluster::ClusterLimits::new(
            Arc::clone(store.slots()),
            node_id.clone(),
            args.membership.node_timeout,
        ))
    });
    let fence_task = cluster_limits
        .as_ref()
        .map(|l| invoker.set_cluster_limits(Arc::clone(l)));
    // Every invocation's log, sync and async, stored off the invocation's path (docs/logs.md).
    let log_tasks = fgs_invoke::log_store::start(store.clone(), &invoker, args.logs.config());
    // Writes publish on the change feed after they commit; what is derived from storage (the
    // invoker's cache and pools, the APIG routes and timers) follows it, from before the first
    // write (docs/architecture.md).
    let triggers = TriggerHub::new();
    let followers = [
        invoker.follow(feed.subscribe()),
        triggers.follow(store.clone(), feed.subscribe()),
    ];
    // In a cluster, this node's statistics go to the store for the other nodes to read.
    let stats_run = args
        .cluster
        .nats
        .is_some()
        .then(|| fgs_api::cluster_stats::run_id(&node_id, crate::membership::wall_ms()));
    let state = Arc::new(AppState {
        store: store.clone(),
        catalog: Catalog::new(store.clone(), feed),
        packages: packages.clone(),
        images,
        invoker: Arc::clone(&invoker),
        dispatcher: Arc::clone(&dispatcher),
        keyring,
        region: args.region.clone(),
        isolation,
        runtimes,
        triggers: Arc::clone(&triggers),
        trigger_writes: tokio::sync::Mutex::new(()),
        metrics_public: args.metrics_public,
        node: args.cluster.nats.is_some().then(|| node_id.clone()),
        stats_run: stats_run.clone(),
    });

    if args.demo {
        demo::ensure(&state, &demo_project).await?;
    }

    // Idle reclaim: checked often enough that an instance outlives its idle timeout by at most
    // a quarter of it.
    let sweep =
        (args.instance_idle_timeout / 4).clamp(Duration::from_millis(100), Duration::from_secs(10));
    let sweeper = {
        let invoker = Arc::clone(&invoker);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(sweep);
            loop {
                tick.tick().await;
                let n = invoker.reclaim_idle();
                if n > 0 {
                    tracing::debug!(reclaimed = n, "idle instances stopped");
                }
            }
        })
    };

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr()?;
    // Routes and timers start once the address is known: APIG's invoke_url names it.
    let public_url = match &args.public_url {
        Some(url) => url.clone(),
        None => {
            if addr.ip().is_unspecified() {
                tracing::warn!(%addr, "APIG triggers' invoke_url names an unspecified address: set --public-url to the URL callers use");
            }
            format!("http://{addr}")
        }
    };
    let timers = triggers
        .start(
            &store,
            public_url.clone(),
            crate::fire::AsyncFire::new(&dispatcher),
        )
        .await
        .context("starting triggers")?;
    let advertise_url = args.cluster.advertise_url.clone().unwrap_or(public_url);
    tracing::info!(%addr, data_dir = %args.data_dir.display(), node_id, advertise_url, "fgs serving");
    let heartbeat_task = tokio::spawn(crate::membership::heartbeat(
        store.clone(),
        node_id.clone(),
        advertise_url.clone(),
        args.membership.clone(),
        cluster_limits.clone(),
        crate::membership::wall_ms,
    ));
    if let Some(limits) = &cluster_limits {
        // Instances of a cluster start once this node's heartbeat made it live.
        let t0 = tokio::time::Instant::now();
        while !limits.fence().open() && t0.elapsed() < 2 * args.membership.heartbeat_interval {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // Reserved instances are started ahead, before any invocation asks for them.
    invoker.warm_all().await;
    // Scheduled changes of reserved instance counts (docs/api.md).
    let policies = tokio::spawn(fgs_api::reserved_policies::run(Arc::clone(&state)));
    let stats_task = stats_run.clone().map(|run| {
        tokio::spawn(fgs_api::cluster_stats::flush_forever(
            store.clone(),
            run,
            fgs_api::cluster_stats::FLUSH_EVERY,
        ))
    });
    println!("listening on http://{addr}");
    if args.demo {
        demo::print_usage(addr, &args.data_dir);
    }

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let api = fgs_api::Api::new(state);
    let server = tokio::spawn(crate::listen::serve(listener, api, args.conn, async {
        let _ = stop_rx.await;
    }));
    shutdown_signal().await;
    tracing::info!(grace = ?args.shutdown_grace, "stopping: no new requests, waiting for in-flight ones");
    let _ = stop_tx.send(());
    if tokio::time::timeout(args.shutdown_grace, server)
        .await
        .is_err()
    {
        tracing::warn!("in-flight requests did not finish within the grace period");
    }
    sweeper.abort();
    policies.abort();
    dispatch_task.abort();
    heartbeat_task.abort();
    if let Some(t) = fence_task {
        t.abort();
    }
    timers.abort();
    for f in followers {
        f.abort();
    }
    invoker.shutdown().await;
    if cluster_limits.is_some() {
        // The instances have stopped: their places are free for the other nodes now, not
        // when this node is forgotten.
        if let Err(e) = store.slots().release_node_slots(&node_id).await {
            tracing::warn!(error = %e, "giving back this node's instance places failed");
        }
    }
    if let (Some(task), Some(run)) = (stats_task, &stats_run) {
        task.abort();
        // The last seconds' counts, for the other nodes' statistics.
        if let Err(e) = fgs_api::cluster_stats::flush(&store, run, i64::MIN).await {
            tracing::warn!(error = %e, "writing this node's last statistics failed");
        }
    }
    // After the invoker: the last invocations' logs are queued by now.
    log_tasks.finish(Duration::from_secs(2)).await;
    tokio::task::spawn_blocking(move || sandbox.shutdown()).await?;
    tracing::info!("stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn prestart_counts_override_the_named_classes_only() {
        let p = |s: &str| super::parse_prestart(s).map(|c| c.0);
        assert_eq!(
            p("python=0").unwrap(),
            vec![("python".to_string(), 0), ("nodejs".to_string(), 2)]
        );
        assert_eq!(
            p("nodejs=3, python=1").unwrap(),
            vec![("python".to_string(), 1), ("nodejs".to_string(), 3)]
        );
        assert!(p("ruby=1").unwrap_err().contains("unknown class"));
        assert!(p("python").is_err());
        assert!(p("python=-1").is_err());
    }

    use super::parse_public_url;

    #[test]
    fn public_urls_are_absolute_http_without_query_and_lose_trailing_slashes() {
        for (given, kept) in [
            ("https://fgs.example.com", "https://fgs.example.com"),
            ("https://fgs.example.com/", "https://fgs.example.com"),
            ("http://10.0.0.5:8080/fgs//", "http://10.0.0.5:8080/fgs"),
            ("http://[::1]:8080", "http://[::1]:8080"),
        ] {
            assert_eq!(parse_public_url(given).as_deref(), Ok(kept), "{given}");
        }
        for bad in [
            "fgs.example.com",
            "/apig",
            "ftp://fgs.example.com",
            "https://fgs.example.com/?a=1",
            "https://fgs.example.com/#top",
            "https://",
            "https://exa mple.com",
            "",
        ] {
            assert!(parse_public_url(bad).is_err(), "{bad:?} accepted");
        }
    }
}
