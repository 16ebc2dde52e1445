//! The bounds of each message ([`Message::check`]), and the version a first message names
//! when it does not parse.

use serde::Deserialize;

use super::protocol::*;

fn descriptors(what: &'static str, got: usize, expected: usize) -> Result<(), Invalid> {
    if got == expected {
        Ok(())
    } else {
        Err(Invalid::Descriptors {
            what,
            got,
            expected,
        })
    }
}

fn count(what: &'static str, got: usize, max: usize) -> Result<(), Invalid> {
    if got <= max {
        Ok(())
    } else {
        Err(Invalid::TooMany { what, got, max })
    }
}

fn text(what: &'static str, value: &str, max: usize) -> Result<(), Invalid> {
    if value.len() <= max {
        Ok(())
    } else {
        Err(Invalid::TooLong {
            what,
            got: value.len(),
            max,
        })
    }
}

fn protocol(got: u32) -> Result<(), Invalid> {
    if got == PROTOCOL {
        Ok(())
    } else {
        Err(Invalid::Protocol { got })
    }
}

/// The version a first message names, read without the rest of the message.
fn probe_protocol(bytes: &[u8], variant: &str) -> Option<u32> {
    #[derive(Deserialize)]
    struct Versioned {
        protocol: u32,
    }
    let value: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(bytes).ok()?;
    let inner = value.get(variant)?;
    serde_json::from_value::<Versioned>(inner.clone())
        .ok()
        .map(|v| v.protocol)
}

impl Message for ToFrontDoor {
    fn check(&self, fds: usize) -> Result<(), Invalid> {
        match self {
            ToFrontDoor::Hello {
                protocol: version,
                build,
                listeners,
            } => {
                protocol(*version)?;
                text("Hello.build", build, MAX_TEXT)?;
                count("Hello.listeners", listeners.len(), MAX_LISTENERS)?;
                if let [a, b] = listeners.as_slice() {
                    if a == b {
                        return Err(Invalid::DuplicateListener(*a));
                    }
                }
                descriptors("Hello", fds, listeners.len())
            }
            ToFrontDoor::Snapshot { .. } => descriptors("Snapshot", fds, 1),
            ToFrontDoor::Instances {
                service, instances, ..
            } => {
                text("Instances.service", service, MAX_TEXT)?;
                count("Instances.instances", instances.len(), MAX_INSTANCES)?;
                for i in instances {
                    text("Instances.instances.id", &i.id, MAX_TEXT)?;
                    text("Instances.instances.board", &i.board, MAX_TEXT)?;
                }
                descriptors("Instances", fds, 0)
            }
            ToFrontDoor::Drain { .. } => descriptors("Drain", fds, 0),
        }
    }

    fn announced_protocol(bytes: &[u8]) -> Option<u32> {
        probe_protocol(bytes, "Hello")
    }
}

impl Message for ToInit {
    fn check(&self, fds: usize) -> Result<(), Invalid> {
        match self {
            ToInit::Ready {
                protocol: version,
                notes,
            } => {
                protocol(*version)?;
                count("Ready.notes", notes.len(), MAX_NOTES)?;
                for note in notes {
                    text("Ready.notes", note, MAX_TEXT)?;
                }
            }
            ToInit::Load { instances, held } => {
                count("Load.instances", instances.len(), MAX_LOAD_INSTANCES)?;
                count("Load.held", held.len(), MAX_HELD)?;
                for i in instances {
                    text("Load.instances.id", &i.id, MAX_TEXT)?;
                }
                for h in held {
                    text("Load.held.service", &h.service, MAX_TEXT)?;
                }
            }
            ToInit::Requests { services } => {
                count("Requests.services", services.len(), MAX_TALLIES)?;
                for t in services {
                    text("Requests.services.service", &t.service, MAX_TEXT)?;
                }
            }
            ToInit::Wake { service } => text("Wake.service", service, MAX_TEXT)?,
            ToInit::Access { lines, .. } => {
                count("Access.lines", lines.len(), MAX_ACCESS_LINES)?;
                for line in lines {
                    check_access_line(line)?;
                }
            }
            ToInit::Fetched { url, body, .. } => {
                text("Fetched.url", url, MAX_URL)?;
                text("Fetched.body", body, MAX_FETCHED_BODY)?;
            }
        }
        // Nothing the front door sends carries a descriptor.
        descriptors(self.name(), fds, 0)
    }

    fn announced_protocol(bytes: &[u8]) -> Option<u32> {
        probe_protocol(bytes, "Ready")
    }
}

impl ToInit {
    fn name(&self) -> &'static str {
        match self {
            ToInit::Ready { .. } => "Ready",
            ToInit::Load { .. } => "Load",
            ToInit::Requests { .. } => "Requests",
            ToInit::Wake { .. } => "Wake",
            ToInit::Access { .. } => "Access",
            ToInit::Fetched { .. } => "Fetched",
        }
    }
}

fn check_access_line(line: &AccessLine) -> Result<(), Invalid> {
    text("Access.lines.route", &line.route, MAX_TEXT)?;
    text("Access.lines.method", &line.method, MAX_TEXT)?;
    text("Access.lines.host", &line.host, MAX_TEXT)?;
    text("Access.lines.path", &line.path, MAX_ACCESS_PATH)?;
    text("Access.lines.request_id", &line.request_id, MAX_TEXT)?;
    for (what, value) in [
        ("Access.lines.identity", &line.identity),
        ("Access.lines.instance", &line.instance),
    ] {
        if let Some(value) = value {
            text(what, value, MAX_TEXT)?;
        }
    }
    Ok(())
}
