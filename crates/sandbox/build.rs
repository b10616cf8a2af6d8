//! Compiles `tiny/fgs_init.rs`, the program that stays in a sandbox for as long as its instance
//! runs (the namespace's init and the shim's last step), into `$OUT_DIR/fgs-init`, which
//! `src/tiny.rs` embeds. No standard library, no libc, static and not position-independent, so
//! that each process of it costs a few pages (docs/sandbox.md). On targets it is not written
//! for, the file is empty and the sandbox keeps its fgs processes instead.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=tiny/fgs_init.rs");
    println!("cargo:rerun-if-changed=build.rs");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let dest = out.join("fgs-init");
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    let supported = var("CARGO_CFG_TARGET_OS") == "linux"
        && matches!(var("CARGO_CFG_TARGET_ARCH").as_str(), "x86_64" | "aarch64");
    if !supported {
        std::fs::write(&dest, []).expect("writing an empty fgs-init");
        return;
    }
    let target = var("TARGET");
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let mut cmd = Command::new(rustc);
    cmd.args([
        "--edition",
        "2021",
        "--crate-type",
        "bin",
        "--crate-name",
        "fgs_init",
    ])
    .args(["--target", &target])
    .args([
        "-C",
        "opt-level=s",
        "-C",
        "panic=abort",
        "-C",
        "debuginfo=0",
    ])
    .args(["-C", "strip=symbols", "-C", "relocation-model=static"])
    .args(["-C", "target-feature=+crt-static"])
    .args(["-C", "link-arg=-nostartfiles", "-C", "link-arg=-nostdlib"])
    .args([
        "-C",
        "link-arg=-static",
        "-C",
        "link-arg=-Wl,--build-id=none",
    ]);
    // The linker the rest of the build uses for this target, when one is configured.
    let linker_var = format!(
        "CARGO_TARGET_{}_LINKER",
        target.to_uppercase().replace(['-', '.'], "_")
    );
    if let Ok(linker) = std::env::var(&linker_var) {
        cmd.arg("-C").arg(format!("linker={linker}"));
    }
    cmd.arg("-o").arg(&dest).arg("tiny/fgs_init.rs");
    let output = cmd.output().expect("running rustc for fgs-init");
    if !output.status.success() {
        panic!(
            "compiling tiny/fgs_init.rs failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
