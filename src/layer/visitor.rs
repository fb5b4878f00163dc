//! The visitor that reads one telemetry event's fields and delivers its [`Record`].
//!
//! Only the crate's own track calls make records, recognised by the value of their
//! `telemetry.tags` field, never by field names alone:
//!
//! * the function form's value is a [`DynCall`] holding the whole call; the record is
//!   built from it and delivered inside `record_error`, while the call's borrows are
//!   alive, and the event's other fields (which say the same) are skipped;
//! * the macro form's value is a [`MacroCall`] mark giving the kind; the name, value and
//!   typed tags are read from the fields, in any order, and the record is delivered by
//!   [`RecordVisitor::finish`].
//!
//! A field named `telemetry.*` is never a tag. Of the reserved fields, only
//! `telemetry.name` (text), and `telemetry.value` (metrics) or `telemetry.duration_ms`
//! (timings) as an `f64` are read; the macros write theirs first, and a reserved field
//! given again, or with another type, is ignored.

use std::error::Error;
use std::fmt::{self, Write as _};

use smallvec::SmallVec;
use tracing_core::field::{Field, Visit};
use tracing_core::Metadata;

use crate::fields::{self, Kind};
use crate::record::{Callsite, FieldValue, Record, TagSource, TagValue};
use crate::track::{DynCall, MacroCall};

/// Macro-form fields held inline before the visitor's list moves to the heap.
const INLINE_TAGS: usize = 8;
/// Bytes of macro-form strings (name and values) held inline.
const INLINE_TEXT: usize = 128;
/// The prefix of the fields this crate reserves.
const RESERVED: &str = "telemetry.";

/// Collects one event's fields without allocating (up to [`INLINE_TAGS`] macro-form
/// fields and [`INLINE_TEXT`] bytes of their strings), and hands the record to
/// `deliver`.
pub(super) struct RecordVisitor<'c, D> {
    deliver: D,
    /// What the spans around the event add: tags, and the trace context.
    span_tags: TagSource<'c>,
    trace: Option<([u8; 16], [u8; 8])>,
    /// Set once the function form's record has been delivered: the rest is skipped.
    delivered: bool,
    /// The macro form's kind, from its mark.
    kind: Option<Kind>,
    name: Option<FieldValue>,
    value: Option<f64>,
    duration_ms: Option<f64>,
    fields: SmallVec<[(&'static str, FieldValue); INLINE_TAGS]>,
    text: SmallVec<[u8; INLINE_TEXT]>,
}

impl<'c, D: FnMut(&Record<'_>)> RecordVisitor<'c, D> {
    pub(super) fn new(
        span_tags: TagSource<'c>,
        trace: Option<([u8; 16], [u8; 8])>,
        deliver: D,
    ) -> Self {
        RecordVisitor {
            deliver,
            span_tags,
            trace,
            delivered: false,
            kind: None,
            name: None,
            value: None,
            duration_ms: None,
            fields: SmallVec::new(),
            text: SmallVec::new(),
        }
    }

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

    /// Whether `field` should be read at all: not once the record is delivered, and a
    /// reserved field only if it is the name (the numbers have their own methods).
    #[inline(always)]
    fn wants(&self, field: &Field) -> bool {
        !self.delivered && (!field.name().starts_with(RESERVED) || field.name() == fields::NAME)
    }

    // Inlined into each `record_*`, so each value is written in place: passing it
    // through memory costs a store-forwarding stall per field (measured: a third of a
    // macro-form call).
    #[inline(always)]
    fn set(&mut self, field: &Field, value: FieldValue) {
        match field.name() {
            fields::NAME => {
                if self.name.is_none() && matches!(value, FieldValue::Text(..)) {
                    self.name = Some(value);
                }
            }
            name => self.fields.push((name, value)),
        }
    }

    #[inline(always)]
    fn number(&mut self, field: &Field, value: FieldValue) {
        if self.wants(field) && field.name() != fields::NAME {
            self.set(field, value);
        }
    }

    /// Builds and delivers the function form's record from its call, while the call's
    /// borrows are alive (this runs inside `record_error`).
    fn deliver_call(&mut self, call: &DynCall) {
        let call = call.get();
        let record = Record::from_call(
            call.kind,
            call.name,
            call.value,
            TagSource::Pairs(call.tags),
            self.span_tags,
            self.trace,
            Callsite::Caller(call.location),
        )
        .with_meta(call.meta);
        self.delivered = true;
        (self.deliver)(&record);
    }

    /// Delivers the macro form's record (borrowing this visitor's buffers). Events
    /// without the mark, or without a name, are not telemetry: ignored.
    pub(super) fn finish(&mut self, meta: &'static Metadata<'static>) {
        if self.delivered {
            return;
        }
        let Some(kind) = self.kind else { return };
        // Every byte was copied from a `&str` or written by `fmt::Write`, so this only
        // fails if that invariant breaks; then the record is skipped, not torn.
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
        let value = match kind {
            Kind::Event => None,
            Kind::Metric => self.value,
            Kind::Timing => self.duration_ms,
        };
        let record = Record::from_call(
            kind,
            name,
            value,
            tags,
            self.span_tags,
            self.trace,
            Callsite::Event(meta),
        );
        (self.deliver)(&record);
    }
}

impl<D: FnMut(&Record<'_>)> Visit for RecordVisitor<'_, D> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        if self.delivered {
            return;
        }
        match field.name() {
            fields::VALUE => {
                self.value.get_or_insert(value);
            }
            fields::DURATION_MS => {
                self.duration_ms.get_or_insert(value);
            }
            _ => self.number(field, FieldValue::Value(TagValue::F64(value))),
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.number(field, FieldValue::Value(TagValue::I64(value)));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.number(field, FieldValue::Value(TagValue::U64(value)));
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        if !self.wants(field) || field.name() == fields::NAME {
            return;
        }
        let slot = match i64::try_from(value) {
            Ok(v) => FieldValue::Value(TagValue::I64(v)),
            Err(_) => self.push_fmt(format_args!("{value}")),
        };
        self.set(field, slot);
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        if !self.wants(field) || field.name() == fields::NAME {
            return;
        }
        let slot = match u64::try_from(value) {
            Ok(v) => FieldValue::Value(TagValue::U64(v)),
            Err(_) => self.push_fmt(format_args!("{value}")),
        };
        self.set(field, slot);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.number(field, FieldValue::Value(TagValue::Bool(value)));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if self.wants(field) {
            let value = self.push_text(value);
            self.set(field, value);
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn Error + 'static)) {
        if self.delivered {
            return;
        }
        if field.name() == fields::TAGS {
            if let Some(call) = value.downcast_ref::<DynCall>() {
                self.deliver_call(call);
            } else if let Some(mark) = value.downcast_ref::<MacroCall>() {
                self.kind = Some(mark.kind());
            }
            // Anything else in `telemetry.tags` is not ours: never a tag.
            return;
        }
        if self.wants(field) {
            let slot = self.push_fmt(format_args!("{value}"));
            self.set(field, slot);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.wants(field) {
            let slot = self.push_fmt(format_args!("{value:?}"));
            self.set(field, slot);
        }
    }
}

struct TextWriter<'a>(&'a mut SmallVec<[u8; INLINE_TEXT]>);

impl fmt::Write for TextWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}
