//! Container images on the serving side (docs/images.md): the registry flags of `fgs serve`,
//! the collection of images no function uses at start, and `fgs image import`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use fgs_image::{Digest, Images, Reference, RegistryConfig};
use fgs_store::Store;

/// Where images are pulled from.
#[derive(Debug, Clone, clap::Args)]
pub struct RegistryArgs {
    /// A registry (`HOST:PORT`) spoken to over plain HTTP, for local registries; repeat or
    /// separate with commas.
    #[arg(
        long = "insecure-registry",
        env = "FGS_INSECURE_REGISTRIES",
        value_delimiter = ','
    )]
    pub insecure_registries: Vec<String>,
    /// Credentials per registry, in the form of Docker's `config.json`
    /// (`{"auths": {"HOST[:PORT]": {"auth": "<base64 user:password>"}}}`).
    #[arg(long, env = "FGS_REGISTRY_AUTH")]
    pub registry_auth: Option<PathBuf>,
}

impl RegistryArgs {
    pub fn config(&self) -> anyhow::Result<RegistryConfig> {
        let mut cfg = RegistryConfig {
            insecure: self
                .insecure_registries
                .iter()
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
                .collect(),
            ..Default::default()
        };
        if let Some(f) = &self.registry_auth {
            cfg.read_credentials(f)?;
        }
        Ok(cfg)
    }
}

/// The image store of a data dir.
pub fn open(data_dir: &Path, registries: &RegistryArgs) -> anyhow::Result<Arc<Images>> {
    let images = Images::open(&data_dir.join("images"), registries.config()?)
        .context("opening the image store")?;
    Ok(Arc::new(images))
}

/// [FGS] Removes the images no function or version uses (and no import named), at start.
pub async fn collect_garbage(store: &Store, images: &Images) -> anyhow::Result<usize> {
    let mut used = HashSet::new();
    for f in store.all_functions().await? {
        let versions = store.list_versions(&f.project, &f.package, &f.name).await?;
        let specs = std::iter::once(&f.spec).chain(versions.iter().map(|v| &v.function.spec));
        for spec in specs {
            if let Some(d) = spec
                .custom_image
                .as_ref()
                .and_then(|c| Digest::parse(&c.digest).ok())
            {
                used.insert(d);
            }
        }
    }
    Ok(images.collect(&used)?)
}

/// `fgs image ...`: images on this machine, without a server.
#[derive(Debug, clap::Subcommand)]
pub enum ImageCommand {
    /// Load an image from an OCI layout tar or a `docker save` tar into the data dir's image
    /// store and name it REF: a function created with `custom_image.image` REF runs it when
    /// no registry answers for REF.
    Import {
        file: PathBuf,
        /// The name functions use (`host[:port]/repo:tag`).
        #[arg(long)]
        name: String,
        /// The data dir of the `fgs serve` that will run it.
        #[arg(long, env = "FGS_DATA_DIR", default_value = "./fgs-data")]
        data_dir: PathBuf,
    },
}

pub fn run(cmd: ImageCommand) -> anyhow::Result<()> {
    match cmd {
        ImageCommand::Import {
            file,
            name,
            data_dir,
        } => {
            let reference = Reference::parse(&name)?;
            let images = Images::open(&data_dir.join("images"), RegistryConfig::default())
                .context("opening the image store")?;
            let digest = images
                .import(&file, &reference)
                .with_context(|| format!("importing {}", file.display()))?;
            println!("{reference} {digest}");
            Ok(())
        }
    }
}
