//! Span fields as tags (`TELEMETRY_SPAN_FIELDS`): the chosen fields of each span are
//! kept in its extensions when it is created or recorded, and read back, nearest span
//! first, for each record made inside it.
//!
//! Nothing here runs when no field is chosen: the layer then has no [`SpanFields`], and
//! its filter does not even enable spans.

use std::fmt::{self, Write as _};
use std::sync::Arc;

use smallvec::SmallVec;
use tracing_core::field::{Field, Visit};
use tracing_core::span;
use tracing_core::{Event, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use crate::record::{FieldValue, TagSource, TagValue};

/// Span fields held inline, per record, before the heap is used.
pub(super) const INLINE_SPAN_FIELDS: usize = 4;
/// Bytes of span field strings held inline, per record, before the heap is used.
const INLINE_SPAN_TEXT: usize = 128;

/// The span field names to copy onto records, in the order configured.
#[derive(Debug, Clone)]
pub(super) struct SpanFields {
    names: Arc<[Box<str>]>,
}

/// One span field's value as a span keeps it: strings shared, so that copying one
/// onto a record is a reference count, not an allocation.
#[derive(Debug, Clone)]
pub(super) enum SpanValue {
    Str(Arc<str>),
    I64(i64),
    U64(u64),
    F64(f64),
    Bool(bool),
}

impl SpanValue {
    /// The value for one record: a string is copied into the record's own text (a
    /// short copy costs less than the two atomic operations of sharing it).
    fn copy_into(&self, text: &mut SmallVec<[u8; INLINE_SPAN_TEXT]>) -> FieldValue {
        match self {
            SpanValue::Str(s) => {
                let start = text.len();
                text.extend_from_slice(s.as_bytes());
                FieldValue::Text(start, text.len())
            }
            SpanValue::I64(v) => FieldValue::Value(TagValue::I64(*v)),
            SpanValue::U64(v) => FieldValue::Value(TagValue::U64(*v)),
            SpanValue::F64(v) => FieldValue::Value(TagValue::F64(*v)),
            SpanValue::Bool(v) => FieldValue::Value(TagValue::Bool(*v)),
        }
    }
}

/// The chosen fields a span has, by position in [`SpanFields::names`]; kept in the
/// span's extensions only when it has at least one.
struct SpanFieldValues(Box<[Option<SpanValue>]>);

/// What one record found in its spans: each found field's name and value, in the
/// order the names were configured, with the text its strings point into.
#[derive(Default)]
pub(super) struct Found<'n> {
    fields: SmallVec<[(&'n str, FieldValue); INLINE_SPAN_FIELDS]>,
    /// The configured position of each entry of `fields`.
    positions: SmallVec<[usize; INLINE_SPAN_FIELDS]>,
    text: SmallVec<[u8; INLINE_SPAN_TEXT]>,
}

impl<'n> Found<'n> {
    /// The record's span tags: borrowed from here, copying nothing.
    pub(super) fn tags(&self) -> TagSource<'_> {
        // Every byte was copied from a `&str`, so this only fails if that invariant
        // breaks; then the record goes without its span tags rather than torn ones.
        match std::str::from_utf8(&self.text) {
            Ok(text) => TagSource::Fields {
                fields: &self.fields,
                text,
            },
            Err(_) => TagSource::Tags(&[]),
        }
    }
}

impl SpanFields {
    /// `None` when no name is given: then nothing about spans is looked at.
    pub(super) fn new(names: &[String]) -> Option<Self> {
        (!names.is_empty()).then(|| SpanFields {
            names: names.iter().map(|n| Box::from(n.as_str())).collect(),
        })
    }

    pub(super) fn on_new_span<S>(
        &self,
        attrs: &span::Attributes<'_>,
        id: &span::Id,
        cx: &Context<'_, S>,
    ) where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        // Most spans have none of the chosen fields: decided from the callsite's
        // field names before anything is allocated.
        let fields = attrs.metadata().fields();
        if !self.names.iter().any(|n| fields.field(n).is_some()) {
            return;
        }
        let mut values = vec![None; self.names.len()].into_boxed_slice();
        let mut visitor = ValueVisitor {
            names: &self.names,
            values: &mut values,
        };
        attrs.record(&mut visitor);
        if let Some(span) = cx.span(id) {
            span.extensions_mut().insert(SpanFieldValues(values));
        }
    }

    pub(super) fn on_record<S>(&self, id: &span::Id, record: &span::Record<'_>, cx: &Context<'_, S>)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let Some(span) = cx.span(id) else { return };
        let fields = span.metadata().fields();
        if !self.names.iter().any(|n| fields.field(n).is_some()) {
            return;
        }
        let mut extensions = span.extensions_mut();
        if extensions.get_mut::<SpanFieldValues>().is_none() {
            extensions.insert(SpanFieldValues(
                vec![None; self.names.len()].into_boxed_slice(),
            ));
        }
        if let Some(SpanFieldValues(values)) = extensions.get_mut::<SpanFieldValues>() {
            record.record(&mut ValueVisitor {
                names: &self.names,
                values,
            });
        }
    }

    /// The chosen fields of the spans around `event`, each from the nearest span that
    /// has it; stops walking out as soon as every field is found.
    pub(super) fn collect<'n, S>(
        &'n self,
        event: &Event<'_>,
        cx: &Context<'_, S>,
        found: &mut Found<'n>,
    ) where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let Some(scope) = cx.event_scope(event) else {
            return;
        };
        for span in scope {
            let extensions = span.extensions();
            let Some(SpanFieldValues(values)) = extensions.get::<SpanFieldValues>() else {
                continue;
            };
            for (position, value) in values.iter().enumerate() {
                let Some(value) = value else { continue };
                // Sorted by position: where this one goes, unless a nearer span gave it.
                let at = found.positions.partition_point(|&p| p < position);
                if found.positions.get(at) == Some(&position) {
                    continue;
                }
                let Some(name) = self.names.get(position) else {
                    continue;
                };
                let value = value.copy_into(&mut found.text);
                found.fields.insert(at, (name, value));
                found.positions.insert(at, position);
            }
            if found.fields.len() == self.names.len() {
                break;
            }
        }
    }
}

/// Reads the chosen fields of a span's attributes or record into their slots.
struct ValueVisitor<'a> {
    names: &'a [Box<str>],
    values: &'a mut [Option<SpanValue>],
}

impl ValueVisitor<'_> {
    fn set(&mut self, field: &Field, value: impl FnOnce() -> SpanValue) {
        if let Some(i) = self.names.iter().position(|n| **n == *field.name()) {
            if let Some(slot) = self.values.get_mut(i) {
                *slot = Some(value());
            }
        }
    }
}

impl Visit for ValueVisitor<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.set(field, || SpanValue::F64(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.set(field, || SpanValue::I64(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.set(field, || SpanValue::U64(value));
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        self.set(field, || match i64::try_from(value) {
            Ok(v) => SpanValue::I64(v),
            Err(_) => SpanValue::Str(Arc::from(value.to_string())),
        });
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        self.set(field, || match u64::try_from(value) {
            Ok(v) => SpanValue::U64(v),
            Err(_) => SpanValue::Str(Arc::from(value.to_string())),
        });
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.set(field, || SpanValue::Bool(value));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.set(field, || SpanValue::Str(Arc::from(value)));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.set(field, || {
            let mut text = String::new();
            // A `Debug` impl that errors keeps the text written so far.
            let _ = write!(text, "{value:?}");
            SpanValue::Str(Arc::from(text))
        });
    }
}
