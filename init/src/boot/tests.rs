use std::error::Error as _;
use std::time::Duration;

use baton_spec::NetworkConfig;

use super::*;
use crate::board::sys::fake::FakeSys;
use crate::boot::services::StartError;
use crate::boot::testbed::{Testbed, DISK_ID, IMAGE_END};
use crate::lifecycle;

/// Network, SNTP and API that only log into the fake kernel's call log.
struct FakeServices {
    sys: Arc<FakeSys>,
    fail_network: bool,
    fail_api: bool,
}

impl FakeServices {
    fn new(tb: &Testbed) -> FakeServices {
        FakeServices {
            sys: tb.sys.clone(),
            fail_network: false,
            fail_api: false,
        }
    }
}

impl Services for FakeServices {
    type Network = String;

    async fn start_network(
        &self,
        _ctx: &Arc<Ctx>,
        _config: &NetworkConfig,
        hostname: &str,
    ) -> Result<String, StartError> {
        self.sys.note(format!("net start {hostname}"));
        if self.fail_network {
            return Err("no carrier on eth0".into());
        }
        Ok("net".to_string())
    }

    fn start_time_sync(&self, _ctx: &Arc<Ctx>, servers: Vec<String>, _network: &String) {
        self.sys.note(format!("sntp {}", servers.join(",")));
    }

    fn start_api(
        &self,
        _ctx: &Arc<Ctx>,
        _config: &crate::boot::config::BootConfig,
        _power: mpsc::Sender<Action>,
    ) -> Result<(), StartError> {
        self.sys.note("api start");
        if self.fail_api {
            return Err("port 7070 in use".into());
        }
        Ok(())
    }

    async fn stop_network(&self, network: String) {
        self.sys.note(format!("net stop {network}"));
    }

    async fn start_containers(
        &self,
        _ctx: &Arc<Ctx>,
        data_mounted: bool,
        _config: &crate::boot::config::BootConfig,
        _power: &mpsc::Sender<Action>,
    ) {
        self.sys
            .note(format!("containers start (data {data_mounted})"));
    }

    async fn stop_containers(&self, _ctx: &Ctx) {
        self.sys.note("containers stop");
    }
}

const CLUSTER: &str = "[cluster]\nkey = \"0123456789abcdef0123456789abcdef\"\n\
                       [api]\ntoken = \"secret-token-1234567\"\n[board]\nhostname = \"pi-one\"\n\
                       [time]\nservers = [\"time.lan\"]\n";

/// A board whose image boots: build.json, modules, the disk, a good cluster.toml.
fn board() -> Testbed {
    let tb = Testbed::new();
    let build = serde_json::json!({
        "board": "qemu-virt",
        "kernel_release": "6.1.0-test-arm64",
        "kernel_package": "6.1.0-test",
        "baton_version": "0.1.0",
        "disk_id": DISK_ID,
        "modules": ["kernel/lib/crc32c_generic.ko", "kernel/fs/ext4/ext4.ko"],
        "console": "ttyAMA0",
    });
    tb.file("/etc/baton/build.json", build.to_string());
    tb.file("/proc/sys/kernel/osrelease", "6.1.0-test-arm64\n");
    tb.image_disk(IMAGE_END, 444 * 256);
    tb.file("/config/cluster.toml", CLUSTER);
    tb
}

async fn boot_board(tb: &Testbed, services: &FakeServices) -> (Result<(), Error>, Running<String>) {
    let ctx = Arc::new(Ctx::new(
        &tb.ctx.root,
        tb.sys.clone(),
        tb.ctx.console.clone(),
        tb.ctx.state.clone(),
    ));
    let (tx, _rx) = mpsc::channel(1);
    let mut up = Running::default();
    let result = boot(&ctx, services, &tx, &mut up).await;
    (result, up)
}

fn steps(tb: &Testbed) -> Vec<String> {
    tb.state()
        .boot_steps()
        .into_iter()
        .map(|s| s.step)
        .collect()
}

