//! The `baton` command as a library: the image builder, the image inspector, the QEMU runner's
//! command line and a client for a board's API. `main.rs` only calls [`cli::main`].

pub mod assemble;
pub mod bake;
pub mod board;
pub mod board_cli;
pub mod boards;
pub mod build;
pub mod cli;
pub mod client;
pub mod cluster_ca;
pub mod config_dir;
pub mod debian;
pub mod disk;
pub mod events_cli;
pub mod flash;
pub mod forget_cli;
pub mod inspect;
pub mod kmod;
pub mod locate;
pub mod oci_pack;
pub mod policy_cli;
pub mod qemu_run;
pub mod rootfs;
pub mod routes_cli;
pub mod scale_cli;
pub mod top;
