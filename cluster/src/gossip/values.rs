//! What a board publishes in the gossip: one typed, versioned value ([`BoardValues`]).
//!
//! # Why one struct in postcard rather than a map of strings
//! Each board's whole state travels in one sealed datagram of about 1.4 kB, so the encoding must
//! be compact: a board with a few dozen instances must still fit. A map of string keys to
//! string values (the earlier format) spends bytes on every key name and on decimal and dotted
//! text, and gave every value a hand-rolled format of its own. One struct encoded with
//! [postcard](https://crates.io/crates/postcard) (already in the build through foca) costs a byte
//! or two per integer, four bytes per IPv4 address, one byte per phase, and names each service
//! once for all its instances; its fields are typed, so no reader parses text.
//!
//! postcard is not self-describing, so the encoding starts with a version byte,
//! [`VALUES_VERSION`]. All boards of a cluster run the same build; a value of another version
//! comes from a board that does not, and is refused with [`ValuesError::Newer`] or
//! [`ValuesError::Older`] (the member then shows no values and takes no instances) rather than
//! misread. Any change of [`BoardValues`] or of the types inside it (including the order of
//! [`baton_api::InstancePhase`]'s variants) needs a new version. One exception keeps boards of
//! the previous release placing beside this one's during a rolling update: values with no load
//! are written in the previous version ([`VALUES_VERSION_NO_LOAD`]), which both read, and a
//! board with load sends boards whose state arrives unsigned its values without the load
//! ([`BoardValues::without_load`]; see the gossip driver's `signed_for`).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4};

use baton_api::{Capacity, InstancePhase};
use serde::{Deserialize, Serialize};

/// The version of the encoding this build writes and reads.
pub const VALUES_VERSION: u8 = 2;

/// The version before the load table: this build writes it while its board has had no load
/// since it started (the previous release reads it, so boards of both releases keep placing
/// alike during a rolling update until the first load), and reads it as values with no load.
pub const VALUES_VERSION_NO_LOAD: u8 = 1;

/// The fields of [`VALUES_VERSION_NO_LOAD`], in order (postcard encodes a struct as the tuple
/// of its fields).
type NoLoad = (
    Option<SocketAddrV4>,
    Option<Capacity>,
    BTreeMap<String, String>,
    Option<String>,
    BTreeMap<String, Vec<RunningInstance>>,
    Option<MeshEndpoint>,
);

/// The largest encoded value read: more than one datagram holds is refused before decoding.
pub const MAX_VALUES_BYTES: usize = crate::sealed::MAX_DATAGRAM;

/// Everything a board tells the others about itself. Empty ([`Default`]) until the board's
/// state has arrived.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoardValues {
    /// Where its HTTP API listens.
    pub api: Option<SocketAddrV4>,
    /// The CPU and memory it offers to services; a board without it takes no instances.
    pub capacity: Option<Capacity>,
    /// Its labels (`[board] labels`), which placement constraints match.
    pub labels: BTreeMap<String, String>,
    /// A short digest of the cluster's specs as it holds them; boards with different digests
    /// exchange their spec records.
    pub digest: Option<String>,
    /// The instances it runs, by service.
    pub instances: BTreeMap<String, Vec<RunningInstance>>,
    /// Its end of the mesh between the boards' container subnets, when the mesh is up.
    pub net: Option<MeshEndpoint>,
    /// The time bucket (`unix_ms / BUCKET_MS`) its load table was computed at
    /// ([`crate::scale::BUCKET_MS`]).
    pub load_bucket: u32,
    /// Its load table: services with some non-zero load, by strictly increasing index, at most
    /// [`crate::scale::MAX_LOAD_ENTRIES`] (design section 1).
    pub load: Vec<ServiceLoad>,
}

/// The load one board measured for one service, in its gossip values. Read only when the
/// sender's spec digest equals ours, since `service` is an index into the sorted spec names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceLoad {
    /// The service's position among the spec's service names, sorted.
    pub service: u16,
    /// The mean concurrency over the stable window, in eighths of the target concurrency.
    pub stable: u16,
    /// The mean concurrency over the panic window (a tenth of the stable one), in eighths.
    pub panic: u16,
    /// The highest one-bucket mean over `idle_after`, in eighths.
    pub peak: u16,
    /// Requests and connections waiting for an instance now (saturating).
    pub held: u16,
}

