//! `fgs serve --demo`: a ready-to-invoke function for a first look.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::{Context, Result};
use fgs_api::SharedState;

/// The demo's Custom runtime, shipped inside the binary.
const HELLO_BOOTSTRAP: &[u8] = include_bytes!("../../../examples/demo/hello/bootstrap");

/// Creates function `hello` in `project` unless it exists.
pub async fn ensure(state: &SharedState, project: &str) -> Result<()> {
    fgs_api::create_demo_function(state, project, "hello", HELLO_BOOTSTRAP)
        .await
        .context("creating the demo function")
}

pub fn print_usage(addr: SocketAddr, data_dir: &Path) {
    println!(
        "\nThe demo function `hello` is ready. In another terminal:\n\
         \n  cargo run --release -p fgs -- function invoke hello --endpoint http://{addr} \\\n      --credentials {}/credentials --data '{{\"name\":\"world\"}}' --log-tail\n",
        data_dir.display()
    );
}
