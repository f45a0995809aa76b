//! The few operating-system calls the standard library does not offer, each
//! behind a safe function: writeback hints for large files, and a thread's
//! priority. Elsewhere than Linux they do nothing.
#![allow(unsafe_code)]

use std::fs::File;
use std::io;

/// Asks the kernel to start writing `len` bytes of `file` from `start` to
/// disk now, without waiting (a hint: errors are ignored).
pub fn start_writeback(file: &File, start: u64, len: u64) {
    #[cfg(target_os = "linux")]
    sync_file_range(file, start, len, libc::SYNC_FILE_RANGE_WRITE);
    #[cfg(not(target_os = "linux"))]
    let _ = (file, start, len);
}

/// Waits until `len` bytes of `file` from `start` are written to disk
/// (starting what is not yet started). Not a durability guarantee: the
/// file's fsync still is (a hint: errors are ignored).
pub fn wait_writeback(file: &File, start: u64, len: u64) {
    #[cfg(target_os = "linux")]
    sync_file_range(
        file,
        start,
        len,
        libc::SYNC_FILE_RANGE_WAIT_BEFORE
            | libc::SYNC_FILE_RANGE_WRITE
            | libc::SYNC_FILE_RANGE_WAIT_AFTER,
    );
    #[cfg(not(target_os = "linux"))]
    let _ = (file, start, len);
}

#[cfg(target_os = "linux")]
fn sync_file_range(file: &File, start: u64, len: u64, flags: libc::c_uint) {
    use std::os::fd::AsRawFd;
    // SAFETY: a system call on a descriptor `file` keeps open for its
    // duration; no memory is passed.
    unsafe {
        libc::sync_file_range(
            file.as_raw_fd(),
            start as libc::off64_t,
            len as libc::off64_t,
            flags,
        );
    }
}

/// Sets the calling thread's nice value (Linux applies a priority set for
/// a thread id to that thread alone).
pub fn lower_thread_priority(nice: i32) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: system calls about the calling thread; no memory is passed.
        let done = unsafe {
            let thread = libc::gettid();
            libc::setpriority(libc::PRIO_PROCESS, thread as libc::id_t, nice)
        };
        if done != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = nice;
    Ok(())
}
