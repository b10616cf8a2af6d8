//! The `fgs` binary: `fgs serve` runs the platform; the other commands are its CLI client.

use clap::{Parser, Subcommand};

mod demo;
mod serve;

#[derive(Debug, Parser)]
#[command(
    name = "fgs",
    version,
    about = "A self-hosted FunctionGraph-compatible serverless platform"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the platform: the FunctionGraph API, the instance pools, the invokers.
    Serve(serve::ServeArgs),
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("FGS_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            init_tracing();
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            rt.block_on(serve::run(args))
        }
    }
}
