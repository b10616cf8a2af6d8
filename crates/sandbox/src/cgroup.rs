//! cgroups of instances, on v1, v2 and the hybrid layout.
//!
//! Each instance gets one cgroup per hierarchy that matters, all named `<parent>/<id>` at the
//! hierarchy's root (never under the cgroup fgs itself runs in, which may carry limits of its
//! own). On v1 the memory, pids and cpu controllers may be separate hierarchies; on v2 they are
//! one. In the hybrid layout the unified hierarchy may carry no controllers at all but still gives
//! `cgroup.kill`, which ends a whole tree in one write.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde::Serialize;

/// Where the hierarchies fgs uses are mounted.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct CgroupLayout {
    /// v1 hierarchies by controller: memory, pids, cpu.
    pub v1_memory: Option<PathBuf>,
    pub v1_pids: Option<PathBuf>,
    pub v1_cpu: Option<PathBuf>,
    /// The unified (v2) hierarchy and the controllers enabled at its root.
    pub unified: Option<PathBuf>,
    pub unified_controllers: Vec<String>,
}

/// Which hierarchy gives one controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    V1,
    V2,
    None,
}

impl CgroupLayout {
    /// Reads the mounted hierarchies from `/proc/self/mountinfo`.
    pub fn detect() -> CgroupLayout {
        let mut layout = fs::read_to_string("/proc/self/mountinfo")
            .map(|s| parse_mountinfo(&s))
            .unwrap_or_default();
        if let Some(u) = &layout.unified {
            layout.unified_controllers = fs::read_to_string(u.join("cgroup.controllers"))
                .map(|s| s.split_whitespace().map(str::to_string).collect())
                .unwrap_or_default();
        }
        layout
    }

    fn source(&self, v1: &Option<PathBuf>, name: &str) -> Source {
        if v1.is_some() {
            Source::V1
        } else if self.unified_controllers.iter().any(|c| c == name) {
            Source::V2
        } else {
            Source::None
        }
    }

    pub fn memory(&self) -> Source {
        self.source(&self.v1_memory, "memory")
    }
    pub fn pids(&self) -> Source {
        self.source(&self.v1_pids, "pids")
    }
    pub fn cpu(&self) -> Source {
        self.source(&self.v1_cpu, "cpu")
    }

    /// Whether a whole cgroup can be killed with one write (`cgroup.kill`, Linux 5.14); looked
    /// up in the parent, since the root cgroup has no such file.
    pub fn has_kill(&self, parent: &str) -> bool {
        self.unified
            .as_ref()
            .is_some_and(|u| u.join(parent).join("cgroup.kill").exists())
    }

