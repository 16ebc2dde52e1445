//! Containers: the supervisor that keeps every service's instances running
//! ([`supervisor`]), and the single-threaded helper process that creates and starts them
//! through youki's libcontainer ([`runtime`]).

pub mod runtime;
pub mod supervisor;
