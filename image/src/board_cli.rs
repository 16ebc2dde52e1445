//! Commands that talk to a board's API: `status`, `ps`, `logs`, `apply`, `rm` (`boards` finds
//! boards by mDNS instead, in [`crate::boards`]).
//! The board and token come from `--board`/`--token` or `BATON_BOARD`/`BATON_TOKEN`.

use std::path::Path;

use anyhow::{bail, Context};
use baton_api::{ApiError, Applied, ClusterView, ConfigError, Removed, ServiceList, StatusReport};

use crate::client::Client;

/// `baton status`: the board's status, then its cluster when the board has one (boards older
/// than the cluster layer answer `GET /v1/cluster` with 404 and show only their status).
pub fn status(client: &Client, json: bool) -> anyhow::Result<()> {
    let status: serde_json::Value = client.get("/v1/status")?;
    let cluster = cluster(client);
    print!("{}", status_report(&status, cluster.as_ref(), json)?);
    Ok(())
}

/// The board's `GET /v1/cluster`, or `None` if it has none (404) or it failed (said on stderr,
/// as the status printed anyway is worth more than the error).
fn cluster(client: &Client) -> Option<serde_json::Value> {
    match client.get("/v1/cluster") {
        Ok(view) => Some(view),
        Err(e) if e.code() == Some(404) => None,
        Err(e) => {
            eprintln!("baton: GET /v1/cluster: {e}");
            None
        }
    }
}

/// What `baton status` prints for the board's answers to `GET /v1/status` and, when it has
/// one, `GET /v1/cluster`: with `json` the answers as they came (for scripts), else as text.
pub fn status_report(
    status: &serde_json::Value,
    cluster: Option<&serde_json::Value>,
    json: bool,
) -> anyhow::Result<String> {
    if json {
        let both = serde_json::json!({ "status": status, "cluster": cluster });
        let text = serde_json::to_string_pretty(&both).context("formatting status")?;
        return Ok(format!("{text}\n"));
    }
    let status: StatusReport =
        serde_json::from_value(status.clone()).context("reading the board's status")?;
    let mut out = status_text(&status);
    if let Some(cluster) = cluster {
        let cluster: ClusterView =
            serde_json::from_value(cluster.clone()).context("reading the board's cluster")?;
        out.push('\n');
        out.push_str(&crate::boards::members::render(&cluster));
    }
    Ok(out)
}

/// One board's `GET /v1/status` as text.
fn status_text(status: &StatusReport) -> String {
    let mut out = String::new();
    let mut line = |l: String| {
        out.push_str(&l);
        out.push('\n');
    };
    line(format!(
        "board     {} ({}), kernel {}",
        status.hostname, status.board, status.kernel
    ));
    // A board of an older version does not say: no line.
    if !status.version.is_empty() {
        line(format!("version   baton {}", status.version));
    }
    line(format!(
        "uptime    {:.1} s",
        status.uptime_ms as f64 / 1000.0
    ));
    for a in &status.addresses {
        line(format!(
            "address   {} {} ({})",
            a.interface,
            a.address,
            a.source.as_str()
        ));
    }
    line(format!(
        "memory    init {} KiB, system {} MiB",
        status.memory.init_rss_bytes / 1024,
        status.memory.system_used_bytes >> 20
    ));
    let clock = &status.clock;
    if clock.synced || clock.refused_steps > 0 || clock.note.is_some() {
        let mut says = vec![if clock.synced { "synced" } else { "not synced" }.to_string()];
        if clock.refused_steps > 0 {
            says.push(format!("{} steps refused", clock.refused_steps));
        }
        says.extend(clock.note.clone());
        line(format!("clock     {}", says.join("; ")));
    }
    let userns = &status.user_namespaces;
    // A board of an older version says nothing: no line.
    match (&userns.supported, &userns.reason) {
        (true, _) => line("userns    each service in its own id range".to_string()),
        (false, Some(why)) => line(format!("userns    unavailable: {why}")),
        (false, None) => {}
    }
    for r in &status.card_repairs {
        line(format!("repaired  {}: {}", r.file, r.reason));
    }
    for e in &status.errors {
        line(format!("error     {e}"));
    }
    out
}

/// `baton ps`: every service and instance.
pub fn ps(client: &Client) -> anyhow::Result<()> {
    let list: ServiceList = client.get("/v1/services")?;
    print!("{}{}", ps_table(&list), crate::scale_cli::table(&list));
    Ok(())
}