    /// `v1`, `v2`, `hybrid` or `none`.
    pub fn kind(&self) -> &'static str {
        let v1 = self.v1_memory.is_some() || self.v1_pids.is_some() || self.v1_cpu.is_some();
        match (v1, self.unified.is_some()) {
            (true, true) => "hybrid",
            (true, false) => "v1",
            (false, true) => "v2",
            (false, false) => "none",
        }
    }

    /// The directories of one instance's cgroups, one per hierarchy, deduplicated.
    pub fn instance_dirs(&self, parent: &str, id: &str) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = Vec::new();
        for root in [&self.v1_memory, &self.v1_pids, &self.v1_cpu, &self.unified]
            .into_iter()
            .flatten()
        {
            let d = root.join(parent).join(id);
            if !dirs.contains(&d) {
                dirs.push(d);
            }
        }
        dirs
    }

    /// The parent directory in every hierarchy.
    pub fn parent_dirs(&self, parent: &str) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = Vec::new();
        for root in [&self.v1_memory, &self.v1_pids, &self.v1_cpu, &self.unified]
            .into_iter()
            .flatten()
        {
            let d = root.join(parent);
            if !dirs.contains(&d) {
                dirs.push(d);
            }
        }
        dirs
    }

    /// Creates the parent in every hierarchy and, on v2, delegates the controllers to it.
    pub fn ensure_parent(&self, parent: &str) -> std::io::Result<()> {
        for d in self.parent_dirs(parent) {
            fs::create_dir_all(&d)?;
        }
        if let Some(u) = &self.unified {
            let wanted: Vec<&str> = ["memory", "pids", "cpu"]
                .into_iter()
                .filter(|c| self.unified_controllers.iter().any(|x| x == c))
                .collect();
            if !wanted.is_empty() {
                let line: String = wanted.iter().map(|c| format!("+{c} ")).collect();
                fs::write(u.join("cgroup.subtree_control"), line.trim_end())?;
                fs::write(
                    u.join(parent).join("cgroup.subtree_control"),
                    line.trim_end(),
                )?;
            }
        }
        Ok(())
    }

    /// The writes that set one instance's memory and pids limits (file, value), in the order they
    /// must happen; the cpu quota comes later ([`CgroupLayout::cpu_writes`]).
    pub fn limit_writes(&self, dir_of: &InstanceCgroup, limits: &Limits) -> Vec<(PathBuf, String)> {
        let mut w = Vec::new();
        let mem = limits.memory_bytes();
        match (&self.v1_memory, mem) {
            (Some(root), Some(bytes)) => {
                let d = dir_of.dir_under(root);
                // No swap: swappiness 0, and memsw (when swap accounting is on) equal to the limit,
                // set after the plain limit because memsw may never be below it.
                w.push((d.join("memory.swappiness"), "0".into()));
                w.push((d.join("memory.limit_in_bytes"), bytes.to_string()));
                if d.join("memory.memsw.limit_in_bytes").exists() || !d.exists() {
                    w.push((d.join("memory.memsw.limit_in_bytes"), bytes.to_string()));
                }
            }
            (None, Some(bytes)) if self.memory() == Source::V2 => {
                let d = dir_of.dir_under(self.unified.as_ref().expect("v2 source has a root"));
                w.push((d.join("memory.max"), bytes.to_string()));
                w.push((d.join("memory.swap.max"), "0".into()));
            }
            _ => {}
        }
        match (&self.v1_pids, self.pids()) {
            (Some(root), _) => w.push((
                dir_of.dir_under(root).join("pids.max"),
                limits.pids.to_string(),
            )),
            (None, Source::V2) => {
                let d = dir_of.dir_under(self.unified.as_ref().expect("v2 source has a root"));
                w.push((d.join("pids.max"), limits.pids.to_string()));
            }
            _ => {}
        }
        // Files that do not exist (memsw without swap accounting) are skipped by the writer.
        w
    }

    /// The writes that set `millicores` as the instance's CFS quota (per 100 ms period).
    pub fn cpu_writes(
        &self,
        dir_of: &InstanceCgroup,
        millicores: Option<u32>,
    ) -> Vec<(PathBuf, String)> {
        let quota = millicores.map(|m| u64::from(m) * 100);
        match (&self.v1_cpu, self.cpu(), quota) {
            (Some(root), _, Some(q)) => {
                let d = dir_of.dir_under(root);
                vec![
                    (d.join("cpu.cfs_period_us"), "100000".into()),
                    (d.join("cpu.cfs_quota_us"), q.to_string()),
                ]
            }
            (None, Source::V2, Some(q)) => {
                let d = dir_of.dir_under(self.unified.as_ref().expect("v2 source has a root"));
                vec![(d.join("cpu.max"), format!("{q} 100000"))]
            }
            _ => Vec::new(),
        }
    }
}

/// Parses `/proc/self/mountinfo` for cgroup hierarchies.
fn parse_mountinfo(text: &str) -> CgroupLayout {
    let mut layout = CgroupLayout::default();
    for line in text.lines() {
        // `id parent maj:min root mountpoint opts [optional...] - fstype source superopts`
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let left: Vec<&str> = left.split(' ').collect();
        let right: Vec<&str> = right.split(' ').collect();
        if left.len() < 5 || right.len() < 3 {
            continue;
        }
        // A hierarchy mounted from a sub-cgroup (a container's view) is not its root.
        if left[3] != "/" {
            continue;
        }
        let mountpoint = PathBuf::from(unescape(left[4]));
        match right[0] {
            "cgroup2" => {
                layout.unified.get_or_insert(mountpoint);
            }
            "cgroup" => {
                for opt in right[2].split(',') {
                    let slot = match opt {
                        "memory" => &mut layout.v1_memory,
                        "pids" => &mut layout.v1_pids,
                        "cpu" => &mut layout.v1_cpu,
                        _ => continue,
                    };
                    slot.get_or_insert(mountpoint.clone());
                }
            }
            _ => {}
        }
    }
    layout
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Limits of one instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub memory_mb: Option<u32>,
    pub pids: u32,
}

