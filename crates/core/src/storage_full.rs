//! Recognising a full storage: an I/O error of `ENOSPC` (no space left on the device) or
//! `EDQUOT` (disk quota exceeded), anywhere in an error's source chain. Backends recognise
//! their own forms on top of this (SQLite's `SQLITE_FULL` in the store crate) and report them
//! as the `STORAGE_FULL` code, so a client and an operator see the cause, not an internal
//! error.

use std::io;

/// What a client is told when a change failed because the storage is full.
pub const MESSAGE: &str = "The server's storage is full: the change was not recorded. \
                           Free space in the data directory and retry.";

/// `ENOSPC` and `EDQUOT` on Linux (std maps them to [`io::ErrorKind::StorageFull`] and
/// [`io::ErrorKind::QuotaExceeded`]; the raw numbers are checked too, for errors built from
/// a raw code by hand).
#[cfg(target_os = "linux")]
const RAW_CODES: &[i32] = &[28, 122];
#[cfg(not(target_os = "linux"))]
const RAW_CODES: &[i32] = &[];

/// Whether `e` says the storage is full: no space left on the device, or a disk quota
/// exceeded.
pub fn is_storage_full(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    ) || e
        .raw_os_error()
        .is_some_and(|code| RAW_CODES.contains(&code))
}

/// Whether `e` or any of its sources is an I/O error that [`is_storage_full`].
pub fn in_chain(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(e) = next {
        if e.downcast_ref::<io::Error>().is_some_and(is_storage_full) {
            return true;
        }
        next = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("writing the object")]
    struct Writing(#[source] io::Error);

    #[test]
    fn no_space_and_quota_are_storage_full() {
        assert!(is_storage_full(&io::Error::from_raw_os_error(28)));
        assert!(is_storage_full(&io::Error::from(
            io::ErrorKind::StorageFull
        )));
        assert!(is_storage_full(&io::Error::from(
            io::ErrorKind::QuotaExceeded
        )));
        #[cfg(target_os = "linux")]
        assert!(is_storage_full(&io::Error::from_raw_os_error(122)));
        assert!(!is_storage_full(&io::Error::from_raw_os_error(5))); // EIO
        assert!(!is_storage_full(&io::Error::other("no space left")));
    }

    #[test]
    fn the_chain_is_searched() {
        let full = Writing(io::Error::from_raw_os_error(28));
        assert!(in_chain(&full));
        let other = Writing(io::Error::from(io::ErrorKind::PermissionDenied));
        assert!(!in_chain(&other));
    }
}