/// The table `baton ps` prints for a `GET /v1/services` answer.
fn ps_table(list: &ServiceList) -> String {
    let mut out = String::new();
    let mut line = |l: String| {
        out.push_str(&l);
        out.push('\n');
    };
    // Boards that know of a cluster say where each instance runs; older ones do not.
    let with_board = list
        .services
        .iter()
        .any(|s| s.instances.iter().any(|i| i.board().is_some()));
    let board = |cell: &str| {
        if with_board {
            format!("{cell:<12} ")
        } else {
            String::new()
        }
    };
    line(format!(
        "{:<20} {}{:<11} {:>7}  {:<14} {:<12} {:>8}  LAST EXIT",
        "INSTANCE",
        board("BOARD"),
        "STATE",
        "HEALTH",
        "ADDRESS",
        "SERVICE",
        "RESTARTS"
    ));
    for service in &list.services {
        let name = &service.name;
        if service.instances.is_empty() {
            line(format!(
                "{:<20} {}{:<11} {:>7}  {:<14} {:<12} {:>8}",
                "-",
                board("-"),
                service.state.as_str(),
                "-",
                "-",
                name,
                "-"
            ));
        }
        for i in &service.instances {
            let local = i.local();
            let health = match local.and_then(|l| l.healthy) {
                Some(true) => "ok",
                Some(false) => "failing",
                None => "-",
            };
            let exit = match local.map(|l| (&l.last_exit, &l.last_error)) {
                Some((_, Some(e))) => format!("start failed: {e}"),
                Some((Some(e), None)) => exit_text(e),
                _ => String::new(),
            };
            line(format!(
                "{:<20} {}{:<11} {:>7}  {:<14} {:<12} {:>8}  {exit}",
                i.id(),
                board(i.board().unwrap_or("-")),
                i.state().as_str(),
                health,
                i.address().unwrap_or("-"),
                name,
                local.map_or(0, |l| l.restarts),
            ));
        }
    }
    for e in &list.errors {
        line(format!("error: {}", config_error(&e.file, e)));
    }
    out
}

/// How a process ended, in words (`code 3`, `signal 9 (OOM)`).
pub fn exit_text(e: &baton_api::ExitStatus) -> String {
    let oom = if e.oom_killed { " (OOM)" } else { "" };
    match (e.code, e.signal) {
        (Some(c), _) => format!("code {c}{oom}"),
        (_, Some(s)) => format!("signal {s}{oom}"),
        _ => String::new(),
    }
}

/// `baton logs NAME [-f] [--tail N]`.
/// Prints the lines of service `name`: of every board's instances with `cluster` (a board of
/// an older release answers with its own), the last `tail`, then each new one with `follow`.
/// What a terminal would act on in a line (escape sequences from a container) is escaped.
pub fn logs(
    client: &Client,
    name: &str,
    follow: bool,
    tail: usize,
    cluster: bool,
) -> anyhow::Result<()> {
    let path = format!(
        "/v1/services/{name}/logs?tail={tail}{}{}",
        if follow { "&follow=1" } else { "" },
        if cluster { "&cluster=1" } else { "" }
    );
    if follow {
        client.follow(&path, |line| {
            if !line.is_empty() {
                println!("{}", crate::events_cli::printable(line));
            }
        })?;
        return Ok(());
    }
    let (code, text) = client.text("GET", &path)?;
    if code != 200 {
        bail!("GET {path}: HTTP {code} {text}");
    }
    for line in text.lines() {
        println!("{}", crate::events_cli::printable(line));
    }
    Ok(())
}

/// `baton console [--tail N]`: the board's most recent console lines.
pub fn console(client: &Client, tail: usize) -> anyhow::Result<()> {
    let path = format!("/v1/console?tail={tail}");
    let (code, text) = client.text("GET", &path)?;
    if code != 200 {
        bail!("GET {path}: HTTP {code} {text}");
    }
    print!("{text}");
    Ok(())
}

/// `baton apply FILE`: the service's name is the file's stem, as on the config partition.
pub fn apply(client: &Client, file: &Path) -> anyhow::Result<()> {
    let name = file
        .file_stem()
        .and_then(|s| s.to_str())
        .with_context(|| format!("{}: no file name", file.display()))?;
    let body =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let path = format!("/v1/services/{name}");
    let (code, text) = client.send("PUT", &path, Some(&body))?;
    if code == 202 {
        let applied: Applied = client.read(&path, code, &text)?;
        println!("applied {}", applied.applied);
        if let Some(warning) = applied.warning {
            println!("warning: {warning}");
        }
        return Ok(());
    }
    let mut message = format!("the board refused {} (HTTP {code})", file.display());
    match serde_json::from_str::<ApiError>(&text) {
        Ok(ApiError {
            errors: Some(errors),
            ..
        }) => {
            for e in &errors {
                message.push_str(&format!(
                    "\n  {}",
                    config_error(&file.display().to_string(), e)
                ));
            }
        }
        Ok(refusal) => message.push_str(&format!(": {}", refusal.error)),
        Err(_) => {}
    }
    bail!(message)
}