/// Position of the first call starting with `prefix`.
fn at(tb: &Testbed, prefix: &str) -> usize {
    let calls = tb.sys.calls();
    calls
        .iter()
        .position(|c| c.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} in {calls:#?}"))
}

#[tokio::test(start_paused = true)]
async fn boots_in_the_documented_order() {
    let tb = board();
    tb.file(&entropy::seed_path(), [7u8; 512]);
    let (result, up) = boot_board(&tb, &FakeServices::new(&tb)).await;
    result.expect("boots");
    assert_eq!(
        steps(&tb),
        [
            "filesystems",
            "build-info",
            "modules",
            "disk",
            "config",
            "data",
            "hostname",
            "entropy",
            "clock",
            "watchdog",
            "network",
            "api",
            "services"
        ]
    );
    let order = [
        "mount proc proc /proc",
        "mount sysfs sysfs /sys",
        "mount devtmpfs devtmpfs /dev",
        "mount cgroup2 cgroup2 /sys/fs/cgroup",
        "console /dev/console",
        "module /lib/modules/6.1.0-test-arm64/kernel/lib/crc32c_generic.ko",
        "module /lib/modules/6.1.0-test-arm64/kernel/fs/ext4/ext4.ko",
        "mount vfat /dev/vda3 /config uid=0,gid=0,fmask=0077,dmask=0077",
        "mount ext4 /dev/vda4 /data prjquota,resuid=131071,resgid=131071",
        "hostname pi-one",
        "entropy 512 07070707",
        "random 512",
        "net start pi-one",
        "sntp time.lan",
        "api start",
        "containers start (data true)",
    ];
    let positions: Vec<usize> = order.iter().map(|c| at(&tb, c)).collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "{:#?}",
        tb.sys.calls()
    );
    assert_eq!(
        tb.console().iter().filter(|l| *l == "baton: ready").count(),
        1
    );
    assert!(tb.state().errors().is_empty(), "{:?}", tb.state().errors());
    let info = tb.state().info();
    assert_eq!(
        (
            info.board.as_str(),
            info.kernel.as_str(),
            info.hostname.as_str()
        ),
        ("qemu-virt", "6.1.0-test-arm64", "pi-one")
    );
    assert_eq!(info.data.map(|d| d.device), Some("/dev/vda4".to_string()));
    assert!(
        up.config_mounted && up.data_mounted && up.network.is_some() && up.clock_saver.is_some()
    );
}

#[tokio::test(start_paused = true)]
async fn optional_steps_report_and_go_on() {
    let tb = board();
    tb.file(
        "/config/cluster.toml",
        "[api]\ntoken = \"secret-token-1234567\"\n[board]\nhostname = \"-bad-\"\n",
    );
    tb.sys.fail(
        "module /lib/modules/6.1.0-test-arm64/kernel/fs/ext4",
        nix::libc::ENOEXEC,
    );
    tb.sys.fail("mount ext4", nix::libc::EINVAL);
    tb.sys.fail("mount cgroup2", nix::libc::ENODEV);
    let mut services = FakeServices::new(&tb);
    services.fail_network = true;
    let (result, up) = boot_board(&tb, &services).await;
    result.expect("still boots");
    assert!(tb.console().iter().any(|l| l == "baton: ready"));
    let errors = tb.state().errors().join("\n");
    for expected in [
        "ext4.ko",
        "ext4 on /data",
        "cgroup2 on /sys/fs/cgroup",
        "board.hostname",
        "no carrier on eth0",
    ] {
        assert!(errors.contains(expected), "{expected:?} not in:\n{errors}");
    }
    // No data partition: no seed, no clock saving; the token survived the broken file.
    assert!(
        tb.sys.calls_starting("entropy").is_empty() && tb.sys.calls_starting("random").is_empty()
    );
    assert!(!up.data_mounted && up.clock_saver.is_none() && up.network.is_none());
    assert_eq!(tb.state().token().as_deref(), Some("secret-token-1234567"));
    assert!(tb.state().info().hostname.starts_with("baton"));
}

#[tokio::test(start_paused = true)]
async fn a_missing_build_json_is_fatal() {
    let tb = board();
    std::fs::remove_file(tb.ctx.path("/etc/baton/build.json")).expect("remove");
    let (result, _) = boot_board(&tb, &FakeServices::new(&tb)).await;
    let err = result.expect_err("fatal");
    assert!(err.to_string().contains("/etc/baton/build.json"), "{err}");
    assert_eq!(steps(&tb), ["filesystems"]);
    assert!(!tb.console().iter().any(|l| l == "baton: ready"));
}

#[tokio::test(start_paused = true)]
async fn a_missing_proc_is_fatal_but_a_missing_shm_is_not() {
    let tb = board();
    tb.sys.fail("mount tmpfs tmpfs /dev/shm", nix::libc::ENOMEM);
    let (result, _) = boot_board(&tb, &FakeServices::new(&tb)).await;
    result.expect("boots without /dev/shm");
    let tb = board();
    tb.sys.fail("mount proc", nix::libc::ENODEV);
    let (result, _) = boot_board(&tb, &FakeServices::new(&tb)).await;
    assert!(matches!(result, Err(Error::Filesystems(_))));
}

