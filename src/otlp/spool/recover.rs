//! Opening a spool: what its files hold, read back and checked, the damage skipped
//! and counted, and what is worth saying about it.

use super::*;

impl Spool {
    /// The segments in the directory that are regular files, oldest first. Names out of
    /// range are reported and left alone; the next segment is numbered after every name
    /// in range, refused ones included, so that it is never taken.
    pub(super) fn list(&mut self, findings: &mut Findings) -> io::Result<Vec<u64>> {
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
    pub(super) fn load(&mut self, segments: &[u64], saved: (u64, u64), findings: &mut Findings) {
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
    pub(super) fn load_segment(
        &mut self,
        segment: u64,
        from: u64,
        bytes: &[u8],
        findings: &mut Findings,
    ) {
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
    pub(super) fn rewrite(
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
    pub(super) fn report(&mut self, findings: &Findings) {
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
}