/// One instance a board runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunningInstance {
    /// Its 1-based slot among the service's instances.
    pub slot: u32,
    /// What it is doing.
    pub phase: InstancePhase,
    /// Its container address (on the board's subnet), once it has one.
    pub address: Option<Ipv4Addr>,
    /// Whether it takes new connections.
    pub ready: bool,
}

/// A board's end of the WireGuard mesh.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeshEndpoint {
    /// Its container subnet's address.
    pub subnet: Ipv4Addr,
    /// Its container subnet's prefix length.
    pub prefix: u8,
    /// Its WireGuard public key.
    pub key: [u8; 32],
    /// The UDP port of its mesh (the address is the one it gossips from).
    pub port: u16,
}

/// Why a published value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValuesError {
    /// Nothing after the state header.
    #[error("board values are empty")]
    Empty,
    /// More bytes than a datagram holds.
    #[error("board values take {len} bytes, more than the {max} allowed")]
    TooLarge {
        /// Encoded size.
        len: usize,
        /// Limit.
        max: usize,
    },
    /// Written by a newer build, in a version this build cannot read.
    #[error("board values of version {found} come from a newer build (this one reads version {known}); run the same build on every board")]
    Newer {
        /// The version found.
        found: u8,
        /// The version this build reads.
        known: u8,
    },
    /// Written by an older build, in a version this build no longer reads.
    #[error("board values of version {found} come from an older build (this one reads version {known}); run the same build on every board")]
    Older {
        /// The version found.
        found: u8,
        /// The version this build reads.
        known: u8,
    },
    /// The bytes after the version are not board values.
    #[error("board values do not decode: {0}")]
    Malformed(#[from] postcard::Error),
    /// Bytes are left over after the values.
    #[error("board values have {0} bytes left over")]
    Trailing(usize),
    /// A state message names another generation than the datagram that carried it.
    #[error("board state of generation {state} came in a datagram of generation {datagram}")]
    Generation {
        /// The state's generation.
        state: u64,
        /// The datagram's.
        datagram: u64,
    },
    /// An instance's service is not a service name (the text is escaped and cut).
    #[error("board values name a service {0}, which is not a service name")]
    ServiceName(String),
    /// The load table is longer than allowed or not strictly sorted by service index.
    #[error("board values carry a load table {0}")]
    Load(String),
}

impl BoardValues {
    /// Whether the values carry a load table (and so are written in [`VALUES_VERSION`]).
    pub fn has_load(&self) -> bool {
        self.load_bucket != 0 || !self.load.is_empty()
    }

    /// The same values without the load table: what the previous release reads.
    pub fn without_load(&self) -> BoardValues {
        BoardValues {
            load_bucket: 0,
            load: Vec::new(),
            ..self.clone()
        }
    }

    /// The version byte, then the values in postcard.
    pub fn encode(&self) -> Vec<u8> {
        if !self.has_load() {
            let fields = (
                &self.api,
                &self.capacity,
                &self.labels,
                &self.digest,
                &self.instances,
                &self.net,
            );
            let out = vec![VALUES_VERSION_NO_LOAD];
            return postcard::to_extend(&fields, out).unwrap_or_else(|_| vec![VALUES_VERSION]);
        }
        let out = vec![VALUES_VERSION];
        // Serializing plain integers, strings, maps and options into a Vec cannot fail.
        postcard::to_extend(self, out).unwrap_or_else(|_| vec![VALUES_VERSION])
    }

    /// Reads what [`BoardValues::encode`] wrote, refusing other versions, oversize input and
    /// anything that is not exactly one value.
    pub fn decode(bytes: &[u8]) -> Result<BoardValues, ValuesError> {
        if bytes.len() > MAX_VALUES_BYTES {
            return Err(ValuesError::TooLarge {
                len: bytes.len(),
                max: MAX_VALUES_BYTES,
            });
        }
        let (&version, body) = bytes.split_first().ok_or(ValuesError::Empty)?;
        let values = if version == VALUES_VERSION_NO_LOAD {
            let (fields, rest) = postcard::take_from_bytes::<NoLoad>(body)?;
            if !rest.is_empty() {
                return Err(ValuesError::Trailing(rest.len()));
            }
            let (api, capacity, labels, digest, instances, net) = fields;
            BoardValues {
                api,
                capacity,
                labels,
                digest,
                instances,
                net,
                ..BoardValues::default()
            }
        } else {
            Self::decode_current(version, body)?
        };
        // Service names reach the supervisor (remote instances) and the API: the same rule as
        // for spec records.
        if let Some(bad) = values
            .instances
            .keys()
            .find(|name| !baton_spec::service::is_service_name(name))
        {
            return Err(ValuesError::ServiceName(crate::desired::admit::escaped(
                bad,
            )));
        }
        check_load(&values.load)?;
        Ok(values)
    }

