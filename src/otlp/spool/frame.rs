//! The frame of one spool entry, and reading a segment's entries back.
//!
//! A segment is `MAGIC`, then frames `len: u32 LE | crc32: u32 LE | payload (len
//! bytes)`, the CRC-32 over the length bytes and the payload; the payload starts with
//! `records: u32 LE | encoding: u8 (0 none, 1 gzip)`.
//!
//! # Damage, and how reading goes on after it
//!
//! Where a frame does not check out (its checksum fails, its length is too short or
//! runs past the end, its encoding byte is neither 0 nor 1), [`scan`] does not stop:
//! it notes the stretch it skips and goes on at the next whole entry, so that four
//! changed bytes in the second of ten entries cost that entry and nothing else, where
//! stopping at the first bad frame would drop the eight whole entries after it. Where
//! it goes on is decided in this order:
//!
//! 1. **By the damaged entry's own length**, when that length is plausible (at least a
//!    payload header), the entry is whole in the file, and a frame that checks out (or
//!    the end of the file) starts exactly where the length says the entry ends; a run
//!    of such damaged entries is skipped the same way, one length after the other.
//!    Unless the checksum says that a length is what was changed: a changed length
//!    can point exactly at a later entry (or the end of the file) as well as the true
//!    one can, and taken as it reads it would cost the whole entries in between. So
//!    each damaged entry's checksum is first tested at every place before where its
//!    length says it ends at which a frame could start (a length there that fits in
//!    what is left), against the length bytes the entry would hold if it ended there;
//!    where it holds, its length bytes are what was damaged, and reading goes on at
//!    that place. Inside the damaged entry, bytes are only checksummed, never taken
//!    for a frame.
//! 2. **Byte by byte**, only when the length itself cannot be trusted: too short, or
//!    nothing whole starts where it ends. The first frame that checks out is taken.
//! 3. **A torn tail**: a length that runs past the end of the file is what a kill
//!    while writing leaves. The rest of the file is cut off as torn, unless a frame
//!    that checks out is found after it from which whole entries (skipping damage by
//!    the two rules above) run to exactly the end of the file: that is a length
//!    changed on disk in the middle of the segment, and the entries after it are kept.
//!
//! Frames carry no marker, so a byte-by-byte search is the only resynchronisation the
//! format allows when a length is lost; it is cheap: a candidate is checked in full
//! only when its length fits in what is left and its encoding byte is 0 or 1, so
//! random bytes cost a few comparisons each.
//!
//! # What this defends, and what it does not
//!
//! The checksum is a CRC-32, not a MAC: it catches torn writes, bit rot and garbage,
//! not an adversary. Anyone who can write to the spool directory can write frames that
//! check out; the directory's mode and owner checks (`files.rs`) are what keep others
//! out of it. What the rules above defend against is narrower: a request body holds
//! bytes that others choose (a record attribute's value, sent uncompressed), and such
//! a value can hold a whole frame that checks out. Rule 1 takes a place inside a
//! damaged entry only where that entry's own checksum holds with it as the end, which
//! a forged frame's start does not (making it hold needs every byte of the request
//! known in advance, timestamps included, and the entry damaged on disk), and rule 3
//! never takes a frame inside a torn tail unless whole entries run from it to exactly
//! the end of the file, so a forged frame inside a damaged or torn entry is not taken
//! for an entry. What remains:
//!
//! * when the damage hits the length field of the very entry that holds a forged frame
//!   (rule 2), the search may find the forged frame first: damage falls where the
//!   disk puts it, not where the attacker wants it;
//! * a kill that tears the last entry exactly at the end of a forged frame (or of a
//!   run of them) leaves whole frames running to the end of the file (rule 3): the
//!   attacker does not choose where a crash tears a write;
//! * with gzip on (`OTEL_EXPORTER_OTLP_COMPRESSION=gzip`) the body holds no bytes an
//!   attacker chose as such.
//!
//! One kind of damage costs more than its entry: a changed length together with other
//! damage in the same entry, where the changed length points exactly at a later entry
//! (or the end of the file). The checksum then holds nowhere, and the entries between
//! are skipped with it. Taking the first whole frame after it instead would take a
//! forged frame inside an entry damaged with its length intact, so the length is
//! followed. It needs two changes in one entry and the length to land on a boundary:
//! a few in a million random damages of one to three bytes, in tests here.
//!
//! A false match in random bytes needs a 32-bit checksum to hold by chance (about one
//! in four billion candidates that pass the cheap checks). Crafted bytes can make
//! every position a candidate, which would make the search quadratic: the work is
//! capped at [`RESYNC_WORK_PER_BYTE`] times the segment's size (plus
//! [`RESYNC_WORK_FLOOR`]), and what is left when it runs out counts as damaged.
//! Testing lengths against checksums (rule 1) has a budget of its own, as large: when
//! it runs out, lengths are followed as they read, and nothing more counts as damaged.

