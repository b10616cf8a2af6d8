//! The `fgs` binary: `fgs serve` runs the platform; the other commands are its CLI client.

use anyhow::Context;
use clap::{CommandFactory, Parser, Subcommand};

mod client;
mod cluster;
mod credentials;
mod demo;
mod fire;
mod images;
mod listen;
mod logging;
mod membership;
mod runtimes_cmd;
mod serve;
mod shared_packages;
mod store_copy;

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
    Serve(Box<serve::ServeArgs>),
    #[command(flatten)]
    Client(client::Command),
    /// Print a shell completion script: `source <(fgs completions bash)`.
    Completions { shell: clap_complete::Shell },
    /// List the runtime names and the interpreter each runs on here.
    Runtimes(runtimes_cmd::RuntimesCmd),
    /// Container images for image functions (docs/images.md).
    #[command(subcommand)]
    Image(images::ImageCommand),
    /// Work on a store itself (fgs stopped).
    #[command(subcommand)]
    Store(StoreCommand),
}

#[derive(Debug, Subcommand)]
enum StoreCommand {
    /// Copy a single node's data (--from its data dir) into a PostgreSQL store (--to), for
    /// moving up to a cluster: refused if the target has functions, unless --force.
    Copy(store_copy::CopyArgs),
}

fn main() -> anyhow::Result<()> {
    // The sandbox shim must stay single-threaded: it runs before clap, tracing or tokio exist.
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == fgs_sandbox::SHIM_ARG)
    {
        fgs_sandbox::shim_main();
    }
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            logging::init_tracing(&args.logs.log_format);
            fgs_pool::shard::run(args.threads, args.poll_window, serve::run(*args))
                .context("starting the shards")?
        }
        Command::Client(cmd) => client::run(cmd),
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "fgs", &mut script);
            // A closed pipe (`| head`) is not an error worth a panic.
            let _ = std::io::Write::write_all(&mut std::io::stdout(), &script);
            Ok(())
        }
        Command::Runtimes(cmd) => runtimes_cmd::run(cmd),
        Command::Image(cmd) => images::run(cmd),
        Command::Store(StoreCommand::Copy(args)) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(store_copy::run(args)),
    }
}