impl Limits {
    /// The memory limit in bytes, as written to the cgroup.
    pub fn memory_bytes(&self) -> Option<u64> {
        self.memory_mb.map(|m| u64::from(m) << 20)
    }
}

/// The cgroups of one instance, one directory per hierarchy.
#[derive(Debug, Clone)]
pub struct InstanceCgroup {
    pub parent: String,
    pub id: String,
    pub dirs: Vec<PathBuf>,
    memory: Option<(PathBuf, Source)>,
    kill: Option<PathBuf>,
    /// The memory counters, opened once and read with `pread` at every invocation (a path
    /// lookup through cgroupfs per read cost more than the read).
    peak_file: Arc<OnceLock<Option<fs::File>>>,
    oom_file: Arc<OnceLock<Option<fs::File>>>,
}

/// Reads a whole cgroup file from an open descriptor (cgroup files regenerate at offset 0) and
/// parses it in place: no allocation, since this runs once per invocation.
fn pread_with<T>(f: &fs::File, parse: impl FnOnce(&str) -> Option<T>) -> Option<T> {
    use std::os::unix::fs::FileExt;
    let mut buf = [0u8; 512];
    let n = f.read_at(&mut buf, 0).ok()?;
    parse(std::str::from_utf8(&buf[..n]).ok()?)
}

impl InstanceCgroup {
    /// Creates the instance's cgroups in every hierarchy.
    pub fn create(
        layout: &CgroupLayout,
        parent: &str,
        id: &str,
    ) -> std::io::Result<InstanceCgroup> {
        let dirs = layout.instance_dirs(parent, id);
        for d in &dirs {
            match fs::create_dir(d) {
                // Another fgs sharing the parent removes it at its stop when it is empty, which
                // it is while this fgs starts: made again (with its controllers), once.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    layout.ensure_parent(parent)?;
                    fs::create_dir(d)?;
                }
                other => other?,
            }
        }
        let memory = match layout.memory() {
            Source::V1 => Some((
                layout
                    .v1_memory
                    .as_ref()
                    .expect("v1 source has a root")
                    .join(parent)
                    .join(id),
                Source::V1,
            )),
            Source::V2 => Some((
                layout
                    .unified
                    .as_ref()
                    .expect("v2 source has a root")
                    .join(parent)
                    .join(id),
                Source::V2,
            )),
            Source::None => None,
        };
        let kill = layout
            .unified
            .as_ref()
            .map(|u| u.join(parent).join(id).join("cgroup.kill"))
            .filter(|k| k.exists());
        Ok(InstanceCgroup {
            parent: parent.to_string(),
            id: id.to_string(),
            dirs,
            memory,
            kill,
            peak_file: Arc::default(),
            oom_file: Arc::default(),
        })
    }

    fn dir_under(&self, root: &Path) -> PathBuf {
        root.join(&self.parent).join(&self.id)
    }

    /// The `cgroup.procs` files a process writes its pid to, to join every hierarchy.
    pub fn procs_files(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|d| d.join("cgroup.procs")).collect()
    }

    /// The highest memory use of the instance so far, in bytes; `None` without a memory cgroup.
    pub fn memory_peak(&self) -> Option<u64> {
        let (d, src) = self.memory.as_ref()?;
        let files: &[&str] = match src {
            Source::V1 => &["memory.max_usage_in_bytes", "memory.usage_in_bytes"],
            _ => &["memory.peak", "memory.current"],
        };
        let file = self
            .peak_file
            .get_or_init(|| files.iter().find_map(|f| fs::File::open(d.join(f)).ok()));
        pread_with(file.as_ref()?, |s| s.trim().parse().ok())
    }

    /// How many processes the OOM killer has killed in the instance.
    pub fn oom_kills(&self) -> u64 {
        let Some((d, src)) = self.memory.as_ref() else {
            return 0;
        };
        let file = match src {
            Source::V1 => "memory.oom_control",
            _ => "memory.events",
        };
        self.oom_file
            .get_or_init(|| fs::File::open(d.join(file)).ok())
            .as_ref()
            .and_then(|f| pread_with(f, |s| Some(parse_oom_kills(s))))
            .unwrap_or(0)
    }

    /// Kills every process of the instance at once, where the kernel allows it.
    pub fn kill(&self) -> bool {
        match &self.kill {
            Some(k) => fs::write(k, "1").is_ok(),
            None => false,
        }
    }

    /// Removes the instance's cgroups once their processes are gone, killing stragglers.
    pub fn remove(&self) {
        remove_dirs(&self.dirs);
    }
}

