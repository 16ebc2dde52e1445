//! A lab: N boards booted from one image, each on its own copy-on-write disk, with port
//! forwards on the host's loopback and (for N > 1, or with a LAN station) a shared L2 segment
//! between them, on which the host can be one more station ([`crate::station`], as root).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::board::{lock, Board};
use crate::command::{BoardCommand, SegmentLink};
use crate::console::{Console, ConsoleError};
use crate::disk::{self, DiskError};
use crate::hub::{CapturedFrame, Hub, HubError, PortStats, StationLink, StationStats};
use crate::image::{self, BootFiles, ImageError};
use crate::ports::{self, Forward, GuestForward, PortError};
use crate::process::{Launcher, ProcessError, QemuProcess, Spawn};
use crate::station::{Station, StationError};

/// Most boards one lab may have (MAC addresses carry the board number in one byte, and
/// each board costs about 200 MB of memory).
pub const MAX_BOARDS: usize = 64;

/// What went wrong with a lab. Wraps the module errors, which name the board, file or port.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// A board count of 0 or above [`MAX_BOARDS`].
    #[error("a lab needs 1 to {MAX_BOARDS} boards, not {0}")]
    BoardCount(usize),
    /// The work or serial directory could not be created.
    #[error("cannot create directory {path}: {source}")]
    Dir {
        /// Directory path.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// A board number that does not exist.
    #[error("there is no board {board} (boards are 1 to {boards})")]
    NoSuchBoard {
        /// Board asked for.
        board: usize,
        /// Number of boards.
        boards: usize,
    },
    /// The image's machine has no network, and the lab was asked for one.
    #[error(
        "{machine} has no network in QEMU: it boots one board, without forwards or a LAN station"
    )]
    NoNetwork {
        /// The machine.
        machine: &'static str,
    },
    /// A single board has no shared segment to cut or inspect.
    #[error("the lab has a single board and so no shared segment")]
    NoSegment,
    /// The lab was started without a LAN station.
    #[error("the lab has no LAN station (set LabConfig::station, as root)")]
    NoStation,
    /// QEMU stopped while a caller waited on its console.
    #[error("board {board}: QEMU exited ({status}) while waiting for a serial line {pattern}; QEMU's stderr: {stderr}")]
    Exited {
        /// Board number.
        board: usize,
        /// Exit status, in words.
        status: String,
        /// What was waited for.
        pattern: String,
        /// QEMU's stderr.
        stderr: String,
    },
    /// Reading the image failed.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// The LAN station could not be made.
    #[error(transparent)]
    Station(#[from] StationError),
    /// A port forward is invalid or its host port is taken.
    #[error(transparent)]
    Port(#[from] PortError),
    /// A board disk could not be made.
    #[error(transparent)]
    Disk(#[from] DiskError),
    /// The shared segment could not be set up.
    #[error(transparent)]
    Hub(#[from] HubError),
    /// QEMU could not be started or stopped early.
    #[error(transparent)]
    Process(#[from] ProcessError),
    /// A console could not be set up, or a wait timed out.
    #[error(transparent)]
    Console(#[from] ConsoleError),
}

/// How to run a lab. [`LabConfig::new`] gives the defaults; set fields to change them.
#[derive(Debug, Clone)]
pub struct LabConfig {
    /// The raw disk image built by `baton image build`. Only read, never written.
    pub image: PathBuf,
    /// Number of boards (default 1).
    pub boards: usize,
    /// Port forwards; board `i` gets host port `host + i - 1` (see [`crate::ports`]).
    pub forwards: Vec<Forward>,
    /// Other images for some boards, by board number (1-based): built for the same kind of board,
    /// with another config partition (another cluster key, say) or another init (a previous
    /// release's). Each such board boots its own image's kernel and initramfs. Default none.
    pub board_images: Vec<(usize, PathBuf)>,
    /// Connections from every board to the host's loopback (default none).
    pub guest_forwards: Vec<GuestForward>,
    /// Where `board<N>.log` files go (default: the work directory).
    pub serial_dir: Option<PathBuf>,
    /// Where disks, sockets and extracted boot files go (default: a fresh temporary directory,
    /// removed when the lab is dropped). Unix socket paths must stay under 108 bytes.
    pub work_dir: Option<PathBuf>,
    /// Memory per board in MiB (default 512; `virt` only).
    pub memory_mib: u32,
    /// CPUs per board (default 2; `virt` only).
    pub cpus: u32,
    /// Size of each board's disk in bytes, rounded up to a power of two (default: twice the
    /// image, at least 1 GiB). Must exceed the image.
    pub disk_size: Option<u64>,
    /// Echo every serial line to stdout as `[boardN] line` (default off).
    pub echo: bool,
    /// Record every frame on the shared segment to this pcap file (default none).
    pub capture: Option<PathBuf>,
    /// Put the host on the shared segment as a LAN station (default off; needs root; see
    /// [`crate::station`]). With one board, the board then gets a segment NIC too.
    pub station: bool,
    /// Kernel arguments appended to the image's `cmdline.txt` (default none).
    pub extra_append: Option<String>,
    /// The QEMU binary (default `qemu-system-aarch64` from `PATH`).
    pub qemu: PathBuf,
    /// The `qemu-img` binary (default `qemu-img` from `PATH`).
    pub qemu_img: PathBuf,
    /// How long one QEMU may take to come up, not counting the guest's boot (default 30 s).
    pub start_timeout: Duration,
}

impl LabConfig {
    /// One board from `image`, everything else at its default.
    pub fn new(image: impl Into<PathBuf>) -> LabConfig {
        LabConfig {
            image: image.into(),
            boards: 1,
            forwards: Vec::new(),
            guest_forwards: Vec::new(),
            board_images: Vec::new(),
            serial_dir: None,
            work_dir: None,
            memory_mib: 512,
            cpus: 2,
            disk_size: None,
            echo: false,
            capture: None,
            station: false,
            extra_append: None,
            qemu: PathBuf::from("qemu-system-aarch64"),
            qemu_img: PathBuf::from("qemu-img"),
            start_timeout: Duration::from_secs(30),
        }
    }
}

enum WorkDir {
    Temp(tempfile::TempDir),
    Given(PathBuf),
}

impl WorkDir {
    fn path(&self) -> &Path {
        match self {
            WorkDir::Temp(t) => t.path(),
            WorkDir::Given(p) => p,
        }
    }
}

/// Running boards. Dropping the lab kills every QEMU it started (and only those).
pub struct Lab {
    boards: Vec<Board>,
    hub: Option<Hub>,
    station: Option<Station>,
    boot: BootFiles,
    /// The boot files of the boards in [`LabConfig::board_images`], by board number.
    own_boots: Vec<(usize, BootFiles)>,
    config: LabConfig,
    launcher: Launcher,
    work: WorkDir,
}

fn mkdir(path: &Path) -> Result<(), LabError> {
    std::fs::create_dir_all(path).map_err(|source| LabError::Dir {
        path: path.to_path_buf(),
        source,
    })
}

impl Lab {
    /// Reads the image, makes each board's disk and console, and starts every board. Returns
    /// once every QEMU is up (its devices and port forwards exist); the guests boot on from
    /// there, so wait for a serial line before talking to them.
    pub fn start(config: LabConfig) -> Result<Lab, LabError> {
        let n = config.boards;
        if n == 0 || n > MAX_BOARDS {
            return Err(LabError::BoardCount(n));
        }
        let plan = ports::plan(&config.forwards, n)?;
        ports::check_guest_forwards(&config.guest_forwards)?;
        for (i, forwards) in plan.iter().enumerate() {
            for f in forwards {
                ports::check_free(f.host, i + 1)?;
            }
        }
        let work = match &config.work_dir {
            Some(p) => {
                mkdir(p)?;
                WorkDir::Given(p.clone())
            }
            None => WorkDir::Temp(
                tempfile::Builder::new()
                    .prefix("baton-qemu-")
                    .tempdir()
                    .map_err(|source| LabError::Dir {
                        path: std::env::temp_dir(),
                        source,
                    })?,
            ),
        };
        let dir = work.path().to_path_buf();
        let boot_dir = dir.join("boot");
        mkdir(&boot_dir)?;
        let boot = image::extract(&config.image, &boot_dir)?;
        let wants_network = n > 1
            || config.station
            || !config.forwards.is_empty()
            || !config.guest_forwards.is_empty();
        if wants_network && !boot.machine.has_network() {
            return Err(LabError::NoNetwork {
                machine: boot.machine.qemu_name(),
            });
        }
        let size = disk::overlay_size(&boot.image, boot.image_size, config.disk_size)?;
        let mut own_boots = Vec::with_capacity(config.board_images.len());
        for (board, path) in &config.board_images {
            let own_dir = boot_dir.join(format!("board{board}"));
            mkdir(&own_dir)?;
            own_boots.push((*board, image::extract(path, &own_dir)?));
        }
        let serial_dir = config.serial_dir.clone().unwrap_or_else(|| dir.clone());
        mkdir(&serial_dir)?;
        let (station, tap) = match config.station {
            true => {
                let (station, tap) = Station::create()?;
                (Some(station), Some(Box::new(tap) as Box<dyn StationLink>))
            }
            false => (None, None),
        };
        let hub = match (n, tap) {
            (1, None) => None,
            (_, tap) => Some(Hub::start_with_station(
                &dir,
                n,
                config.capture.as_deref(),
                tap,
            )?),
        };
        let mut boards = Vec::with_capacity(n);
        for (i, forwards) in (1..=n).zip(plan) {
            let disk = dir.join(format!("board{i}.qcow2"));
            let backing = own_boots
                .iter()
                .find(|(board, _)| *board == i)
                .map_or_else(|| boot.image.clone(), |(_, own)| own.image.clone());
            disk::create_overlay(&config.qemu_img, &backing, &disk, size)?;
            let log = serial_dir.join(format!("board{i}.log"));
            let console = Arc::new(Console::new(i, &log, config.echo)?);
            boards.push(Board::new(
                i,
                console,
                forwards,
                disk,
                dir.join(format!("q{i}.sock")),
            ));
        }
        let launcher = Launcher::start()?;
        let lab = Lab {
            boards,
            hub,
            station,
            boot,
            own_boots,
            config,
            launcher,
            work,
        };
        for board in &lab.boards {
            // On error the lab is dropped here, which kills the boards already started.
            let process = lab.spawn(board)?;
            *lock(&board.process) = Some(process);
        }
        Ok(lab)
    }

    fn spawn(&self, board: &Board) -> Result<QemuProcess, LabError> {
        let i = board.index();
        let segment = match &self.hub {
            Some(hub) => {
                let link = SegmentLink {
                    board: hub.board_path(i)?,
                    hub: hub.hub_path(i)?,
                };
                // QEMU binds the board end itself and fails if a previous run left it behind.
                let _ = std::fs::remove_file(link.board);
                Some(link)
            }
            None => None,
        };
        let args = BoardCommand {
            boot: self.boot_of(i),
            index: i,
            disk: board.disk(),
            memory_mib: self.config.memory_mib,
            cpus: self.config.cpus,
            forwards: board.forwards(),
            guest_forwards: &self.config.guest_forwards,
            segment,
            qmp: &board.qmp,
            extra_append: self.config.extra_append.as_deref(),
        }
        .args();
        let spec = Spawn {
            board: i,
            program: &self.config.qemu,
            args: &args,
            qmp: &board.qmp,
            timeout: self.config.start_timeout,
        };
        Ok(QemuProcess::start(&self.launcher, spec, &board.console)?)
    }

    /// All boards; board `N` is element `N - 1`.
    pub fn boards(&self) -> &[Board] {
        &self.boards
    }

    /// Board `board` (1-based).
    pub fn board(&self, board: usize) -> Result<&Board, LabError> {
        board
            .checked_sub(1)
            .and_then(|i| self.boards.get(i))
            .ok_or(LabError::NoSuchBoard {
                board,
                boards: self.boards.len(),
            })
    }

    /// What was read from the image (board name, machine, kernel command line).
    pub fn boot_files(&self) -> &BootFiles {
        &self.boot
    }

    /// The boot files board `index` boots: its own image's, or [`Lab::boot_files`].
    fn boot_of(&self, index: usize) -> &BootFiles {
        self.own_boots
            .iter()
            .find(|(board, _)| *board == index)
            .map_or(&self.boot, |(_, own)| own)
    }

    /// The host's station on the shared segment, if the lab was started with one
    /// ([`LabConfig::station`]): run code there to reach boards by their own addresses.
    pub fn station(&self) -> Result<&Station, LabError> {
        self.station.as_ref().ok_or(LabError::NoStation)
    }

    /// Frame counters of the LAN station's port on the shared segment.
    pub fn station_stats(&self) -> Result<StationStats, LabError> {
        self.hub
            .as_ref()
            .and_then(Hub::station_stats)
            .ok_or(LabError::NoStation)
    }

    /// The boards' name for their NIC on the shared segment (`eth1` on `virt`), if there is
    /// a segment; the runner tells the boards on their kernel command line.
    pub fn segment_interface(&self) -> Option<&'static str> {
        self.hub
            .as_ref()
            .map(|_| crate::command::segment_interface(self.boot.machine))
    }

    /// The work directory (disks, sockets, extracted boot files).
    pub fn work_dir(&self) -> &Path {
        self.work.path()
    }

    /// Cuts power to a board: SIGKILL to its QEMU, which is then reaped. Its disk keeps what
    /// the guest had written. Does nothing if the board is not running.
    pub fn kill(&self, board: usize) -> Result<(), LabError> {
        let b = self.board(board)?;
        if let Some(p) = lock(&b.process).as_mut() {
            p.kill();
        }
        Ok(())
    }

    /// Starts a board again on the same disk (killing it first if it runs). Its console keeps
    /// the earlier lines; [`Console::run_start`] marks where the new run begins.
    pub fn restart(&self, board: usize) -> Result<(), LabError> {
        let b = self.board(board)?;
        let mut slot = lock(&b.process);
        if let Some(mut old) = slot.take() {
            old.kill();
        }
        *slot = Some(self.spawn(b)?);
        Ok(())
    }

    /// Kills every board that still runs. Also done on drop.
    pub fn shutdown_all(&self) {
        for b in &self.boards {
            if let Some(p) = lock(&b.process).as_mut() {
                p.kill();
            }
        }
    }

    /// Plugs a board into the shared segment or pulls its cable (see [`Hub::set_link`]).
    pub fn set_link(&self, board: usize, up: bool) -> Result<(), LabError> {
        self.board(board)?;
        Ok(self
            .hub
            .as_ref()
            .ok_or(LabError::NoSegment)?
            .set_link(board, up)?)
    }

    /// Frame counters of a board's port on the shared segment.
    pub fn segment_stats(&self, board: usize) -> Result<PortStats, LabError> {
        self.board(board)?;
        Ok(self.hub.as_ref().ok_or(LabError::NoSegment)?.stats(board)?)
    }

    /// Puts a raw Ethernet frame (no FCS) on the shared segment as if from one more station,
    /// to every board whose link is up (and the LAN station): for tests that play a hostile
    /// peer (replay a captured frame, send garbage to a port; build frames with
    /// [`crate::packet`]). Counted apart from the boards' frames (see [`Hub::inject`]);
    /// [`Lab::frames`] shows it as
    /// [`FrameSource::Injected`](crate::hub::FrameSource::Injected).
    pub fn inject(&self, frame: &[u8]) -> Result<(), LabError> {
        self.hub
            .as_ref()
            .ok_or(LabError::NoSegment)?
            .inject(frame)?;
        Ok(())
    }

    /// The recent frames on the shared segment, oldest first, with who sent each and who got
    /// it: at most the last [`RING_FRAMES`](crate::hub::RING_FRAMES) frames or
    /// [`RING_BYTES`](crate::hub::RING_BYTES) bytes of them, whichever is less. Empty for a
    /// single board, which has no segment.
    pub fn frames(&self) -> Vec<CapturedFrame> {
        self.frames_since(0)
    }

    /// Like [`Lab::frames`], only those with [`CapturedFrame::seq`] at least `seq`: poll
    /// with the last seen `seq + 1` to get new frames only.
    pub fn frames_since(&self, seq: u64) -> Vec<CapturedFrame> {
        self.hub
            .as_ref()
            .map(|hub| hub.frames_since(seq))
            .unwrap_or_default()
    }

    /// Blocks until `stop` is set (for example by a SIGINT handler) or no board runs any more,
    /// checking ten times a second. The CLI's run loop: `signal_hook::flag::register(SIGINT,
    /// stop)`, then `run_until(&stop)`, then drop the lab.
    pub fn run_until(&self, stop: &AtomicBool) {
        while !stop.load(Ordering::SeqCst) && self.boards.iter().any(Board::is_running) {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.shutdown_all();
    }
}

impl std::fmt::Debug for Lab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lab")
            .field("boards", &self.boards)
            .field("work_dir", &self.work.path())
            .field("boot", &self.boot)
            .finish_non_exhaustive()
    }
}
