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
//! 1 gzip) | the request body exactly as it is posted`.
//!
//! A run never appends to a segment an earlier run wrote: it starts a new one. On open
//! every segment is read once; a tail that is not a whole, checksummed entry (a crash
//! while writing, a truncated file, garbage) is counted in bytes and cut off, so that
//! it is counted once and never sent. The cursor is rewritten (not synced) as entries
//! are accepted; a stale or torn cursor only means entries are sent again.
//!
//! Why CRC-32 through `crc32fast`: the frame only has to catch torn writes and
//! garbage, not an adversary; `crc32fast` is already in the build through `flate2`
//! (gzip needs it), so the check adds no dependency, and it runs at several GB/s.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The first bytes of every segment.
const MAGIC: &[u8; 8] = b"TLMSPL1\n";
/// Length and checksum in front of every entry.
const FRAME_HEADER: u64 = 8;
/// Record count and encoding at the start of every payload.
const PAYLOAD_HEADER: usize = 5;
/// The default byte limit of a spool.
pub(crate) const DEFAULT_SPOOL_BYTES: u64 = 64 * 1024 * 1024;
/// The smallest limit accepted.
pub(crate) const MIN_SPOOL_BYTES: u64 = 64 * 1024;
/// The largest segment, so that dropping the oldest data frees space in small steps
/// and a consumed segment is soon deleted.
const MAX_SEGMENT_BYTES: u64 = 4 * 1024 * 1024;

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
}

fn segment_name(segment: u64) -> String {
    format!("{segment:020}.seg")
}

