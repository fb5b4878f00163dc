//! The spool: a durable queue of encoded OTLP log requests on disk, for
//! `TELEMETRY_SPOOL_DIR`. Only the export thread touches it.
//!
//! # Layout
//!
//! ```text
//! <dir>/lock                   flock'd by the process that owns the spool; holds its pid
//! <dir>/cursor                 where the oldest entry not yet accepted starts
//! <dir>/00000000000000000007.seg   segments, appended to in order, oldest first
//! ```
//!
//! A segment starts with the 8 bytes `TLMSPL1\n`, then entries, each framed as
//! `len: u32 LE | crc32: u32 LE | payload (len bytes)`, the CRC-32 (IEEE, `crc32fast`)
//! taken over the four length bytes and the payload, so that a torn length is caught
//! as surely as a torn payload. The payload is `records: u32 LE | encoding: u8 (0 none,
//! 1 gzip) | the request body exactly as it is posted` (see `frame.rs`).
//!
//! A run never appends to a segment an earlier run wrote: it starts a new one. On open
//! every segment is read once. What is not a whole, checksummed entry (a crash while
//! writing, a truncated file, a changed byte, garbage) is counted in bytes and skipped,
//! and reading goes on at the next whole entry, so that damage costs the damaged
//! entries only (`frame.rs` says how). A damaged tail is cut off; a segment with
//! damage before whole entries is rewritten without it (a new file renamed over the
//! old one), so that damage is counted once and never sent.
//!
//! # The cursor
//!
//! The cursor is rewritten (not synced) as entries are accepted; a stale or torn cursor
//! only means entries are sent again. It is metadata about the segments, and trusted
//! only while it matches them: a cursor that names a segment that is gone, or an
//! offset past the end of its segment or inside an entry, belongs to segments that are
//! no longer there (deleted by hand, replaced), and is discarded with a message rather
//! than allowed to delete the segments numbered below it, which are then another
//! outage's records. When the last entry is accepted and its segment deleted, the
//! cursor is reset, so that a drained spool leaves no cursor for a later run to trip on.
//!
//! # What is trusted
//!
//! The directory is checked and every file in it opened as `files.rs` describes: only
//! regular files, never through a link, never blocking, segments no larger than the
//! spool writes; the rest is refused, left alone and reported once. Left alone means
//! never deleted or truncated either: a segment the cursor says was accepted is
//! deleted only after the same checks pass on it (a file the spool may not open, or
//! one too large, may hold what is not its own), and a consumed segment only while
//! its name is still a regular file.
//!
//! # Damage and errors
//!
//! Only damage is skipped: an entry whose checksum or framing fails, or that was cut
//! short or deleted underneath. An error reading an entry (EIO, EMFILE, a segment
//! briefly not a regular file) is not damage: the entry stays on disk and in the
//! queue, the error is said once, and the export thread tries again with backoff, so
//! that a transient error never costs the backlog. `frame.rs` says what the checksum
//! does and does not defend against (a CRC is not a MAC).
//!
//! Why CRC-32 through `crc32fast`: the frame only has to catch torn writes and
//! garbage, not an adversary; `crc32fast` is already in the build through `flate2`
//! (gzip needs it), so the check adds no dependency, and it runs at several GB/s.

mod files;
mod frame;
mod recover;
pub(crate) mod stage;

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use files::{Name, Refusal};
#[cfg(test)]
use frame::MAGIC;
use frame::{frame_at, Misfit, FRAME_HEADER, PAYLOAD_HEADER};

#[cfg(test)]
pub(crate) use crate::config::otlp::DEFAULT_SPOOL_BYTES;
pub(crate) use crate::config::otlp::MIN_SPOOL_BYTES;
/// The largest segment, so that dropping the oldest data frees space in small steps
/// and a consumed segment is soon deleted.
const MAX_SEGMENT_BYTES: u64 = 4 * 1024 * 1024;
/// Files refused at open that are named one by one; the rest are counted.
const NAMED_REFUSALS: usize = 8;

