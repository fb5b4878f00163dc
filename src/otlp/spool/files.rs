//! The spool's directory and the files in it: what is trusted, what is refused.
//!
//! The directory is named by the operator (`TELEMETRY_SPOOL_DIR`) and trusted as a
//! path, links included. What is in it is not: the spool opens only its own names
//! (`lock`, `cursor`, `<20 digits>.seg`), and each of them
//!
//! * without following a link at the last component (`O_NOFOLLOW`): a link planted
//!   as `lock` or `cursor` cannot make the app truncate or overwrite the file it
//!   points to, nor a link named like a segment make it read `/dev/zero`;
//! * without blocking (`O_NONBLOCK`, which changes nothing for a regular file): a FIFO
//!   named like a segment cannot stall the export thread waiting for a writer;
//! * then checked with `fstat` on the open descriptor (not the name, which could
//!   change in between): anything but a regular file is refused, left alone and
//!   reported; a segment larger than any this spool writes is not read.
//!
//! The directory itself must be writable by its owner only (no group or other write
//! bit) and belong to the user the app runs as (or to root): otherwise another user
//! could plant such files in it, or swap a segment between two runs. It is refused,
//! not tightened: a directory someone made shared was made so on purpose, and
//! quietly changing its mode would hide the problem rather than solve it.

use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::path::Path;

/// The highest segment number this spool writes or reads. Segments are numbered from
/// 1, one per 4 MiB at most, so it is never reached; a name above it is not one of
/// ours, and `next + 1` can never overflow.
pub(super) const MAX_SEGMENT_NUMBER: u64 = 999_999_999_999_999_999;

/// What a name in the spool directory is to the spool.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Name {
    /// `<20 digits>.seg`, within the range.
    Segment(u64),
    /// `<20 digits>.seg` past [`MAX_SEGMENT_NUMBER`] (or past `u64`).
    OutOfRange,
    /// `<20 digits>.seg.tmp`: a segment being rewritten when a run ended.
    Temporary,
    /// Anything else (`lock`, `cursor`, files of other programs).
    Other,
}

pub(super) fn segment_name(segment: u64) -> String {
    format!("{segment:020}.seg")
}

pub(super) fn temporary_name(segment: u64) -> String {
    format!("{segment:020}.seg.tmp")
}

pub(super) fn classify(name: &OsStr) -> Name {
    let Some(name) = name.to_str() else {
        return Name::Other;
    };
    let (digits, temporary) = match (name.strip_suffix(".seg"), name.strip_suffix(".seg.tmp")) {
        (Some(digits), _) => (digits, false),
        (None, Some(digits)) => (digits, true),
        (None, None) => return Name::Other,
    };
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Name::Other;
    }
    match digits.parse::<u64>() {
        Ok(n) if n <= MAX_SEGMENT_NUMBER && temporary => Name::Temporary,
        Ok(n) if n <= MAX_SEGMENT_NUMBER => Name::Segment(n),
        _ if temporary => Name::Other,
        _ => Name::OutOfRange,
    }
}

/// Why a file of the spool was not opened or read.
#[derive(Debug)]
pub(super) enum Refusal {
    /// Not a regular file: what it is instead ("a symbolic link", "a FIFO", ...).
    NotRegular(&'static str),
    /// A segment of this many bytes, more than the spool ever writes.
    TooLarge {
        size: u64,
        max: u64,
    },
    Io(io::Error),
}

impl From<io::Error> for Refusal {
    fn from(err: io::Error) -> Self {
        Refusal::Io(err)
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::NotRegular(what) => write!(f, "is {what}, not a regular file"),
            Refusal::TooLarge { size, max } => write!(
                f,
                "holds {size} bytes, more than any segment of this spool (at most {max})"
            ),
            Refusal::Io(err) => write!(f, "cannot be read ({err})"),
        }
    }
}

/// What a file that is not a regular one is, in words.
pub(super) fn describe(kind: fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return "a FIFO";
        }
        if kind.is_socket() {
            return "a socket";
        }
        if kind.is_block_device() || kind.is_char_device() {
            return "a device";
        }
    }
    if kind.is_symlink() {
        "a symbolic link"
    } else if kind.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
}

