//! The entropy seed: a Pi has little entropy at boot, so a seed saved on the data partition is
//! credited to the kernel early, and replaced by a fresh one at once so no seed is used twice.

use std::io;

use crate::board::context::Ctx;
use crate::board::persist;

/// Bytes of seed.
pub const SEED_LEN: usize = 512;

/// Board path of the seed file.
pub fn seed_path() -> String {
    format!("{}/random-seed", persist::DIR)
}

/// Errors with the seed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The saved seed could not be read.
    #[error("cannot read entropy seed {path}: {source}")]
    Read {
        /// Seed file.
        path: String,
        /// Cause.
        source: io::Error,
    },
    /// The kernel did not take the seed.
    #[error("cannot credit entropy seed {path} to the kernel: {source}")]
    Credit {
        /// Seed file.
        path: String,
        /// Cause.
        source: io::Error,
    },
    /// A new seed could not be made or written.
    #[error("cannot write a new entropy seed to {path}: {source}")]
    Write {
        /// Seed file.
        path: String,
        /// Cause.
        source: io::Error,
    },
}

/// Credits the saved seed (if there is one), then replaces it. Returns whether a seed was
/// credited, and the errors met on the way (each step is tried regardless).
pub fn seed(ctx: &Ctx) -> (bool, Vec<Error>) {
    let path = seed_path();
    let mut errors = Vec::new();
    let mut credited = false;
    match std::fs::read(ctx.path(&path)) {
        Ok(seed) if !seed.is_empty() => match ctx.sys.add_entropy(&seed) {
            Ok(()) => credited = true,
            Err(source) => errors.push(Error::Credit {
                path: path.clone(),
                source,
            }),
        },
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(source) => errors.push(Error::Read {
            path: path.clone(),
            source,
        }),
    }
    if let Err(e) = save(ctx) {
        errors.push(e);
    }
    (credited, errors)
}

/// Writes a fresh seed from the kernel's generator (at boot, and again at shutdown).
pub fn save(ctx: &Ctx) -> Result<(), Error> {
    let path = seed_path();
    let mut seed = vec![0u8; SEED_LEN];
    ctx.sys
        .random_bytes(&mut seed)
        .and_then(|()| persist::write_atomic(&ctx.path(&path), &seed))
        .map_err(|source| Error::Write { path, source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boot::testbed::Testbed;

    #[test]
    fn credits_the_old_seed_and_never_reuses_it() {
        let tb = Testbed::new();
        tb.file(&seed_path(), [0xAB; SEED_LEN]);
        let (credited, errors) = seed(&tb.ctx);
        assert!(credited && errors.is_empty(), "{errors:?}");
        assert_eq!(
            tb.sys.calls(),
            [
                format!("entropy {SEED_LEN} abababab"),
                format!("random {SEED_LEN}")
            ]
        );
        let first = tb.read(&seed_path());
        assert_eq!(first.len(), SEED_LEN);
        assert_ne!(first, vec![0xAB; SEED_LEN]);
        // The next boot credits the seed written by this one, then replaces it again.
        let (credited, _) = seed(&tb.ctx);
        assert!(credited);
        assert_eq!(tb.sys.calls()[2], format!("entropy {SEED_LEN} 01020304"));
        assert_ne!(tb.read(&seed_path()), first);
    }

    #[test]
    fn first_boot_only_writes_a_seed() {
        let tb = Testbed::new();
        let (credited, errors) = seed(&tb.ctx);
        assert!(!credited && errors.is_empty());
        assert_eq!(tb.sys.calls(), [format!("random {SEED_LEN}")]);
        assert_eq!(tb.read(&seed_path()).len(), SEED_LEN);
    }

    #[test]
    fn a_refused_seed_is_still_replaced() {
        let tb = Testbed::new();
        tb.file(&seed_path(), [1; 16]);
        tb.sys.fail("entropy", nix::libc::EPERM);
        let (credited, errors) = seed(&tb.ctx);
        assert!(!credited);
        assert_eq!(errors.len(), 1);
        assert!(errors[0].to_string().contains("random-seed"));
        assert_eq!(tb.read(&seed_path()).len(), SEED_LEN);
    }
}
