//! The instances behind the routes: which one gets a request ([`balance`]), which are kept out
//! for failing ([`health`]), and what they carry (the counters the `Load` report is made of).
//!
//! No I/O here: the proxy picks an instance, connects, and reports the outcome; everything
//! takes the time as an argument, so the tests run on a clock of their own.

pub mod balance;
pub mod health;
mod pick;
pub(crate) mod slot;

pub use balance::{Balancer, SetError, MAX_SERVICES, MAX_SERVICE_INSTANCES};
pub use pick::Pick;
pub use slot::{InFlight, RetryPermit, RETRY_SHARE};

#[cfg(test)]
mod load_tests;
#[cfg(test)]
mod tests;
