//! The part of a round that keeps this board's place in the container network: its subnet its
//! own, the mesh pointed at the other boards, the supervisor told about their instances.

use baton_cluster::gossip::Member as GossipMember;

use super::{fabric, lock, Node};
use crate::containers::supervisor::Remote;
use crate::svcnet::subnet::{self, Verdict};

impl Node {
    /// Keeps the board's subnet its own (moving and restarting when a board with a smaller name
    /// has it), points the mesh at the other boards and tells the supervisor about their
    /// instances.
    pub(super) async fn update_fabric(&self, peers: &[GossipMember]) {
        let me = &self.settings.board;
        let mine = self.settings.subnet;
        let claims = fabric::claims(peers);
        let verdict = subnet::verdict(me, mine, claims.iter().map(|(n, s)| (n.as_str(), *s)));
        match verdict {
            Verdict::Keep => {}
            Verdict::Move(next) if lock(&self.inner).moving_to.is_none() => {
                lock(&self.inner).moving_to = Some(next);
                let owner = claims
                    .iter()
                    .filter(|(_, s)| *s == mine)
                    .map(|(n, _)| n.as_str())
                    .min()
                    .unwrap_or("?");
                let note = match &self.settings.state_dir {
                    Some(dir) => match subnet::save(dir, next) {
                        Ok(()) => {
                            let note = format!(
                                "board {owner} has container subnet {mine} too; this board takes {next} and restarts"
                            );
                            if self
                                .settings
                                .power
                                .try_send(crate::board::sys::Action::Reboot)
                                .is_err()
                            {
                                self.settings.console.line(format_args!("cluster: cannot ask for the restart"));
                            }
                            note
                        }
                        Err(e) => format!(
                            "board {owner} has container subnet {mine} too; saving {next} failed ({e}), so this board's instances cannot be reached from other boards"
                        ),
                    },
                    None => format!(
                        "board {owner} has container subnet {mine} too and without a data partition this board cannot move; its instances cannot be reached from other boards"
                    ),
                };
                self.mesh_note(note);
            }
            Verdict::Move(_) => {}
            Verdict::Full => self.mesh_note(format!(
                "board subnet {mine} is taken and no other is free; this board's instances cannot be reached from other boards"
            )),
        }
        let boards = fabric::boards(me, mine, peers);
        let mut mesh = self.mesh.lock().await;
        let Some(link) = mesh.as_mut() else {
            self.supervisor.set_remote(Remote::default());
            return;
        };
        let changed = lock(&self.inner).mesh_boards.as_ref() != Some(&boards);
        if changed {
            let wanted: Vec<_> = boards.iter().map(fabric::Board::peer).collect();
            match link.set_peers(&wanted).await {
                Ok(()) => {
                    let names: Vec<String> = boards
                        .iter()
                        .map(|b| format!("{} {}", b.name, b.subnet))
                        .collect();
                    self.settings
                        .console
                        .line(format_args!("cluster: mesh peers: {}", names.join(", ")));
                    lock(&self.inner).mesh_boards = Some(boards.clone());
                }
                Err(e) => self.mesh_note(format!("configuring the mesh: {e}")),
            }
        }
        let configured = lock(&self.inner).mesh_boards.clone().unwrap_or_default();
        self.supervisor.set_remote(Remote {
            mesh: Some(crate::svcnet::mesh::LINK.to_string()),
            subnets: configured.iter().map(|b| b.subnet).collect(),
            instances: fabric::remote_instances(&configured, peers),
        });
    }

    /// Says once which peers send values this build refuses (they run another build, and take
    /// no instances until they run this one).
    pub(super) fn note_refused(&self, peers: &[GossipMember]) {
        let mut inner = lock(&self.inner);
        for peer in peers {
            let why = peer.values_error.as_ref().map(ToString::to_string);
            if inner.refused.get(&peer.name) == why.as_ref() {
                continue;
            }
            match why {
                Some(why) => {
                    self.settings
                        .console
                        .line(format_args!("cluster: board {}: {why}", peer.name));
                    inner.refused.insert(peer.name.clone(), why);
                }
                None => {
                    inner.refused.remove(&peer.name);
                }
            }
        }
    }

    /// Prints the gossip socket's receive errors when more came since the last round (the
    /// endpoint keeps receiving after each, pausing while they repeat).
    pub(super) fn note_receive_errors(&self) {
        let (count, last) = self.gossip.receive_errors();
        let mut inner = lock(&self.inner);
        if count > inner.receive_errors_seen {
            let last = last.unwrap_or_default();
            self.settings.console.line(format_args!(
                "cluster: {last} ({count} receive errors so far)"
            ));
            inner.receive_errors_seen = count;
        }
    }

    /// Prints a mesh or subnet problem once (until a different one comes up).
    pub(super) fn mesh_note(&self, note: String) {
        let mut inner = lock(&self.inner);
        if inner.mesh_note.as_ref() != Some(&note) {
            self.settings.console.line(format_args!("cluster: {note}"));
            inner.mesh_note = Some(note);
        }
    }
}