/// Opens `path` with `options`, refusing anything but a regular file: never through a
/// link at the last component, never blocking on a FIFO or a device.
pub(super) fn open_regular(path: &Path, options: &mut OpenOptions) -> Result<File, Refusal> {
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(
        options,
        libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC,
    );
    let file = match options.open(path) {
        Ok(file) => file,
        Err(err) => {
            // ELOOP (a link), EISDIR, ENXIO (a socket): say what is there.
            return Err(match fs::symlink_metadata(path) {
                Ok(meta) if !meta.file_type().is_file() => {
                    Refusal::NotRegular(describe(meta.file_type()))
                }
                _ => Refusal::Io(err),
            });
        }
    };
    let kind = file.metadata()?.file_type();
    if !kind.is_file() {
        return Err(Refusal::NotRegular(describe(kind)));
    }
    Ok(file)
}

/// The bytes of a segment, if it is a regular file of at most `max` bytes.
pub(super) fn read_segment(path: &Path, max: u64) -> Result<Vec<u8>, Refusal> {
    let file = open_regular(path, OpenOptions::new().read(true))?;
    let size = file.metadata()?.len();
    if size > max {
        return Err(Refusal::TooLarge { size, max });
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    // Bounded again: the file may grow between fstat and read.
    file.take(max.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(Refusal::TooLarge {
            size: bytes.len() as u64,
            max,
        });
    }
    Ok(bytes)
}

/// Whether `path` is a segment the spool would read (a regular file, opened as
/// [`read_segment`] opens it, of at most `max` bytes), without reading it: checked
/// before a segment the cursor says was accepted is deleted, so that a file the spool
/// refuses to read is never one it deletes either.
pub(super) fn check_segment(path: &Path, max: u64) -> Result<(), Refusal> {
    let file = open_regular(path, OpenOptions::new().read(true))?;
    let size = file.metadata()?.len();
    if size > max {
        return Err(Refusal::TooLarge { size, max });
    }
    Ok(())
}

/// Creates (0700) or opens a directory.
pub(super) fn create_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Why the directory is not one the spool may use, in words that name its mode or
/// owner and what to do; `None` when it is fine.
pub(super) fn unsafe_dir(dir: &Path) -> io::Result<Option<String>> {
    let meta = fs::metadata(dir)?;
    if !meta.is_dir() {
        return Ok(Some("it is not a directory".to_owned()));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let mode = meta.mode() & 0o7777;
        if mode & 0o022 != 0 {
            let who = match (mode & 0o020 != 0, mode & 0o002 != 0) {
                (true, true) => "group and others",
                (true, false) => "its group",
                _ => "others",
            };
            return Ok(Some(format!(
                "it is writable by {who} (mode {mode:04o}), who could plant links or files in it; the spool \
                 only uses a directory no one but its owner can write to (chmod go-w {}, or name another \
                 directory)",
                dir.display()
            )));
        }
        // SAFETY: geteuid takes no arguments, touches no memory and cannot fail.
        let me = unsafe { libc::geteuid() };
        let owner = meta.uid();
        if owner != me && owner != 0 {
            return Ok(Some(format!(
                "it belongs to user {owner}, not to the user this process runs as ({me}), and its owner \
                 could plant links or files in it; the spool only uses a directory of its own user (or of \
                 root)"
            )));
        }
    }
    Ok(None)
}

/// Options for a file only this user may read (0600).
pub(super) fn private_file() -> OpenOptions {
    #[cfg_attr(not(unix), allow(unused_mut))]
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

/// Makes a new directory entry durable.
pub(super) fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(dir) = File::open(dir) {
        let _ = dir.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let name = |s: &str| classify(OsStr::new(s));
        assert_eq!(name("00000000000000000007.seg"), Name::Segment(7));
        assert_eq!(name("00000000000000000007.seg.tmp"), Name::Temporary);
        assert_eq!(
            name(&segment_name(MAX_SEGMENT_NUMBER)),
            Name::Segment(MAX_SEGMENT_NUMBER)
        );
        assert_eq!(name("01000000000000000000.seg"), Name::OutOfRange);
        assert_eq!(name("18446744073709551614.seg"), Name::OutOfRange);
        assert_eq!(name("18446744073709551615.seg"), Name::OutOfRange);
        assert_eq!(name("99999999999999999999.seg"), Name::OutOfRange);
        assert_eq!(name("99999999999999999999.seg.tmp"), Name::Other);
        for other in [
            "7.seg",
            "lock",
            "cursor",
            "0000000000000000000x.seg",
            "+0000000000000000007.seg",
        ] {
            assert_eq!(name(other), Name::Other, "{other}");
        }
    }
}
