//! The spool on real files: damage, tears, limits, cursors and refusals.

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
    let cut = offset + FRAME_HEADER + PAYLOAD_HEADER as u64 + forged_at + forged.len() as u64 + 3;
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
