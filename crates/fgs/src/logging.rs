//! Logging options of `fgs serve`: the format of the server's own log, and how invocation logs
//! are kept (docs/logs.md).

use std::time::Duration;

/// How fgs logs, and how long it keeps functions' logs.
#[derive(Debug, Clone, clap::Args)]
pub struct LogArgs {
    /// The server's own log on stderr: `human` lines or `json` objects (one per line).
    #[arg(long, env = "FGS_LOG_FORMAT", default_value = "human", value_parser = ["human", "json"])]
    pub log_format: String,
    /// How long invocation logs are kept (humantime: 7d, 12h, 30m).
    #[arg(long, env = "FGS_LOG_RETENTION", default_value = "7d", value_parser = humantime::parse_duration)]
    pub log_retention: Duration,
    /// Bytes of one invocation's log that are stored; a longer log keeps its head and tail.
    #[arg(long, env = "FGS_LOG_MAX_BYTES_PER_INVOCATION", default_value_t = 256 * 1024)]
    pub log_max_bytes_per_invocation: usize,
}

impl LogArgs {
    pub fn config(&self) -> fgs_invoke::log_store::LogConfig {
        fgs_invoke::log_store::LogConfig {
            retention: self.log_retention,
            max_bytes_per_invocation: self.log_max_bytes_per_invocation,
        }
    }
}

/// Installs the server's log subscriber: level from `FGS_LOG` (default `info`), on stderr.
pub fn init_tracing(format: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("FGS_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        fmt.json().init();
    } else {
        fmt.init();
    }
}
