//! The instance sandbox (issue 3, docs/sandbox.md): memory limit and 4205, fork bombs, private
//! `/tmp`, no view of the host, egress to the host's loopback through `host.fgs.internal`, an own
//! 127.0.0.1:8000 per instance, and no leaks. These need root (namespaces, cgroups); without it
//! they say so and pass. Each test runs its own fgs with its own cgroup parent and run dir, so
//! that what it counts afterwards is its own.
//!
//! The rootless tests run fgs as `nobody` (through `setpriv`) from a copy of the binary in a
//! directory that user may read, and check the same isolation inside user namespaces, and that
//! what cannot be enforced without root is reported.
//!
//! The fixture is a Custom runtime in sh + curl that runs the event's `cmd` (base64 of a shell
//! script) and answers `{"code": exit status, "out": base64 of its output}`.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use fgs_e2e::fixture::{bootstrap_zip, custom_zip_body};
use fgs_e2e::{b64, json, unb64, unique, wait_until, Server, ServerOpts, Value};

const SHELL_RUNTIME: &str = r#"#!/bin/sh
API="http://${RUNTIME_API_ADDR}/v1/runtime"
T=/tmp/fx.$$
while :; do
  curl -sS -D "$T.h" -o "$T.ev" "$API/invocation/request" || exit 1
  RID=$(sed -n 's/^[Xx]-[Cc][Ff][Ff]-[Rr][Ee][Qq][Uu][Ee][Ss][Tt]-[Ii][Dd]:[[:space:]]*//p' "$T.h" | tr -d '\r\n')
  sed -n 's/.*"cmd":"\([^"]*\)".*/\1/p' "$T.ev" | base64 -d >"$T.sh"
  sh "$T.sh" >"$T.out" 2>&1; rc=$?
  printf '{"code":%d,"out":"%s"}' "$rc" "$(base64 -w0 <"$T.out")" >"$T.resp"
  curl -sS -X POST --data-binary @"$T.resp" "$API/invocation/response/$RID" >/dev/null || exit 1
done
"#;

pub(crate) fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// A server of its own, or `None` (and a note) where the sandbox cannot run.
pub(crate) struct Sandboxed {
    pub(crate) server: Option<Server>,
    /// How `server` was started, to start it again on the same data and run dirs.
    pub(crate) opts: ServerOpts,
    run_dir: PathBuf,
    parents: Vec<PathBuf>,
    _temp: tempfile::TempDir,
}

pub(crate) fn start(test: &str, extra: &[(&str, &str)]) -> Option<Sandboxed> {
    start_env(test, extra, &[])
}

/// [`start`] with extra environment variables for fgs.
pub(crate) fn start_env(
    test: &str,
    extra: &[(&str, &str)],
    env: &[(&str, &str)],
) -> Option<Sandboxed> {
    start_program(test, extra, env, None)
}

/// [`start_env`], running `program` with fgs's arguments instead of fgs (a wrapper that starts
/// it).
pub(crate) fn start_program(
    test: &str,
    extra: &[(&str, &str)],
    env: &[(&str, &str)],
    program: Option<PathBuf>,
) -> Option<Sandboxed> {
    if !is_root() {
        eprintln!("skipped {test}: the sandbox needs root (namespaces and cgroups)");
        return None;
    }
    let temp = tempfile::Builder::new()
        .prefix("fgs-sbx-")
        .tempdir()
        .expect("temp dir");
    let run_dir = temp.path().join("run");
    let mut opts = ServerOpts::default()
        .flag("--cgroup-parent", unique("fgs-e2e-"))
        .flag("--sandbox-run-dir", run_dir.display().to_string())
        .env("FGS_LOG", "info,fgs_instance=debug");
    for (k, v) in extra {
        opts = opts.flag(k, *v);
    }
    for (k, v) in env {
        opts = opts.env(k, *v);
    }
    opts.program = program;
    let server = Server::start(opts.clone());
    let iso = healthz(&server)["isolation"].clone();
    assert_eq!(
        iso["mode"], "namespaces",
        "running as root, instances must be sandboxed: {iso}"
    );
    let parents = iso["cgroups"]["parents"]
        .as_array()
        .expect("cgroup parents are listed")
        .iter()
        .map(|p| PathBuf::from(p.as_str().expect("a path")))
        .collect();
    Some(Sandboxed {
        server: Some(server),
        opts,
        run_dir,
        parents,
        _temp: temp,
    })
}

/// The unprivileged user the rootless tests run fgs as.
const NOBODY: u32 = 65534;

/// A server running as `nobody`, or `None` (and why) where that cannot be arranged: the test is
/// not root (it cannot switch users), `setpriv` is missing, or the kernel refuses that user a
/// user namespace.
fn start_rootless(test: &str, extra: &[(&str, &str)]) -> Option<Sandboxed> {
    start_rootless_in(test, extra, None)
}