/// One spooled request.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Batch {
    /// Log records in the request.
    pub(crate) records: u32,
    /// Whether `body` is gzip-compressed.
    pub(crate) gzip: bool,
    pub(crate) body: Vec<u8>,
}

/// Why a spool could not be opened.
#[derive(Debug)]
pub(crate) enum OpenError {
    /// Another process holds the directory's lock.
    // Only flock reports it: without it (not Unix) nothing makes one.
    #[cfg_attr(not(unix), allow(dead_code))]
    Busy,
    /// The directory, or its lock or cursor, is not one the spool may use: why, in
    /// words (its mode, its owner, a link planted as the lock).
    Refused(String),
    Io(io::Error),
}

impl From<io::Error> for OpenError {
    fn from(err: io::Error) -> Self {
        OpenError::Io(err)
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    segment: u64,
    offset: u64,
    /// The whole frame, header included.
    len: u64,
    records: u32,
}

#[derive(Debug)]
struct Writer {
    segment: u64,
    file: File,
    len: u64,
}

/// The spool of one directory, locked for this process while it is open.
#[derive(Debug)]
pub(crate) struct Spool {
    dir: PathBuf,
    /// Held for the flock; closed (and so unlocked) with the spool.
    _lock: File,
    limit: u64,
    segment_bytes: u64,
    /// Entries not yet accepted, oldest first.
    entries: VecDeque<Entry>,
    /// Bytes of their frames.
    bytes: u64,
    writer: Option<Writer>,
    reader: Option<(u64, File)>,
    next_segment: u64,
    cursor: File,
    frame: Vec<u8>,
    /// Bytes of torn or corrupt entries skipped since open.
    pub(crate) torn_bytes: u64,
    /// Records dropped to stay within the limit since open.
    pub(crate) dropped_records: u64,
    /// What open found worth saying (damage, refused files, a stale cursor), and read
    /// errors since: whole lines, said once by the caller.
    notices: Vec<String>,
    /// Whether the last read of an entry failed (said once until one works again).
    read_failing: bool,
}

/// What reading the segments found, for the notices.
#[derive(Debug, Default)]
struct Findings {
    /// Separate damaged stretches.
    damaged_places: u64,
    /// Whole entries found after damage in the same segment: what stopping at the
    /// damage would have lost.
    kept_after_damage: u64,
    /// Files named like ours that were not read: name and why.
    refused: Vec<String>,
}

/// An exclusive, non-blocking lock on `file`, held until it is closed (also when the
/// process dies, however it dies).
#[cfg(unix)]
fn try_lock(file: &File) -> Result<(), OpenError> {
    use std::os::unix::io::AsRawFd;
    // SAFETY: flock only reads the descriptor number, which `file` keeps open for the
    // duration of the call; it touches no memory of ours.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    if err.kind() == io::ErrorKind::WouldBlock {
        Err(OpenError::Busy)
    } else {
        Err(OpenError::Io(err))
    }
}

/// Without flock, two processes must not share a directory (documented).
#[cfg(not(unix))]
fn try_lock(_file: &File) -> Result<(), OpenError> {
    Ok(())
}

