//! The JSON-lines file: private, appended to, never through a symbolic link, and
//! re-created when rotation or deletion takes it away.

use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How often the path is checked to still name the open file.
const REOPEN_CHECK: Duration = Duration::from_secs(1);

/// The telemetry file, as the writer thread holds it.
///
/// * Created readable by its owner only (0600), opened for appending.
/// * The final path component is never followed if it is a symbolic link
///   (`O_NOFOLLOW`): a link planted where the file should be cannot redirect records
///   into another file. Opening then fails with "too many levels of symbolic links".
/// * Opened without blocking (`O_NONBLOCK`): a FIFO that no process reads fails at
///   once ("no such device or address") instead of hanging; once open, writes block
///   as usual, on the writer thread only.
/// * Rotation that moves the file away, or deletion, is noticed within a second
///   (the path no longer names the open file) and the path is created anew. While it
///   cannot be (its directory was removed), writes fail and are counted.
#[derive(Debug)]
pub(crate) struct AppendFile {
    path: PathBuf,
    /// `None` while the path could not be opened.
    file: Option<File>,
    last_check: Option<Instant>,
}

impl AppendFile {
    /// Opens `path` now.
    pub(crate) fn open(path: &Path) -> io::Result<Self> {
        Ok(AppendFile {
            path: path.to_owned(),
            file: Some(open_append(path)?),
            last_check: Some(Instant::now()),
        })
    }

    /// A file opened on first write: an open error then counts as a write error.
    pub(crate) fn deferred(path: &Path) -> Self {
        AppendFile {
            path: path.to_owned(),
            file: None,
            last_check: None,
        }
    }

    /// The file to write to, re-opened when the path no longer names it (checked at
    /// most once a second).
    fn writable(&mut self) -> io::Result<&mut File> {
        let due = self
            .last_check
            .map_or(true, |at| at.elapsed() >= REOPEN_CHECK);
        if due {
            self.last_check = Some(Instant::now());
            let current = self
                .file
                .as_ref()
                .is_some_and(|file| same_file(file, &self.path));
            if !current {
                match open_append(&self.path) {
                    Ok(file) => self.file = Some(file),
                    Err(err) => {
                        self.file = None;
                        return Err(err);
                    }
                }
            }
        }
        self.file.as_mut().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "{} was removed and cannot be re-created",
                    self.path.display()
                ),
            )
        })
    }
}

impl Write for AppendFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writable()?.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.writable()?.write_all(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.writable()?.write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Whether `path` (not followed if it is a link) names the open `file`.
#[cfg(unix)]
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::symlink_metadata(path)) {
        (Ok(open), Ok(named)) => open.dev() == named.dev() && open.ino() == named.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_file: &File, path: &Path) -> bool {
    path.exists()
}

/// Opens for appending, creating the file readable by its owner only, without
/// following a link at the final component and without blocking on a FIFO.
fn open_append(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC);
    }
    let file = options.open(path)?;
    #[cfg(unix)]
    blocking(&file)?;
    Ok(file)
}

/// Clears `O_NONBLOCK` again: it was only there so that opening cannot hang.
#[cfg(unix)]
fn blocking(file: &File) -> io::Result<()> {
    use std::os::unix::io::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: `fd` is a descriptor `file` owns, open for the whole call; F_GETFL and
    // F_SETFL read and set its status flags and touch no memory.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}
