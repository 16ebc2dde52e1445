//! The board's WireGuard key: an X25519 key pair whose private half lives in a file on the
//! data partition, written the way `wg genkey` writes it (one line of standard base64).

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use x25519_dalek::StaticSecret;
use zeroize::Zeroizing;

use super::Error;

/// Length of a WireGuard (Curve25519) key in bytes.
pub const KEY_LEN: usize = 32;

/// A WireGuard public key. Displays as standard base64 (44 characters, as `wg pubkey` prints
/// it) and parses from the same.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Ord, PartialOrd, Debug)]
pub struct PublicKey(pub [u8; KEY_LEN]);

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&STANDARD.encode(self.0))
    }
}

/// Why a text is not a base64 WireGuard key.
#[derive(Debug, thiserror::Error)]
pub enum KeyDecodeError {
    /// Not base64 at all.
    #[error("bad base64: {0}")]
    Base64(#[from] base64::DecodeError),
    /// Base64 of the wrong length.
    #[error("{0} bytes instead of {KEY_LEN} (a key is 44 characters of base64)")]
    Length(usize),
}

/// Decodes one base64 key; the reason it is not one otherwise.
fn decode_key(text: &str) -> Result<Zeroizing<[u8; KEY_LEN]>, KeyDecodeError> {
    let bytes = Zeroizing::new(STANDARD.decode(text)?);
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    if bytes.len() != KEY_LEN {
        return Err(KeyDecodeError::Length(bytes.len()));
    }
    key.copy_from_slice(&bytes);
    Ok(key)
}

impl FromStr for PublicKey {
    type Err = Error;

    fn from_str(s: &str) -> Result<PublicKey, Error> {
        decode_key(s)
            .map(|k| PublicKey(*k))
            .map_err(|reason| Error::KeyText {
                text: s.chars().take(60).collect(),
                reason,
            })
    }
}

/// The board's key pair. The private key is wiped from memory when the pair is dropped.
pub struct Keypair {
    secret: StaticSecret,
    public: PublicKey,
}

impl fmt::Debug for Keypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keypair")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

impl Keypair {
    /// The pair for a private key (clamped by the X25519 function, as `wg pubkey` does).
    pub fn from_private(private: [u8; KEY_LEN]) -> Keypair {
        let secret = StaticSecret::from(private);
        let public = PublicKey(*x25519_dalek::PublicKey::from(&secret).as_bytes());
        Keypair { secret, public }
    }

    /// Reads the private key from `path` (one line of base64, like `wg genkey` writes), or,
    /// if there is no such file, generates one with the OS random generator and writes it
    /// atomically with mode 0600 (temp file, fsync, rename, fsync of the directory). A file
    /// that is there but is not a key is an error and is left as it is.
    pub fn load_or_create(path: &Path) -> Result<Keypair, Error> {
        let file_error = |source| Error::KeyFile {
            path: path.to_path_buf(),
            source,
        };
        match fs::read_to_string(path) {
            Ok(text) => {
                let text = Zeroizing::new(text);
                let key = decode_key(text.trim()).map_err(|reason| Error::KeyFormat {
                    path: path.to_path_buf(),
                    reason,
                })?;
                Ok(Keypair::from_private(*key))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let mut key = Zeroizing::new([0u8; KEY_LEN]);
                os_random(&mut key[..]).map_err(Error::Random)?;
                // Clamp as `wg genkey` does, so the file reads the same as one it wrote.
                key[0] &= 248;
                key[31] &= 127;
                key[31] |= 64;
                let line = Zeroizing::new(format!("{}\n", STANDARD.encode(*key)));
                write_atomically(path, line.as_bytes()).map_err(file_error)?;
                Ok(Keypair::from_private(*key))
            }
            Err(e) => Err(file_error(e)),
        }
    }

    /// The public key.
    pub fn public(&self) -> PublicKey {
        self.public
    }

    /// The private key, for the kernel.
    pub(super) fn private(&self) -> Zeroizing<[u8; KEY_LEN]> {
        Zeroizing::new(self.secret.to_bytes())
    }
}

/// Fills `buf` from the kernel's random pool (blocking until it is initialised).
fn os_random(buf: &mut [u8]) -> io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        let rest = &mut buf[filled..];
        // SAFETY: `rest` is a valid, writable buffer of `rest.len()` bytes for the whole call.
        let got = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if got < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        filled += got as usize;
    }
    Ok(())
}

/// Writes `bytes` to `path` so that `path` holds either nothing or all of it, mode 0600;
/// creates the parent directory (mode 0700) if needed.
fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "key".to_string());
    let temp = dir.join(format!(".{name}.tmp"));
    // A leftover from a crash may have another mode: start afresh.
    let _ = fs::remove_file(&temp);
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temp, path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&temp);
    }
    written?;
    File::open(&dir)?.sync_all()
}