impl Spool {
    /// Opens (creating it if needed) the spool in `dir`, locking it for this process,
    /// and reads what earlier runs left there.
    pub(crate) fn open(dir: &Path, limit: u64) -> Result<Spool, OpenError> {
        files::create_dir(dir)?;
        if let Some(why) = files::unsafe_dir(dir)? {
            return Err(OpenError::Refused(why));
        }
        let own_file = |name: &str| {
            let path = dir.join(name);
            files::open_regular(
                &path,
                files::private_file()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(false),
            )
            .map_err(|refusal| match refusal {
                Refusal::Io(err) => OpenError::Io(err),
                refusal => OpenError::Refused(format!(
                    "{} {refusal}; the spool opens only regular files there, never through a link, and \
                     leaves this one alone",
                    path.display()
                )),
            })
        };
        let mut lock = own_file("lock")?;
        try_lock(&lock)?;
        lock.set_len(0)?;
        writeln!(lock, "{}", std::process::id())?;
        let mut cursor = own_file("cursor")?;
        let saved = read_cursor(&mut cursor);

        let limit = limit.max(MIN_SPOOL_BYTES);
        let mut spool = Spool {
            dir: dir.to_owned(),
            _lock: lock,
            limit,
            segment_bytes: (limit / 8).clamp(MIN_SPOOL_BYTES / 4, MAX_SEGMENT_BYTES),
            entries: VecDeque::new(),
            bytes: 0,
            writer: None,
            reader: None,
            next_segment: 1,
            cursor,
            frame: Vec::new(),
            torn_bytes: 0,
            dropped_records: 0,
            notices: Vec::new(),
            read_failing: false,
        };
        let mut findings = Findings::default();
        let segments = spool.list(&mut findings)?;
        spool.load(&segments, saved, &mut findings);
        spool.report(&findings);
        // An earlier run with a larger limit may have left more than this one allows.
        while spool.bytes > spool.limit {
            spool.drop_front();
        }
        Ok(spool)
    }