fn remove_dirs(dirs: &[PathBuf]) {
    for d in dirs {
        for attempt in 0..50 {
            match fs::remove_dir(d) {
                Ok(()) => break,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                Err(_) => {
                    // Processes still there (or exiting): kill what is left and retry.
                    kill_procs(d);
                    std::thread::sleep(Duration::from_millis(if attempt < 10 { 2 } else { 20 }));
                }
            }
        }
    }
}

fn kill_procs(dir: &Path) {
    if fs::write(dir.join("cgroup.kill"), "1").is_ok() {
        return;
    }
    if let Ok(s) = fs::read_to_string(dir.join("cgroup.procs")) {
        for pid in s.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// Removes the instance cgroups under `parent` whose fgs is gone (killed); how many. Those of a
/// live fgs (several may share a host and a parent) are left alone.
pub fn sweep(layout: &CgroupLayout, parent: &str, stale: impl Fn(&str) -> bool) -> usize {
    let mut n = 0;
    for p in layout.parent_dirs(parent) {
        let Ok(entries) = fs::read_dir(&p) else {
            continue;
        };
        let dirs: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter(|e| stale(&e.file_name().to_string_lossy()))
            .map(|e| e.path())
            .collect();
        n += dirs.len();
        remove_dirs(&dirs);
    }
    n
}

/// The `oom_kill N` counter of `memory.oom_control` (v1) or `memory.events` (v2).
fn parse_oom_kills(text: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix("oom_kill ")?.trim().parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
25 1 254:0 / / rw,relatime - ext4 /dev/vda rw
30 25 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/cpu rw,nosuid - cgroup cgroup rw,cpu
32 30 0:28 / /sys/fs/cgroup/cpuacct rw,nosuid - cgroup cgroup rw,cpuacct
33 30 0:29 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory
34 30 0:30 / /sys/fs/cgroup/pids rw,nosuid - cgroup cgroup rw,pids
35 30 0:31 / /sys/fs/cgroup/unified rw,nosuid shared:9 - cgroup2 cgroup2 rw,nsdelegate
";

    #[test]
    fn a_parent_removed_by_another_fgs_is_made_again() {
        let dir = tempfile::tempdir().unwrap();
        let layout = CgroupLayout {
            v1_memory: Some(dir.path().join("memory")),
            v1_pids: Some(dir.path().join("pids")),
            ..CgroupLayout::default()
        };
        layout.ensure_parent("fgs").unwrap();
        // The other fgs's stop: the parent was empty.
        fs::remove_dir(dir.path().join("memory/fgs")).unwrap();
        InstanceCgroup::create(&layout, "fgs", "1-ab").unwrap();
        assert!(dir.path().join("memory/fgs/1-ab").is_dir());
        assert!(dir.path().join("pids/fgs/1-ab").is_dir());
    }

    #[test]
    fn hybrid_layout() {
        let l = parse_mountinfo(HYBRID);
        assert_eq!(
            l.v1_memory.as_deref(),
            Some(Path::new("/sys/fs/cgroup/memory"))
        );
        assert_eq!(l.v1_pids.as_deref(), Some(Path::new("/sys/fs/cgroup/pids")));
        assert_eq!(l.v1_cpu.as_deref(), Some(Path::new("/sys/fs/cgroup/cpu")));
        assert_eq!(
            l.unified.as_deref(),
            Some(Path::new("/sys/fs/cgroup/unified"))
        );
        assert_eq!(l.kind(), "hybrid");
        assert_eq!(l.memory(), Source::V1);
        assert_eq!(
            l.instance_dirs("fgs", "a1"),
            [
                "/sys/fs/cgroup/memory/fgs/a1",
                "/sys/fs/cgroup/pids/fgs/a1",
                "/sys/fs/cgroup/cpu/fgs/a1",
                "/sys/fs/cgroup/unified/fgs/a1"
            ]
            .map(PathBuf::from)
        );
    }

    #[test]
    fn v1_cpu_and_cpuacct_share_a_hierarchy() {
        let l = parse_mountinfo(
            "31 30 0:27 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n",
        );
        assert_eq!(
            l.v1_cpu.as_deref(),
            Some(Path::new("/sys/fs/cgroup/cpu,cpuacct"))
        );
        assert_eq!(l.kind(), "v1");
    }

    #[test]
    fn pure_v2_and_container_views() {
        let mut l = parse_mountinfo(
            "35 30 0:31 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n\
             36 30 0:32 /docker/abc /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n",
        );
        // A v1 mount of a sub-cgroup is not a hierarchy root and is ignored.
        assert_eq!(l.v1_memory, None);
        l.unified_controllers = vec!["cpu".into(), "memory".into(), "pids".into()];
        assert_eq!(
            (l.kind(), l.memory(), l.cpu()),
            ("v2", Source::V2, Source::V2)
        );
        assert_eq!(
            l.instance_dirs("fgs", "x"),
            [PathBuf::from("/sys/fs/cgroup/fgs/x")]
        );
        let cg = InstanceCgroup {
            parent: "fgs".into(),
            id: "x".into(),
            dirs: l.instance_dirs("fgs", "x"),
            memory: None,
            kill: None,
            peak_file: Arc::default(),
            oom_file: Arc::default(),
        };
        let w = l.limit_writes(
            &cg,
            &Limits {
                memory_mb: Some(128),
                pids: 1024,
            },
        );
        let w: Vec<(String, String)> = w
            .into_iter()
            .chain(l.cpu_writes(&cg, Some(300)))
            .map(|(p, v)| (p.display().to_string(), v))
            .collect();
        assert!(w.contains(&("/sys/fs/cgroup/fgs/x/memory.max".into(), "134217728".into())));
        assert!(w.contains(&("/sys/fs/cgroup/fgs/x/memory.swap.max".into(), "0".into())));
        assert!(w.contains(&("/sys/fs/cgroup/fgs/x/cpu.max".into(), "30000 100000".into())));
        assert!(w.contains(&("/sys/fs/cgroup/fgs/x/pids.max".into(), "1024".into())));
    }

    #[test]
    fn counters_are_read_again_from_the_open_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("memory.peak");
        fs::write(&path, "4096\n").unwrap();
        let f = fs::File::open(&path).unwrap();
        let read = |f: &fs::File| pread_with(f, |s| Some(s.to_string()));
        assert_eq!(read(&f).as_deref(), Some("4096\n"));
        fs::write(&path, "8192\n").unwrap();
        assert_eq!(read(&f).as_deref(), Some("8192\n"));
    }

    #[test]
    fn escaped_mountpoints() {
        assert_eq!(unescape(r"/a\040b"), "/a b");
        assert_eq!(unescape(r"/plain"), "/plain");
        assert_eq!(unescape(r"/end\04"), r"/end\04");
    }

    #[test]
    fn oom_counters() {
        let v1 = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        assert_eq!(parse_oom_kills(v1), 3);
        let v2 = "low 0\nhigh 0\nmax 5\noom 2\noom_kill 2\noom_group_kill 0\n";
        assert_eq!(parse_oom_kills(v2), 2);
        assert_eq!(parse_oom_kills(""), 0);
    }
}
