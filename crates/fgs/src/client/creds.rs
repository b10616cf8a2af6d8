//! Where the client's access key comes from.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use fgs_api::auth::Credential;

use super::ClientOptions;

/// What `fgs serve` writes on first start when given no credentials.
const DEFAULT_FILE: &str = "fgs-data/credentials";

/// `--access-key`/`--secret-key`/`--project` (or their env vars) when all three are given;
/// otherwise the first line of `--credentials`, or of `./fgs-data/credentials` if it exists.
pub fn resolve(o: &ClientOptions) -> Result<Credential> {
    if let (Some(ak), Some(sk), Some(project)) = (&o.access_key, &o.secret_key, &o.project) {
        return Ok(Credential {
            access_key: ak.clone(),
            secret_key: sk.clone(),
            project_id: project.clone(),
        });
    }
    let partial = o.access_key.is_some() || o.secret_key.is_some();
    let file = match &o.credentials {
        Some(f) => f.clone(),
        None if Path::new(DEFAULT_FILE).exists() && !partial => PathBuf::from(DEFAULT_FILE),
        None => bail!(
            "no credentials: give --access-key, --secret-key and --project (or FGS_ACCESS_KEY, \
             FGS_SECRET_KEY, FGS_PROJECT_ID), or --credentials FILE (the file `fgs serve` wrote \
             to <data-dir>/credentials)"
        ),
    };
    read_file(&file)
}

fn read_file(path: &Path) -> Result<Credential> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading credentials from {}", path.display()))?;
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .with_context(|| format!("{} holds no credentials", path.display()))?;
    let fields: Vec<&str> = line.split_whitespace().collect();
    let [ak, sk, project] = fields[..] else {
        bail!(
            "{}: expected a line `ACCESS_KEY SECRET_KEY PROJECT_ID`, found {} fields",
            path.display(),
            fields.len()
        );
    };
    Ok(Credential {
        access_key: ak.to_owned(),
        secret_key: sk.to_owned(),
        project_id: project.to_owned(),
    })
}
