//! The frame of one spool entry, and reading a segment's entries back.
//!
//! A segment is `MAGIC`, then frames `len: u32 LE | crc32: u32 LE | payload (len
//! bytes)`, the CRC-32 over the length bytes and the payload; the payload starts with
//! `records: u32 LE | encoding: u8 (0 none, 1 gzip)`.
//!
//! # Damage, and how reading goes on after it
//!
//! Where a frame does not check out (its length runs past the end, its checksum fails,
//! its encoding byte is neither 0 nor 1), [`scan`] does not stop: it moves on one byte
//! at a time until a whole frame checks out again, and notes the stretch it skipped.
//! So four changed bytes in the second of ten entries cost that entry and nothing
//! else, where stopping at the first bad frame would drop the eight whole entries
//! after it. A byte-by-byte search is the only resynchronisation the format allows
//! (frames carry no marker), and it is cheap: a candidate is checked in full only
//! when its length fits in what is left and its encoding byte is 0 or 1, so random
//! bytes cost a few comparisons each.
//!
//! A false match inside a damaged entry needs a 32-bit checksum to hold by chance
//! (about one in four billion candidates that pass the cheap checks). Crafted bytes
//! can make every position a candidate, which would make the search quadratic: the
//! work is capped at [`RESYNC_WORK_PER_BYTE`] times the segment's size (plus
//! [`RESYNC_WORK_FLOOR`]), and what is left when it runs out counts as damaged.

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

/// [`scan`], checksumming at most `budget` bytes of candidate frames.
fn scan_within(bytes: &[u8], mut budget: u64) -> Scan {
    let len = bytes.len();
    let mut frames = Vec::new();
    let mut damage = Vec::new();
    // A segment whose header is not ours is searched all the same: the header may be
    // what was damaged.
    let mut damaged_from = (!bytes.starts_with(MAGIC)).then_some(0);
    let mut at = MAGIC.len().min(len);
    while at < len {
        let found = match claimed(bytes, at) {
            Some(claimed) if claimed as u64 <= budget => {
                budget -= claimed as u64;
                frame_at(bytes, at as u64)
            }
            Some(_) => {
                // Out of work: the rest is counted as damaged.
                damaged_from.get_or_insert(at);
                break;
            }
            None => None,
        };
        match found {
            Some((frame_len, records)) => {
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
            }
            None => {
                damaged_from.get_or_insert(at);
                at += 1;
            }
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
}