use std::ops::Range;

/// The first bytes of every segment.
pub(super) const MAGIC: &[u8; 8] = b"TLMSPL1\n";
/// Length and checksum in front of every entry.
pub(super) const FRAME_HEADER: u64 = 8;
/// Record count and encoding at the start of every payload.
pub(super) const PAYLOAD_HEADER: usize = 5;
/// Bytes checksummed per byte of a segment, at most, while reading it.
const RESYNC_WORK_PER_BYTE: u64 = 64;
/// ... plus this much, so that a small segment is never short of work.
const RESYNC_WORK_FLOOR: u64 = 64 * 1024 * 1024;
/// What testing one length against a checksum costs, counted as bytes checksummed:
/// combining two checksums took about 300 ns here (crc32fast 1.5, x86-64), as long as
/// checksumming some 16 KiB.
const COMBINE_WORK: u64 = 16 * 1024;

/// One whole entry found in a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Found {
    /// Where its frame starts.
    pub(super) offset: u64,
    /// The whole frame, header included.
    pub(super) len: u64,
    pub(super) records: u32,
}

/// What one segment holds: its whole entries in order, and the stretches between them
/// (and at its start or end) that are not whole entries.
#[derive(Debug, Default)]
pub(super) struct Scan {
    pub(super) frames: Vec<Found>,
    pub(super) damage: Vec<Range<u64>>,
    /// The segment's size.
    pub(super) len: u64,
}

/// Why a cursor does not fit its segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Misfit {
    /// Past the segment's end.
    PastEnd,
    /// Inside a whole entry (or the segment's header): not where an entry starts.
    Inside,
}

impl Scan {
    /// Whether `offset` is a place a cursor of this segment can name: its start, its
    /// end, the start of a whole entry, or somewhere in a damaged stretch (the entry it
    /// named was damaged after it was written).
    pub(super) fn fits(&self, offset: u64) -> Result<(), Misfit> {
        if offset > self.len {
            return Err(Misfit::PastEnd);
        }
        let fits = offset == 0
            || offset == self.len
            || self.frames.iter().any(|f| f.offset == offset)
            || self.damage.iter().any(|r| r.contains(&offset));
        if fits {
            Ok(())
        } else {
            Err(Misfit::Inside)
        }
    }
}

/// The entries and damaged stretches of a segment's bytes.
pub(super) fn scan(bytes: &[u8]) -> Scan {
    let budget = (bytes.len() as u64)
        .saturating_mul(RESYNC_WORK_PER_BYTE)
        .saturating_add(RESYNC_WORK_FLOOR);
    scan_within(bytes, budget)
}

/// The work ran out: what is left counts as damaged.
struct OutOfWork;

/// What the length a damaged entry declares says about where the next entry starts.
enum Declared {
    /// At this offset: the damaged entry (or a run of them) is whole in the file, its
    /// declared length plausible, and a whole frame, or the end of the file, starts
    /// exactly where it says it ends.
    Next(usize),
    /// It runs past the end of the file: a torn tail, or a length that was damaged.
    PastEnd,
    /// It is too short to be a frame, or nothing whole starts where it ends: the length
    /// itself is what was damaged.
    Untrusted,
}

