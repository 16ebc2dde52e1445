//! The boot sequence, as one flat function, and its steps.

pub mod build_info;
pub mod clock;
pub mod config;
pub mod data;
pub mod disk;
pub mod entropy;
pub mod hostname;
pub mod limits;
pub mod modules;
pub mod mounts;
pub mod rootfs_switch;
pub mod services;
#[cfg(test)]
pub(crate) mod testbed;
pub mod watchdog;

use std::sync::Arc;
use std::time::Instant;

use baton_spec::build_info::partition;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::board::cgroups;
use crate::board::context::Ctx;
use crate::board::sys::Action;
use disk::BootDisk;
use services::{Services, StartError};
use watchdog::Watchdog;

/// Errors that stop the boot (the board then reboots after a delay).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A required pseudo file system could not be mounted.
    #[error(transparent)]
    Filesystems(#[from] mounts::Error),
    /// `build.json` is missing or broken: the image is unusable.
    #[error(transparent)]
    BuildInfo(#[from] build_info::Error),
    /// The boot disk did not show up.
    #[error(transparent)]
    Disk(#[from] disk::Error),
    /// The API could not start: without it nobody can manage the board.
    #[error("cannot start the API: {0}")]
    Api(#[source] StartError),
}

/// What the boot sequence brought up, so shutdown can take it down again. Filled in step by
/// step, so a failed boot shuts down exactly what it started.
pub struct Running<N> {
    /// The boot disk.
    pub disk: Option<BootDisk>,
    /// Whether `/config` is mounted.
    pub config_mounted: bool,
    /// Whether `/data` is mounted (and so whether state can be saved).
    pub data_mounted: bool,
    /// The armed watchdog.
    pub watchdog: Option<Watchdog>,
    /// The running network.
    pub network: Option<N>,
    /// The task that saves the clock periodically.
    pub clock_saver: Option<JoinHandle<()>>,
}

impl<N> Default for Running<N> {
    fn default() -> Self {
        Running {
            disk: None,
            config_mounted: false,
            data_mounted: false,
            watchdog: None,
            network: None,
            clock_saver: None,
        }
    }
}

fn done(ctx: &Ctx, step: &str, started: Instant) {
    ctx.state.record_step(step, started.elapsed());
}

/// Boots the board. Each step is timed into the board state under the name in backquotes.
/// Fatal steps return the error; optional ones report it (console and API) and go on.
///
///  1. `filesystems` (fatal): /proc, /sys, /dev, /dev/pts, /dev/shm, /run, /tmp and cgroup2 at
///     /sys/fs/cgroup (pts, shm and cgroup2 optional); /dev/console becomes fds 0-2;
///     Ctrl-Alt-Del becomes SIGINT; the cgroup tree ([`cgroups`]) with PID 1 in `system`;
///     first of all the open-file limit is raised to [`limits::OPEN_FILES`].
///  2. `build-info` (fatal): read /etc/baton/build.json.
///  3. `modules`: load the kernel modules in order.
///  4. `disk` (fatal): find the boot disk by MBR signature, waiting up to 15 s.
///  5. `config`: mount the config partition at /config, read cluster.toml; defaults if broken.
///  6. `data`: grow the data partition on first boot and mount it at /data. Without it the
///     board still runs and answers the API, but saves nothing (no clock, no seed).
///  7. `hostname`: configured, else from the serial number or MAC.
///  8. `entropy`: credit the saved seed, write a fresh one (needs /data).
///  9. `clock`: move the clock forward to the saved or build time; save it every 15 minutes.
/// 10. `watchdog`: arm /dev/watchdog if there is one.
/// 11. `network`: bring up networking, then start SNTP.
/// 12. `api` (fatal): start the HTTP API.
/// 13. `services`: start the supervisor and the services on the config partition; then print
///     `baton: ready`.
pub async fn boot<S: Services>(
    ctx: &Arc<Ctx>,
    services: &S,
    power: &mpsc::Sender<Action>,
    up: &mut Running<S::Network>,
) -> Result<(), Error> {
    let t = Instant::now();
    // Before anything opens files: the default 1,024 is less than the API's connection cap.
    if let Err(e) = limits::raise_open_files(limits::OPEN_FILES) {
        ctx.report(format_args!("cannot raise the open-file limit: {e}"));
    }
    mounts::mount_pseudo(ctx)?;
    if let Err(e) = ctx.sys.disable_ctrl_alt_del() {
        ctx.report(format_args!("cannot route Ctrl-Alt-Del to init: {e}"));
    }
    match cgroups::setup(&ctx.root) {
        Ok(Some(tree)) => ctx.say(format_args!(
            "cgroups: containers may use {} MiB together; {} MiB kept for the system",
            (tree.total - tree.reserve) >> 20,
            tree.reserve >> 20
        )),
        Ok(None) => {}
        Err(e) => ctx.report(e),
    }
    done(ctx, "filesystems", t);

    let t = Instant::now();
    let build = build_info::read(ctx)?;
    let kernel = std::fs::read_to_string(ctx.path("/proc/sys/kernel/osrelease"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| build.kernel_release.clone());
    ctx.state.update_info(|i| {
        i.board = build.board.clone();
        i.kernel = kernel;
    });
    ctx.say(format_args!(
        "board {}, image by baton {}",
        build.board, build.baton_version
    ));
    done(ctx, "build-info", t);

    let t = Instant::now();
    for e in modules::load_all(ctx, &build) {
        ctx.report(e);
    }
    done(ctx, "modules", t);

    let t = Instant::now();
    let needed = [partition::CONFIG, partition::DATA];
    let disk = disk::find(ctx, build.disk_id, &needed, disk::DEFAULT_DEADLINE).await?;
    ctx.say(format_args!("boot disk /dev/{}", disk.name));
    up.disk = Some(disk.clone());
    done(ctx, "disk", t);

    let t = Instant::now();
    let config = match config::mount(ctx, &disk) {
        Ok(()) => {
            up.config_mounted = true;
            config::load(ctx)
        }
        Err(e) => {
            // Nothing to read the token from: the API refuses authenticated requests.
            ctx.report(e);
            config::BootConfig::default()
        }
    };
    done(ctx, "config", t);

    let t = Instant::now();
    match data::prepare(ctx, &disk) {
        Ok(d) => {
            up.data_mounted = true;
            ctx.say(format_args!(
                "data: {} mounted, {} MiB",
                d.device,
                d.size_bytes >> 20
            ));
            ctx.state.update_info(|i| i.data = Some(d));
        }
        Err(e) => {
            ctx.report(e);
            ctx.say("data: not mounted; running without persistence");
        }
    }
    done(ctx, "data", t);

    let t = Instant::now();
    let (host, result) = hostname::set(ctx, config.hostname.as_deref());
    if let Err(e) = result {
        ctx.report(e);
    }
    ctx.say(format_args!("hostname {host}"));
    done(ctx, "hostname", t);

    let t = Instant::now();
    if up.data_mounted {
        let (_, errors) = entropy::seed(ctx);
        errors.into_iter().for_each(|e| ctx.report(e));
    }
    done(ctx, "entropy", t);

    let t = Instant::now();
    // Without /data only the build time is known; an old saved time never moves the clock back.
    if let Err(e) = clock::restore(ctx, build_info::built_at(ctx)) {
        ctx.report(e);
    }
    if up.data_mounted {
        up.clock_saver = Some(tokio::spawn(clock::save_periodically(Arc::clone(ctx))));
    }
    done(ctx, "clock", t);

    let t = Instant::now();
    match watchdog::open(ctx) {
        Ok(w) => up.watchdog = w,
        Err(e) => ctx.report(e),
    }
    done(ctx, "watchdog", t);

    let t = Instant::now();
    match services.start_network(ctx, &config.network, &host).await {
        Ok(network) => {
            services.start_time_sync(ctx, config.time_servers.clone(), &network);
            up.network = Some(network);
        }
        Err(e) => ctx.report(format_args!("network: {e}")),
    }
    done(ctx, "network", t);

    let t = Instant::now();
    services
        .start_api(ctx, &config, power.clone())
        .map_err(Error::Api)?;
    done(ctx, "api", t);

    let t = Instant::now();
    services
        .start_containers(ctx, up.data_mounted, &config, power)
        .await;
    done(ctx, "services", t);

    ctx.say("ready");
    Ok(())
}

#[cfg(test)]
mod tests;