#[tokio::test(start_paused = true)]
async fn a_missing_boot_disk_is_fatal_and_names_the_disks_seen() {
    let tb = board();
    tb.file(
        "/etc/baton/build.json",
        std::fs::read_to_string(tb.ctx.path("/etc/baton/build.json"))
            .expect("read")
            .replace(&DISK_ID.to_string(), "42"),
    );
    let (result, _) = boot_board(&tb, &FakeServices::new(&tb)).await;
    let err = result.expect_err("fatal").to_string();
    assert!(
        err.contains("0x0000002a") && err.contains("vda (signature 0xb4700001)"),
        "{err}"
    );
}

#[tokio::test(start_paused = true)]
async fn an_api_that_cannot_start_is_fatal() {
    let tb = board();
    let mut services = FakeServices::new(&tb);
    services.fail_api = true;
    let (result, _) = boot_board(&tb, &services).await;
    let err = result.expect_err("fatal");
    assert!(err.to_string().contains("cannot start the API"));
    assert!(err.source().is_some());
}

async fn live(tb: &Testbed, services: &FakeServices, request: Option<Action>) {
    let ctx = Arc::new(Ctx::new(
        &tb.ctx.root,
        tb.sys.clone(),
        tb.ctx.console.clone(),
        tb.ctx.state.clone(),
    ));
    let (tx, rx) = mpsc::channel(1);
    if let Some(action) = request {
        tx.send(action).await.expect("queued");
    }
    lifecycle::life(&ctx, services, None, Some((tx, rx)))
        .await
        .expect("fake reboot returns");
}

#[tokio::test(start_paused = true)]
async fn a_power_request_shuts_down_cleanly() {
    let tb = board();
    tb.file(crate::boot::watchdog::DEVICE, "");
    tb.sys
        .set_now(std::time::UNIX_EPOCH + Duration::from_secs(1_800_000_000));
    tb.sys.queue_reaps([
        crate::board::sys::Reaped::NoChildren,
        crate::board::sys::Reaped::Running,
        crate::board::sys::Reaped::Exited {
            pid: 9,
            status: "exit 0".into(),
        },
    ]);
    tb.sys.fail("unmount /config", nix::libc::EBUSY);
    live(&tb, &FakeServices::new(&tb), Some(Action::Poweroff)).await;
    let order = [
        "net stop net",
        "kill-all Terminate",
        "sync",
        "unmount /data",
        "remount-ro /config",
        "watchdog disarm",
        "reboot Poweroff",
    ];
    let shutdown_start = at(&tb, "net stop");
    let calls = tb.sys.calls()[shutdown_start..].to_vec();
    let positions: Vec<usize> = order
        .iter()
        .map(|c| {
            calls
                .iter()
                .position(|x| x.starts_with(c))
                .unwrap_or(usize::MAX)
        })
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]) && positions[6] != usize::MAX,
        "{calls:#?}"
    );
    assert!(
        calls.iter().all(|c| c != "kill-all Kill"),
        "everyone left after SIGTERM: {calls:#?}"
    );
    assert_eq!(tb.read(&clock::saved_path()), b"1800000000\n");
    assert!(tb
        .console()
        .iter()
        .any(|l| l == "baton: shutdown: power off now"));
}

#[tokio::test(start_paused = true)]
async fn stragglers_get_sigkill() {
    let tb = board();
    tb.sys.queue_reaps(std::iter::repeat_n(
        crate::board::sys::Reaped::Running,
        10_000,
    ));
    live(&tb, &FakeServices::new(&tb), Some(Action::Reboot)).await;
    let kills = tb.sys.calls_starting("kill-all");
    assert_eq!(kills, ["kill-all Terminate", "kill-all Kill"]);
    assert_eq!(
        tb.sys.calls().last().map(String::as_str),
        Some("reboot Reboot")
    );
}

#[tokio::test(start_paused = true)]
async fn a_fatal_error_reboots_after_the_delay() {
    let tb = board();
    tb.file("/proc/cmdline", "console=ttyAMA0 baton.fatal_delay=3\n");
    std::fs::remove_file(tb.ctx.path("/etc/baton/build.json")).expect("remove");
    let started = tokio::time::Instant::now();
    live(&tb, &FakeServices::new(&tb), None).await;
    assert!(started.elapsed() >= Duration::from_secs(3));
    assert!(tb
        .console()
        .iter()
        .any(|l| l.starts_with("baton: fatal: cannot read /etc/baton/build.json")));
    assert_eq!(
        tb.sys.calls().last().map(String::as_str),
        Some("reboot Reboot")
    );
    // Nothing of ours was mounted, so nothing is unmounted.
    assert!(tb.sys.calls_starting("unmount").is_empty());
}
