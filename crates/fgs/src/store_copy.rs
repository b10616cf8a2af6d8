//! `fgs store copy --from DATA_DIR --to postgres://...`: moves a single node's data into a
//! cluster's store. It reads through the storage traits, so what it copies is what the API
//! shows: functions, published versions, aliases, test events, triggers (timers keep their
//! plan), dependency versions, the code packages they all name, and the async events not yet
//! finished (a running one becomes waiting: the node that ran it is stopped).

use std::collections::BTreeSet;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use fgs_core::flows::AsyncStatus;
use fgs_package::PackageStore;
use fgs_store::{AsyncFilter, Store, StoreError, StoreKind};

#[derive(Debug, clap::Args)]
pub struct CopyArgs {
    /// The data dir of a stopped single node (its `fgs.db` and `packages/`).
    #[arg(long)]
    pub from: PathBuf,
    /// The PostgreSQL store to fill: `postgres://USER[:PASSWORD]@HOST:PORT/DB`.
    #[arg(long)]
    pub to: String,
    /// Copy into a store that already has functions: what exists there under the same key
    /// (function, version, alias, test event, trigger, async event) is kept as it is and
    /// counted as skipped; everything else is added.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Default)]
struct Counts {
    copied: std::collections::BTreeMap<&'static str, u64>,
    skipped: u64,
}

impl Counts {
    /// Counts one write: done, or skipped because `--force` keeps what exists. Only "already
    /// there" is skipped: the store's typed refusals of a taken key, or PostgreSQL's unique
    /// violation (SQLSTATE 23505) for records without one (triggers, dependency versions);
    /// any other failure ends the copy.
    fn write(&mut self, what: &'static str, r: Result<(), StoreError>, force: bool) -> Result<()> {
        match r {
            Ok(()) => *self.copied.entry(what).or_default() += 1,
            Err(e) if force && already_there(&e) => self.skipped += 1,
            Err(e) => return Err(e).with_context(|| format!("copying a {what}")),
        }
        Ok(())
    }
}

/// Whether a failed write says that its record is in the target already.
fn already_there(e: &StoreError) -> bool {
    matches!(
        e,
        StoreError::FunctionExists { .. }
            | StoreError::VersionExists { .. }
            | StoreError::AliasExists { .. }
            | StoreError::TestEventExists { .. }
            | StoreError::AsyncExists { .. }
    ) || e.is_unique_violation()
}

pub async fn run(args: CopyArgs) -> Result<()> {
    let target: StoreKind = args.to.parse()?;
    if !target.is_shared() {
        bail!("--to must be a PostgreSQL store (postgres://USER@HOST:PORT/DB)");
    }
    if !args.from.join("fgs.db").is_file() {
        bail!(
            "{} has no fgs.db: --from names the data dir of a single node",
            args.from.display()
        );
    }
    let src = StoreKind::Sqlite
        .open(&args.from)
        .await
        .context("opening the source store")?;
    let dst = target
        .open(&args.from)
        .await
        .with_context(|| format!("opening the store {}", target.describe()))?;
    if !args.force && !dst.all_functions().await?.is_empty() {
        bail!(
            "{} already has functions; copy into an empty database, or give --force to add \
             what it lacks and keep what it has",
            target.describe()
        );
    }
    let packages = PackageStore::open(&args.from).context("opening the source packages")?;
    let counts = copy(&src, &dst, &packages, args.force).await?;
    for (what, n) in &counts.copied {
        println!("{what}: {n}");
    }
    if counts.skipped > 0 {
        println!(
            "kept as they were in the target (--force): {}",
            counts.skipped
        );
    }
    Ok(())
}

async fn copy(src: &Store, dst: &Store, packages: &PackageStore, force: bool) -> Result<Counts> {
    let mut n = Counts::default();
    // Packages first: a record is never there before the code it names.
    for sha in src.package_use().await?.packages {
        let p = packages.clone();
        let id = sha.clone();
        let bytes = tokio::task::spawn_blocking(move || p.read(&id))
            .await?
            .with_context(|| format!("reading code package {sha}"))?;
        dst.blobs().put_blob(&sha, &bytes).await?;
        *n.copied.entry("code packages").or_default() += 1;
    }
    let functions = src.all_functions().await?;
    let projects: BTreeSet<String> = functions.iter().map(|f| f.project.clone()).collect();
    for project in &projects {
        for newest in src.list_dependency_versions(project, None).await? {
            // Oldest first, so that the target numbers them as the source did.
            for dv in src
                .list_dependency_versions(project, Some(&newest.dep_id))
                .await?
            {
                let r = dst.create_dependency_version(dv).await.map(drop);
                n.write("dependency versions", r, force)?;
            }
        }
    }
    for f in &functions {
        let (p, pk, name) = (&f.project, &f.package, &f.name);
        let r = dst.create_function(f.clone(), u64::MAX).await;
        n.write("functions", r, force)?;
        for v in src.list_versions(p, pk, name).await? {
            let r = dst.publish_version(v, usize::MAX).await;
            n.write("versions", r, force)?;
        }
        for a in src.list_aliases(p, pk, name).await? {
            let r = dst.put_alias(p, pk, name, a, true, usize::MAX).await;
            n.write("aliases", r, force)?;
        }
        for ev in src.list_test_events(p, pk, name).await? {
            let r = dst.create_test_event(p, pk, name, ev, u64::MAX).await;
            n.write("test events", r, force)?;
        }
        let (rows, _) = src
            .list_async(AsyncFilter {
                project: p.clone(),
                package: pk.clone(),
                name: name.clone(),
                limit: u64::MAX,
                ..AsyncFilter::default()
            })
            .await?;
        let pending: Vec<_> = rows
            .into_iter()
            .filter(|r| matches!(r.status, AsyncStatus::Wait | AsyncStatus::Running))
            .map(|mut r| {
                r.status = AsyncStatus::Wait;
                r.lease = None;
                r
            })
            .collect();
        for r in dst.queue().accept(pending).await? {
            n.write("pending async events", r, force)?;
        }
    }
    for t in src.all_triggers().await? {
        let r = dst.create_trigger(t, u64::MAX).await;
        n.write("triggers", r, force)?;
    }
    Ok(n)
}
