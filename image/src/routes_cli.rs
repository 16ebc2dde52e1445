//! `baton routes`: the routes of the cluster as one board's front door serves them, from its
//! `GET /v1/routes`: host, path, identity check, service, the instances behind each route by
//! board with their readiness and counts, where the host's certificate comes from, and the
//! front door's own state.

use baton_api::RoutesReport;

use crate::client::Client;

/// Prints the routes.
pub fn run(client: &Client, json: bool) -> anyhow::Result<()> {
    let report: RoutesReport = client.get("/v1/routes")?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report));
    }
    Ok(())
}

/// The text of a `/v1/routes` answer.
pub fn render(report: &RoutesReport) -> String {
    let fd = &report.front_door;
    let ports = |port: u16| {
        if port == 0 {
            "off".to_string()
        } else {
            port.to_string()
        }
    };
    let mut out = format!(
        "front door on {}: {}{} (http {}, https {}), restarted {} times{}\n",
        report.board,
        fd.state,
        fd.pid.map(|p| format!(", pid {p}")).unwrap_or_default(),
        ports(fd.http),
        ports(fd.https),
        fd.restarts,
        fd.last_exit
            .as_ref()
            .map(|e| format!(", last: {e}"))
            .unwrap_or_default(),
    );
    for note in &fd.notes {
        out.push_str(&format!("  note: {note}\n"));
    }
    if report.routes.is_empty() {
        out.push_str("no routes\n");
    }
    for route in &report.routes {
        out.push_str(&format!(
            "{}{} -> {} (auth {}): {} requests, {} errors\n",
            route.host.as_deref().unwrap_or("*"),
            route.path,
            route.service,
            route.auth,
            route.requests,
            route.errors
        ));
        if let Some(cert) = &route.certificate {
            out.push_str(&format!("  certificate: {cert}\n"));
        }
        if route.instances.is_empty() {
            out.push_str("  no instance\n");
        }
        for i in &route.instances {
            out.push_str(&format!(
                "  {:<24} {:<16} {:<21} {:<9} {} in flight, {} answered, {} failed\n",
                i.id,
                i.board,
                i.address,
                if i.ready { "ready" } else { "not ready" },
                i.inflight,
                i.completed,
                i.failed
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use baton_api::{FrontDoorStatus, RouteInstance, RouteView};

    #[test]
    fn shows_each_route_with_its_instances_and_the_front_door_state() {
        let report = RoutesReport {
            board: "b1".into(),
            front_door: FrontDoorStatus {
                state: "serving".into(),
                pid: Some(42),
                restarts: 1,
                last_exit: Some("restarted on request".into()),
                http: 80,
                https: 0,
                notes: vec!["no certificate for web.lan".into()],
            },
            routes: vec![RouteView {
                service: "web".into(),
                host: Some("web.lan".into()),
                path: "/".into(),
                auth: "none".into(),
                certificate: None,
                requests: 7,
                errors: 1,
                instances: vec![RouteInstance {
                    id: "b2/10.88.1.2".into(),
                    board: "b2".into(),
                    address: "10.88.1.2:8080".into(),
                    ready: true,
                    inflight: 0,
                    completed: 7,
                    failed: 1,
                }],
            }],
        };
        let text = render(&report);
        assert!(text.starts_with("front door on b1: serving, pid 42 (http 80, https off), restarted 1 times, last: restarted on request\n"), "{text}");
        assert!(
            text.contains("web.lan/ -> web (auth none): 7 requests, 1 errors\n"),
            "{text}"
        );
        assert!(text.contains("b2/10.88.1.2"), "{text}");
        assert!(text.contains("note: no certificate for web.lan"), "{text}");
    }
}
