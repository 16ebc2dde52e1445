//! Real containers through the runtime helper, with and without a user namespace: the helper
//! is the init binary itself, in a private mount namespace whose `/sys/fs/cgroup` is a cgroup
//! v2 mount (this machine may have the legacy layout). Needs root; skipped otherwise.
//!
//! The layer is made of the machine's own `sh`, `id`, `touch`, `sleep` and their libraries.
//! With `--nocapture` it prints how long starting a container (the runtime's `run`, from the
//! request to a running init) took, several times each way.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use baton_init::board::console::Console;
use baton_init::containers::runtime::{
    ContainerConfig, ContainerRequest, IdRange, Runtime, RuntimePaths,
};

const BASE: u32 = 131_072 + 7 * 65_536;
const DEADLINE: Duration = Duration::from_secs(30);
const RUNS: usize = 5;

fn copy_with_libraries(layer: &Path, binaries: &[&str]) {
    let mut files: Vec<PathBuf> = Vec::new();
    for b in binaries {
        let real = std::fs::canonicalize(b).expect("binary");
        files.push(real.clone());
        let out = std::process::Command::new("ldd")
            .arg(&real)
            .output()
            .expect("ldd");
        for word in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            if word.starts_with('/') {
                files.push(PathBuf::from(word));
            }
        }
    }
    for f in files {
        let dest = layer.join(f.strip_prefix("/").expect("absolute"));
        std::fs::create_dir_all(dest.parent().expect("parent")).expect("mkdir");
        std::fs::copy(&f, &dest).expect("copy");
    }
    for b in binaries {
        let real = std::fs::canonicalize(b).expect("binary");
        let name = Path::new(b).file_name().expect("name");
        let link = layer.join("bin").join(name);
        std::fs::create_dir_all(link.parent().expect("parent")).expect("mkdir");
        if !link.exists() {
            std::os::unix::fs::symlink(&real, &link).expect("symlink");
        }
    }
    for dir in ["proc", "sys", "dev", "tmp", "etc"] {
        std::fs::create_dir_all(layer.join(dir)).expect("mkdir");
    }
}

fn config(dir: &Path, id: &str, ids: Option<IdRange>, script: &str) -> ContainerConfig {
    ContainerConfig {
        id: id.into(),
        lower_dirs: vec![dir.join("layer")],
        writable_dir: dir.join("rw").join(id),
        readonly_root: false,
        args: vec!["/bin/sh".into(), "-c".into(), script.into()],
        env: vec!["PATH=/bin:/usr/bin".into()],
        cwd: "/".into(),
        user: (0, 0),
        hostname: id.into(),
        cpu: None,
        memory_bytes: None,
        pids: None,
        netns: None,
        volumes: vec![],
        files: vec![],
        capabilities: vec![],
        disk_project: None,
        ids,
    }
}

fn request(config: ContainerConfig) -> (ContainerRequest, std::fs::File) {
    let (r, w) = nix::unistd::pipe().expect("pipe");
    let err = w.try_clone().expect("dup");
    (
        ContainerRequest {
            config,
            stdout: w,
            stderr: err,
        },
        std::fs::File::from(r),
    )
}

async fn first_line(out: std::fs::File) -> String {
    let read = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(out).read_line(&mut line).map(|_| line)
    });
    tokio::time::timeout(DEADLINE, read)
        .await
        .expect("a line before the deadline")
        .expect("join")
        .expect("read")
}

fn host_uid(pid: i32) -> u32 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let line = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .expect("Uid line");
    line.split_whitespace()
        .nth(1)
        .and_then(|u| u.parse().ok())
        .expect("uid")
}

async fn start_runtime(dir: &Path) -> Runtime {
    let wrapper = dir.join("helper.sh");
    let exe = env!("CARGO_BIN_EXE_baton-init");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nexec unshare -m --propagation private sh -c \
             'mount -t cgroup2 none /sys/fs/cgroup && exec \"$0\" \"$@\"' {exe} \"$@\"\n"
        ),
    )
    .expect("wrapper");
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    let paths = RuntimePaths {
        exe: wrapper,
        state: dir.join("state"),
        bundles: dir.join("bundles"),
        cgroup_root: "/sys/fs/cgroup".into(),
        cgroup_parent: format!("baton-userns-test-{}", std::process::id()),
    };
    Runtime::start(paths, Arc::new(Console::quiet(1000)))
        .await
        .expect("helper")
}

