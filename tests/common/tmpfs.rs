//! A small file system of a test's own (tmpfs), to fill up: mounted on a
//! temporary directory and unmounted when dropped, also when the test fails.
//!
//! Mounting needs root (or a user namespace). Where it is not permitted the
//! test says so loudly on stderr and skips, except in CI as root, where a
//! mount that fails is a failure: the test must run there.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// ENOSPC: no space left on device.
const NO_SPACE: i32 = 28;

/// A mounted tmpfs; unmounted when dropped.
pub struct Tmpfs {
    mount_point: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `bytes` for the test `who`, or says why not and
    /// returns `None` (failing instead in CI as root).
    pub fn mount_or_skip(bytes: u64, who: &str) -> Option<Tmpfs> {
        match Tmpfs::mount(bytes) {
            Ok(tmpfs) => Some(tmpfs),
            Err(why) => {
                let ci = std::env::var("CI").is_ok_and(|v| v == "true");
                if ci && is_root() {
                    panic!("{who}: cannot mount a tmpfs as root in CI: {why}");
                }
                // Straight to stderr: the harness would hide `eprintln!` of a
                // passing test.
                let _ = writeln!(
                    std::io::stderr(),
                    "\n*** SKIPPED: {who}: cannot mount a tmpfs, so no full disk was tested: \
                     {why}; run as root to test it (CI fails without it) ***\n"
                );
                None
            }
        }
    }

    fn mount(bytes: u64) -> Result<Tmpfs, String> {
        let mount_point = tempfile::tempdir().map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes},mode=0700")])
            .arg("tmpfs")
            .arg(mount_point.path())
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            return Err(stderr.lines().next().unwrap_or("mount failed").to_string());
        }
        Ok(Tmpfs { mount_point })
    }

    pub fn path(&self) -> &Path {
        self.mount_point.path()
    }

    /// Fills the file system with a file of its own until not one more
    /// byte fits.
    pub fn fill(&self) -> Filler {
        let path = self.path().join("filler");
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .expect("create the filler");
        let chunk = vec![0xf1u8; 256 << 10];
        loop {
            match file.write(&chunk) {
                Ok(0) => break,
                Ok(_) => {}
                Err(err) if err.raw_os_error() == Some(NO_SPACE) => break,
                Err(err) => panic!("filling the disk: {err}"),
            }
        }
        Filler { file, path }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let path = self.mount_point.path().to_path_buf();
        let unmounted = Command::new("umount")
            .arg(&path)
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            // Something still holds a file there: detach it anyway, so no
            // mount outlives the test.
            let lazy = Command::new("umount").arg("-l").arg(&path).status();
            if !lazy.is_ok_and(|s| s.success()) {
                eprintln!(
                    "!!! could not unmount the test's tmpfs at {}",
                    path.display()
                );
            }
        }
    }
}

/// The file that takes up a full disk's space.
pub struct Filler {
    file: File,
    path: PathBuf,
}

impl Filler {
    /// Frees `bytes` of the space the filler holds (all it has, at most).
    pub fn give_back(&mut self, bytes: u64) {
        let len = self.file.metadata().expect("filler size").len();
        self.file
            .set_len(len.saturating_sub(bytes))
            .expect("truncate the filler");
    }

    /// Frees all of it.
    pub fn remove(self) {
        std::fs::remove_file(&self.path).expect("remove the filler");
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
            == Some("0")
    })
}
