//! PID 1's own resource limits. The kernel starts init with 1,024 open files, fewer than the
//! API's connection cap alone; the limit is raised first thing at boot. Containers do not
//! inherit it: their OCI spec sets `RLIMIT_NOFILE` explicitly (`containers::runtime::spec`).

use std::io;

/// Open files PID 1 asks for (soft and hard limit).
pub const OPEN_FILES: u64 = 65_536;

/// Raises this process's open-file limit to at least `want` when it can: soft and hard to
/// `want` with privilege, else the soft limit up to the hard one. Never lowers either. Returns
/// the soft limit in force afterwards.
pub fn raise_open_files(want: u64) -> io::Result<u64> {
    let (soft, hard) = get()?;
    if soft >= want {
        return Ok(soft);
    }
    match set(want, hard.max(want)) {
        Ok(()) => Ok(want),
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
            set(want.min(hard), hard)?;
            Ok(want.min(hard))
        }
        Err(e) => Err(e),
    }
}

/// The open-file limit (soft, hard).
pub fn get() -> io::Result<(u64, u64)> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable rlimit the call fills in.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((limit.rlim_cur, limit.rlim_max))
}

fn set(soft: u64, hard: u64) -> io::Result<()> {
    let limit = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: `limit` is a valid rlimit that the call only reads.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_is_raised_and_never_lowered() {
        let (before, _) = get().expect("getrlimit");
        let now = raise_open_files(OPEN_FILES).expect("setrlimit");
        assert!(now >= before.min(OPEN_FILES), "{now} < {before}");
        // Tests run as root: the hard limit is raised too.
        assert!(get().expect("getrlimit").0 >= OPEN_FILES.min(now));
        assert_eq!(
            raise_open_files(16).expect("no change"),
            get().expect("getrlimit").0
        );
    }
}
