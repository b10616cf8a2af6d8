//! The credentials `fgs serve` accepts: from flags or the environment, from a file, or generated
//! once on the first start and kept in the data dir.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use fgs_api::auth::Credential;

/// The credential flags of `fgs serve`.
#[derive(Debug, clap::Args)]
pub struct CredentialArgs {
    /// File of credentials, one `ACCESS_KEY SECRET_KEY PROJECT_ID` per line.
    #[arg(long, env = "FGS_CREDENTIALS")]
    pub credentials: Option<PathBuf>,
    /// One credential given directly (with --secret-key and --project-id).
    #[arg(long, env = "FGS_ACCESS_KEY", hide_env_values = true)]
    pub access_key: Option<String>,
    #[arg(long, env = "FGS_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,
    #[arg(long, env = "FGS_PROJECT_ID")]
    pub project_id: Option<String>,
}

fn parse_credentials(text: &str, origin: &Path) -> Result<Vec<Credential>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        let [ak, sk, project] = f.as_slice() else {
            bail!(
                "{}:{}: expected `ACCESS_KEY SECRET_KEY PROJECT_ID`",
                origin.display(),
                i + 1
            );
        };
        if !fgs_core::validate::project_id_ok(project) {
            bail!(
                "{}:{}: project id {project:?} is invalid",
                origin.display(),
                i + 1
            );
        }
        out.push(Credential {
            access_key: ak.to_string(),
            secret_key: sk.to_string(),
            project_id: project.to_string(),
        });
    }
    Ok(out)
}

fn random_hex(bytes: usize) -> String {
    let mut s = String::new();
    while s.len() < bytes * 2 {
        s.push_str(&uuid::Uuid::new_v4().simple().to_string());
    }
    s.truncate(bytes * 2);
    s
}

/// The credentials fgs accepts: from flags or the environment, from a file, or generated once on
/// the first start and kept in the data dir.
pub fn load_credentials(args: &CredentialArgs, data_dir: &Path) -> Result<Vec<Credential>> {
    let mut creds = Vec::new();
    match (&args.access_key, &args.secret_key, &args.project_id) {
        (Some(ak), Some(sk), Some(p)) => creds.push(Credential {
            access_key: ak.clone(),
            secret_key: sk.clone(),
            project_id: p.clone(),
        }),
        (None, None, _) => {}
        _ => bail!("give all of --access-key, --secret-key and --project-id, or none"),
    }
    if let Some(path) = &args.credentials {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading credentials file {}", path.display()))?;
        creds.extend(parse_credentials(&text, path)?);
    }
    if !creds.is_empty() {
        return Ok(creds);
    }
    let path = data_dir.join("credentials");
    if path.exists() {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        return parse_credentials(&text, &path);
    }
    let cred = Credential {
        access_key: random_hex(10).to_uppercase(),
        secret_key: random_hex(20),
        project_id: random_hex(16),
    };
    let line = format!(
        "{} {} {}\n",
        cred.access_key, cred.secret_key, cred.project_id
    );
    write_private(&path, &line)?;
    eprintln!(
        "Generated a credential (kept in {}):\n  access key: {}\n  secret key: {}\n  project id: {}",
        path.display(),
        cred.access_key,
        cred.secret_key,
        cred.project_id
    );
    Ok(vec![cred])
}

fn write_private(path: &Path, content: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(content.as_bytes())?;
    f.sync_all()?;
    Ok(())
}