/// [`start_rootless`], with fgs started in `cgroup` (a v2 cgroup delegated to nobody) if given.
fn start_rootless_in(
    test: &str,
    extra: &[(&str, &str)],
    cgroup: Option<&std::path::Path>,
) -> Option<Sandboxed> {
    use std::os::unix::fs::{chown, PermissionsExt};
    use std::process::Command;
    if !is_root() {
        eprintln!("skipped {test}: switching to an unprivileged user needs root");
        return None;
    }
    let setpriv = ["/usr/bin/setpriv", "/bin/setpriv"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    let Some(setpriv) = setpriv else {
        eprintln!("skipped {test}: setpriv (util-linux) is not installed");
        return None;
    };
    let as_nobody = |cmd: &[&str]| {
        let id = NOBODY.to_string();
        Command::new(setpriv)
            .args([
                &format!("--reuid={id}"),
                &format!("--regid={id}"),
                "--clear-groups",
            ])
            .args(cmd)
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    };
    if !as_nobody(&["unshare", "--user", "--map-root-user", "true"]) {
        eprintln!("skipped {test}: the kernel gives an unprivileged user no user namespace");
        return None;
    }
    let temp = tempfile::Builder::new()
        .prefix("fgs-rootless-")
        .tempdir()
        .expect("temp dir");
    let dir = temp.path();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    // target/ may sit under a directory nobody cannot enter: run a copy.
    let bin = dir.join("fgs");
    std::fs::copy(fgs_e2e::fgs_bin(), &bin).expect("copy the fgs binary");
    let (data, run) = (dir.join("data"), dir.join("run"));
    for d in [&data, &run] {
        std::fs::create_dir(d).expect("mkdir");
        chown(d, Some(NOBODY), Some(NOBODY)).expect("chown to nobody");
    }
    let wrapper = dir.join("fgs-as-nobody");
    let join = cgroup
        .map(|c| format!("echo $$ >{}/cgroup.procs || exit 1\n", c.display()))
        .unwrap_or_default();
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\n{join}exec {setpriv} --reuid={NOBODY} --regid={NOBODY} --clear-groups {} \"$@\"\n",
            bin.display()
        ),
    )
    .expect("write the wrapper");
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let mut opts = ServerOpts::default()
        .program(&wrapper)
        .data_dir(&data)
        .flag("--sandbox-run-dir", run.display().to_string())
        .env("FGS_LOG", "info,fgs_instance=debug");
    for (k, v) in extra {
        opts = opts.flag(k, *v);
    }
    let server = Server::start(opts.clone());
    let iso = healthz(&server)["isolation"].clone();
    assert_eq!(
        iso["mode"], "rootless",
        "as nobody with user namespaces, instances must be sandboxed rootless: {iso}"
    );
    Some(Sandboxed {
        server: Some(server),
        opts,
        run_dir: run,
        parents: Vec::new(),
        _temp: temp,
    })
}

pub(crate) fn healthz(s: &Server) -> Value {
    let r = reqwest::blocking::get(format!("{}/healthz", s.base_url())).expect("GET /healthz");
    r.json().expect("healthz is JSON")
}

impl Sandboxed {
    pub(crate) fn s(&self) -> &Server {
        self.server.as_ref().expect("the server runs until finish")
    }

    pub(crate) fn create(&self, name: &str, fields: Value) {
        self.create_runtime(name, SHELL_RUNTIME, fields);
    }

    /// A function whose `bootstrap` is `runtime` (a variant of [`SHELL_RUNTIME`]).
    fn create_runtime(&self, name: &str, runtime: &str, fields: Value) {
        let mut body = custom_zip_body(name, &bootstrap_zip(runtime));
        if let Value::Object(f) = fields {
            for (k, v) in f {
                body[k] = v;
            }
        }
        self.s().post("/functions", &body).expect(200);
    }

    /// Runs `script` in an instance of `name`: its exit status and output, or the function
    /// error's code.
    fn run(&self, name: &str, script: &str) -> Result<(i64, String), u64> {
        run_script(self.s(), name, script)
    }

    #[track_caller]
    pub(crate) fn ok(&self, name: &str, script: &str) -> String {
        ok_script(self.s(), name, script)
    }

    /// Stops the server and asserts it left nothing: no cgroup, mount, namespace file, pasta,
    /// shim process, veth, bridge or nftables table.
    pub(crate) fn finish(mut self) {
        let server = self.server.take().expect("finish once");
        let (pid, bridge) = (server.pid(), healthz(&server)["isolation"]["bridge"].clone());
        drop(server);
        let run = self.run_dir.display().to_string();
        let leftovers = || -> Vec<String> {
            let mut left = Vec::new();
            for p in &self.parents {
                for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
                    if e.file_type().is_ok_and(|t| t.is_dir()) {
                        left.push(format!("cgroup {}", e.path().display()));
                    }
                }
            }
            let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
            left.extend(
                mounts
                    .lines()
                    .filter(|l| l.contains(&run))
                    .map(|l| format!("mount {l}")),
            );
            for d in ["netns", "pasta"] {
                for e in std::fs::read_dir(self.run_dir.join(d))
                    .into_iter()
                    .flatten()
                    .flatten()
                {
                    left.push(format!("{d} file {}", e.path().display()));
                }
            }
            left.extend(
                fgs_e2e::pgrep(&run)
                    .into_iter()
                    .map(|pid| format!("process {pid}: {}", cmdline(pid))),
            );
            left.extend(crate::egress::veth_leftovers(pid, bridge.as_str()));
            left
        };
        let clean = wait_until(Duration::from_secs(10), || leftovers().is_empty());
        assert!(clean, "the sandbox leaked: {:#?}", leftovers());
        for p in &self.parents {
            let _ = std::fs::remove_dir(p);
        }
    }
}