/// Reads frames, counting the bytes it checksums against a budget.
struct Reader<'a> {
    bytes: &'a [u8],
    budget: u64,
    /// The same, apart, for testing lengths against checksums ([`Reader::confirmed_end`]):
    /// when it runs out, a damaged entry's declared length is taken as it reads, as it
    /// would be without the test, and nothing else is lost.
    confirm_budget: u64,
}

impl Reader<'_> {
    /// The frame at `at`, if it is whole and checks out.
    fn frame(&mut self, at: usize) -> Result<Option<(u64, u32)>, OutOfWork> {
        let Some(claimed) = claimed(self.bytes, at) else {
            return Ok(None);
        };
        if claimed as u64 > self.budget {
            return Err(OutOfWork);
        }
        self.budget -= claimed as u64;
        Ok(frame_at(self.bytes, at as u64))
    }

    /// Where the entry at `at`, which does not check out, ends by its declared length;
    /// through a run of such entries, each whole in the file.
    fn declared(&mut self, at: usize) -> Result<Declared, OutOfWork> {
        let len = self.bytes.len();
        let mut at = at;
        loop {
            let Some(header) = self.bytes.get(at..at.saturating_add(FRAME_HEADER as usize)) else {
                // Not even a whole header left.
                return Ok(Declared::PastEnd);
            };
            let declared = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
            let declared = declared as usize;
            if declared < PAYLOAD_HEADER {
                return Ok(Declared::Untrusted);
            }
            let next = match (at + FRAME_HEADER as usize).checked_add(declared) {
                Some(next) if next <= len => next,
                _ => return Ok(Declared::PastEnd),
            };
            if next == len || self.frame(next)?.is_some() {
                return Ok(Declared::Next(next));
            }
            if self.budget < declared as u64 {
                return Err(OutOfWork);
            }
            // Walking a chain of lengths costs what checking it would.
            self.budget -= declared as u64;
            at = next;
        }
    }

    /// Where the entry at `at`, which does not check out, really ends, if its length
    /// bytes are what was damaged and the length written there put its end before
    /// `before`: the first place where a frame could start and where the entry's own
    /// checksum holds over its length bytes, as they would read for that end, and its
    /// payload up to there.
    ///
    /// One pass over the payload: its checksum is carried along, and each candidate
    /// costs a combine of two checksums (no second pass over the bytes).
    fn confirmed_end(&mut self, at: usize, before: usize) -> Option<usize> {
        if self.confirm_budget < COMBINE_WORK {
            return None;
        }
        let start = at + FRAME_HEADER as usize;
        let Some(&[a, b, c, d]) = self.bytes.get(at + 4..start) else {
            return None;
        };
        let written = u32::from_le_bytes([a, b, c, d]);
        let mut payload = crc32fast::Hasher::new();
        let mut hashed = start;
        for candidate in start + PAYLOAD_HEADER..before.min(self.bytes.len()) {
            // Not `claimed`: the entry after may be damaged too, in its encoding byte.
            if !length_fits(self.bytes, candidate) {
                continue;
            }
            let Ok(len) = u32::try_from(candidate - start) else {
                break;
            };
            let work = (candidate - hashed) as u64 + COMBINE_WORK;
            if work > self.confirm_budget {
                return None;
            }
            self.confirm_budget -= work;
            payload.update(&self.bytes[hashed..candidate]);
            hashed = candidate;
            let mut whole = crc32fast::Hasher::new();
            whole.update(&len.to_le_bytes());
            whole.combine(&payload);
            if whole.finalize() == written {
                return Some(candidate);
            }
        }
        None
    }

    /// Where the first of the damaged entries from `at` to `next` (a run that
    /// [`Reader::declared`] walked) whose length the checksum says was changed really
    /// ends, if one's does. A changed length can point at a later entry (or the end of
    /// the file) as well as the true one can: taken as it reads, it would cost the
    /// whole entries in between.
    fn confirmed_in_run(&mut self, at: usize, next: usize) -> Option<usize> {
        let mut at = at;
        while at < next {
            let &[a, b, c, d] = self.bytes.get(at..at + 4)? else {
                return None;
            };
            let end = (at + FRAME_HEADER as usize)
                .saturating_add(u32::from_le_bytes([a, b, c, d]) as usize)
                .min(next);
            if let Some(end) = self.confirmed_end(at, end) {
                return Some(end);
            }
            at = end;
        }
        None
    }

    /// Where reading goes on after the damaged entry at `at`, if anywhere.
    fn resume_after(&mut self, at: usize, depth: u32) -> Result<Option<usize>, OutOfWork> {
        match self.declared(at)? {
            Declared::Next(next) => Ok(Some(self.confirmed_in_run(at, next).unwrap_or(next))),
            Declared::Untrusted => {
                for candidate in at + 1..self.bytes.len() {
                    if self.frame(candidate)?.is_some() {
                        return Ok(Some(candidate));
                    }
                }
                Ok(None)
            }
            Declared::PastEnd => {
                // A torn tail, unless whole entries follow to the very end of the file.
                if depth == 0 {
                    return Ok(None);
                }
                for candidate in at + 1..self.bytes.len() {
                    if self.frame(candidate)?.is_some() && self.reaches_end(candidate, depth - 1)? {
                        return Ok(Some(candidate));
                    }
                }
                Ok(None)
            }
        }
    }

    /// Whether reading from the whole frame at `at` ends exactly at the end of the
    /// file, with no torn tail.
    fn reaches_end(&mut self, mut at: usize, depth: u32) -> Result<bool, OutOfWork> {
        while at < self.bytes.len() {
            at = match self.frame(at)? {
                // frame_len fits in what is left of `bytes`, so in a usize.
                Some((frame_len, _)) => at + frame_len as usize,
                None => match self.resume_after(at, depth)? {
                    Some(next) => next,
                    None => return Ok(false),
                },
            };
        }
        Ok(true)
    }
}

