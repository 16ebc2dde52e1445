//! `baton qemu run`: boot an image on emulated boards until Ctrl-C.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::{bail, Context};
use baton_qemu::{station, Forward, GuestForward, Lab, LabConfig, LabError};

/// Parses `HOST:GUEST` port pairs.
pub fn parse_forward(s: &str) -> anyhow::Result<Forward> {
    let (host, guest) = s
        .split_once(':')
        .with_context(|| format!("--forward {s:?}: expected HOST:GUEST, e.g. 7070:7070"))?;
    let port = |p: &str, what: &str| -> anyhow::Result<u16> {
        match p.parse::<u16>() {
            Ok(n) if n > 0 => Ok(n),
            _ => bail!("--forward {s:?}: {what} port {p:?} is not a port number (1-65535)"),
        }
    };
    Ok(Forward {
        host: port(host, "host")?,
        guest: port(guest, "guest")?,
    })
}

/// Runs the boards in the foreground; Ctrl-C (or SIGTERM) stops them all.
pub fn run_cli(args: crate::cli::QemuRunArgs) -> anyhow::Result<()> {
    let mut config = LabConfig::new(&args.image);
    config.boards = args.boards;
    config.forwards = args
        .forwards
        .iter()
        .map(|f| parse_forward(f))
        .collect::<Result<_, _>>()?;
    config.guest_forwards = args
        .guest_forwards
        .iter()
        .map(|f| f.parse::<GuestForward>())
        .collect::<Result<_, _>>()?;
    config.serial_dir = args.serial_dir;
    config.memory_mib = args.memory;
    config.echo = true;
    // As root, the host joins the boards' segment as a LAN station (unprivileged runs keep to
    // the port forwards).
    config.station = args.boards > 1 && station::privileged();

    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .context("installing the Ctrl-C handler")?;
    }
    let lab = start(config).with_context(|| format!("booting {}", args.image.display()))?;
    for board in lab.boards() {
        let forwards: Vec<String> = board
            .forwards()
            .iter()
            .map(|f| format!("127.0.0.1:{} -> port {}", f.host, f.guest))
            .collect();
        eprintln!(
            "baton: board {} started (serial log {}){}{}",
            board.index(),
            board.console().log_path().display(),
            if forwards.is_empty() { "" } else { ", " },
            forwards.join(", ")
        );
    }
    if let Ok(station) = lab.station() {
        eprintln!(
            "baton: this machine is on the boards' segment as {} ({}, a network namespace); \
             run commands there with: nsenter --net={} COMMAND (e.g. baton boards)",
            station.address(),
            station.interface(),
            station.netns_path().display()
        );
    }
    lab.run_until(&stop);
    eprintln!("baton: stopping the boards");
    drop(lab);
    Ok(())
}

/// Starts the lab; without a LAN station if it cannot be made (the boards do not need it).
fn start(config: LabConfig) -> Result<Lab, LabError> {
    match Lab::start(config.clone()) {
        Err(LabError::Station(e)) => {
            eprintln!("baton: {e}; going on without a LAN station");
            Lab::start(LabConfig {
                station: false,
                ..config
            })
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_forwards() {
        let f = parse_forward("7070:80").unwrap();
        assert_eq!((f.host, f.guest), (7070, 80));
        for bad in ["7070", "x:80", "7070:0", "70000:80", ""] {
            assert!(parse_forward(bad).is_err(), "{bad}");
        }
    }
}