/// Runs `script` in an instance of the [`SHELL_RUNTIME`] function `name` on `s`: its exit
/// status and output, or the function error's code.
fn run_script(s: &Server, name: &str, script: &str) -> Result<(i64, String), u64> {
    let r = s.invoke(name, &json!({"cmd": b64(script.as_bytes())}));
    r.expect(200);
    let v = r.json();
    if r.header("x-is-func-err").as_deref() == Some("true") {
        return Err(v["errorCode"].as_u64().unwrap_or(0));
    }
    let out = String::from_utf8_lossy(&unb64(v["out"].as_str().unwrap_or_default())).into_owned();
    Ok((v["code"].as_i64().unwrap_or(-1), out))
}

#[track_caller]
fn ok_script(s: &Server, name: &str, script: &str) -> String {
    match run_script(s, name, script) {
        Ok((0, out)) => out,
        other => panic!("{script:?} failed: {other:?}"),
    }
}

/// [FGS] A runtime and every process it starts run under `SCHED_BATCH`, sandboxed or not
/// (docs/sandbox.md): read from the `cut` the runtime forks, field 41 of its
/// `/proc/self/stat` (3 is `SCHED_BATCH`, 0 `SCHED_OTHER`).
#[test]
fn runtimes_and_their_children_run_under_batch_scheduling() {
    const POLICY: &str = "cut -d' ' -f41 /proc/self/stat";
    if let Some(sb) = start("batch scheduling", &[]) {
        sb.create("policy", json!({}));
        assert_eq!(sb.ok("policy", POLICY), "3\n");
        sb.finish();
    }
    let s = Server::start(ServerOpts::default().flag("--sandbox", "off"));
    s.post(
        "/functions",
        &custom_zip_body("policy", &bootstrap_zip(SHELL_RUNTIME)),
    )
    .expect(200);
    assert_eq!(ok_script(&s, "policy", POLICY), "3\n");
    assert_eq!(
        std::fs::read_to_string("/proc/self/stat")
            .expect("own stat")
            .rsplit(')')
            .next()
            .and_then(|rest| rest.split(' ').nth(39))
            .map(str::to_string),
        Some("0".to_string()),
        "the test itself runs under SCHED_OTHER: the 3 above is fgs's doing"
    );
}

/// The runtime starts with no signal blocked (docs/sandbox.md: the init blocks every signal and
/// starts the runtime's process in its own memory). The bootstrap's interpreter is `grep`, run
/// by `env` in the same process, which prints its own `/proc/self/status`'s signal lines and
/// exits: the start fails, and its message ends with the runtime's output.
#[test]
fn the_runtime_starts_with_no_signal_blocked() {
    let Some(sb) = start("runtime signals", &[]) else {
        return;
    };
    sb.create_runtime(
        "signals",
        "#!/usr/bin/env -S grep ^Sig /proc/self/status\n",
        json!({}),
    );
    let r = sb.s().invoke("signals", &json!({}));
    r.expect(200);
    let v = r.json();
    assert_eq!(v["errorCode"], 4204, "{v}");
    let message = v["errorMessage"].as_str().unwrap_or_default();
    assert!(
        message.contains("/proc/self/status:SigBlk:\t0000000000000000"),
        "{v}"
    );
    sb.finish();
}

/// A bootstrap the sandbox cannot exec (its interpreter is missing) fails the start with the
/// runtime's exit (4204) and the exec's error in the tail of the message: the runtime's process
/// reports it on the instance's output before it exits 127.
#[test]
fn a_bootstrap_that_cannot_exec_gives_the_start_error_with_the_reason() {
    let Some(sb) = start("exec failure", &[]) else {
        return;
    };
    sb.create_runtime("noexec", "#!/nonexistent/interpreter\n", json!({}));
    let r = sb.s().invoke("noexec", &json!({"cmd": b64(b"echo never")}));
    r.expect(200);
    assert_eq!(r.header("x-is-func-err").as_deref(), Some("true"));
    let v = r.json();
    assert_eq!(v["errorCode"], 4204, "{v}");
    let message = v["errorMessage"].as_str().unwrap_or_default();
    assert!(
        message.contains("(exit status 127)")
            && message.contains("fgs-sandbox: exec ")
            && message.contains("/bootstrap: ENOENT"),
        "{v}"
    );
    sb.finish();
}

