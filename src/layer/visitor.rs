//! The visitor that reads one telemetry event's fields into a [`Record`].

use std::error::Error;
use std::fmt::{self, Write as _};

use smallvec::SmallVec;
use tracing_core::field::{Field, Visit};
use tracing_core::Metadata;

use crate::fields::{self, Kind};
use crate::record::{FieldValue, Record, TagSource, TagValue};
use crate::track::DynTags;

/// Macro-form fields held inline before the visitor's list moves to the heap.
const INLINE_TAGS: usize = 8;
/// Bytes of macro-form strings (name and values) held inline.
const INLINE_TEXT: usize = 128;

/// Collects one event's fields without allocating (up to [`INLINE_TAGS`] macro-form
/// fields and [`INLINE_TEXT`] bytes of their strings).
#[derive(Default)]
pub(super) struct RecordVisitor {
    kind: Option<Kind>,
    name: Option<FieldValue>,
    value: Option<f64>,
    /// The function form's payload; see [`RecordVisitor::finish`] for why a pointer.
    dyn_tags: Option<*const DynTags>,
    fields: SmallVec<[(&'static str, FieldValue); INLINE_TAGS]>,
    text: SmallVec<[u8; INLINE_TEXT]>,
}

impl RecordVisitor {
    #[inline(always)]
    fn push_text(&mut self, s: &str) -> FieldValue {
        let start = self.text.len();
        self.text.extend_from_slice(s.as_bytes());
        FieldValue::Text(start, self.text.len())
    }

    fn push_fmt(&mut self, args: fmt::Arguments<'_>) -> FieldValue {
        let start = self.text.len();
        // Writing into memory cannot fail; if a `Debug`/`Display` impl itself errors,
        // the text written so far is kept rather than losing the tag.
        let _ = TextWriter(&mut self.text).write_fmt(args);
        FieldValue::Text(start, self.text.len())
    }

    // Inlined into each `record_*`, so each value is written in place: passing it
    // through memory costs a store-forwarding stall per field (measured: a third of a
    // macro-form call).
    #[inline(always)]
    fn set(&mut self, field: &Field, value: FieldValue) {
        match field.name() {
            fields::NAME => self.name = Some(value),
            fields::KIND => {}
            name => self.fields.push((name, value)),
        }
    }

    /// Builds the record (borrowing this visitor's buffers) and passes it to `f`.
    /// Events without a valid `telemetry.kind` and a name are not telemetry: ignored.
    pub(super) fn finish(&self, meta: &Metadata<'_>, f: impl FnOnce(&Record<'_>)) {
        let mut record =
            match self.dyn_tags {
                Some(dyn_tags) => {
                    // SAFETY: the pointer came from the `telemetry.tags` value of the event
                    // being visited; `finish` runs inside `on_event`, while that event (and
                    // the track call that owns the value) is still being dispatched.
                    let dyn_tags = unsafe { &*dyn_tags };
                    let (name, pairs, location) = dyn_tags.get();
                    Record::with_tag_source(dyn_tags.kind(), name, TagSource::Pairs(pairs))
                        .with_source(None, Some(location.file()), Some(location.line()))
                }
                None => {
                    let Some(kind) = self.kind else { return };
                    // Every byte was copied from a `&str` or written by `fmt::Write`, so
                    // this only fails if that invariant breaks; then the record is skipped,
                    // not torn.
                    let Ok(text) = std::str::from_utf8(&self.text) else {
                        return;
                    };
                    let Some(TagValue::Str(name)) = self.name.map(|n| n.resolve(text)) else {
                        return;
                    };
                    let tags = TagSource::Fields {
                        fields: &self.fields,
                        text,
                    };
                    Record::with_tag_source(kind, name, tags).with_source(
                        meta.module_path(),
                        meta.file(),
                        meta.line(),
                    )
                }
            };
        if let Some(value) = self.value {
            record = record.with_value(value);
        }
        f(&record);
    }
}

impl Visit for RecordVisitor {
    fn record_f64(&mut self, field: &Field, value: f64) {
        match field.name() {
            fields::VALUE | fields::DURATION_MS => self.value = Some(value),
            _ => self.set(field, FieldValue::Value(TagValue::F64(value))),
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        match field.name() {
            // `track_metric!(name, 3)` converts with `as f64`, but a hand-written event
            // may pass an integer.
            fields::VALUE | fields::DURATION_MS => self.value = Some(value as f64),
            _ => self.set(field, FieldValue::Value(TagValue::I64(value))),
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        match field.name() {
            fields::VALUE | fields::DURATION_MS => self.value = Some(value as f64),
            _ => self.set(field, FieldValue::Value(TagValue::U64(value))),
        }
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        let slot = match i64::try_from(value) {
            Ok(v) => FieldValue::Value(TagValue::I64(v)),
            Err(_) => self.push_fmt(format_args!("{value}")),
        };
        self.set(field, slot);
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        let slot = match u64::try_from(value) {
            Ok(v) => FieldValue::Value(TagValue::U64(v)),
            Err(_) => self.push_fmt(format_args!("{value}")),
        };
        self.set(field, slot);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.set(field, FieldValue::Value(TagValue::Bool(value)));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if self.dyn_tags.is_some() {
            // A function-form event's only string fields are its kind and name, which
            // arrived (uncopied) with its tags.
            return;
        }
        match field.name() {
            fields::KIND => self.kind = value.parse().ok(),
            _ => {
                let value = self.push_text(value);
                self.set(field, value);
            }
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn Error + 'static)) {
        if field.name() == fields::TAGS {
            if let Some(dyn_tags) = value.downcast_ref::<DynTags>() {
                self.dyn_tags = Some(dyn_tags);
                return;
            }
        }
        let slot = self.push_fmt(format_args!("{value}"));
        self.set(field, slot);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let slot = self.push_fmt(format_args!("{value:?}"));
        self.set(field, slot);
    }
}

struct TextWriter<'a>(&'a mut SmallVec<[u8; INLINE_TEXT]>);

impl fmt::Write for TextWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}
