//! Command-line parsing and dispatch for `baton`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// baton: build, inspect and boot baton images; talk to boards.
#[derive(Debug, Parser)]
#[command(name = "baton", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build and inspect SD-card images.
    #[command(subcommand)]
    Image(ImageCommand),
    /// Boot images under qemu-system-aarch64.
    #[command(subcommand)]
    Qemu(QemuCommand),
    /// Work with OCI images.
    #[command(subcommand)]
    Oci(OciCommand),
    /// Show a board's status and its cluster.
    Status(StatusArgs),
    /// Find boards on the LAN by mDNS; `boards forget NAME` makes a board forget one.
    Boards(BoardsCliArgs),
    /// List services and their instances.
    Ps(BoardArgs),
    /// Show a service's logs.
    Logs(LogsArgs),
    /// Show what happened in the cluster: boards, instances, specs, scaling decisions.
    Events(EventsArgs),
    /// A live view of the boards and the instances: CPU, memory, data partition, restarts.
    Top(BoardArgs),
    /// Show the most recent lines of a board's console.
    Console(ConsoleArgs),
    /// Apply a service spec (create or change the service).
    Apply(ApplyArgs),
    /// Stop and remove a service.
    Rm(RmArgs),
    /// Show a service's network policy: its address, whom it may call, who may call it.
    Policy(RmArgs),
    /// Show the routes of the front door: hosts, paths, identity checks, instances, counts.
    Routes(RoutesArgs),
}

/// Which board to talk to.
#[derive(Debug, Args)]
struct BoardArgs {
    /// Board API URL, e.g. https://192.168.1.20:7070 (https:// when no scheme is given;
    /// http:// only for boards whose cards have no cluster CA).
    #[arg(long, env = "BATON_BOARD")]
    board: String,
    /// API token.
    #[arg(long, env = "BATON_TOKEN", hide_env_values = true)]
    token: String,
    /// The cluster CA's certificate to trust the board by (default: ca.pem in the builder's
    /// copy for the cluster, $XDG_CONFIG_HOME/baton/<cluster>/).
    #[arg(long, env = "BATON_CA")]
    ca: Option<PathBuf>,
    /// The cluster whose CA the builder kept (with no --ca).
    #[arg(long, env = "BATON_CLUSTER", default_value = "baton")]
    cluster: String,
}

impl BoardArgs {
    fn client(&self) -> anyhow::Result<crate::client::Client> {
        self.client_for(&self.board)
    }

    /// A client for the board at `board` (a URL or an address) with this token and CA.
    fn client_for(&self, board: &str) -> anyhow::Result<crate::client::Client> {
        let url = if board.contains("://") {
            board.to_string()
        } else {
            format!("https://{board}")
        };
        if url.starts_with("http://") {
            return Ok(crate::client::Client::new(&url, &self.token));
        }
        let ca = match &self.ca {
            Some(file) => file.clone(),
            None => crate::cluster_ca::default_user_dir()
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "no config directory: set XDG_CONFIG_HOME or HOME, or give --ca"
                    )
                })?
                .join(&self.cluster)
                .join(baton_cluster::tls::CA_CERT_FILE),
        };
        let pem = std::fs::read_to_string(&ca).map_err(|e| {
            anyhow::anyhow!(
                "cluster CA {}: {e} (give --ca FILE or BATON_CA, or --cluster NAME for the CA `baton image build` kept)",
                ca.display()
            )
        })?;
        Ok(crate::client::Client::with_ca(&url, &self.token, &pem)?)
    }
}

/// Arguments of `baton logs`.
#[derive(Debug, Args)]
struct LogsArgs {
    #[command(flatten)]
    board: BoardArgs,
    /// The service.
    name: String,
    /// Keep printing new lines.
    #[arg(short, long)]
    follow: bool,
    /// Lines of history to print first.
    #[arg(long, default_value_t = 100)]
    tail: usize,
    /// Only the instances on the board asked (the default is every board's, each line
    /// prefixed with its instance and board).
    #[arg(long)]
    here: bool,
}

/// Arguments of `baton events`.
#[derive(Debug, Args)]
struct EventsArgs {
    #[command(flatten)]
    board: BoardArgs,
    /// Keep printing new events.
    #[arg(short, long)]
    follow: bool,
    /// Events of history to print first.
    #[arg(long, default_value_t = 100)]
    tail: usize,
    /// Print each event as its JSON.
    #[arg(long)]
    json: bool,
}

/// Arguments of `baton console`.
#[derive(Debug, Args)]
struct ConsoleArgs {
    #[command(flatten)]
    board: BoardArgs,
    /// How many of the most recent lines to print.
    #[arg(long, default_value_t = 100)]
    tail: usize,
}