/// The shim of a started instance exits once the runtime runs (fgs is the init's parent as
/// root with veth egress); fgs reaps it off the start's path, and no zombie of it stays.
#[test]
fn the_shims_of_started_instances_are_reaped() {
    let Some(sb) = start("shims reaped", &[]) else {
        return;
    };
    sb.create("reaped", json!({}));
    sb.create("reaped2", json!({}));
    assert_eq!(sb.ok("reaped", "echo one"), "one\n");
    assert_eq!(sb.ok("reaped2", "echo two"), "two\n");
    let fgs = sb.s().pid();
    let zombies = || {
        let tasks = std::fs::read_dir(format!("/proc/{fgs}/task")).expect("fgs's tasks");
        tasks
            .flatten()
            .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
            .flat_map(|c| {
                c.split_whitespace()
                    .filter_map(|p| p.parse::<u32>().ok())
                    .collect::<Vec<_>>()
            })
            .filter(|&p| {
                std::fs::read_to_string(format!("/proc/{p}/stat"))
                    .ok()
                    .and_then(|st| st.rsplit(')').next().map(|r| r.trim_start().starts_with('Z')))
                    .unwrap_or(false)
            })
            .collect::<Vec<_>>()
    };
    assert!(
        wait_until(Duration::from_secs(5), || zombies().is_empty()),
        "zombie children of fgs: {:?}",
        zombies()
    );
    // Both instances still run (their inits are fgs's children), and answer.
    assert_eq!(sb.ok("reaped", "echo again"), "again\n");
    sb.finish();
}

fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

#[test]
fn memory_beyond_the_limit_gives_4205_and_the_next_call_works() {
    let Some(sb) = start("memory limit", &[]) else {
        return;
    };
    sb.create("hog", json!({"memory_size": 128}));
    // A 400 MB shell variable in a 128 MB instance.
    let r = sb.run(
        "hog",
        r#"x=$(head -c 400000000 /dev/zero | tr '\0' a); echo ${#x}"#,
    );
    assert_eq!(r, Err(4205), "expected runtime memory limit exceeded");
    assert_eq!(sb.ok("hog", "echo fine"), "fine\n");
    sb.finish();
}

/// The cpu quota of every instance cgroup under the test's parents (`cpu.cfs_quota_us` on v1,
/// the first field of `cpu.max` on v2; -1 / "max" when unlimited).
fn cpu_quotas(sb: &Sandboxed) -> Vec<String> {
    let mut q = Vec::new();
    for p in &sb.parents {
        for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
            let d = e.path();
            if let Ok(v) = std::fs::read_to_string(d.join("cpu.cfs_quota_us")) {
                q.push(v.trim().to_string());
            } else if let Ok(v) = std::fs::read_to_string(d.join("cpu.max")) {
                q.push(v.split_whitespace().next().unwrap_or_default().to_string());
            }
        }
    }
    q
}

/// An instance starts unthrottled (an interpreter's start-up would otherwise wait out whole CFS
/// periods) and runs within its cpu share, memory_size/128*100+200 millicores, from its first
/// event on.
#[test]
fn the_cpu_quota_applies_once_the_instance_has_started() {
    let Some(sb) = start("cpu quota", &[]) else {
        return;
    };
    if healthz(sb.s())["isolation"]["not_enforced"]
        .as_array()
        .is_some_and(|a| a.iter().any(|v| v == "cpu"))
    {
        eprintln!("skipped cpu quota: no cpu controller on this host");
        sb.finish();
        return;
    }
    let slow = SHELL_RUNTIME.replacen("#!/bin/sh\n", "#!/bin/sh\nsleep 2\n", 1);
    sb.create_runtime("slowstart", &slow, json!({"memory_size": 256}));
    let limited = |q: &Vec<String>| q.iter().filter(|v| *v != "-1" && *v != "max").count();
    thread::scope(|scope| {
        let call = scope.spawn(|| sb.ok("slowstart", "echo started"));
        thread::sleep(Duration::from_millis(1000));
        let during = cpu_quotas(&sb);
        assert!(
            !during.is_empty(),
            "no instance cgroup with a cpu quota file"
        );
        assert_eq!(limited(&during), 0, "quotas while starting: {during:?}");
        assert_eq!(call.join().expect("the call"), "started\n");
    });
    // 256 MB: 256/128*100+200 = 400 millicores, 40 ms per 100 ms period.
    let after = cpu_quotas(&sb);
    assert_eq!(
        after.iter().filter(|v| *v == "40000").count(),
        1,
        "quotas after the first call: {after:?}"
    );
    assert_eq!(limited(&after), 1, "{after:?}");
    sb.finish();
}

/// An instance killed for its memory while it starts (a bootstrap that allocates before its first
/// event) answers 4205 too, not a generic start failure.
#[test]
fn memory_beyond_the_limit_while_starting_gives_4205() {
    let Some(sb) = start("memory limit at start", &[]) else {
        return;
    };
    let hog = SHELL_RUNTIME.replacen(
        "#!/bin/sh\n",
        "#!/bin/sh\nx=$(head -c 400000000 /dev/zero | tr '\\0' a); echo ${#x}\n",
        1,
    );
    sb.create_runtime("starthog", &hog, json!({"memory_size": 128}));
    let r = sb
        .s()
        .invoke("starthog", &json!({"cmd": b64(b"echo never")}));
    r.expect(200);
    assert_eq!(r.header("x-is-func-err").as_deref(), Some("true"));
    let v = r.json();
    assert_eq!(v["errorCode"], 4205, "{v}");
    assert_eq!(v["errorMessage"], "runtime memory limit exceeded", "{v}");
    sb.finish();
}

#[test]
fn a_fork_bomb_is_contained_and_fgs_keeps_serving() {
    let Some(sb) = start("fork bomb", &[]) else {
        return;
    };
    fork_bomb(sb);
}