/// How many torn tails a search past one may look through (each one more nested
/// search): more than three separate damaged lengths in one segment cost the entries
/// between them, nothing else.
const PAST_END_DEPTH: u32 = 4;

/// [`scan`], checksumming at most `budget` bytes of candidate frames.
fn scan_within(bytes: &[u8], budget: u64) -> Scan {
    let len = bytes.len();
    let mut reader = Reader {
        bytes,
        budget,
        confirm_budget: budget,
    };
    let mut frames = Vec::new();
    let mut damage = Vec::new();
    // A segment whose header is not ours is read all the same: the header may be what
    // was damaged.
    let mut damaged_from = (!bytes.starts_with(MAGIC)).then_some(0);
    let mut at = MAGIC.len().min(len);
    while at < len {
        let found = match reader.frame(at) {
            Ok(found) => found,
            Err(OutOfWork) => {
                damaged_from.get_or_insert(at);
                break;
            }
        };
        if let Some((frame_len, records)) = found {
            if let Some(start) = damaged_from.take() {
                damage.push(start as u64..at as u64);
            }
            frames.push(Found {
                offset: at as u64,
                len: frame_len,
                records,
            });
            // frame_len fits in what is left of `bytes`, so in a usize.
            at += frame_len as usize;
            continue;
        }
        damaged_from.get_or_insert(at);
        match reader.resume_after(at, PAST_END_DEPTH) {
            Ok(Some(next)) => at = next,
            // The rest is damaged: a torn tail, or out of work.
            Ok(None) | Err(OutOfWork) => break,
        }
    }
    if let Some(start) = damaged_from {
        if start < len {
            damage.push(start as u64..len as u64);
        }
    }
    Scan {
        frames,
        damage,
        len: len as u64,
    }
}