    /// What open found worth saying, each a whole line; empty after the first call.
    pub(crate) fn take_notices(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notices)
    }

    /// The directory this spool lives in.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Records in the spool that the collector has not accepted yet.
    pub(crate) fn records(&self) -> u64 {
        self.entries.iter().map(|e| u64::from(e.records)).sum()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Appends one request and syncs it to disk. The oldest entries are dropped (and
    /// counted) to make room within the limit; a request larger than the whole limit
    /// is dropped itself. An error leaves the spool as it was before the call.
    pub(crate) fn append(&mut self, records: u32, gzip: bool, body: &[u8]) -> io::Result<()> {
        let payload_len = PAYLOAD_HEADER + body.len();
        let len = u32::try_from(payload_len)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "request too large"))?;
        let frame_len = FRAME_HEADER + u64::from(len);
        if frame_len > self.limit {
            self.dropped_records += u64::from(records);
            return Ok(());
        }
        while self.bytes + frame_len > self.limit && !self.entries.is_empty() {
            self.drop_front();
        }
        let mut frame = std::mem::take(&mut self.frame);
        frame.clear();
        frame::encode(&mut frame, len, records, gzip, body);
        let written = self.write_frame(&frame);
        self.frame = frame;
        let offset = written?;
        self.entries.push_back(Entry {
            segment: self.writer.as_ref().map_or(0, |w| w.segment),
            offset,
            len: frame_len,
            records,
        });
        self.bytes += frame_len;
        Ok(())
    }

    /// Writes and syncs one frame at the end of the current segment (starting a new
    /// one when it is full); returns its offset.
    fn write_frame(&mut self, frame: &[u8]) -> io::Result<u64> {
        let full = self.writer.as_ref().is_some_and(|w| {
            w.len > frame::MAGIC.len() as u64 && w.len + frame.len() as u64 > self.segment_bytes
        });
        if full || self.writer.is_none() {
            self.roll()?;
        }
        let Some(writer) = self.writer.as_mut() else {
            return Err(io::Error::other("no segment"));
        };
        let offset = writer.len;
        let result = writer
            .file
            .write_all(frame)
            .and_then(|()| writer.file.sync_data());
        match result {
            Ok(()) => {
                writer.len += frame.len() as u64;
                Ok(offset)
            }
            Err(err) => {
                // Take back a partial frame; if even that fails, the next append starts
                // a new segment and the next open cuts the tail off.
                if writer.file.set_len(offset).is_err()
                    || writer.file.seek(SeekFrom::Start(offset)).is_err()
                {
                    self.writer = None;
                }
                Err(err)
            }
        }
    }

    /// Starts a new segment; deletes the one it replaces if nothing in it is pending.
    /// A name taken meanwhile (something planted there) is skipped, not opened.
    fn roll(&mut self) -> io::Result<()> {
        let mut tries = 0;
        let (segment, path, mut file) = loop {
            let segment = self.next_segment;
            if segment > files::MAX_SEGMENT_NUMBER {
                return Err(io::Error::other("no segment numbers left"));
            }
            let path = self.dir.join(files::segment_name(segment));
            let created = files::open_regular(
                &path,
                files::private_file()
                    .read(true)
                    .write(true)
                    .create_new(true),
            );
            match created {
                Ok(file) => break (segment, path, file),
                Err(Refusal::Io(err))
                    if err.kind() == io::ErrorKind::AlreadyExists && tries < 16 =>
                {
                    tries += 1;
                    self.next_segment = segment + 1;
                }
                Err(Refusal::Io(err)) => return Err(err),
                Err(other) => return Err(io::Error::other(format!("{} {other}", path.display()))),
            }
        };
        let header = file.write_all(frame::MAGIC).and_then(|()| file.sync_data());
        if let Err(err) = header {
            drop(file);
            let _ = fs::remove_file(&path);
            return Err(err);
        }
        files::sync_dir(&self.dir);
        self.next_segment = segment + 1;
        if let Some(old) = self.writer.take() {
            self.remove_if_consumed(old.segment);
        }
        self.writer = Some(Writer {
            segment,
            file,
            len: frame::MAGIC.len() as u64,
        });
        Ok(())
    }

    /// Deletes `segment` if nothing in it is pending and it is not being written;
    /// whether it is gone.
    fn remove_if_consumed(&mut self, segment: u64) -> bool {
        let pending = self.entries.front().is_some_and(|e| e.segment <= segment);
        let writing = self.writer.as_ref().is_some_and(|w| w.segment == segment);
        if pending || writing {
            return false;
        }
        if self.reader.as_ref().is_some_and(|(s, _)| *s == segment) {
            self.reader = None;
        }
        let path = self.dir.join(files::segment_name(segment));
        // Something else put in its place (a link, a directory, a FIFO) is not the
        // spool's to delete.
        if !fs::symlink_metadata(&path).is_ok_and(|m| m.is_file()) {
            return false;
        }
        fs::remove_file(path).is_ok()
    }

    /// The oldest request not yet accepted (`Ok(None)` when there is none).
    ///
    /// Only damage is skipped: an entry that no longer reads back whole (its checksum
    /// fails, the file was cut short or its segment deleted underneath) is counted as
    /// torn and forgotten. An error reading it (EIO, EMFILE, a segment that is for now
    /// not a regular file) is not damage: the entry stays, on disk and here, the error
    /// is returned (and said once, in the notices, until a read works again), and the
    /// caller tries again later.
    pub(crate) fn front(&mut self) -> io::Result<Option<Batch>> {
        loop {
            let Some(&entry) = self.entries.front() else {
                return Ok(None);
            };
            match self.read_entry(entry) {
                Ok(Some(batch)) => {
                    self.read_failing = false;
                    return Ok(Some(batch));
                }
                Ok(None) => {
                    self.torn_bytes += entry.len;
                    self.pop_entry();
                }
                Err(err) => {
                    // Opened again next time: the descriptor may be what failed.
                    self.reader = None;
                    if !self.read_failing {
                        self.read_failing = true;
                        self.notices.push(format!(
                            "the otlp spool at {} cannot read {} ({err}); its entries are kept on disk and tried \
                             again later (said once until a read works again)",
                            self.dir.display(),
                            files::segment_name(entry.segment)
                        ));
                    }
                    return Err(err);
                }
            }
        }
    }

    /// The entry, `Ok(None)` if it is damaged or gone, `Err` if it cannot be read now.
    fn read_entry(&mut self, entry: Entry) -> io::Result<Option<Batch>> {
        if self.reader.as_ref().map(|(s, _)| *s) != Some(entry.segment) {
            let path = self.dir.join(files::segment_name(entry.segment));
            let file = match files::open_regular(&path, OpenOptions::new().read(true)) {
                Ok(file) => file,
                // Deleted underneath: what it held is gone.
                Err(Refusal::Io(err)) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(Refusal::Io(err)) => return Err(err),
                Err(refusal) => return Err(io::Error::other(refusal.to_string())),
            };
            self.reader = Some((entry.segment, file));
        }
        let Some((_, file)) = self.reader.as_mut() else {
            return Ok(None);
        };
        let len = usize::try_from(entry.len)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "entry too large"))?;
        let mut frame = vec![0; len];
        file.seek(SeekFrom::Start(entry.offset))?;
        match file.read_exact(&mut frame) {
            Ok(()) => {}
            // Cut short underneath: the entry is not there whole any more.
            Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(err) => return Err(err),
        }
        if frame_at(&frame, 0) != Some((entry.len, entry.records)) {
            return Ok(None);
        }
        let payload = frame.split_off(FRAME_HEADER as usize + PAYLOAD_HEADER);
        Ok(Some(Batch {
            records: entry.records,
            gzip: frame[FRAME_HEADER as usize + 4] == 1,
            body: payload,
        }))
    }

    /// The oldest request was accepted (or refused for good): forget it.
    pub(crate) fn pop_front(&mut self) {
        self.pop_entry();
    }

    /// Drops the oldest request to make room, counting its records.
    fn drop_front(&mut self) {
        if let Some(entry) = self.pop_entry() {
            self.dropped_records += u64::from(entry.records);
        }
    }

    fn pop_entry(&mut self) -> Option<Entry> {
        let entry = self.entries.pop_front()?;
        self.bytes -= entry.len;
        let gone = self
            .entries
            .front()
            .map_or(true, |next| next.segment != entry.segment)
            && self.remove_if_consumed(entry.segment);
        let (segment, offset) = match (self.entries.front(), &self.writer) {
            (Some(next), _) => (next.segment, next.offset),
            (None, Some(w)) => (w.segment, w.len),
            // Drained, its last segment deleted: no cursor, so that none outlives the
            // segments it is about.
            (None, None) if gone => (0, 0),
            (None, None) => (entry.segment, entry.offset + entry.len),
        };
        write_cursor(&mut self.cursor, segment, offset);
        Some(entry)
    }
}

