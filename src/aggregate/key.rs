//! A series' identity, hashed and compared straight from the borrowed record.
//!
//! The hot path must not allocate, so a record's (kind, name, tags) is hashed in
//! place and compared in place with the owned copy a thread keeps for each series it
//! has seen. Tag values are compared as the label text they become (`3` and `"3"` are
//! one series), which for strings (the function form) is the string itself.

use std::fmt::{self, Write as _};
use std::hash::{BuildHasherDefault, Hasher};

use crate::fields::Kind;
use crate::record::{Tag, TagValue};

/// Calls `f` with the label text of `value`, built on the stack for typed values.
#[inline]
pub(crate) fn with_label_text<R>(value: TagValue<'_>, f: impl FnOnce(&str) -> R) -> R {
    match value {
        TagValue::Str(s) => f(s),
        TagValue::Bool(true) => f("true"),
        TagValue::Bool(false) => f("false"),
        TagValue::I64(v) => f(itoa::Buffer::new().format(v)),
        TagValue::U64(v) => f(itoa::Buffer::new().format(v)),
        TagValue::F64(v) => {
            let mut text = StackText::default();
            // What does not fit is cut off: a pathological float still names one
            // stable series.
            let _ = write!(text, "{v}");
            f(text.as_str())
        }
    }
}

/// Up to 128 bytes of text on the stack.
struct StackText {
    buf: [u8; 128],
    len: usize,
}

impl Default for StackText {
    fn default() -> Self {
        StackText {
            buf: [0; 128],
            len: 0,
        }
    }
}

impl StackText {
    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

impl fmt::Write for StackText {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.buf.len() - self.len;
        // Float text is ASCII, so cutting at `room` keeps it valid UTF-8.
        let take = s.len().min(room);
        self.buf[self.len..self.len + take].copy_from_slice(&s.as_bytes()[..take]);
        self.len += take;
        if take < s.len() {
            Err(fmt::Error)
        } else {
            Ok(())
        }
    }
}

const MULTIPLIER: u64 = 0x517c_c1b7_2722_0a95;

/// A small multiply-rotate hash (FxHash's step) over 8-byte words, seeded per
/// aggregator and finished with a full avalanche so that the map's bucket bits are
/// well mixed. Not a defence against an adversary who can read the seed; the
/// cardinality limit bounds what any input can grow.
#[derive(Clone, Copy)]
pub(crate) struct KeyHash(u64);

impl KeyHash {
    #[inline]
    pub(crate) fn new(seed: u64) -> Self {
        KeyHash(seed)
    }

    #[inline]
    fn word(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(MULTIPLIER);
    }

    #[inline]
    pub(crate) fn str(&mut self, s: &str) {
        let bytes = s.as_bytes();
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0; 8];
            word.copy_from_slice(chunk);
            self.word(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.word(u64::from_le_bytes(word));
        }
        // The length separates "ab","c" from "a","bc".
        self.word(bytes.len() as u64);
    }

    #[inline]
    pub(crate) fn finish(self) -> u64 {
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

/// Hashes a record's identity: kind, name and every tag (key and label text), in the
/// order given.
#[inline]
pub(crate) fn hash_record<'a>(
    seed: u64,
    kind: Kind,
    name: &str,
    tags: impl Iterator<Item = Tag<'a>>,
) -> u64 {
    let mut h = KeyHash::new(seed);
    h.word(kind as u64);
    h.str(name);
    for tag in tags {
        h.str(tag.key());
        with_label_text(tag.value(), |text| h.str(text));
    }
    h.finish()
}

/// An owned series identity: kind, name and labels (key, label text).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct OwnedKey {
    pub(crate) kind: Kind,
    pub(crate) name: Box<str>,
    pub(crate) labels: Box<[(Box<str>, Box<str>)]>,
}

impl OwnedKey {
    /// Copies a record's identity, tags in the order given.
    pub(crate) fn copy<'a>(kind: Kind, name: &str, tags: impl Iterator<Item = Tag<'a>>) -> Self {
        let labels = tags
            .map(|tag| {
                let value = with_label_text(tag.value(), |t| Box::<str>::from(t));
                (Box::<str>::from(tag.key()), value)
            })
            .collect();
        OwnedKey {
            kind,
            name: name.into(),
            labels,
        }
    }

    /// Whether a record has this identity, tags in the same order; allocates nothing.
    #[inline]
    pub(crate) fn matches<'a>(
        &self,
        kind: Kind,
        name: &str,
        tags: impl ExactSizeIterator<Item = Tag<'a>>,
    ) -> bool {
        self.kind == kind
            && *self.name == *name
            && self.labels.len() == tags.len()
            && self.labels.iter().zip(tags).all(|((key, text), tag)| {
                **key == *tag.key() && with_label_text(tag.value(), |t| **text == *t)
            })
    }

    /// The same identity with its labels sorted by key and a repeated key dropped
    /// (the first one given wins), so that tag order does not make another series.
    pub(crate) fn canonical(&self) -> OwnedKey {
        let mut labels: Vec<(Box<str>, Box<str>)> = Vec::with_capacity(self.labels.len());
        for (key, value) in self.labels.iter() {
            if !labels.iter().any(|(k, _)| k == key) {
                labels.push((key.clone(), value.clone()));
            }
        }
        labels.sort_by(|a, b| a.0.cmp(&b.0));
        OwnedKey {
            kind: self.kind,
            name: self.name.clone(),
            labels: labels.into_boxed_slice(),
        }
    }
}

/// A map keyed by an already-mixed `u64` hash passes it through unchanged.
#[derive(Default)]
pub(crate) struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used; anything else still hashes, slowly.
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(MULTIPLIER);
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

pub(crate) type BuildIdentity = BuildHasherDefault<IdentityHasher>;