/// Rootless, RLIMIT_NPROC in the instance's own user namespace stands in for pids.max.
#[test]
fn rootless_a_fork_bomb_is_contained_and_fgs_keeps_serving() {
    let Some(sb) = start_rootless("rootless fork bomb", &[]) else {
        return;
    };
    fork_bomb(sb);
}

fn fork_bomb(sb: Sandboxed) {
    // 512 MB, so that the pids limit binds before the memory limit does (1024 shells and their
    // kernel stacks and page tables come near 128 MB, and a bomb the OOM killer ends answers
    // 4205).
    sb.create("bomb", json!({"timeout": 5, "memory_size": 512}));
    sb.create("bystander", json!({}));
    let t0 = Instant::now();
    // The script forks once, before any bomb process exists (`bomb &`; a background pipeline
    // would fork once per element, the second racing the first one's children), then `exec`s
    // its sleep. A fork of its own that met the limit would end the script ("Cannot fork", exit
    // 2) and leave the bomb behind in a warm instance; the call must run into its timeout, and
    // the timeout must take every bomb process with it.
    let r = sb.run("bomb", "bomb() { bomb | bomb & }; bomb & exec sleep 30");
    assert_eq!(r, Err(4010), "a fork bomb runs into the timeout");
    assert!(
        t0.elapsed() < Duration::from_secs(20),
        "took {:?}",
        t0.elapsed()
    );
    assert_eq!(healthz(sb.s())["status"], "ok");
    assert_eq!(sb.ok("bystander", "echo serving"), "serving\n");
    assert_eq!(sb.ok("bomb", "echo recovered"), "recovered\n");
    sb.finish();
}

#[test]
fn tmp_is_private_to_each_instance() {
    let Some(sb) = start("private /tmp", &[]) else {
        return;
    };
    sb.create("tmp-a", json!({}));
    sb.create("tmp-b", json!({}));
    sb.ok("tmp-a", "echo secret >/tmp/a-was-here");
    assert_eq!(sb.ok("tmp-a", "cat /tmp/a-was-here"), "secret\n");
    assert_eq!(
        sb.ok("tmp-b", "ls /tmp | grep -c a-was-here || true"),
        "0\n"
    );
    // Two instances of one function at once: each sees only its own file.
    let script =
        "touch /tmp/inst-$(cat /proc/sys/kernel/random/uuid); sleep 2; ls /tmp | grep -c inst-";
    let outs: Vec<String> = thread::scope(|sc| {
        let hs: Vec<_> = (0..2)
            .map(|_| sc.spawn(|| sb.ok("tmp-b", script)))
            .collect();
        hs.into_iter()
            .map(|h| h.join().expect("invoke thread"))
            .collect()
    });
    assert_eq!(outs, ["1\n", "1\n"]);
    sb.finish();
}

#[test]
fn an_instance_sees_neither_the_data_dir_nor_host_processes() {
    let Some(sb) = start("no host view", &[]) else {
        return;
    };
    sb.create("peek", json!({}));
    let data = sb.s().data_dir().display().to_string();
    let out = sb.ok(
        "peek",
        &format!(
            "id -u; ls /proc | grep -cE '^[0-9]+$'; [ -e '{data}' ] && echo data-visible; \
             ls /root /home 2>/dev/null | head -3; cat /proc/1/cmdline | tr '\\0' ' '; echo; \
             echo $RUNTIME_CODE_ROOT; pwd; ls /"
        ),
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "1003", "functions run as uid 1003: {out}");
    let procs: usize = lines[1].parse().expect("a count");
    // init, bootstrap, the script's sh and ls, grep: far fewer than the host's processes.
    assert!(procs <= 8, "the instance sees {procs} processes: {out}");
    assert!(
        !out.contains("data-visible"),
        "the data dir is visible: {out}"
    );
    assert!(
        out.contains("__sandbox-exec"),
        "pid 1 is the sandbox's init: {out}"
    );
    assert!(
        out.contains("/opt/function/code\n/opt/function/code\n"),
        "{out}"
    );
    assert!(
        !out.contains("\nroot\n") && !out.contains("\nhome\n"),
        "{out}"
    );
    sb.finish();
}

#[test]
fn host_fgs_internal_reaches_a_server_on_the_hosts_loopback() {
    let Some(sb) = start("host.fgs.internal", &[]) else {
        return;
    };
    host_fgs_internal(sb, false);
}

/// pasta without root, joining the sandbox's user namespace.
#[test]
fn rootless_host_fgs_internal_reaches_a_server_on_the_hosts_loopback() {
    let Some(sb) = start_rootless("rootless host.fgs.internal", &[]) else {
        return;
    };
    host_fgs_internal(sb, true);
}

fn host_fgs_internal(sb: Sandboxed, rootless: bool) {
    let egress = healthz(sb.s())["isolation"]["egress"].clone();
    if rootless && egress != "pasta" {
        eprintln!("skipped host.fgs.internal: no egress here (install Debian's passt)");
        sb.finish();
        return;
    }
    // As root, fgs's own bridge and nftables, whatever is installed (docs/sandbox.md).
    assert!(rootless || egress == "veth", "egress as root: {egress}");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a host server");
    let port = listener.local_addr().expect("addr").port();
    thread::spawn(move || {
        for mut c in listener.incoming().flatten() {
            let mut buf = [0u8; 1024];
            let _ = c.read(&mut buf);
            let _ = c.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Length: 15\r\nConnection: close\r\n\r\nhello-from-host",
            );
        }
    });
    sb.create("egress", json!({}));
    let out = sb.ok(
        "egress",
        &format!("curl -sS -m 5 http://host.fgs.internal:{port}/"),
    );
    assert_eq!(out, "hello-from-host");
    sb.finish();
}

