//! Boot baton images under QEMU.
