//! The last step in the container process: confine it, then exec the workload.

use std::sync::Arc;

use libcontainer::workload::default::DefaultExecutor;
use libcontainer::workload::{Executor, ExecutorError, ExecutorValidationError};
use nix::sys::signal::Signal;
use oci_spec::runtime::Spec;

use super::seccomp::{self, Profile};

/// libcontainer's default executor preceded by `PDEATHSIG = SIGKILL` (the container dies with
/// the helper) and the seccomp [`Profile`]. libcontainer calls it after it has set
/// no_new_privs, switched to the container's user and dropped capabilities, so the filter is
/// installed unprivileged and covers only the workload.
#[derive(Clone)]
pub struct Confined {
    profile: Arc<Profile>,
}

impl Confined {
    /// An executor installing `profile`.
    pub fn new(profile: Arc<Profile>) -> Confined {
        Confined { profile }
    }
}

impl Executor for Confined {
    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        // Errors go to the container's stderr (the caller's log pipe): nothing else sees them.
        if let Err(e) = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL) {
            eprintln!("baton: cannot set the parent-death signal: {e}");
            return Err(ExecutorError::Other(format!(
                "prctl(PR_SET_PDEATHSIG): {e}"
            )));
        }
        if let Err(e) = seccomp::install(&self.profile) {
            eprintln!("baton: cannot install the seccomp filter: {e}");
            return Err(ExecutorError::Other(format!("seccomp: {e}")));
        }
        let result = DefaultExecutor {}.exec(spec);
        if let Err(e) = &result {
            eprintln!("baton: cannot start the workload: {e}");
        }
        result
    }

    fn validate(&self, spec: &Spec) -> Result<(), ExecutorValidationError> {
        DefaultExecutor {}.validate(spec)
    }
}