/// The payload length the header at `at` claims, if the frame could be whole: at
/// least a payload header, no longer than what is left, and an encoding byte of 0 or 1.
fn claimed(bytes: &[u8], at: usize) -> Option<usize> {
    let header = bytes.get(at..at.checked_add(FRAME_HEADER as usize)?)?;
    let len = u32::from_le_bytes(header[..4].try_into().ok()?) as usize;
    let start = at + FRAME_HEADER as usize;
    let payload = bytes.get(start..start.checked_add(len)?)?;
    (len >= PAYLOAD_HEADER && payload[4] <= 1).then_some(len)
}

/// Whether the length at `at` could be a frame's: at least a payload header, and no
/// longer than what is left.
fn length_fits(bytes: &[u8], at: usize) -> bool {
    let Some(&[a, b, c, d]) = bytes.get(at..at.saturating_add(4)) else {
        return false;
    };
    let len = u32::from_le_bytes([a, b, c, d]) as usize;
    len >= PAYLOAD_HEADER && (at + FRAME_HEADER as usize).saturating_add(len) <= bytes.len()
}

/// The frame at `at` if it is whole and its checksum holds: its length and records.
pub(super) fn frame_at(bytes: &[u8], at: u64) -> Option<(u64, u32)> {
    let at = usize::try_from(at).ok()?;
    let len = claimed(bytes, at)?;
    let header = &bytes[at..at + FRAME_HEADER as usize];
    let crc = u32::from_le_bytes(header[4..].try_into().ok()?);
    let start = at + FRAME_HEADER as usize;
    let payload = &bytes[start..start + len];
    if checksum(&header[..4], payload) != crc {
        return None;
    }
    let records = u32::from_le_bytes(payload[..4].try_into().ok()?);
    Some((FRAME_HEADER + len as u64, records))
}

/// The CRC-32 of a frame: over its length bytes and its payload.
pub(super) fn checksum(len: &[u8], payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(len);
    hasher.update(payload);
    hasher.finalize()
}

/// Appends the frame of one request to `out`.
pub(super) fn encode(out: &mut Vec<u8>, len: u32, records: u32, gzip: bool, body: &[u8]) {
    let start = out.len();
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&records.to_le_bytes());
    out.push(u8::from(gzip));
    out.extend_from_slice(body);
    let header = start + FRAME_HEADER as usize;
    let crc = checksum(&out[start..start + 4], &out[header..]);
    out[start + 4..header].copy_from_slice(&crc.to_le_bytes());
}

#[cfg(test)]
#[allow(
    clippy::single_range_in_vec_init,
    reason = "a list of damaged stretches that holds one"
)]
mod tests {
    use super::*;

    fn segment(bodies: &[&[u8]]) -> (Vec<u8>, Vec<Found>) {
        let mut bytes = MAGIC.to_vec();
        let mut found = Vec::new();
        for (n, body) in bodies.iter().enumerate() {
            let offset = bytes.len() as u64;
            let len = (PAYLOAD_HEADER + body.len()) as u32;
            encode(&mut bytes, len, n as u32, n % 2 == 1, body);
            found.push(Found {
                offset,
                len: bytes.len() as u64 - offset,
                records: n as u32,
            });
        }
        (bytes, found)
    }

    #[test]
    fn whole_segments_have_no_damage() {
        let (bytes, found) = segment(&[b"a", b"", b"ccc"]);
        let scan = scan(&bytes);
        assert_eq!(scan.frames, found);
        assert!(scan.damage.is_empty());
        assert!(scan.fits(0).is_ok() && scan.fits(8).is_ok() && scan.fits(scan.len).is_ok());
        assert_eq!(scan.fits(9), Err(Misfit::Inside));
        assert_eq!(scan.fits(3), Err(Misfit::Inside));
        assert_eq!(scan.fits(scan.len + 1), Err(Misfit::PastEnd));
    }