/// Arguments of `baton apply`.
#[derive(Debug, Args)]
struct ApplyArgs {
    #[command(flatten)]
    board: BoardArgs,
    /// The spec file; the service is named after its stem (web.toml is service web).
    file: PathBuf,
}

/// Arguments of `baton rm`.
#[derive(Debug, Args)]
struct RmArgs {
    #[command(flatten)]
    board: BoardArgs,
    /// The service.
    name: String,
}

#[derive(Debug, Subcommand)]
enum OciCommand {
    /// Package a static linux/arm64 binary as an OCI image archive (oci-archive).
    Pack(PackArgs),
}

/// Arguments of `baton oci pack`.
#[derive(Debug, Args)]
struct PackArgs {
    /// The static binary.
    #[arg(long)]
    binary: PathBuf,
    /// Its path inside the image, also the entrypoint.
    #[arg(long)]
    path: String,
    /// Default environment, NAME=value (repeatable).
    #[arg(long = "env", value_name = "NAME=VALUE")]
    env: Vec<String>,
    /// TCP port the program listens on (recorded as exposed).
    #[arg(long)]
    port: Option<u16>,
    /// Name recorded in the archive's index.
    #[arg(long)]
    tag: Option<String>,
    /// Archive to write.
    #[arg(long)]
    output: PathBuf,
}

#[derive(Debug, Subcommand)]
enum ImageCommand {
    /// Write an SD-card image for a board.
    Build(BuildArgs),
    /// Show an image's partitions, board, package versions and config files.
    Inspect(InspectArgs),
    /// Write an image to an SD card: the card is checked (not mounted, not the system disk,
    /// removable, large enough), written with progress, synced and read back.
    Flash(FlashArgs),
}

/// Arguments of `baton image build`.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Board to build for (a file in board-configs/, e.g. qemu-virt, pi3b, pi4b).
    #[arg(long)]
    pub board: String,
    /// Directory copied onto the BATON-CFG partition (cluster.toml, services/, images/).
    #[arg(long)]
    pub config: PathBuf,
    /// Image file to write.
    #[arg(long)]
    pub output: PathBuf,
    /// Build from the package cache alone; never use the network.
    #[arg(long)]
    pub offline: bool,
    /// Lock file recording package versions and checksums.
    #[arg(long, default_value = "baton.lock")]
    pub lock: PathBuf,
    /// Re-resolve packages to the archive's current versions instead of the locked ones.
    #[arg(long)]
    pub update: bool,
    /// The board's init binary (default: target/aarch64-unknown-linux-musl/board/baton-init
    /// next to this executable's build tree, or $BATON_INIT).
    #[arg(long)]
    pub init: Option<PathBuf>,
    /// Package cache directory (default: $XDG_CACHE_HOME/baton or ~/.cache/baton).
    #[arg(long)]
    pub cache: Option<PathBuf>,
    /// Directory of board configs (default: the repository's board-configs/, else built-in copies).
    #[arg(long)]
    pub board_configs: Option<PathBuf>,
    /// Debian archive base URL.
    #[arg(long, default_value = "http://deb.debian.org/debian")]
    pub mirror: String,
    /// Bake an OCI image into the data partition's image store (repeatable): REF=ARCHIVE
    /// stores the oci-archive or docker-archive tar ARCHIVE under the registry reference REF
    /// that specs name (e.g. registry.lan/web:2); ARCHIVE alone uses the one name the archive
    /// carries. Images must be linux/arm64.
    #[arg(long = "image", value_name = "REF=ARCHIVE")]
    pub images: Vec<String>,
}

/// Arguments of `baton image flash`.
#[derive(Debug, Args)]
struct FlashArgs {
    /// Image file (from `baton image build`).
    image: PathBuf,
    /// The card's device (`/dev/sdb`, `/dev/mmcblk0`, `/dev/disk/by-id/...`).
    device: PathBuf,
    /// Write to a disk that does not say it is removable (still never a mounted disk or the
    /// system's own).
    #[arg(long)]
    force: bool,
    /// Do not ask for the device's name before erasing it.
    #[arg(long)]
    yes: bool,
}

