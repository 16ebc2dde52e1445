//! The part of a round that keeps this board's place in the container network: its subnet its
//! own, the mesh pointed at the other boards, the supervisor told about their instances.

use std::collections::BTreeMap;

use baton_cluster::gossip::Member as GossipMember;

use super::tenure::{self, Claimant};
use super::{fabric, lock, now_ms, Node};
use crate::containers::supervisor::Remote;
use crate::svcnet::subnet::{self, Verdict};

/// How long configuring the mesh's peers may take.
const MESH_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

impl Node {
    /// Since when this board has known each board that claims a subnet, itself included (the
    /// tenure rule's input, see [`tenure`]).
    fn known_since(
        &self,
        claims: &[(String, crate::svcnet::nft::Ipv4Net)],
    ) -> BTreeMap<String, u64> {
        let now = now_ms();
        let bindings = self.gossip.bindings();
        let mut inner = lock(&self.inner);
        let mut known: BTreeMap<String, u64> = claims
            .iter()
            .map(|(name, _)| {
                // The key's own time counts too: two boards whose subnets collide must agree on
                // which came first, and each measures itself by when it took its subnet, long
                // before it may have bound the other (a key holder can claim an old time, and so
                // make a board move, three times a day at most).
                let since = match bindings.get(name) {
                    Some(b) => b.bound_at_ms.min(b.since_ms),
                    None => inner.first_seen.at(name, now),
                };
                (name.clone(), since)
            })
            .collect();
        let me = &self.settings.board;
        let held = self
            .settings
            .state_dir
            .as_deref()
            .and_then(tenure::held_since_ms);
        let held = held.unwrap_or_else(|| inner.first_seen.at(me, now));
        known.insert(me.clone(), held);
        known
    }

    /// Keeps the board's subnet its own (moving and restarting when another board keeps it by
    /// the tenure rule, a few times a day at most), points the mesh at the other boards and tells
    /// the supervisor about their instances.
    pub(super) async fn update_fabric(&self, peers: &[GossipMember]) {
        let me = &self.settings.board;
        let mine = self.settings.subnet;
        let claims = fabric::claims(peers);
        let known = self.known_since(&claims);
        let since = |name: &str| known.get(name).copied().unwrap_or(u64::MAX);
        let mut rivals: Vec<Claimant> = claims
            .iter()
            .filter(|(_, s)| *s == mine)
            .map(|(name, _)| Claimant {
                name,
                known_since_ms: since(name),
            })
            .collect();
        let contested = !rivals.is_empty();
        rivals.push(Claimant {
            name: me,
            known_since_ms: since(me),
        });
        let keeper = tenure::keeper(&rivals).unwrap_or(me).to_owned();
        let may_move = match &self.settings.state_dir {
            Some(dir) => tenure::may_move(dir, now_ms()),
            None => true,
        };
        if contested && keeper == *me {
            self.mesh_note(format!(
                "{} claim container subnet {mine} too, which this board has held longer and keeps",
                rivals
                    .iter()
                    .filter(|c| c.name != me.as_str())
                    .map(|c| c.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let keeps = keeper == *me || !may_move;
        if keeper != *me && !may_move {
            self.mesh_note(format!(
                "board {keeper} keeps container subnet {mine}, but this board has moved {} times in a day and stays; its instances cannot be reached from other boards",
                tenure::MOVES_PER_DAY
            ));
        }
        let verdict = subnet::verdict(mine, keeps, claims.iter().map(|(n, s)| (n.as_str(), *s)));
        match verdict {
            Verdict::Keep => {}
            Verdict::Move(next) if lock(&self.inner).moving_to.is_none() => {
                lock(&self.inner).moving_to = Some(next);
                let owner = &keeper;
                let note = match &self.settings.state_dir {
                    Some(dir) => match subnet::save(dir, next) {
                        Ok(()) => {
                            if let Err(e) = tenure::record_move(dir, now_ms()) {
                                self.settings.console.line(format_args!("cluster: recording the subnet move: {e}"));
                            }
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
        let boards = fabric::boards(me, mine, peers, &since);
        let mut mesh = self.mesh.lock().await;
        let Some(link) = mesh.as_mut() else {
            self.supervisor.set_remote(Remote::default());
            return;
        };
        let changed = lock(&self.inner).mesh_boards.as_ref() != Some(&boards);
        if changed {
            let wanted: Vec<_> = boards.iter().map(fabric::Board::peer).collect();
            // The kernel answers netlink at once; a bound keeps a lost answer from stopping
            // the rounds (the mesh lock is held meanwhile).
            let answer = tokio::time::timeout(MESH_LIMIT, link.set_peers(&wanted)).await;
            match answer.unwrap_or(Err(crate::svcnet::mesh::Error::NoAnswer(MESH_LIMIT))) {
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