fn segment_number(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".seg")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Creates (0700) or opens a directory.
fn create_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Options for a file only this user may read (0600).
fn private_file() -> OpenOptions {
    #[cfg_attr(not(unix), allow(unused_mut))]
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
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

/// Makes a new directory entry durable.
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(dir) = File::open(dir) {
        let _ = dir.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

/// The whole entries of a segment's bytes: their frames, and where the valid part ends.
fn scan(bytes: &[u8], segment: u64, from: u64) -> (Vec<Entry>, u64) {
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        return (Vec::new(), 0);
    }
    let mut entries = Vec::new();
    let mut at = MAGIC.len() as u64;
    while let Some((len, records)) = frame_at(bytes, at) {
        if at >= from {
            entries.push(Entry {
                segment,
                offset: at,
                len,
                records,
            });
        }
        at += len;
    }
    (entries, at)
}

/// The frame at `at` if it is whole and its checksum holds: its length and records.
fn frame_at(bytes: &[u8], at: u64) -> Option<(u64, u32)> {
    let at = usize::try_from(at).ok()?;
    let header = bytes.get(at..at.checked_add(FRAME_HEADER as usize)?)?;
    let len = u32::from_le_bytes(header[..4].try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(header[4..].try_into().ok()?);
    let start = at + FRAME_HEADER as usize;
    let payload = bytes.get(start..start.checked_add(len)?)?;
    if len < PAYLOAD_HEADER || checksum(&header[..4], payload) != crc {
        return None;
    }
    let records = u32::from_le_bytes(payload[..4].try_into().ok()?);
    Some((FRAME_HEADER + len as u64, records))
}

fn checksum(len: &[u8], payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(len);
    hasher.update(payload);
    hasher.finalize()
}

impl Spool {
    /// Opens (creating it if needed) the spool in `dir`, locking it for this process,
    /// and reads what earlier runs left there.
    pub(crate) fn open(dir: &Path, limit: u64) -> Result<Spool, OpenError> {
        create_dir(dir)?;
        let mut lock = private_file()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join("lock"))?;
        try_lock(&lock)?;
        lock.set_len(0)?;
        writeln!(lock, "{}", std::process::id())?;

        let mut cursor = private_file()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join("cursor"))?;
        let (cursor_segment, cursor_offset) = read_cursor(&mut cursor);

        let mut segments: Vec<u64> = fs::read_dir(dir)?
            .filter_map(|e| e.ok())
            .filter_map(|e| segment_number(e.file_name().to_str()?))
            .collect();
        segments.sort_unstable();
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
            next_segment: segments.last().map_or(1, |last| last.saturating_add(1)),
            cursor,
            frame: Vec::new(),
            torn_bytes: 0,
            dropped_records: 0,
        };
        for segment in segments {
            let path = dir.join(segment_name(segment));
            if segment < cursor_segment {
                let _ = fs::remove_file(&path);
                continue;
            }
            let from = if segment == cursor_segment {
                cursor_offset
            } else {
                0
            };
            let bytes = fs::read(&path)?;
            let (entries, valid) = scan(&bytes, segment, from);
            let torn = bytes.len() as u64 - valid;
            if torn > 0 {
                spool.torn_bytes += torn;
                // Cut off, so that it is counted once and the file holds whole entries.
                if valid == 0 {
                    let _ = fs::remove_file(&path);
                    continue;
                }
                private_file()
                    .write(true)
                    .open(&path)
                    .and_then(|f| f.set_len(valid))?;
            }
            if entries.is_empty() {
                let _ = fs::remove_file(&path);
                continue;
            }
            spool.bytes += entries.iter().map(|e| e.len).sum::<u64>();
            spool.entries.extend(entries);
        }
        // An earlier run with a larger limit may have left more than this one allows.
        while spool.bytes > spool.limit {
            spool.drop_front();
        }
        Ok(spool)
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
        frame.extend_from_slice(&len.to_le_bytes());
        frame.extend_from_slice(&[0; 4]);
        frame.extend_from_slice(&records.to_le_bytes());
        frame.push(u8::from(gzip));
        frame.extend_from_slice(body);
        let crc = checksum(&frame[..4], &frame[FRAME_HEADER as usize..]);
        frame[4..8].copy_from_slice(&crc.to_le_bytes());
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
            w.len > MAGIC.len() as u64 && w.len + frame.len() as u64 > self.segment_bytes
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
    fn roll(&mut self) -> io::Result<()> {
        let segment = self.next_segment;
        let path = self.dir.join(segment_name(segment));
        let mut file = private_file()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        let header = file.write_all(MAGIC).and_then(|()| file.sync_data());
        if let Err(err) = header {
            drop(file);
            let _ = fs::remove_file(&path);
            return Err(err);
        }
        sync_dir(&self.dir);
        self.next_segment += 1;
        if let Some(old) = self.writer.take() {
            self.remove_if_consumed(old.segment);
        }
        self.writer = Some(Writer {
            segment,
            file,
            len: MAGIC.len() as u64,
        });
        Ok(())
    }

    fn remove_if_consumed(&mut self, segment: u64) {
        let pending = self.entries.front().is_some_and(|e| e.segment <= segment);
        let writing = self.writer.as_ref().is_some_and(|w| w.segment == segment);
        if !pending && !writing {
            if self.reader.as_ref().is_some_and(|(s, _)| *s == segment) {
                self.reader = None;
            }
            let _ = fs::remove_file(self.dir.join(segment_name(segment)));
        }
    }

    /// The oldest request not yet accepted. An entry that no longer reads back whole
    /// (the file was changed underneath) is skipped and counted as torn.
    pub(crate) fn front(&mut self) -> Option<Batch> {
        loop {
            let entry = *self.entries.front()?;
            match self.read_entry(entry) {
                Ok(Some(batch)) => return Some(batch),
                Ok(None) | Err(_) => {
                    self.torn_bytes += entry.len;
                    self.pop_entry();
                }
            }
        }
    }

    fn read_entry(&mut self, entry: Entry) -> io::Result<Option<Batch>> {
        if self.reader.as_ref().map(|(s, _)| *s) != Some(entry.segment) {
            let file = File::open(self.dir.join(segment_name(entry.segment)))?;
            self.reader = Some((entry.segment, file));
        }
        let Some((_, file)) = self.reader.as_mut() else {
            return Ok(None);
        };
        let len = usize::try_from(entry.len)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "entry too large"))?;
        let mut frame = vec![0; len];
        file.seek(SeekFrom::Start(entry.offset))?;
        file.read_exact(&mut frame)?;
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
        if self
            .entries
            .front()
            .map_or(true, |next| next.segment != entry.segment)
        {
            self.remove_if_consumed(entry.segment);
        }
        let (segment, offset) = match (self.entries.front(), &self.writer) {
            (Some(next), _) => (next.segment, next.offset),
            (None, Some(w)) => (w.segment, w.len),
            (None, None) => (self.next_segment, 0),
        };
        write_cursor(&mut self.cursor, segment, offset);
        Some(entry)
    }
}

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
        while let Some(batch) = spool.front() {
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
        let first = spool.front().unwrap();
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
    }
}
