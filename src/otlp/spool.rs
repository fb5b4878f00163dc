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

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use files::{Name, Refusal};
#[cfg(test)]
use frame::MAGIC;
use frame::{frame_at, Misfit, FRAME_HEADER, PAYLOAD_HEADER};

/// The default byte limit of a spool.
pub(crate) const DEFAULT_SPOOL_BYTES: u64 = 64 * 1024 * 1024;
/// The smallest limit accepted.
pub(crate) const MIN_SPOOL_BYTES: u64 = 64 * 1024;
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

    /// The segments in the directory that are regular files, oldest first. Names out of
    /// range are reported and left alone; the next segment is numbered after every name
    /// in range, refused ones included, so that it is never taken.
    fn list(&mut self, findings: &mut Findings) -> io::Result<Vec<u64>> {
        let mut segments = Vec::new();
        let mut highest = 0;
        for entry in fs::read_dir(&self.dir)? {
            let Ok(entry) = entry else { continue };
            let name = entry.file_name();
            // Not followed: the kind of the name itself.
            let kind = entry.file_type();
            match files::classify(&name) {
                Name::Segment(n) => {
                    highest = highest.max(n);
                    match kind {
                        Ok(kind) if kind.is_file() => segments.push(n),
                        Ok(kind) => findings.refused.push(format!(
                            "{} is {}, not a regular file",
                            name.to_string_lossy(),
                            files::describe(kind)
                        )),
                        Err(err) => findings
                            .refused
                            .push(format!("{} cannot be read ({err})", name.to_string_lossy())),
                    }
                }
                Name::OutOfRange => findings.refused.push(format!(
                    "{} is not a segment number this spool uses (at most {})",
                    name.to_string_lossy(),
                    files::MAX_SEGMENT_NUMBER
                )),
                // Left by a run that ended while rewriting a damaged segment, before
                // the rename: the segment itself is as it was, and is read again.
                Name::Temporary if kind.is_ok_and(|k| k.is_file()) => {
                    let _ = fs::remove_file(entry.path());
                }
                Name::Temporary | Name::Other => {}
            }
        }
        segments.sort_unstable();
        // highest <= MAX_SEGMENT_NUMBER: no overflow.
        self.next_segment = highest + 1;
        Ok(segments)
    }

    /// Reads the segments, from where the cursor says (if it fits them), deleting the
    /// ones it says were accepted.
    fn load(&mut self, segments: &[u64], saved: (u64, u64), findings: &mut Findings) {
        let max = self.limit.max(MAX_SEGMENT_BYTES) + frame::MAGIC.len() as u64;
        let dir = self.dir.clone();
        let read = |segment: u64, findings: &mut Findings| {
            let name = files::segment_name(segment);
            files::read_segment(&dir.join(&name), max)
                .map_err(|refusal| findings.refused.push(format!("{name} {refusal}")))
                .ok()
        };
        // The cursor's segment, read first to check the cursor against it.
        let mut first: Option<(u64, Vec<u8>)> = None;
        let (cursor_segment, cursor_offset) = saved;
        let trusted = if saved == (0, 0) {
            false
        } else {
            let misfit = if segments.binary_search(&cursor_segment).is_err() {
                Some("which is gone".to_owned())
            } else {
                match read(cursor_segment, findings) {
                    None => Some("which cannot be read (see below)".to_owned()),
                    Some(bytes) => {
                        let scan = frame::scan(&bytes);
                        first = Some((cursor_segment, bytes));
                        match scan.fits(cursor_offset) {
                            Ok(()) => None,
                            Err(Misfit::PastEnd) => Some(format!(
                                "at offset {cursor_offset}, past its end ({} bytes)",
                                scan.len
                            )),
                            Err(Misfit::Inside) => Some(format!(
                                "at offset {cursor_offset}, inside an entry rather than at one"
                            )),
                        }
                    }
                }
            };
            if let Some(why) = &misfit {
                self.notices.push(format!(
                    "the otlp spool at {}: its cursor names segment {}, {why}; the cursor is discarded and every \
                     segment there is sent (some entries may be sent twice)",
                    self.dir.display(),
                    files::segment_name(cursor_segment)
                ));
                // Synced: a stale cursor must not come back and be checked against a
                // segment rewritten below.
                write_cursor(&mut self.cursor, 0, 0);
                let _ = self.cursor.sync_data();
            }
            misfit.is_none()
        };
        for &segment in segments {
            if trusted && segment < cursor_segment {
                // Accepted by the collector in an earlier run: deleted, unless it is
                // not a segment the spool would read (not a regular file, larger than
                // any it writes, or one it may not open), which is never its to delete.
                let name = files::segment_name(segment);
                let path = self.dir.join(&name);
                match files::check_segment(&path, max) {
                    Ok(()) => {
                        let _ = fs::remove_file(&path);
                    }
                    Err(refusal) => findings.refused.push(format!("{name} {refusal}")),
                }
                continue;
            }
            let bytes = match first.take_if(|(n, _)| *n == segment) {
                Some((_, bytes)) => Some(bytes),
                None => read(segment, findings),
            };
            // Refused: left alone, and reported.
            let Some(bytes) = bytes else { continue };
            let from = if trusted && segment == cursor_segment {
                cursor_offset
            } else {
                0
            };
            self.load_segment(segment, from, &bytes, findings);
        }
    }

    /// Takes the whole entries of one segment from `from` on, skipping and counting
    /// damage; cuts a damaged tail off, rewrites a segment with damage before whole
    /// entries, and deletes one with nothing left to send.
    fn load_segment(&mut self, segment: u64, from: u64, bytes: &[u8], findings: &mut Findings) {
        let path = self.dir.join(files::segment_name(segment));
        let scan = frame::scan(bytes);
        let mut kept: Vec<frame::Found> = scan
            .frames
            .iter()
            .copied()
            .filter(|f| f.offset >= from)
            .collect();
        // Damage before `from` is in what was accepted already: not counted again.
        let damage: Vec<_> = scan
            .damage
            .iter()
            .filter(|r| r.end > from)
            .map(|r| r.start.max(from)..r.end)
            .collect();
        if let Some(first) = damage.first() {
            self.torn_bytes += damage.iter().map(|r| r.end - r.start).sum::<u64>();
            findings.damaged_places += damage.len() as u64;
            let after = kept.iter().filter(|f| f.offset > first.start).count();
            findings.kept_after_damage += after as u64;
            if kept.is_empty() {
                let _ = fs::remove_file(&path);
                return;
            }
            if after == 0 {
                // Only a tail: cut it off, so that it is counted once and the file
                // holds whole entries. (If that fails, it is counted again next time.)
                let _ = files::open_regular(&path, OpenOptions::new().write(true))
                    .and_then(|f| f.set_len(first.start).map_err(Refusal::Io));
            } else if let Ok(moved) = self.rewrite(segment, from, bytes, &kept) {
                kept = moved;
            }
        }
        if kept.is_empty() {
            let _ = fs::remove_file(&path);
            return;
        }
        self.bytes += kept.iter().map(|f| f.len).sum::<u64>();
        self.entries.extend(kept.into_iter().map(|f| Entry {
            segment,
            offset: f.offset,
            len: f.len,
            records: f.records,
        }));
    }

    /// Replaces a segment by one that holds only `kept`, its damage left out: a new file,
    /// synced, renamed over the old one. Returns where the entries are in it. When the
    /// cursor points into this segment it is first set to the segment's start (synced),
    /// so that a crash at any point sends entries again rather than skipping any.
    fn rewrite(
        &mut self,
        segment: u64,
        from: u64,
        bytes: &[u8],
        kept: &[frame::Found],
    ) -> io::Result<Vec<frame::Found>> {
        let path = self.dir.join(files::segment_name(segment));
        let temporary = self.dir.join(files::temporary_name(segment));
        // Whatever is there (a leftover, a link), unlinked rather than followed.
        let _ = fs::remove_file(&temporary);
        let written = (|| {
            let mut file = files::open_regular(
                &temporary,
                files::private_file().write(true).create_new(true),
            )
            .map_err(|refusal| match refusal {
                Refusal::Io(err) => err,
                other => io::Error::other(other.to_string()),
            })?;
            let mut moved = Vec::with_capacity(kept.len());
            let mut at = frame::MAGIC.len() as u64;
            file.write_all(frame::MAGIC)?;
            for found in kept {
                let range = usize::try_from(found.offset).map_err(io::Error::other)?
                    ..usize::try_from(found.offset + found.len).map_err(io::Error::other)?;
                file.write_all(&bytes[range])?;
                moved.push(frame::Found {
                    offset: at,
                    ..*found
                });
                at += found.len;
            }
            file.sync_all()?;
            if from > 0 {
                write_cursor(&mut self.cursor, segment, 0);
                self.cursor.sync_data()?;
            }
            fs::rename(&temporary, &path)?;
            files::sync_dir(&self.dir);
            Ok(moved)
        })();
        if written.is_err() {
            let _ = fs::remove_file(&temporary);
        }
        written
    }

    /// Turns what open found into the lines to say.
    fn report(&mut self, findings: &Findings) {
        let dir = self.dir.display();
        if self.torn_bytes > 0 {
            let places = match findings.damaged_places {
                1 => "1 place".to_owned(),
                n => format!("{n} places"),
            };
            let (what, after) = if findings.kept_after_damage == 0 {
                (
                    "they were cut off and are not sent".to_owned(),
                    String::new(),
                )
            } else {
                (
                    "they are not sent".to_owned(),
                    format!(
                        "; reading went on at the next whole entry after each, so {} later entries were kept",
                        findings.kept_after_damage
                    ),
                )
            };
            self.notices.push(format!(
                "the otlp spool at {dir} had {} bytes of torn or corrupt entries in {places} (cut short by a \
                 crash or power loss, or changed on disk or by another program); {what}{after}",
                self.torn_bytes
            ));
        }
        for refused in findings.refused.iter().take(NAMED_REFUSALS) {
            self.notices.push(format!(
                "the otlp spool at {dir}: {refused}; it is left alone and not read"
            ));
        }
        if findings.refused.len() > NAMED_REFUSALS {
            self.notices.push(format!(
                "the otlp spool at {dir}: {} more files named like its segments are refused and left alone",
                findings.refused.len() - NAMED_REFUSALS
            ));
        }
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
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Opens the spool in `dir`, waiting out a lock that a child process holds for a
    /// moment: a test that spawns a command (the disk-full test mounts a tmpfs) forks
    /// while another test's lock file is open, and until the child execs, its copy of
    /// the descriptor keeps the other test's lock held after that test closed it.
    fn open(dir: &Path, bytes: u64) -> Spool {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            match Spool::open(dir, bytes) {
                Err(OpenError::Busy) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                opened => return opened.unwrap(),
            }
        }
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "telemetry-spool-{name}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    fn body(n: u32) -> Vec<u8> {
        format!("request {n} ")
            .repeat(n as usize % 7 + 1)
            .into_bytes()
    }

    fn drain(spool: &mut Spool) -> Vec<Batch> {
        let mut out = Vec::new();
        while let Some(batch) = spool.front().unwrap() {
            out.push(batch);
            spool.pop_front();
        }
        out
    }

    fn last_segment(dir: &Path) -> PathBuf {
        let mut segments: Vec<PathBuf> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "seg"))
            .collect();
        segments.sort();
        segments.pop().unwrap()
    }

    #[test]
    fn entries_come_back_in_order_across_runs_and_accepted_ones_do_not() {
        let dir = temp_dir("order");
        let mut spool = open(&dir, DEFAULT_SPOOL_BYTES);
        for n in 0..5 {
            spool.append(n, n % 2 == 0, &body(n)).unwrap();
        }
        assert_eq!(spool.records(), 10);
        let first = spool.front().unwrap().unwrap();
        assert_eq!(
            first,
            Batch {
                records: 0,
                gzip: true,
                body: body(0)
            }
        );
        spool.pop_front();
        drop(spool);
        let mut spool = open(&dir, DEFAULT_SPOOL_BYTES);
        let bodies: Vec<Vec<u8>> = drain(&mut spool).into_iter().map(|b| b.body).collect();
        assert_eq!(bodies, (1..5).map(body).collect::<Vec<_>>());
        assert_eq!(spool.torn_bytes, 0);
        drop(spool);
        let spool = open(&dir, DEFAULT_SPOOL_BYTES);
        assert!(spool.is_empty(), "accepted entries are not sent again");
        let _ = fs::remove_dir_all(&dir);
    }

    #[cfg(unix)]
    #[test]
    fn the_directory_is_private_and_a_second_process_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = temp_dir("perm");
        let mut spool = open(&dir, DEFAULT_SPOOL_BYTES);
        spool.append(1, false, b"x").unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&last_segment(&dir)), 0o600);
        assert_eq!(mode(&dir.join("lock")), 0o600);
        // flock belongs to the open file description: a second open is refused as a
        // second process would be.
        assert!(matches!(
            Spool::open(&dir, DEFAULT_SPOOL_BYTES),
            Err(OpenError::Busy)
        ));
        drop(spool);
        open(&dir, DEFAULT_SPOOL_BYTES);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_limit_drops_the_oldest_and_counts_them() {
        let dir = temp_dir("limit");
        let mut spool = open(&dir, MIN_SPOOL_BYTES);
        let big = vec![7u8; 10_000];
        for n in 0..20 {
            spool.append(n, false, &big).unwrap();
        }
        assert!(spool.bytes <= MIN_SPOOL_BYTES);
        let kept: Vec<u32> = drain(&mut spool).iter().map(|b| b.records).collect();
        let dropped: u64 = (0..20u64).filter(|n| !kept.contains(&(*n as u32))).sum();
        assert_eq!(spool.dropped_records, dropped);
        assert_eq!(
            kept,
            (20 - kept.len() as u32..20).collect::<Vec<_>>(),
            "the newest are kept"
        );
        // Consumed segments are deleted as they go.
        let segments = fs::read_dir(&dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|e| e == "seg")
            })
            .count();
        assert!(segments <= 1, "{segments} segments left");
        let _ = fs::remove_dir_all(&dir);
    }

    /// A tmpfs of 64 KiB (mounted where this runs as root) fills up: appends fail with
    /// an error, nothing panics, and the spool still holds every entry written before.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_full_disk_fails_the_append_and_keeps_what_was_written() {
        let dir = temp_dir("full");
        fs::create_dir_all(&dir).unwrap();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
            .arg(&dir)
            .output()
            .is_ok_and(|o| o.status.success());
        if !mounted {
            println!("SKIPPED: the tmpfs part of the disk-full test (mount -t tmpfs needs root); the failing-file part ran");
        } else {
            /// Unmounts even when an assertion fails.
            struct Mounted<'a>(&'a Path);
            impl Drop for Mounted<'_> {
                fn drop(&mut self) {
                    let _ = std::process::Command::new("umount").arg(self.0).status();
                }
            }
            let _mounted = Mounted(&dir);
            let spool_dir = dir.join("spool");
            let mut spool = open(&spool_dir, DEFAULT_SPOOL_BYTES);
            let big = vec![1u8; 8_000];
            let mut written = 0;
            let mut failures = 0;
            for n in 0..20 {
                match spool.append(n, false, &big) {
                    Ok(()) => written += 1,
                    Err(_) => failures += 1,
                }
            }
            assert!(
                failures > 0 && written > 0,
                "{written} written, {failures} failed"
            );
            drop(spool);
            let mut spool = open(&spool_dir, DEFAULT_SPOOL_BYTES);
            assert_eq!(drain(&mut spool).len(), written);
            drop(spool);
        }
        let _ = fs::remove_dir_all(&dir);
    }

    /// /dev/full as a segment: every write fails with ENOSPC.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_failing_file_fails_the_append_without_panicking() {
        let dir = temp_dir("devfull");
        let mut spool = open(&dir, DEFAULT_SPOOL_BYTES);
        spool.append(1, false, b"first").unwrap();
        let full = OpenOptions::new().write(true).open("/dev/full").unwrap();
        if let Some(writer) = spool.writer.as_mut() {
            writer.file = full;
        }
        assert!(spool.append(2, false, b"second").is_err());
        assert_eq!(spool.records(), 1);
        let _ = fs::remove_dir_all(&dir);
    }

    /// Every entry's (segment, offset, len) as the spool holds them.
    fn frames_of(spool: &Spool) -> Vec<(u64, u64, u64)> {
        spool
            .entries
            .iter()
            .map(|e| (e.segment, e.offset, e.len))
            .collect()
    }

    fn set_cursor(dir: &Path, segment: u64, offset: u64) {
        let mut file = OpenOptions::new()
            .write(true)
            .open(dir.join("cursor"))
            .unwrap();
        write_cursor(&mut file, segment, offset);
    }

    fn cursor_of(dir: &Path) -> (u64, u64) {
        read_cursor(&mut File::open(dir.join("cursor")).unwrap())
    }

    /// A cursor that does not fit the segments there (its segment deleted, or an offset
    /// past the end or inside an entry) is discarded and said; nothing is deleted, and
    /// every entry is read from the start.
    #[test]
    fn a_cursor_that_does_not_fit_its_segments_is_discarded() {
        let dir = temp_dir("misfit");
        let mut spool = open(&dir, DEFAULT_SPOOL_BYTES);
        for n in 1..=3 {
            spool.append(n, false, &body(n)).unwrap();
        }
        let frames = frames_of(&spool);
        let (segment, second, _) = frames[1];
        drop(spool);
        let cases = [
            (segment + 5, 0, "which is gone"),
            (segment, second + 3, "inside an entry"),
            (segment, 1 << 40, "past its end"),
        ];
        for (cursor_segment, offset, why) in cases {
            set_cursor(&dir, cursor_segment, offset);
            let mut spool = open(&dir, DEFAULT_SPOOL_BYTES);
            let notices = spool.take_notices();
            assert!(
                notices.len() == 1 && notices[0].contains(why) && notices[0].contains("discarded"),
                "{notices:?}"
            );
            assert_eq!(frames_of(&spool), frames, "{why}");
            drop(spool);
            assert_eq!(cursor_of(&dir), (0, 0), "reset once discarded");
        }
        // A cursor that fits is trusted: the first entry is not read again.
        set_cursor(&dir, segment, second);
        let mut spool = open(&dir, DEFAULT_SPOOL_BYTES);
        assert!(spool.take_notices().is_empty());
        assert_eq!(frames_of(&spool), frames[1..]);
        drop(spool);
        let _ = fs::remove_dir_all(&dir);
    }

    /// Once a run sends everything an earlier one left, nothing of the cursor remains to
    /// delete what a later run spools.
    #[test]
    fn a_drained_spool_keeps_no_cursor() {
        let dir = temp_dir("drained");
        let mut spool = open(&dir, DEFAULT_SPOOL_BYTES);
        spool.append(1, false, b"one").unwrap();
        drop(spool);
        let mut spool = open(&dir, DEFAULT_SPOOL_BYTES);
        assert_eq!(drain(&mut spool).len(), 1);
        drop(spool);
        assert_eq!(cursor_of(&dir), (0, 0));
        let mut spool = open(&dir, DEFAULT_SPOOL_BYTES);
        assert_eq!(spool.next_segment, 1, "numbering starts again");
        spool.append(2, false, b"two").unwrap();
        drop(spool);
        let mut spool = open(&dir, DEFAULT_SPOOL_BYTES);
        assert_eq!(drain(&mut spool).len(), 1, "the later run's entry is kept");
        let _ = fs::remove_dir_all(&dir);
    }

    /// Damage after the cursor, before whole entries: the segment is rewritten without
    /// the damage (and without what was accepted), the cursor moved to its start; the
    /// next open finds the same entries and no damage.
    #[test]
    fn a_damaged_segment_is_rewritten_once() {
        let dir = temp_dir("rewrite");
        let mut spool = open(&dir, DEFAULT_SPOOL_BYTES);
        for n in 1..=5 {
            spool.append(n, false, &body(n)).unwrap();
        }
        spool.pop_front();
        spool.pop_front();
        let frames = frames_of(&spool);
        drop(spool);
        let path = last_segment(&dir);
        let mut bytes = fs::read(&path).unwrap();
        let (_, offset, len) = frames[1];
        bytes[(offset + len / 2) as usize] ^= 0x40;
        fs::write(&path, &bytes).unwrap();

        let mut spool = open(&dir, DEFAULT_SPOOL_BYTES);
        assert_eq!(spool.torn_bytes, len);
        let notices = spool.take_notices();
        assert!(
            notices[0].contains("in 1 place") && notices[0].contains("1 later entries were kept"),
            "{notices:?}"
        );
        let records: Vec<u32> = spool.entries.iter().map(|e| e.records).collect();
        assert_eq!(records, [3, 5]);
        drop(spool);
        assert_eq!(
            cursor_of(&dir).1,
            0,
            "the cursor names the rewritten segment's start"
        );
        assert!(
            !fs::read_dir(&dir).unwrap().any(|e| e
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".tmp")),
            "no temporary file is left"
        );

        let mut spool = open(&dir, DEFAULT_SPOOL_BYTES);
        assert_eq!(spool.torn_bytes, 0, "counted once");
        let bodies: Vec<Vec<u8>> = drain(&mut spool).into_iter().map(|b| b.body).collect();
        assert_eq!(bodies, [body(3), body(5)]);
        let _ = fs::remove_dir_all(&dir);
    }

    /// The case the property test below found: a byte of the first entry's length
    /// changed so that it points exactly at the fourth entry. Only the first entry is
    /// lost, whichever of its header bytes is hit, and the next open finds no damage.
    #[test]
    fn a_changed_length_that_points_at_a_later_entry_costs_only_its_entry() {
        for at in 0..FRAME_HEADER {
            let dir = temp_dir("length-at-entry");
            let mut spool = open(&dir, DEFAULT_SPOOL_BYTES);
            for (n, size) in [94, 10, 11, 131, 0].into_iter().enumerate() {
                spool.append(n as u32, false, &vec![n as u8; size]).unwrap();
            }
            let frames = frames_of(&spool);
            drop(spool);
            let path = last_segment(&dir);
            let mut bytes = fs::read(&path).unwrap();
            let (_, offset, len) = frames[0];
            bytes[(offset + at) as usize] ^= 241;
            fs::write(&path, &bytes).unwrap();

            let spool = open(&dir, DEFAULT_SPOOL_BYTES);
            assert_eq!(spool.torn_bytes, len, "header byte {at}");
            drop(spool);
            let mut spool = open(&dir, DEFAULT_SPOOL_BYTES);
            assert_eq!(spool.torn_bytes, 0, "counted once");
            let records: Vec<u32> = drain(&mut spool).iter().map(|b| b.records).collect();
            assert_eq!(records, [1, 2, 3, 4], "header byte {at}");
            drop(spool);
            let _ = fs::remove_dir_all(&dir);
        }
    }

    /// Names a spool must not trip on: no panic, no overflow, reported, left alone.
    #[cfg(unix)]
    #[test]
    fn files_that_are_not_segments_are_refused_and_left_alone() {
        let dir = temp_dir("refused");
        drop(open(&dir, DEFAULT_SPOOL_BYTES));
        fs::write(dir.join("18446744073709551614.seg"), MAGIC).unwrap();
        fs::create_dir(dir.join("00000000000000000004.seg")).unwrap();
        std::os::unix::fs::symlink("/dev/zero", dir.join("00000000000000000005.seg")).unwrap();
        let big = File::create(dir.join("00000000000000000006.seg")).unwrap();
        big.set_len(MIN_SPOOL_BYTES.max(MAX_SEGMENT_BYTES) + 9)
            .unwrap();
        drop(big);
        let mut spool = open(&dir, MIN_SPOOL_BYTES);
        let notices = spool.take_notices().join("\n");
        for said in [
            "18446744073709551614.seg is not a segment number",
            "00000000000000000004.seg is a directory",
            "00000000000000000005.seg is a symbolic link",
            "00000000000000000006.seg holds 4194313 bytes",
        ] {
            assert!(notices.contains(said), "{said}: {notices}");
        }
        spool.append(1, false, b"x").unwrap();
        assert_eq!(spool.writer.as_ref().map(|w| w.segment), Some(7));
        drop(spool);
        let mut spool = open(&dir, MIN_SPOOL_BYTES);
        assert_eq!(drain(&mut spool).len(), 1);
        assert_eq!(
            fs::metadata(dir.join("00000000000000000006.seg"))
                .unwrap()
                .len(),
            MAX_SEGMENT_BYTES + 9
        );
        let _ = fs::remove_dir_all(&dir);
    }

    #[cfg(unix)]
    #[test]
    fn a_directory_others_can_write_to_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = temp_dir("shared-dir");
        fs::create_dir_all(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o1777)).unwrap();
        match Spool::open(&dir, DEFAULT_SPOOL_BYTES) {
            Err(OpenError::Refused(why)) => assert!(why.contains("mode 1777"), "{why}"),
            other => panic!("{other:?}"),
        }
        let _ = fs::remove_dir_all(&dir);
    }

    /// A read that fails (EIO, EMFILE, a file briefly not what it should be) is not
    /// damage: the entry stays in the spool and on disk, and comes back once reading
    /// works again. Injected two ways: the reader's descriptor swapped for one of a
    /// directory (whose read fails with EISDIR, as root too), and the segment's name
    /// taken by a directory for a while (the open is refused).
    #[cfg(target_os = "linux")]
    #[test]
    fn a_read_error_keeps_the_entry_on_disk() {
        let dir = temp_dir("read-error");
        let mut spool = open(&dir, DEFAULT_SPOOL_BYTES);
        spool.append(1, false, b"one").unwrap();
        spool.append(2, false, b"two").unwrap();
        let segment = spool.entries[0].segment;
        let path = dir.join(files::segment_name(segment));
        let on_disk = fs::read(&path).unwrap();

        spool.reader = Some((segment, File::open(&dir).unwrap()));
        assert!(spool.front().is_err());
        spool.reader = Some((segment, File::open(&dir).unwrap()));
        assert!(spool.front().is_err());
        assert_eq!((spool.records(), spool.torn_bytes), (3, 0));
        assert_eq!(
            fs::read(&path).unwrap(),
            on_disk,
            "the segment is untouched"
        );
        let notices = spool.take_notices();
        assert!(
            notices.len() == 1 && notices[0].contains("cannot read") && notices[0].contains("kept"),
            "said once: {notices:?}"
        );

        spool.reader = None;
        let aside = dir.join("aside");
        fs::rename(&path, &aside).unwrap();
        fs::create_dir(&path).unwrap();
        assert!(spool.front().is_err());
        assert_eq!((spool.records(), spool.torn_bytes), (3, 0));
        fs::remove_dir(&path).unwrap();
        fs::rename(&aside, &path).unwrap();

        let bodies: Vec<Vec<u8>> = drain(&mut spool).into_iter().map(|b| b.body).collect();
        assert_eq!(bodies, [b"one".to_vec(), b"two".to_vec()]);
        assert_eq!(spool.torn_bytes, 0);
        drop(spool);
        let _ = fs::remove_dir_all(&dir);
    }

    /// A request whose body holds a whole, valid frame (a record attribute with bytes
    /// an attacker chose), in an entry that is then damaged, or torn inside it: the
    /// forged frame is never taken for an entry; the entries after the damaged one
    /// still are.
    #[test]
    fn a_frame_forged_inside_a_damaged_entry_is_not_taken() {
        let mut forged = Vec::new();
        frame::encode(
            &mut forged,
            (PAYLOAD_HEADER + 6) as u32,
            99,
            false,
            b"forged",
        );
        let mut carrier = b"an attribute value: ".to_vec();
        carrier.extend_from_slice(&forged);
        carrier.extend_from_slice(b" and the rest of the request");
        let forged_at = 20;

        // Damaged in its body, before the forged frame; its length intact.
        let dir = temp_dir("forged");
        let mut spool = open(&dir, DEFAULT_SPOOL_BYTES);
        spool.append(1, false, b"first").unwrap();
        spool.append(2, false, &carrier).unwrap();
        spool.append(3, false, b"third").unwrap();
        spool.append(4, false, b"fourth").unwrap();
        let frames = frames_of(&spool);
        drop(spool);
        let path = last_segment(&dir);
        let mut bytes = fs::read(&path).unwrap();
        let (_, offset, len) = frames[1];
        bytes[(offset + FRAME_HEADER) as usize + PAYLOAD_HEADER + 3] ^= 0x20;
        fs::write(&path, &bytes).unwrap();
        let mut spool = open(&dir, DEFAULT_SPOOL_BYTES);
        assert_eq!(spool.torn_bytes, len);
        let records: Vec<u32> = drain(&mut spool).iter().map(|b| b.records).collect();
        assert_eq!(records, [1, 3, 4], "the forged frame was taken");
        drop(spool);
        let _ = fs::remove_dir_all(&dir);

        // Torn: the carrier is the last entry, cut short a few bytes after the forged
        // frame (a kill while it was written).
        let dir = temp_dir("forged-torn");
        let mut spool = open(&dir, DEFAULT_SPOOL_BYTES);
        spool.append(1, false, b"first").unwrap();
        spool.append(2, false, &carrier).unwrap();
        let frames = frames_of(&spool);
        drop(spool);
        let path = last_segment(&dir);
        let (_, offset, _) = frames[1];
        let cut =
            offset + FRAME_HEADER + PAYLOAD_HEADER as u64 + forged_at + forged.len() as u64 + 3;
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(cut)
            .unwrap();
        let mut spool = open(&dir, DEFAULT_SPOOL_BYTES);
        assert_eq!(spool.torn_bytes, cut - offset);
        let records: Vec<u32> = drain(&mut spool).iter().map(|b| b.records).collect();
        assert_eq!(records, [1], "the forged frame was taken");
        drop(spool);
        let _ = fs::remove_dir_all(&dir);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// A kill at any byte of the last segment, or garbage after it: the next open
        /// reads every whole entry before the tear and nothing after, counting the torn
        /// bytes, without error.
        #[test]
        fn a_torn_tail_is_skipped_and_counted(
            sizes in proptest::collection::vec(0usize..300, 1..12),
            cut in any::<proptest::sample::Index>(),
            garbage in proptest::collection::vec(any::<u8>(), 0..64),
            truncate in any::<bool>(),
        ) {
            let dir = temp_dir("torn");
            let mut spool = open(&dir, DEFAULT_SPOOL_BYTES);
            let mut ends = Vec::new();
            for (n, size) in sizes.iter().enumerate() {
                spool.append(n as u32, false, &vec![n as u8; *size]).unwrap();
                ends.push(spool.writer.as_ref().unwrap().len);
            }
            drop(spool);
            let path = last_segment(&dir);
            let len = fs::metadata(&path).unwrap().len();
            let (kept_len, torn) = if truncate {
                let at = cut.index(len as usize + 1) as u64;
                OpenOptions::new().write(true).open(&path).unwrap().set_len(at).unwrap();
                let whole = ends.iter().filter(|&&e| e <= at).count();
                let valid = if at < MAGIC.len() as u64 { 0 } else { ends.get(whole.wrapping_sub(1)).copied().unwrap_or(MAGIC.len() as u64) };
                (whole, at - valid)
            } else {
                OpenOptions::new().append(true).open(&path).unwrap().write_all(&garbage).unwrap();
                (sizes.len(), garbage.len() as u64)
            };
            let mut spool = open(&dir, DEFAULT_SPOOL_BYTES);
            prop_assert_eq!(spool.torn_bytes, torn);
            let batches = drain(&mut spool);
            prop_assert_eq!(batches.len(), kept_len);
            for (n, batch) in batches.iter().enumerate() {
                prop_assert_eq!(&batch.body, &vec![n as u8; sizes[n]]);
            }
            drop(spool);
            let spool = open(&dir, DEFAULT_SPOOL_BYTES);
            prop_assert_eq!(spool.torn_bytes, 0, "a tear is counted once");
            drop(spool);
            let _ = fs::remove_dir_all(&dir);
        }

        /// Bytes changed in any entries but the last (bit rot, another program): those
        /// entries are skipped and counted, every other one comes back in order, and
        /// the damage is counted once.
        #[test]
        fn damage_costs_only_the_damaged_entries(
            sizes in proptest::collection::vec(0usize..300, 2..12),
            hits in proptest::collection::vec((any::<proptest::sample::Index>(), any::<proptest::sample::Index>(), 1u8..), 1..4),
        ) {
            let dir = temp_dir("damage");
            let mut spool = open(&dir, DEFAULT_SPOOL_BYTES);
            for (n, size) in sizes.iter().enumerate() {
                spool.append(n as u32, false, &vec![n as u8; *size]).unwrap();
            }
            let frames = frames_of(&spool);
            drop(spool);
            let path = last_segment(&dir);
            let mut bytes = fs::read(&path).unwrap();
            let mut damaged = std::collections::BTreeSet::new();
            for (entry, at, flip) in &hits {
                // Not the last: damage at the end is a torn tail, tested above.
                let n = entry.index(frames.len() - 1);
                let (_, offset, len) = frames[n];
                bytes[(offset + at.index(len as usize) as u64) as usize] ^= flip;
                damaged.insert(n);
            }
            fs::write(&path, &bytes).unwrap();
            let spool = open(&dir, DEFAULT_SPOOL_BYTES);
            let torn: u64 = damaged.iter().map(|&n| frames[n].2).sum();
            prop_assert_eq!(spool.torn_bytes, torn);
            drop(spool);
            let mut spool = open(&dir, DEFAULT_SPOOL_BYTES);
            prop_assert_eq!(spool.torn_bytes, 0, "counted once");
            let batches = drain(&mut spool);
            let kept: Vec<usize> = (0..sizes.len()).filter(|n| !damaged.contains(n)).collect();
            prop_assert_eq!(batches.len(), kept.len());
            for (batch, &n) in batches.iter().zip(&kept) {
                prop_assert_eq!(batch.records, n as u32);
                prop_assert_eq!(&batch.body, &vec![n as u8; sizes[n]]);
            }
            drop(spool);
            let _ = fs::remove_dir_all(&dir);
        }
    }
}
