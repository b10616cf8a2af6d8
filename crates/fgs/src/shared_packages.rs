//! Code packages everywhere in a cluster: the package store of a node on a shared store
//! publishes every upload into it and fetches what its own data dir lacks from it
//! ([`fgs_package::PackageSource`] over [`fgs_store::BlobStore`]).

use std::time::Duration;

use fgs_package::PackageSource;
use fgs_store::Store;
use tokio::runtime::Handle;

/// How old an unused package in the shared store must be before a node deletes it: an upload
/// is published before the record that names it commits, and must not be collected between.
pub const SHARED_PACKAGE_GRACE: Duration = Duration::from_secs(3600);

/// The cluster's copy of packages, called from the package store's blocking threads.
#[derive(Debug)]
pub struct SharedPackages {
    store: Store,
    runtime: Handle,
}

impl SharedPackages {
    /// Must be made inside the runtime whose blocking threads will call it.
    pub fn new(store: Store) -> SharedPackages {
        SharedPackages {
            store,
            runtime: Handle::current(),
        }
    }
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

impl PackageSource for SharedPackages {
    fn publish(&self, sha256: &str, bytes: &[u8]) -> Result<(), String> {
        self.runtime
            .block_on(self.store.blobs().put_blob(sha256, bytes))
            .map_err(|e| chain(&e))
    }

    fn fetch(&self, sha256: &str) -> Result<Option<Vec<u8>>, String> {
        self.runtime
            .block_on(self.store.blobs().get_blob(sha256))
            .map_err(|e| chain(&e))
    }
}