    #[test]
    fn reading_goes_on_after_a_damaged_entry() {
        let (mut bytes, found) = segment(&[b"first", b"second entry", b"third", b"fourth"]);
        let middle = (found[1].offset + found[1].len / 2) as usize;
        bytes[middle] ^= 0xff;
        let scan = scan(&bytes);
        assert_eq!(scan.frames, [found[0], found[2], found[3]]);
        assert_eq!(
            scan.damage,
            [found[1].offset..found[1].offset + found[1].len]
        );
        assert!(scan.fits(found[1].offset + 3).is_ok(), "in the damage");
    }

    /// Any byte of an entry's frame header changed, to any value: that entry is lost,
    /// the ones after it are not. A changed length can point exactly at a later entry
    /// (`len 99 ^ 0xf1 = 146`, with entries of 23 and 24 bytes after it), which must not
    /// be taken for where the damaged one ends.
    #[test]
    fn damage_anywhere_in_a_header_costs_only_its_entry() {
        let later: [&[u8]; 6] = [&[1; 10], &[2; 11], &[3; 131], b"", &[5; 200], &[6; 40]];
        for size in [0, 1, 94, 250, 300] {
            let first = vec![0xa5; size];
            let bodies: Vec<&[u8]> = [&first[..]].into_iter().chain(later).collect();
            let (bytes, found) = segment(&bodies);
            let entry = found[0].offset..found[0].offset + found[0].len;
            for at in 0..FRAME_HEADER as usize {
                for flip in 1..=u8::MAX {
                    let mut damaged = bytes.clone();
                    damaged[entry.start as usize + at] ^= flip;
                    let scan = scan(&damaged);
                    assert_eq!(
                        (&scan.frames[..], &scan.damage[..]),
                        (&found[1..], &[entry.clone()][..]),
                        "first body of {size} bytes, header byte {at} ^ {flip:#04x}"
                    );
                }
            }
        }
    }

    /// A damaged entry, then one whose length was changed to point exactly at a later
    /// entry (or at the end of the file): walked as a run of damaged entries, the
    /// lengths would cost the whole entries between; the checksum of the second says
    /// where it really ends.
    #[test]
    fn a_changed_length_after_a_damaged_entry_costs_only_its_entry() {
        let (bytes, found) = segment(&[b"first", b"second", b"third", b"fourth", b"fifth"]);
        for to in [found[4].offset, bytes.len() as u64] {
            let mut damaged = bytes.clone();
            damaged[found[1].offset as usize + 6] ^= 0x0a;
            let length = (to - found[2].offset - FRAME_HEADER) as u32;
            let at = found[2].offset as usize;
            damaged[at..at + 4].copy_from_slice(&length.to_le_bytes());
            let scan = scan(&damaged);
            let kept: Vec<_> = [found[0], found[3], found[4]].into();
            assert_eq!(scan.frames, kept, "length to {to}");
            assert_eq!(scan.damage, [found[1].offset..found[3].offset]);
        }
    }

    /// Bytes a record could carry that look like a frame header every 8 bytes, in an
    /// entry damaged with its length intact: testing each against the checksum stops
    /// when its own work runs out, and the length is taken as it reads.
    #[test]
    fn frame_like_bytes_in_a_damaged_entry_cost_only_that_entry() {
        let crafted: Vec<u8> = [6, 0, 0, 0, 0, 0, 0, 0].repeat(8 * 1024);
        let (mut bytes, found) = segment(&[b"first", &crafted, b"third"]);
        bytes[found[1].offset as usize + 4] ^= 1;
        let scan = scan_within(&bytes, 16 * COMBINE_WORK);
        assert_eq!(scan.frames, [found[0], found[2]]);
        assert_eq!(
            scan.damage,
            [found[1].offset..found[1].offset + found[1].len]
        );
    }

    #[test]
    fn a_damaged_header_is_searched_past() {
        let (mut bytes, found) = segment(&[b"first", b"second"]);
        bytes[0] = b'X';
        let scan = scan(&bytes);
        assert_eq!(scan.frames, found);
        assert_eq!(scan.damage, [0..8]);
    }

