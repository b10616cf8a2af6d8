//! The writes that change what an invocation resolves to, each followed by its change on the
//! feed. Handlers write functions, versions, aliases and triggers only through [`Catalog`], so
//! no write can forget to publish; reads go to the [`Store`] directly.

use std::sync::Arc;
use std::time::Duration;

use fgs_core::flows::{AliasRecord, VersionRecord};
use fgs_core::FunctionRecord;

use crate::feed::{ChangeFeed, ChangeKind, FunctionKey};
use crate::{Store, StoreError, TriggerRecord};

/// How long a write waits for this process's followers to apply its change before answering.
const SETTLE: Duration = Duration::from_secs(5);

/// The store's writers, publishing on a [`ChangeFeed`] after each commit. Cheap to clone.
#[derive(Clone)]
pub struct Catalog {
    store: Store,
    feed: Arc<dyn ChangeFeed>,
}

fn key(project: &str, package: &str, name: &str) -> FunctionKey {
    FunctionKey {
        project: project.to_owned(),
        package: package.to_owned(),
        name: name.to_owned(),
    }
}

impl Catalog {
    pub fn new(store: Store, feed: Arc<dyn ChangeFeed>) -> Catalog {
        Catalog { store, feed }
    }

    /// The feed the changes go to, for followers to subscribe.
    pub fn feed(&self) -> &Arc<dyn ChangeFeed> {
        &self.feed
    }

    /// Refuses a write the feed could not carry to the other nodes: checked before the
    /// commit. A connection lost between this check and the publication is covered by the
    /// feed itself (it publishes again, and followers resync on reconnection).
    fn writable(&self) -> Result<(), StoreError> {
        match self.feed.unavailable() {
            None => Ok(()),
            Some(reason) => Err(StoreError::FeedUnavailable { reason }),
        }
    }

    /// Publishes a committed change and waits until this process follows it: the caller's
    /// next request sees what it wrote.
    async fn changed(&self, key: FunctionKey, kind: ChangeKind) {
        let revision = self.feed.publish(key, kind).await;
        self.feed.settled(revision, SETTLE).await;
    }

    pub async fn create_function(&self, rec: FunctionRecord, max: u64) -> Result<(), StoreError> {
        self.writable()?;
        let k = key(&rec.project, &rec.package, &rec.name);
        self.store.create_function(rec, max).await?;
        self.changed(k, ChangeKind::Function).await;
        Ok(())
    }

    /// See [`Store::update_function`].
    pub async fn update_function(
        &self,
        rec: &FunctionRecord,
        expected_revision: u64,
    ) -> Result<(), StoreError> {
        self.writable()?;
        self.store.update_function(rec, expected_revision).await?;
        self.changed(
            key(&rec.project, &rec.package, &rec.name),
            ChangeKind::Function,
        )
        .await;
        Ok(())
    }

    /// Deletes a function with its versions, aliases and triggers.
    pub async fn delete_function(
        &self,
        project: &str,
        package: &str,
        name: &str,
    ) -> Result<Option<FunctionRecord>, StoreError> {
        self.writable()?;
        let r = self.store.delete_function(project, package, name).await;
        // A corrupt record is deleted all the same (the error only says it could not be read).
        if !matches!(r, Ok(None)) {
            self.changed(key(project, package, name), ChangeKind::Deleted)
                .await;
        }
        r
    }

    pub async fn publish_version(&self, v: VersionRecord, max: usize) -> Result<(), StoreError> {
        self.writable()?;
        let k = key(&v.function.project, &v.function.package, &v.function.name);
        self.store.publish_version(v, max).await?;
        self.changed(k, ChangeKind::Version).await;
        Ok(())
    }

    /// Deletes a version and its triggers: a trigger must not outlive what it fires.
    pub async fn delete_version(
        &self,
        project: &str,
        package: &str,
        name: &str,
        version: &str,
    ) -> Result<(), StoreError> {
        self.writable()?;
        self.store
            .delete_version(project, package, name, version)
            .await?;
        let gone = self
            .store
            .delete_triggers(project, package, name, Some(version), None)
            .await;
        self.changed(key(project, package, name), ChangeKind::Version)
            .await;
        gone.map(drop)
    }

    /// See [`Store::put_alias`].
    pub async fn put_alias(
        &self,
        project: &str,
        package: &str,
        name: &str,
        alias: AliasRecord,
        create: bool,
        max: usize,
    ) -> Result<(), StoreError> {
        self.writable()?;
        self.store
            .put_alias(project, package, name, alias, create, max)
            .await?;
        self.changed(key(project, package, name), ChangeKind::Alias)
            .await;
        Ok(())
    }

    /// Deletes an alias and its triggers.
    pub async fn delete_alias(
        &self,
        project: &str,
        package: &str,
        name: &str,
        alias: &str,
    ) -> Result<(), StoreError> {
        self.writable()?;
        self.store
            .delete_alias(project, package, name, alias)
            .await?;
        let gone = self
            .store
            .delete_triggers(project, package, name, Some(&format!("!{alias}")), None)
            .await;
        self.changed(key(project, package, name), ChangeKind::Alias)
            .await;
        gone.map(drop)
    }

    pub async fn create_trigger(&self, rec: TriggerRecord, max: u64) -> Result<(), StoreError> {
        self.writable()?;
        let k = key(&rec.project, &rec.package, &rec.name);
        self.store.create_trigger(rec, max).await?;
        self.changed(k, ChangeKind::Trigger).await;
        Ok(())
    }

    /// See [`Store::update_trigger`].
    pub async fn update_trigger(&self, rec: &TriggerRecord) -> Result<bool, StoreError> {
        self.writable()?;
        let found = self.store.update_trigger(rec).await?;
        if found {
            self.changed(
                key(&rec.project, &rec.package, &rec.name),
                ChangeKind::Trigger,
            )
            .await;
        }
        Ok(found)
    }

    /// See [`Store::delete_triggers`].
    pub async fn delete_triggers(
        &self,
        project: &str,
        package: &str,
        name: &str,
        qualifier: Option<&str>,
        trigger_id: Option<&str>,
    ) -> Result<Vec<TriggerRecord>, StoreError> {
        self.writable()?;
        let gone = self
            .store
            .delete_triggers(project, package, name, qualifier, trigger_id)
            .await?;
        if !gone.is_empty() {
            self.changed(key(project, package, name), ChangeKind::Trigger)
                .await;
        }
        Ok(gone)
    }
}