#[test]
fn two_instances_listen_on_127_0_0_1_8000_at_once() {
    let Some(sb) = start("own loopback", &[]) else {
        return;
    };
    sb.create("web", json!({"memory_size": 256}));
    let script = "/usr/bin/python3.11 -m http.server 8000 --bind 127.0.0.1 >/dev/null 2>&1 & \
                  for i in $(seq 50); do curl -s -o /dev/null http://127.0.0.1:8000/ && break; sleep 0.1; done; \
                  curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8000/; sleep 2; kill $!";
    let outs: Vec<String> = thread::scope(|sc| {
        let hs: Vec<_> = (0..2).map(|_| sc.spawn(|| sb.ok("web", script))).collect();
        hs.into_iter()
            .map(|h| h.join().expect("invoke thread"))
            .collect()
    });
    assert_eq!(outs, ["200", "200"]);
    sb.finish();
}

/// The cold-start split for docs/sandbox.md: `cargo test -p fgs-e2e --test sandbox -- --ignored
/// --nocapture cold_start`.
#[test]
#[ignore = "a measurement, not a check"]
fn cold_start_split() {
    for (mode, prewarm) in [
        ("root", "0"),
        ("root", "2"),
        ("rootless", "0"),
        ("rootless", "2"),
    ] {
        let extra = [("--prewarm", prewarm)];
        let started = match mode {
            "root" => start("cold start", &extra),
            _ => start_rootless("cold start", &extra),
        };
        let Some(sb) = started else {
            continue;
        };
        let n = 50;
        for i in 0..n {
            let name = format!("cold{i}");
            sb.create(&name, json!({}));
            sb.ok(&name, "true");
            // Let the pre-warm thread refill, as between two cold starts in real life.
            thread::sleep(Duration::from_millis(100));
        }
        let log = sb.s().stderr();
        let mut cols: [Vec<u64>; 3] = Default::default();
        for line in log.lines().filter(|l| l.contains("instance ready")) {
            for (i, key) in ["prepare_us=", "spawn_us=", "ready_us="].iter().enumerate() {
                if let Some(v) = field(line, key) {
                    cols[i].push(v);
                }
            }
        }
        let med = |v: &mut Vec<u64>| {
            v.sort_unstable();
            v.get(v.len() / 2).copied().unwrap_or(0)
        };
        let [mut p, mut s, mut r] = cols;
        println!(
            "{mode} prewarm={prewarm} starts={} median prepare={}us spawn={}us runtime-ready={}us",
            p.len(),
            med(&mut p),
            med(&mut s),
            med(&mut r)
        );
        sb.finish();
    }
}

fn field(line: &str, key: &str) -> Option<u64> {
    // tracing's fmt writes `key=value`, possibly wrapped in ANSI colour codes.
    let plain: String = strip_ansi(line);
    let rest = &plain[plain.find(key)? + key.len()..];
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut esc = false;
    for c in s.chars() {
        match (esc, c) {
            (false, '\u{1b}') => esc = true,
            (true, 'm') => esc = false,
            (true, _) => {}
            (false, c) => out.push(c),
        }
    }
    out
}

/// Issue 3 item 6: without root, an instance still gets its own pid namespace, `/tmp`, root and
/// loopback (inside a user namespace), and what cannot be enforced is reported, not skipped.
#[test]
fn rootless_instances_are_isolated_and_unenforced_limits_are_reported() {
    let Some(sb) = start_rootless("rootless sandbox", &[]) else {
        return;
    };
    let iso = healthz(sb.s())["isolation"].clone();
    assert_eq!(iso["root"], false, "{iso}");
    let not_enforced: Vec<&str> = iso["not_enforced"]
        .as_array()
        .expect("not_enforced is a list")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    // No cgroup is writable by nobody on the test hosts: memory and cpu cannot be limited.
    assert!(
        not_enforced.contains(&"memory") && not_enforced.contains(&"cpu"),
        "{iso}"
    );
    let warnings = iso["warnings"].to_string();
    assert!(warnings.contains("memory_size is not enforced"), "{iso}");
    assert!(warnings.contains("cpu quotas are not enforced"), "{iso}");
    assert!(warnings.contains("RLIMIT_NPROC"), "{iso}");
    assert!(
        sb.s().stderr().contains("memory_size is not enforced"),
        "the start-up log names what is not enforced"
    );

    sb.create("peek", json!({}));
    sb.create("other", json!({}));
    let data = sb.s().data_dir().display().to_string();
    let out = sb.ok(
        "peek",
        &format!(
            "id -u; ls /proc | grep -cE '^[0-9]+$'; [ -e '{data}' ] && echo data-visible; \
             cat /proc/1/cmdline | tr '\\0' ' '; echo; \
             grep 'Max processes' /proc/self/limits | tr -s ' ' | cut -d' ' -f3; echo secret >/tmp/mine; ls /"
        ),
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "1003", "functions run as uid 1003 inside: {out}");
    let procs: usize = lines[1].parse().expect("a count");
    assert!(procs <= 8, "the instance sees {procs} processes: {out}");
    assert!(
        !out.contains("data-visible"),
        "the data dir is visible: {out}"
    );
    assert!(
        lines[2].contains("__sandbox-exec"),
        "pid 1 is the sandbox's init: {out}"
    );
    assert_eq!(
        lines[3], "1024",
        "RLIMIT_NPROC stands in for pids.max: {out}"
    );
    assert!(
        !out.contains("\nroot\n") && !out.contains("\nhome\n"),
        "{out}"
    );
    assert_eq!(sb.ok("peek", "cat /tmp/mine"), "secret\n");
    assert_eq!(sb.ok("other", "ls /tmp | grep -c mine || true"), "0\n");
    // The host sees the runtime as nobody, never as root.
    let host_uid = sb.ok("peek", "cat /proc/self/uid_map");
    assert!(
        host_uid.split_whitespace().eq(["1003", "65534", "1"]),
        "{host_uid}"
    );
    sb.finish();
}