    /// Reads values of [`VALUES_VERSION`], refusing other versions.
    fn decode_current(version: u8, body: &[u8]) -> Result<BoardValues, ValuesError> {
        match version.cmp(&VALUES_VERSION) {
            std::cmp::Ordering::Greater => {
                return Err(ValuesError::Newer {
                    found: version,
                    known: VALUES_VERSION,
                })
            }
            std::cmp::Ordering::Less => {
                return Err(ValuesError::Older {
                    found: version,
                    known: VALUES_VERSION,
                })
            }
            std::cmp::Ordering::Equal => {}
        }
        let (values, rest) = postcard::take_from_bytes::<BoardValues>(body)?;
        if !rest.is_empty() {
            return Err(ValuesError::Trailing(rest.len()));
        }
        Ok(values)
    }
}

/// A load table from another board: a build of ours sends at most
/// [`crate::scale::MAX_LOAD_ENTRIES`] entries by strictly increasing index, so anything else is
/// refused rather than guessed at (the sums of the decision would otherwise count a service
/// twice).
fn check_load(load: &[ServiceLoad]) -> Result<(), ValuesError> {
    let max = crate::scale::MAX_LOAD_ENTRIES;
    if load.len() > max {
        return Err(ValuesError::Load(format!(
            "of {} entries, more than the {max} allowed",
            load.len()
        )));
    }
    if let Some(pair) = load.windows(2).find(|p| p[0].service >= p[1].service) {
        return Err(ValuesError::Load(format!(
            "whose service index {} follows {}: indexes must increase",
            pair[1].service, pair[0].service
        )));
    }
    Ok(())
}

#[cfg(test)]
#[path = "values_load_tests.rs"]
mod load_tests;

#[cfg(test)]
mod tests {
    use super::*;

    /// A busy board: labels, the mesh, and `services` services of `each` instances with names
    /// of `name_len` characters.
    pub(super) fn busy(services: usize, each: u32, name_len: usize) -> BoardValues {
        let instances = (0..services)
            .map(|s| {
                let name = format!("{s:0>name_len$}");
                let list = (1..=each)
                    .map(|slot| RunningInstance {
                        slot,
                        phase: InstancePhase::Running,
                        address: Some(Ipv4Addr::new(10, 88, 201, (s * 8) as u8 + slot as u8)),
                        ready: slot % 2 == 0,
                    })
                    .collect();
                (name, list)
            })
            .collect();
        BoardValues {
            api: Some(SocketAddrV4::new(Ipv4Addr::new(192, 168, 1, 10), 7070)),
            capacity: Some(Capacity {
                cpu_millis: 4000,
                memory_bytes: 7 << 30,
            }),
            labels: BTreeMap::from([
                ("disk".to_string(), "ssd".to_string()),
                ("zone".to_string(), "attic".to_string()),
            ]),
            digest: Some("0123456789abcdef".to_string()),
            instances,
            net: Some(MeshEndpoint {
                subnet: Ipv4Addr::new(10, 88, 201, 0),
                prefix: 24,
                key: [7; 32],
                port: 51820,
            }),
            load_bucket: 0,
            load: Vec::new(),
        }
    }

    #[test]
    fn values_round_trip() {
        // No load since the start: the previous release's version.
        let values = busy(3, 2, 8);
        let bytes = values.encode();
        assert_eq!(bytes[0], VALUES_VERSION_NO_LOAD);
        assert_eq!(BoardValues::decode(&bytes), Ok(values.clone()));
        let empty = BoardValues::default();
        assert_eq!(BoardValues::decode(&empty.encode()), Ok(empty));
        // A load table (or a bucket: a load seen since): this version.
        let loaded = BoardValues {
            load_bucket: 7,
            ..values
        };
        let bytes = loaded.encode();
        assert_eq!(bytes[0], VALUES_VERSION);
        assert_eq!(BoardValues::decode(&bytes), Ok(loaded));
    }