/// Arguments of `baton image inspect`.
#[derive(Debug, Args)]
struct InspectArgs {
    /// Image file.
    image: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum QemuCommand {
    /// Boot an image on one or more emulated boards until Ctrl-C.
    Run(QemuRunArgs),
}

/// Arguments of `baton qemu run`.
#[derive(Debug, Args)]
pub struct QemuRunArgs {
    /// Image file (from `baton image build`).
    pub image: PathBuf,
    /// Number of boards, all on one Ethernet segment.
    #[arg(long, default_value_t = 1)]
    pub boards: usize,
    /// Forward 127.0.0.1:HOST to port GUEST of board 1 (HOST+i-1 for board i).
    #[arg(long = "forward", value_name = "HOST:GUEST")]
    pub forwards: Vec<String>,
    /// Let every board reach 127.0.0.1:HOST_PORT on this machine at GUEST_IP:PORT (an unused
    /// address of QEMU's user network, e.g. 10.0.2.100:5000=5000 for a local registry).
    #[arg(long = "guest-forward", value_name = "GUEST_IP:PORT=HOST_PORT")]
    pub guest_forwards: Vec<String>,
    /// Directory for the boards' serial console logs (board1.log, ...).
    #[arg(long)]
    pub serial_dir: Option<PathBuf>,
    /// Memory per board in MiB.
    #[arg(long, default_value_t = 512)]
    pub memory: u32,
}

/// Arguments of `baton status`.
#[derive(Debug, Args)]
struct StatusArgs {
    #[command(flatten)]
    board: BoardArgs,
    /// Print JSON: {"status": ..., "cluster": ...} (cluster is null on boards without one).
    #[arg(long)]
    json: bool,
}

/// Arguments of `baton routes`.
#[derive(Debug, Args)]
struct RoutesArgs {
    #[command(flatten)]
    board: BoardArgs,
    /// Print the board's `GET /v1/routes` answer as JSON.
    #[arg(long)]
    json: bool,
}

/// Arguments of `baton boards`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
struct BoardsCliArgs {
    #[command(subcommand)]
    action: Option<BoardsAction>,
    /// How long to listen for answers, in seconds.
    #[arg(long, default_value_t = 3.0, value_name = "SECS")]
    timeout: f64,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Only boards of this cluster.
    #[arg(long, value_name = "NAME")]
    cluster: Option<String>,
}

#[derive(Debug, Subcommand)]
enum BoardsAction {
    /// Make the board named by --board forget a board that is gone for good: the tombstones of
    /// deleted specs no longer wait for it (ask every board: each keeps its own list).
    Forget(ForgetArgs),
}

/// Arguments of `baton boards forget`.
#[derive(Debug, Args)]
struct ForgetArgs {
    #[command(flatten)]
    board: BoardArgs,
    /// The board to forget (its host name).
    name: String,
}

/// Runs the command line; the process exit code is the result.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Image(ImageCommand::Build(args)) => crate::build::run_cli(args),
        Command::Image(ImageCommand::Flash(args)) => {
            crate::flash::run_cli(&args.image, &args.device, args.force, args.yes)
        }
        Command::Image(ImageCommand::Inspect(args)) => {
            crate::inspect::run_cli(&args.image, args.json)
        }
        Command::Qemu(QemuCommand::Run(args)) => crate::qemu_run::run_cli(args),
        Command::Oci(OciCommand::Pack(args)) => {
            let digest = crate::oci_pack::pack(&crate::oci_pack::PackOptions {
                binary: args.binary,
                path: args.path,
                env: args.env,
                port: args.port,
                tag: args.tag,
                output: args.output.clone(),
            });
            digest.map(|d| println!("wrote {} ({d})", args.output.display()))
        }
        Command::Status(args) => args
            .board
            .client()
            .and_then(|c| crate::board_cli::status(&c, args.json)),
        Command::Boards(BoardsCliArgs {
            action: Some(BoardsAction::Forget(args)),
            ..
        }) => args.board.client().and_then(|c| {
            crate::forget_cli::forget_everywhere(&c, &args.name, |url| args.board.client_for(url))
        }),
        Command::Boards(args) => {
            crate::boards::run_cli(args.timeout, args.json, args.cluster.as_deref())
                .map_err(Into::into)
        }
        Command::Ps(args) => args.client().and_then(|c| crate::board_cli::ps(&c)),
        Command::Logs(args) => args.board.client().and_then(|c| {
            crate::board_cli::logs(&c, &args.name, args.follow, args.tail, !args.here)
        }),
        Command::Events(args) => args
            .board
            .client()
            .and_then(|c| crate::events_cli::events(&c, args.follow, args.tail, args.json)),
        Command::Top(args) => args
            .client()
            .and_then(|c| crate::top::run(&c, |url| args.client_for(url))),
        Command::Console(args) => args
            .board
            .client()
            .and_then(|c| crate::board_cli::console(&c, args.tail)),
        Command::Apply(args) => args
            .board
            .client()
            .and_then(|c| crate::board_cli::apply(&c, &args.file)),
        Command::Rm(args) => args
            .board
            .client()
            .and_then(|c| crate::board_cli::rm(&c, &args.name)),
        Command::Policy(args) => args
            .board
            .client()
            .and_then(|c| crate::policy_cli::run(&c, &args.name)),
        Command::Routes(args) => args
            .board
            .client()
            .and_then(|c| crate::routes_cli::run(&c, args.json)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("baton: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