/// `baton rm NAME`.
pub fn rm(client: &Client, name: &str) -> anyhow::Result<()> {
    let path = format!("/v1/services/{name}");
    let (code, text) = client.send("DELETE", &path, None)?;
    let removed: Removed = client
        .read(&path, code, &text)
        .with_context(|| format!("removing {name}"))?;
    println!("removed {}", removed.removed);
    if let Some(warning) = removed.warning {
        println!("warning: {warning}");
    }
    Ok(())
}

/// `file:line: field: message` from a config error (`file` as the user named it).
fn config_error(file: &str, e: &ConfigError) -> String {
    format!(
        "{file}:{}: {}: {}",
        e.line.map(|l| l.to_string()).unwrap_or_default(),
        e.field,
        e.message
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    use serde_json::json;

    #[test]
    fn the_status_reads_from_the_board_s_json() {
        let status = json!({
            "hostname": "pi-a", "board": "qemu-virt", "kernel": "6.12.1", "uptime_ms": 12345,
            "boot": [{"step": "mounts", "ms": 3}],
            "addresses": [{"interface": "eth0", "address": "169.254.3.1/16", "source": "link-local"}],
            "memory": {"init_rss_bytes": 4096, "system_used_bytes": 3145728},
            "config_files": [], "data": null, "errors": ["a problem"], "config_errors": [],
            "clock": {"synced": true, "servers": 1, "refused_steps": 2, "note": "only one server"},
            "version": "0.1.0",
        });
        assert_eq!(
            status_report(&status, None, false).unwrap(),
            "board     pi-a (qemu-virt), kernel 6.12.1\nversion   baton 0.1.0\nuptime    12.3 s\n\
             address   eth0 169.254.3.1/16 (link-local)\nmemory    init 4 KiB, system 3 MiB\n\
             clock     synced; 2 steps refused; only one server\n\
             error     a problem\n"
        );
        let both: serde_json::Value =
            serde_json::from_str(&status_report(&status, None, true).unwrap()).unwrap();
        assert_eq!(both["status"]["addresses"][0]["source"], "link-local");
        assert_eq!(both["cluster"], serde_json::Value::Null);
        let mut status = status;
        status["user_namespaces"] = json!({"supported": false, "reason": "tmpfs store"});
        let text = status_report(&status, None, false).unwrap();
        assert!(
            text.contains("userns    unavailable: tmpfs store\n"),
            "{text}"
        );
        status["card_repairs"] = json!([{"file": "services/web.toml", "reason": "it is empty"}]);
        let text = status_report(&status, None, false).unwrap();
        assert!(
            text.contains("repaired  services/web.toml: it is empty\n"),
            "{text}"
        );
    }

    #[test]
    fn ps_lists_local_and_remote_instances_with_their_boards() {
        let list: ServiceList = serde_json::from_value(json!({
            "services": [
                {"name": "web", "state": "running", "image": "x", "desired": 2, "running": 2,
                 "publish": null, "error": null, "unplaced": [],
                 "instances": [
                    {"id": "web-1", "board": "pi-a", "state": "running", "address": "10.88.1.2",
                     "started_at_ms": 1, "start_ms": 2, "restarts": 3,
                     "last_exit": {"code": null, "signal": 9, "oom_killed": true},
                     "last_error": null, "oom_kills": 1, "healthy": true, "ready": true},
                    {"id": "web-2", "board": "pi-b", "state": "running", "address": "10.88.2.2",
                     "ready": true},
                 ]},
                {"name": "db", "state": "stopped", "image": "y", "desired": 0, "running": 0,
                 "publish": null, "error": null, "instances": []},
            ],
            "errors": [{"file": "services/x.toml", "line": 2, "field": "image", "message": "missing"}],
        }))
        .unwrap();
        let table = ps_table(&list);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 5, "{table}");
        assert!(
            lines[0].starts_with("INSTANCE             BOARD        STATE"),
            "{table}"
        );
        assert!(
            lines[1].starts_with("web-1                pi-a         running"),
            "{table}"
        );
        assert!(lines[1].ends_with("       3  signal 9 (OOM)"), "{table}");
        assert!(
            lines[2].starts_with("web-2                pi-b         running"),
            "{table}"
        );
        assert!(lines[2].contains("10.88.2.2"), "{table}");
        assert!(
            lines[3].starts_with("-                    -            stopped"),
            "{table}"
        );
        assert_eq!(lines[4], "error: services/x.toml:2: image: missing");
    }
}