    #[test]
    fn values_without_load_are_what_the_previous_release_reads() {
        // The previous release's BoardValues: the same fields, without the load.
        #[derive(Serialize)]
        struct Previous {
            api: Option<SocketAddrV4>,
            capacity: Option<Capacity>,
            labels: BTreeMap<String, String>,
            digest: Option<String>,
            instances: BTreeMap<String, Vec<RunningInstance>>,
            net: Option<MeshEndpoint>,
        }
        let values = busy(3, 2, 8);
        let previous = Previous {
            api: values.api,
            capacity: values.capacity,
            labels: values.labels.clone(),
            digest: values.digest.clone(),
            instances: values.instances.clone(),
            net: values.net,
        };
        let theirs = postcard::to_extend(&previous, vec![1]).expect("encodes");
        assert_eq!(values.encode(), theirs);
        assert_eq!(BoardValues::decode(&theirs), Ok(values));
    }

    #[test]
    fn a_busy_board_fits_one_datagram() {
        // 12 services of 3 instances, names of 16 characters: 36 instances.
        let len = busy(12, 3, 16).encode().len();
        assert!(len < 700, "{len} bytes");
        // 48 instances of services with 24-character names still fit the sealed payload.
        let len = busy(16, 3, 24).encode().len();
        assert!(len < 1100, "{len} bytes");
    }

    #[test]
    fn garbage_is_refused() {
        assert_eq!(BoardValues::decode(&[]), Err(ValuesError::Empty));
        let bytes = busy(2, 2, 4).encode();
        assert!(matches!(
            BoardValues::decode(&bytes[..bytes.len() - 3]),
            Err(ValuesError::Malformed(_))
        ));
        let mut longer = bytes.clone();
        longer.extend_from_slice(&[0, 0]);
        assert_eq!(BoardValues::decode(&longer), Err(ValuesError::Trailing(2)));
        // The JSON map of earlier builds is not board values.
        let old = br#"{"api":"10.0.0.1:7070","cap":"4000 1"}"#;
        assert!(BoardValues::decode(old).is_err());
        // An unknown phase (a discriminant past the last) is refused, not guessed.
        let mut values = BoardValues::default();
        values.instances.insert(
            "a".into(),
            vec![RunningInstance {
                slot: 1,
                phase: InstancePhase::Stopped,
                address: None,
                ready: false,
            }],
        );
        let mut bytes = values.encode();
        // The last bytes: phase, no address, not ready, then no mesh endpoint.
        let phase_at = bytes.len() - 4;
        assert_eq!(bytes[phase_at], 5, "the phase byte of Stopped");
        bytes[phase_at] = 200;
        assert!(matches!(
            BoardValues::decode(&bytes),
            Err(ValuesError::Malformed(_))
        ));
    }

    #[test]
    fn instances_of_a_service_that_is_not_a_service_name_are_refused() {
        for bad in ["../cluster", "Web", ""] {
            let mut values = busy(1, 1, 3);
            values.instances.insert(bad.to_string(), Vec::new());
            assert_eq!(
                BoardValues::decode(&values.encode()),
                Err(ValuesError::ServiceName(crate::desired::admit::escaped(
                    bad
                ))),
                "{bad:?}"
            );
        }
        let err = ValuesError::ServiceName(crate::desired::admit::escaped("../cluster"));
        assert_eq!(
            err.to_string(),
            "board values name a service \"../cluster\", which is not a service name"
        );
    }

    #[test]
    fn oversize_input_is_refused_before_decoding() {
        let mut bytes = vec![VALUES_VERSION];
        bytes.resize(MAX_VALUES_BYTES + 1, 0);
        assert_eq!(
            BoardValues::decode(&bytes),
            Err(ValuesError::TooLarge {
                len: MAX_VALUES_BYTES + 1,
                max: MAX_VALUES_BYTES
            })
        );
        // A length prefix claiming more than is there fails without allocating it.
        let mut lying = vec![VALUES_VERSION, 0, 0, 0xff, 0xff, 0x03];
        lying.extend_from_slice(b"ab");
        assert!(BoardValues::decode(&lying).is_err());
    }

    #[test]
    fn values_of_another_version_are_refused_clearly() {
        let mut newer = busy(1, 1, 3).encode();
        newer[0] = VALUES_VERSION + 1;
        let err = BoardValues::decode(&newer).unwrap_err();
        assert_eq!(
            err,
            ValuesError::Newer {
                found: VALUES_VERSION + 1,
                known: VALUES_VERSION
            }
        );
        assert!(err.to_string().contains("newer build"), "{err}");
        let mut older = busy(1, 1, 3).encode();
        older[0] = 0;
        let err = BoardValues::decode(&older).unwrap_err();
        assert!(matches!(err, ValuesError::Older { found: 0, .. }), "{err}");
        assert!(err.to_string().contains("older build"), "{err}");
    }
}
