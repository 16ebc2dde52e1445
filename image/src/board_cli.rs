//! Commands that talk to a board's API: `status`, `ps`, `logs`, `apply`, `rm` (`boards` finds
//! boards by mDNS instead, in [`crate::boards`]).
//! The board and token come from `--board`/`--token` or `BATON_BOARD`/`BATON_TOKEN`.

use std::path::Path;

use anyhow::{bail, Context};

use crate::client::Client;

/// `baton status`: the board's status, then its cluster when the board has one (boards older
/// than the cluster layer answer `GET /v1/cluster` with 404 and show only their status).
pub fn status(client: &Client, json: bool) -> anyhow::Result<()> {
    let status = client.status()?;
    let cluster = cluster(client);
    print!("{}", status_report(&status, cluster.as_ref(), json)?);
    Ok(())
}

/// The board's `GET /v1/cluster`, or `None` if it has none (404) or it failed (said on stderr,
/// as the status printed anyway is worth more than the error).
fn cluster(client: &Client) -> Option<serde_json::Value> {
    match client.request("GET", "/v1/cluster") {
        Ok((200, body)) => Some(body),
        Ok((404, _)) => None,
        Ok((code, body)) => {
            eprintln!(
                "baton: GET /v1/cluster: HTTP {code} {}",
                body["error"].as_str().unwrap_or("")
            );
            None
        }
        Err(e) => {
            eprintln!("baton: {e}");
            None
        }
    }
}

/// What `baton status` prints for `status` and, when the board has one, its `cluster`.
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
    let mut out = status_text(status);
    if let Some(cluster) = cluster {
        out.push('\n');
        out.push_str(&crate::boards::members::render(cluster));
    }
    Ok(out)
}

/// One board's `GET /v1/status` as text.
fn status_text(status: &serde_json::Value) -> String {
    let mut out = String::new();
    let mut line = |l: String| {
        out.push_str(&l);
        out.push('\n');
    };
    let text = |k: &str| {
        status
            .get(k)
            .and_then(|v| v.as_str())
            .unwrap_or("?")
            .to_string()
    };
    line(format!(
        "board     {} ({}), kernel {}",
        text("hostname"),
        text("board"),
        text("kernel")
    ));
    let uptime = status
        .get("uptime_ms")
        .and_then(|v| v.as_u64())
        .unwrap_or(0);
    line(format!("uptime    {:.1} s", uptime as f64 / 1000.0));
    for a in status
        .get("addresses")
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
    {
        line(format!(
            "address   {} {} ({})",
            a["interface"].as_str().unwrap_or("?"),
            a["address"].as_str().unwrap_or("?"),
            a["source"].as_str().unwrap_or("?")
        ));
    }
    let mem = &status["memory"];
    line(format!(
        "memory    init {} KiB, system {} MiB",
        mem["init_rss_bytes"].as_u64().unwrap_or(0) / 1024,
        mem["system_used_bytes"].as_u64().unwrap_or(0) >> 20
    ));
    for e in status
        .get("errors")
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
    {
        line(format!("error     {}", e.as_str().unwrap_or("?")));
    }
    out
}

/// `baton ps`: every service and instance.
pub fn ps(client: &Client) -> anyhow::Result<()> {
    let (code, body) = client.request("GET", "/v1/services")?;
    if code != 200 {
        bail!(
            "GET /v1/services: HTTP {code} {}",
            body["error"].as_str().unwrap_or("")
        );
    }
    let services: &[serde_json::Value] = body["services"].as_array().map_or(&[], Vec::as_slice);
    // Boards that know of a cluster say where each instance runs; older ones do not.
    let with_board = services.iter().any(|s| {
        s["instances"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|i| i["board"].is_string())
    });
    let board = |cell: &str| {
        if with_board {
            format!("{cell:<12} ")
        } else {
            String::new()
        }
    };
    println!(
        "{:<20} {}{:<11} {:>7}  {:<14} {:<12} {:>8}  LAST EXIT",
        "INSTANCE",
        board("BOARD"),
        "STATE",
        "HEALTH",
        "ADDRESS",
        "SERVICE",
        "RESTARTS"
    );
    for service in services {
        let name = service["name"].as_str().unwrap_or("?");
        let instances = service["instances"].as_array().cloned().unwrap_or_default();
        if instances.is_empty() {
            println!(
                "{:<20} {}{:<11} {:>7}  {:<14} {:<12} {:>8}",
                "-",
                board("-"),
                service["state"].as_str().unwrap_or("?"),
                "-",
                "-",
                name,
                "-"
            );
        }
        for i in instances {
            let health = match i["healthy"].as_bool() {
                Some(true) => "ok",
                Some(false) => "failing",
                None => "-",
            };
            let exit = match (&i["last_exit"], i["last_error"].as_str()) {
                (_, Some(e)) => format!("start failed: {e}"),
                (e, None) if e.is_object() => {
                    let oom = if e["oom_killed"] == true {
                        " (OOM)"
                    } else {
                        ""
                    };
                    match (e["code"].as_i64(), e["signal"].as_i64()) {
                        (Some(c), _) => format!("code {c}{oom}"),
                        (_, Some(s)) => format!("signal {s}{oom}"),
                        _ => String::new(),
                    }
                }
                _ => String::new(),
            };
            println!(
                "{:<20} {}{:<11} {:>7}  {:<14} {:<12} {:>8}  {exit}",
                i["id"].as_str().unwrap_or("?"),
                board(i["board"].as_str().unwrap_or("-")),
                i["state"].as_str().unwrap_or("?"),
                health,
                i["address"].as_str().unwrap_or("-"),
                name,
                i["restarts"].as_u64().unwrap_or(0),
            );
        }
    }
    for e in body["errors"].as_array().into_iter().flatten() {
        println!(
            "error: {}",
            config_error(e["file"].as_str().unwrap_or("?"), e)
        );
    }
    Ok(())
}

/// `baton logs NAME [-f] [--tail N]`.
pub fn logs(client: &Client, name: &str, follow: bool, tail: usize) -> anyhow::Result<()> {
    let path = format!(
        "/v1/services/{name}/logs?tail={tail}{}",
        if follow { "&follow=1" } else { "" }
    );
    if follow {
        client.follow(&path, |line| println!("{line}"))?;
        return Ok(());
    }
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
    let (code, text) = client.send("PUT", &format!("/v1/services/{name}"), Some(&body))?;
    if code == 202 {
        println!("applied {name}");
        return Ok(());
    }
    let reply: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    let mut message = format!("the board refused {} (HTTP {code})", file.display());
    for e in reply["errors"].as_array().into_iter().flatten() {
        message.push_str(&format!(
            "\n  {}",
            config_error(&file.display().to_string(), e)
        ));
    }
    if let Some(e) = reply["error"]
        .as_str()
        .filter(|_| reply["errors"].is_null())
    {
        message.push_str(&format!(": {e}"));
    }
    bail!(message)
}

/// `baton rm NAME`.
pub fn rm(client: &Client, name: &str) -> anyhow::Result<()> {
    let (code, text) = client.send("DELETE", &format!("/v1/services/{name}"), None)?;
    if code != 202 {
        bail!("removing {name}: HTTP {code} {text}");
    }
    println!("removed {name}");
    Ok(())
}

/// `file:line: field: message` from a JSON config error.
fn config_error(file: &str, e: &serde_json::Value) -> String {
    format!(
        "{file}:{}: {}: {}",
        e["line"]
            .as_u64()
            .map(|l| l.to_string())
            .unwrap_or_default(),
        e["field"].as_str().unwrap_or(""),
        e["message"].as_str().unwrap_or("")
    )
}