/// The cursor: `(0, 0)` when there is none (or it is torn), which means nothing in the
/// segments there was accepted.
fn read_cursor(file: &mut File) -> (u64, u64) {
    let mut bytes = [0u8; 20];
    if file.read_exact(&mut bytes).is_err() {
        return (0, 0);
    }
    let crc = u32::from_le_bytes([bytes[16], bytes[17], bytes[18], bytes[19]]);
    if crc32fast::hash(&bytes[..16]) != crc {
        return (0, 0);
    }
    let segment = u64::from_le_bytes(bytes[..8].try_into().unwrap_or_default());
    let offset = u64::from_le_bytes(bytes[8..16].try_into().unwrap_or_default());
    (segment, offset)
}

/// Not synced: after a power loss a stale cursor means entries are sent again, which
/// the at-least-once guarantee allows; a kill leaves it in the page cache, current.
fn write_cursor(file: &mut File, segment: u64, offset: u64) {
    let mut bytes = [0u8; 20];
    bytes[..8].copy_from_slice(&segment.to_le_bytes());
    bytes[8..16].copy_from_slice(&offset.to_le_bytes());
    let crc = crc32fast::hash(&bytes[..16]);
    bytes[16..].copy_from_slice(&crc.to_le_bytes());
    let _ = file
        .seek(SeekFrom::Start(0))
        .and_then(|_| file.write_all(&bytes));
}

#[cfg(test)]
mod tests;