/// fgs without root cannot `setns` into an instance's network namespace; the shim connects for
/// it. An HTTP function is served only through such connections.
#[test]
fn rootless_http_function_is_reached_on_its_own_loopback() {
    let Some(sb) = start_rootless("rootless http function", &[]) else {
        return;
    };
    let server = "exec /usr/bin/python3 -c \"import http.server as h\nclass H(h.BaseHTTPRequestHandler):\n  def do_GET(s):\n    s.send_response(200); s.end_headers(); s.wfile.write(b'hello-from-8000')\n  def log_message(s, *a): pass\nh.HTTPServer(('127.0.0.1', 8000), H).serve_forever()\"\n";
    let zip = fgs_e2e::fixture::zip_files(&[("bootstrap", server.as_bytes(), 0o755)]);
    sb.s()
        .post(
            "/functions",
            &json!({
                "func_name": "web", "runtime": "http", "handler": "bootstrap",
                "memory_size": 128, "timeout": 10, "code_type": "zip", "code_filename": "web.zip",
                "func_code": {"file": b64(&zip)},
            }),
        )
        .expect(200);
    let ev = json!({"httpMethod": "GET", "path": "/", "headers": {}, "body": "",
                    "isBase64Encoded": false});
    for _ in 0..3 {
        let r = sb.s().invoke("web", &ev);
        r.expect_ok();
        assert!(r.text().contains("hello-from-8000"), "{}", r.text());
    }
    sb.finish();
}

/// Rootless there is no cgroup for the next fgs to sweep: after `kill -9` of fgs, each shim sees
/// its control socket close and kills its namespace, and pasta quits with it.
#[test]
fn rootless_kill_9_of_fgs_leaves_no_process_behind() {
    let Some(mut sb) = start_rootless("rootless kill -9", &[]) else {
        return;
    };
    sb.create("linger", json!({}));
    sb.ok("linger", "(sleep 4242 >/dev/null 2>&1 &); echo started");
    assert!(!fgs_e2e::pgrep("sleep 4242").is_empty(), "the marker runs");
    let server = sb.server.take().expect("the server runs");
    server.kill9();
    let run = sb.run_dir.display().to_string();
    let left = || {
        let mut pids = fgs_e2e::pgrep("sleep 4242");
        pids.extend(fgs_e2e::pgrep(&run));
        pids
    };
    let clean = wait_until(Duration::from_secs(10), || left().is_empty());
    let described: Vec<String> = left()
        .into_iter()
        .map(|p| format!("{p}: {}", cmdline(p)))
        .collect();
    assert!(clean, "left behind after kill -9: {described:#?}");
}

/// Issue 17: a pasta whose fgs and shim were both killed (`kill -9` of the whole process group,
/// so no shim is left to end it) is ended by the next start's sweep, rootless as with root.
#[test]
fn rootless_a_pasta_left_by_kill_9_is_swept_at_the_next_start() {
    let Some(mut sb) = start_rootless("rootless pasta sweep", &[]) else {
        return;
    };
    let iso = healthz(sb.s())["isolation"].clone();
    if iso["egress"] != "pasta" {
        eprintln!(
            "skipped rootless pasta sweep: no egress here (install Debian's passt): {}",
            iso["warnings"]
        );
        return;
    }
    sb.create("net", json!({}));
    sb.ok("net", "echo up");
    let run = sb.run_dir.display().to_string();
    let pastas: Vec<u32> = fgs_e2e::pgrep(&run)
        .into_iter()
        .filter(|p| {
            let comm = std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
            comm.starts_with("pasta") || comm.starts_with("passt")
        })
        .collect();
    assert!(!pastas.is_empty(), "the instance has a pasta");
    // The shims first, then fgs: nothing of this server is left to end the pastas.
    for p in fgs_e2e::pgrep(&run) {
        if cmdline(p).contains("__sandbox-exec") {
            let _ = std::process::Command::new("kill")
                .args(["-9", &p.to_string()])
                .status();
        }
    }
    sb.server.take().expect("the server runs").kill9();
    std::thread::sleep(Duration::from_millis(500));
    let alive: Vec<u32> = pastas
        .iter()
        .copied()
        .filter(|p| fgs_e2e::alive(*p))
        .collect();
    assert!(!alive.is_empty(), "the pastas outlived their fgs and shims");
    sb.server = Some(Server::start(sb.opts.clone()));
    let swept = wait_until(Duration::from_secs(10), || {
        alive.iter().all(|p| !fgs_e2e::alive(*p))
    });
    let described: Vec<String> = alive
        .iter()
        .map(|p| format!("{p}: {}", cmdline(*p)))
        .collect();
    assert!(swept, "pastas left after the next start: {described:#?}");
}

