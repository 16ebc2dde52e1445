//! Measures how long boards take from QEMU's start to their first serial line, and to a line
//! containing a marker: `cargo run -p baton-qemu --example boot_timing -- IMAGE BOARDS [MARKER]`.
//! A benchmark, not a test: it prints numbers and asserts nothing.

use std::time::{Duration, Instant};

use baton_qemu::{Lab, LabConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: boot_timing IMAGE BOARDS [MARKER]";
    let image = args.next().ok_or(usage)?;
    let boards: usize = args.next().ok_or(usage)?.parse()?;
    let marker = args.next().unwrap_or_else(|| "baton: ready".to_string());
    let mut config = LabConfig::new(image);
    config.boards = boards;
    config.memory_mib = 256;
    let started = Instant::now();
    let lab = Lab::start(config)?;
    println!(
        "{boards} board(s): all QEMUs up after {:?}",
        started.elapsed()
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    for board in lab.boards() {
        board.wait_for_line(marker.as_str(), deadline)?;
    }
    for board in lab.boards() {
        let first = board.time_to_first_line().unwrap_or_default();
        println!(
            "board {}: first serial line after {first:.2?}",
            board.index()
        );
    }
    println!(
        "all boards printed {marker:?} {:.2?} after start",
        started.elapsed()
    );
    Ok(())
}
