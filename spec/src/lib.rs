//! Configuration types shared by the board's init and the `baton` command (`cluster.toml` and
//! the service specs of [`service`]), and the card's
//! partition table ([`mbr`]) that the image builder, the init and the QEMU runner all use.
//!
//! Every file a user writes is deserialised into a *raw* type that rejects unknown keys, then
//! validated into the type the rest of baton uses. Errors always say which file, which line and
//! which field they are about, so a user editing a card on a laptop can fix the right thing.

pub mod board_config;
pub mod build_info;
mod editor_schema;
pub mod error;
pub mod front_door;
mod locate;
pub mod mbr;
pub mod service;
pub mod time_zone;

pub use board_config::{BoardConfig, NetworkConfig, NetworkMode, StaticAddress};
pub use error::{ConfigError, ConfigErrors};
pub use front_door::FrontDoor;
pub use service::{load_services, ImageSource, LoadedServices, ServiceSpec};
