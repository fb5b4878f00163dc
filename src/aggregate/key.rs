//! A series' identity, hashed and compared straight from the borrowed record.
//!
//! The hot path must not allocate, so a record's (kind, name, tags) is hashed in
//! place and compared in place with the owned copy a thread keeps for each series it
//! has seen. Tag values are compared as the label text they become (`3` and `"3"` are
//! one series), which for strings (the function form) is the string itself.

use std::fmt::{self, Write as _};
use std::hash::{BuildHasherDefault, Hasher};

use crate::fields::Kind;
use crate::record::{Record, Tag, TagValue};

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

const P0: u64 = 0xa076_1d64_78bd_642f;
const P1: u64 = 0xe703_7ed1_a0b4_28db;
const P2: u64 = 0x8ebc_6af0_9c88_c6e3;

/// The folded 64x64->128 multiply of wyhash: one multiply mixes two words.
#[inline]
fn mum(a: u64, b: u64) -> u64 {
    let r = u128::from(a) * u128::from(b);
    (r as u64) ^ ((r >> 64) as u64)
}

#[inline]
fn read8(b: &[u8], at: usize) -> u64 {
    let mut word = [0; 8];
    word.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(word)
}

#[inline]
fn read4(b: &[u8], at: usize) -> u64 {
    let mut word = [0; 4];
    word.copy_from_slice(&b[at..at + 4]);
    u64::from(u32::from_le_bytes(word))
}

/// wyhash's way with short strings: up to 16 bytes read as two (overlapping) words
/// and mixed by one multiply; longer ones 16 bytes per multiply.
#[inline]
fn hash_str(s: &str, seed: u64) -> u64 {
    let b = s.as_bytes();
    let len = b.len();
    let (a, c) = if len <= 16 {
        if len >= 8 {
            (read8(b, 0), read8(b, len - 8))
        } else if len >= 4 {
            (read4(b, 0), read4(b, len - 4))
        } else if len > 0 {
            (
                (u64::from(b[0]) << 16) | (u64::from(b[len / 2]) << 8) | u64::from(b[len - 1]),
                0,
            )
        } else {
            (0, 0)
        }
    } else {
        let mut state = seed;
        let mut at = 0;
        while len - at > 16 {
            state = mum(read8(b, at) ^ P1, read8(b, at + 8) ^ state);
            at += 16;
        }
        (read8(b, len - 16) ^ state, read8(b, len - 8))
    };
    mum(a ^ P1 ^ len as u64, c ^ seed ^ P2)
}

/// A record identity's hash: each string hashed on its own (so the multiplies run
/// side by side), combined in order, and finished with one more multiply. Seeded
/// per aggregator; not a defence against an adversary who can read the seed, and
/// the cardinality limit bounds what any input can grow.
#[derive(Clone, Copy)]
pub(crate) struct KeyHash {
    seed: u64,
    state: u64,
}

impl KeyHash {
    #[inline]
    pub(crate) fn new(seed: u64) -> Self {
        KeyHash { seed, state: seed }
    }

    #[inline]
    fn word(&mut self, word: u64) {
        self.state = self.state.rotate_left(23) ^ word;
    }

    #[inline]
    pub(crate) fn str(&mut self, s: &str) {
        let h = hash_str(s, self.seed);
        self.word(h);
    }

    #[inline]
    pub(crate) fn finish(self) -> u64 {
        mum(self.state ^ P0, self.seed ^ P2)
    }
}

/// Hashes a record's identity: kind, name and every tag (key and label text), in the
/// order given.
#[inline]
pub(crate) fn hash_record(seed: u64, record: &Record<'_>) -> u64 {
    let mut h = KeyHash::new(seed);
    h.word(record.kind() as u64);
    h.str(record.name());
    if let Some(pairs) = record.pairs() {
        for (key, value) in pairs {
            h.str(key);
            h.str(value);
        }
    } else {
        for tag in record.tags() {
            h.str(tag.key());
            with_label_text(tag.value(), |text| h.str(text));
        }
    }
    h.finish()
}

/// String equality without a call into `memcmp` for the short strings that names,
/// keys and values usually are.
#[inline]
fn eq_str(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let len = a.len();
    if len != b.len() {
        return false;
    }
    if len > 16 {
        return a == b;
    }
    if len >= 8 {
        read8(a, 0) == read8(b, 0) && read8(a, len - 8) == read8(b, len - 8)
    } else if len >= 4 {
        read4(a, 0) == read4(b, 0) && read4(a, len - 4) == read4(b, len - 4)
    } else {
        a == b
    }
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
    pub(crate) fn matches(&self, record: &Record<'_>) -> bool {
        if self.kind != record.kind() || !eq_str(&self.name, record.name()) {
            return false;
        }
        if let Some(pairs) = record.pairs() {
            // The function form: plain strings, compared as they are.
            if self.labels.len() != pairs.len() {
                return false;
            }
            for ((key, text), (k, v)) in self.labels.iter().zip(pairs) {
                if !eq_str(key, k) || !eq_str(text, v) {
                    return false;
                }
            }
            return true;
        }
        let tags = record.tags();
        self.labels.len() == tags.len()
            && self.labels.iter().zip(tags).all(|((key, text), tag)| {
                eq_str(key, tag.key()) && with_label_text(tag.value(), |t| eq_str(text, t))
            })
    }

    /// The same identity with its labels sorted by key and a repeated key given once
    /// with its last value (as in JSON lines), so that tag order does not make
    /// another series.
    pub(crate) fn canonical(&self) -> OwnedKey {
        let mut labels: Vec<(Box<str>, Box<str>)> = Vec::with_capacity(self.labels.len());
        for (key, value) in self.labels.iter() {
            match labels.iter_mut().find(|(k, _)| k == key) {
                Some(label) => label.1 = value.clone(),
                None => labels.push((key.clone(), value.clone())),
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
            self.0 = mum(self.0 ^ u64::from(b), P0);
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

pub(crate) type BuildIdentity = BuildHasherDefault<IdentityHasher>;
