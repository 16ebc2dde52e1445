//! Each board's private disk: a qcow2 overlay on the read-only image, made with `qemu-img`.
//! The overlay is larger than the image, so the board's data partition has room to grow on
//! first boot, and its size is a power of two, which QEMU requires for SD cards (raspi3b).

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Debian package that ships `qemu-img`.
pub const QEMU_IMG_PACKAGE: &str = "qemu-utils";

/// What went wrong making a disk.
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    /// `qemu-img` is not installed.
    #[error("{program} not found: install the Debian package {QEMU_IMG_PACKAGE}")]
    NotInstalled {
        /// Program that was run.
        program: PathBuf,
    },
    /// `qemu-img` could not be run.
    #[error("cannot run {program}: {source}")]
    Run {
        /// Program that was run.
        program: PathBuf,
        /// Underlying error.
        source: io::Error,
    },
    /// `qemu-img create` failed.
    #[error("qemu-img could not create {overlay} on {image}: {stderr}")]
    Create {
        /// The overlay to create.
        overlay: PathBuf,
        /// The backing image.
        image: PathBuf,
        /// What qemu-img printed.
        stderr: String,
    },
    /// The requested size does not exceed the image.
    #[error("a board disk of {requested} bytes is not larger than the image {image} ({image_size} bytes)")]
    TooSmall {
        /// Requested size.
        requested: u64,
        /// The image.
        image: PathBuf,
        /// Its size.
        image_size: u64,
    },
}

/// The overlay size: `requested` (default: twice the image, at least 1 GiB), rounded up to a
/// power of two. `requested` must exceed the image size.
pub fn overlay_size(
    image: &Path,
    image_size: u64,
    requested: Option<u64>,
) -> Result<u64, DiskError> {
    let want = match requested {
        Some(r) if r <= image_size => {
            return Err(DiskError::TooSmall {
                requested: r,
                image: image.to_path_buf(),
                image_size,
            })
        }
        Some(r) => r,
        None => image_size.saturating_mul(2).max(1 << 30),
    };
    Ok(want.checked_next_power_of_two().unwrap_or(1 << 63))
}

/// Creates `overlay` (qcow2, `size` bytes) backed by the raw `image`, which must be absolute.
pub fn create_overlay(
    qemu_img: &Path,
    image: &Path,
    overlay: &Path,
    size: u64,
) -> Result<(), DiskError> {
    let _ = std::fs::remove_file(overlay);
    let out = Command::new(qemu_img)
        .args(["create", "-q", "-f", "qcow2", "-F", "raw", "-b"])
        .arg(image)
        .arg(overlay)
        .arg(size.to_string())
        .stdin(Stdio::null())
        .output()
        .map_err(|source| match source.kind() {
            io::ErrorKind::NotFound => DiskError::NotInstalled {
                program: qemu_img.to_path_buf(),
            },
            _ => DiskError::Run {
                program: qemu_img.to_path_buf(),
                source,
            },
        })?;
    if !out.status.success() {
        return Err(DiskError::Create {
            overlay: overlay.to_path_buf(),
            image: image.to_path_buf(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_powers_of_two_above_the_image() {
        let img = Path::new("/i.img");
        assert_eq!(overlay_size(img, 600 << 20, None).unwrap(), 2 << 30);
        assert_eq!(overlay_size(img, 48 << 20, None).unwrap(), 1 << 30);
        assert_eq!(
            overlay_size(img, 600 << 20, Some(3 << 30)).unwrap(),
            4 << 30
        );
        let err = overlay_size(img, 600 << 20, Some(600 << 20)).unwrap_err();
        assert!(err.to_string().contains("/i.img"), "{err}");
    }

    #[test]
    fn creates_a_larger_overlay_with_the_image_as_backing_file() {
        // Without qemu-img this fails, naming the package: scripts/setup installs it.
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("base.img");
        std::fs::write(&image, vec![0u8; 1 << 20]).unwrap();
        let overlay = dir.path().join("board1.qcow2");
        create_overlay(Path::new("qemu-img"), &image, &overlay, 8 << 20).unwrap();
        let info = Command::new("qemu-img")
            .args(["info", "--output=json"])
            .arg(&overlay)
            .output()
            .unwrap();
        let info: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
        assert_eq!(info["virtual-size"], 8 << 20);
        assert_eq!(info["format"], "qcow2");
        assert_eq!(info["backing-filename"], image.to_str().unwrap());
    }

    #[test]
    fn names_the_package_when_qemu_img_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let err = create_overlay(
            Path::new("/nonexistent/qemu-img"),
            Path::new("/i"),
            &dir.path().join("o"),
            1,
        )
        .unwrap_err();
        assert!(err.to_string().contains("qemu-utils"), "{err}");
    }
}