/// The unified (v2) cgroup hierarchy's mount point, if one is mounted at its root.
fn unified_mount() -> Option<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        let f: Vec<&str> = left.split(' ').collect();
        (right.starts_with("cgroup2 ") && f.get(3) == Some(&"/")).then(|| PathBuf::from(f[4]))
    })
}

/// Rootless with a cgroup v2 subtree delegated to fgs's user (as systemd's `Delegate=yes` gives
/// one): instance cgroups go there, and `cgroup.kill` ends them. The test hosts' v2 hierarchy has
/// no controllers, so memory and cpu stay reported as not enforced.
#[test]
fn rootless_uses_a_delegated_cgroup_v2_subtree() {
    use std::os::unix::fs::chown;
    let Some(v2) = unified_mount() else {
        eprintln!("skipped rootless delegated cgroup: no cgroup v2 hierarchy is mounted");
        return;
    };
    if !is_root() {
        eprintln!("skipped rootless delegated cgroup: delegating a cgroup needs root");
        return;
    }
    let deleg = v2.join(unique("fgs-e2e-deleg-"));
    std::fs::create_dir(&deleg).expect("create the delegated cgroup");
    for f in [
        "",
        "cgroup.procs",
        "cgroup.subtree_control",
        "cgroup.threads",
    ] {
        chown(deleg.join(f), Some(NOBODY), Some(NOBODY)).expect("delegate to nobody");
    }
    let Some(sb) = start_rootless_in("rootless delegated cgroup", &[], Some(&deleg)) else {
        let _ = std::fs::remove_dir(&deleg);
        return;
    };
    let iso = healthz(sb.s())["isolation"].clone();
    assert_eq!(iso["cgroups"]["layout"], "v2", "{iso}");
    assert_eq!(iso["cgroups"]["kill"], true, "{iso}");
    let parent = deleg.join("fgs");
    assert_eq!(
        iso["cgroups"]["parents"],
        json!([parent.display().to_string()]),
        "{iso}"
    );
    sb.create("cg", json!({}));
    assert_eq!(sb.ok("cg", "echo in-a-cgroup"), "in-a-cgroup\n");
    let instances = std::fs::read_dir(&parent)
        .map(|d| d.flatten().filter(|e| e.path().is_dir()).count())
        .unwrap_or(0);
    assert!(
        instances >= 1,
        "no instance cgroup under {}",
        parent.display()
    );
    sb.finish();
    let leftovers: Vec<PathBuf> = std::fs::read_dir(&deleg)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    for d in &leftovers {
        let _ = std::fs::remove_dir(d);
    }
    let removed = wait_until(Duration::from_secs(5), || {
        std::fs::remove_dir(&deleg).is_ok()
    });
    assert!(
        removed && leftovers.is_empty(),
        "left in the delegated cgroup: {leftovers:?}"
    );
}

/// An image function without root (docs/images.md): fgs as `nobody` pulls and unpacks the
/// image itself, and the instance runs on an overlay mounted in its own user namespace, as
/// uid 1003; another uid is refused at start.
#[test]
fn rootless_image_functions_run_as_1003() {
    if fgs_e2e::images::available().is_err() {
        eprintln!("skipped rootless image functions: gcc, skopeo or a registry is missing");
        return;
    }
    let reg = fgs_e2e::images::Registry::start();
    let Some(sb) = start_rootless("rootless image functions", &[("--insecure-registry", &reg.addr)])
    else {
        return;
    };
    let config = json!({"Env": ["PATH=/bin"], "Cmd": ["/bin/srv"]});
    let image = reg.push_image("fgs/rootless", "v1", "v1", config);
    let s = sb.s();
    for (name, uid) in [("img1003", "1003"), ("img1500", "1500")] {
        s.post("/functions", &json!({"func_name": name, "runtime": "Custom Image", "handler": "-",
            "memory_size": 128, "timeout": 10,
            "custom_image": {"enabled": true, "image": image, "uid": uid, "gid": uid}}))
            .expect(200);
    }
    let r = s.invoke("img1003", &json!({"op": "info"}));
    r.expect(200);
    let v = r.json();
    assert_eq!((v["uid"].clone(), v["version"].clone()), (json!(1003), json!("v1")), "{v}");
    assert_eq!(v["root_writable"], true, "the overlay's writable layer: {v}");
    let r = s.invoke("img1500", &json!({"op": "info"}));
    assert!(r.status >= 400 || r.header("x-is-func-err").as_deref() == Some("true"), "{}", r.text());
    assert!(r.text().contains("1003"), "the refusal says which ids exist: {}", r.text());
    sb.finish();
}