    #[test]
    fn short_and_empty_files() {
        assert!(scan(b"").damage.is_empty());
        assert_eq!(scan(b"TLM").damage, [0..3]);
        let scan = scan(MAGIC);
        assert!(scan.frames.is_empty() && scan.damage.is_empty());
    }

    #[test]
    fn the_search_stops_when_its_work_runs_out() {
        let (mut bytes, found) = segment(&[&[7; 300], &[8; 300], b"third"]);
        bytes[found[0].offset as usize + 20] ^= 1;
        // Enough to check the damaged entry in full, not the next one.
        let scan = scan_within(&bytes, 305 + 100);
        assert!(scan.frames.is_empty(), "{:?}", scan.frames);
        assert_eq!(scan.damage, [8..bytes.len() as u64]);
        let scan = scan_within(&bytes, 4 * 305);
        assert_eq!(scan.frames, [found[1], found[2]]);
    }
    /// A whole frame that checks out, as a record attribute could carry it.
    fn forged() -> Vec<u8> {
        let mut frame = Vec::new();
        encode(
            &mut frame,
            (PAYLOAD_HEADER + 6) as u32,
            99,
            false,
            b"forged",
        );
        frame
    }

    fn carrier() -> Vec<u8> {
        let mut body = b"value: ".to_vec();
        body.extend_from_slice(&forged());
        body.extend_from_slice(b" the rest of the request");
        body
    }

    #[test]
    fn a_damaged_entry_with_its_length_intact_is_skipped_whole() {
        let carrier = carrier();
        let (mut bytes, found) = segment(&[b"first", &carrier, b"third", b"fourth"]);
        // Its checksum, then a byte of its body: either way the length says where the
        // next entry is, and the forged frame inside is not looked at.
        for at in [4, FRAME_HEADER as usize + PAYLOAD_HEADER + 2] {
            let mut damaged = bytes.clone();
            damaged[found[1].offset as usize + at] ^= 0x10;
            let scan = scan(&damaged);
            assert_eq!(scan.frames, [found[0], found[2], found[3]], "at {at}");
            assert_eq!(
                scan.damage,
                [found[1].offset..found[1].offset + found[1].len]
            );
        }
        // Two damaged entries in a row: skipped one length after the other.
        bytes[found[1].offset as usize + 4] ^= 0x10;
        bytes[found[2].offset as usize + 4] ^= 0x10;
        let scan = scan(&bytes);
        assert_eq!(scan.frames, [found[0], found[3]]);
        assert_eq!(scan.damage, [found[1].offset..found[3].offset]);
    }

    #[test]
    fn a_forged_frame_in_a_torn_tail_is_not_taken() {
        let carrier = carrier();
        let (bytes, found) = segment(&[b"first", &carrier]);
        let forged_end =
            found[1].offset as usize + FRAME_HEADER as usize + PAYLOAD_HEADER + 7 + forged().len();
        for cut in [
            forged_end - 1,
            forged_end + 1,
            forged_end + 5,
            bytes.len() - 1,
        ] {
            let scan = scan(&bytes[..cut]);
            assert_eq!(scan.frames, [found[0]], "cut at {cut}");
            assert_eq!(scan.damage, [found[1].offset..cut as u64]);
        }
        // What is not defended (see the module docs): a tear exactly at the end of the
        // forged frame leaves whole frames to the end of the file.
        assert_eq!(scan(&bytes[..forged_end]).frames.len(), 2);
    }

    #[test]
    fn a_length_changed_to_run_past_the_end_costs_only_its_entry() {
        let (mut bytes, found) = segment(&[b"first", b"second", b"third", b"fourth"]);
        bytes[found[1].offset as usize + 3] = 0x7f;
        let scan = scan(&bytes);
        assert_eq!(scan.frames, [found[0], found[2], found[3]]);
        assert_eq!(scan.damage, [found[1].offset..found[2].offset]);
    }
}