#[tokio::test]
async fn a_mapped_container_is_root_inside_and_its_range_outside() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test needs root (CI runs as root)"
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    copy_with_libraries(
        &dir.join("layer"),
        &["/bin/sh", "/usr/bin/id", "/usr/bin/touch", "/usr/bin/sleep"],
    );
    if let Err(why) = baton_init::containers::runtime::probe_idmap(&dir.join("layer")) {
        panic!("idmapped mounts are unsupported in the temporary directory: {why}");
    }
    // A network namespace made outside the user namespace, as the board's bridge makes them
    // (before the helper's mount namespace is, so that it sees the binding).
    let netns = dir.join("netns");
    std::fs::write(&netns, b"").expect("netns file");
    let made = std::process::Command::new("unshare")
        .arg(format!("--net={}", netns.display()))
        .arg("true")
        .status()
        .expect("unshare");
    assert!(made.success());
    let rt = start_runtime(dir).await;
    let ids = Some(IdRange {
        base: BASE,
        count: 65_536,
    });
    let c = config(
        dir,
        "mapped",
        ids,
        "touch /made && echo \"$(id -u) $(id -g)\" && exec sleep 60",
    );
    let (req, out) = request(c);
    let started = rt.run(req).await.expect("run mapped");
    let line = first_line(out).await;
    assert!(line.starts_with("0 0"), "ids inside: {line:?}");
    assert_eq!(host_uid(started.pid), BASE, "the init's uid on the board");
    let made = std::fs::metadata(dir.join("rw/mapped/upper/made")).expect("made");
    assert_eq!((made.uid(), made.gid()), (BASE, BASE));
    let layer = std::fs::metadata(dir.join("layer/bin")).expect("layer");
    assert_eq!(layer.uid(), 0, "the layer itself is unchanged");
    rt.signal("mapped", libc::SIGKILL).await.expect("kill");
    remove_when_ended(&rt, "mapped").await;
    assert!(
        !dir.join("bundles/mapped").exists(),
        "bundle and idmapped layers gone"
    );
    assert!(dir.join("layer/bin").exists(), "the layer survives removal");

    // `echo` with a glob: the layer holds no `ls`, and the shell must stay for the checks below.
    let mut c = config(dir, "joined", ids, "echo /sys/class/net/* && exec sleep 60");
    c.netns = Some(netns.clone());
    let (req, out) = request(c);
    let started = rt.run(req).await.expect("run joined");
    let listed = first_line(out).await;
    assert!(
        listed.contains("/sys/class/net/lo"),
        "/sys is readable: {listed:?}"
    );
    let inside = std::fs::metadata(format!("/proc/{}/ns/net", started.pid)).expect("ns");
    assert_eq!(
        inside.ino(),
        std::fs::metadata(&netns).expect("netns").ino()
    );
    assert_eq!(host_uid(started.pid), BASE);
    rt.signal("joined", libc::SIGKILL).await.expect("kill");
    remove_when_ended(&rt, "joined").await;
    let _ = nix::mount::umount2(&netns, nix::mount::MntFlags::MNT_DETACH);

    // Cost: the same container started with and without the mapping.
    for (label, ids) in [("board ids", None), ("mapped", ids)] {
        let mut times = Vec::new();
        for n in 0..RUNS {
            let id = format!("t{n}-{}", ids.is_some());
            let (req, out) = request(config(dir, &id, ids, "echo up && exec sleep 60"));
            let t = Instant::now();
            rt.run(req).await.expect("run");
            times.push(t.elapsed());
            assert_eq!(first_line(out).await, "up\n");
            rt.signal(&id, libc::SIGKILL).await.expect("kill");
            remove_when_ended(&rt, &id).await;
        }
        let ms: Vec<String> = times
            .iter()
            .map(|t| format!("{:.1}", t.as_secs_f64() * 1000.0))
            .collect();
        println!("start, {label}: {} ms", ms.join(", "));
    }
}

async fn remove_when_ended(rt: &Runtime, id: &str) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        match rt.remove(id).await {
            Ok(()) => return,
            Err(e) if Instant::now() < deadline && e.to_string().contains("running") => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("remove {id}: {e}"),
        }
    }
}
