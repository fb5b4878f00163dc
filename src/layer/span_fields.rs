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

use crate::record::{Tag, TagValue};

/// Span fields held inline, per record, before the heap is used.
pub(super) const INLINE_SPAN_FIELDS: usize = 4;

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
    fn as_tag_value(&self) -> TagValue<'_> {
        match self {
            SpanValue::Str(s) => TagValue::Str(s),
            SpanValue::I64(v) => TagValue::I64(*v),
            SpanValue::U64(v) => TagValue::U64(*v),
            SpanValue::F64(v) => TagValue::F64(*v),
            SpanValue::Bool(v) => TagValue::Bool(*v),
        }
    }
}

/// The chosen fields a span has, by position in [`SpanFields::names`]; kept in the
/// span's extensions only when it has at least one.
struct SpanFieldValues(Box<[Option<SpanValue>]>);

/// What one record found in its spans, by position in [`SpanFields::names`].
pub(super) type Found = SmallVec<[Option<SpanValue>; INLINE_SPAN_FIELDS]>;

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
    pub(super) fn collect<S>(&self, event: &Event<'_>, cx: &Context<'_, S>, found: &mut Found)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        found.clear();
        found.resize(self.names.len(), None);
        let Some(scope) = cx.event_scope(event) else {
            return;
        };
        let mut missing = self.names.len();
        for span in scope {
            let extensions = span.extensions();
            let Some(SpanFieldValues(values)) = extensions.get::<SpanFieldValues>() else {
                continue;
            };
            for (slot, value) in found.iter_mut().zip(values.iter()) {
                if let (None, Some(value)) = (&slot, value) {
                    *slot = Some(value.clone());
                    missing -= 1;
                }
            }
            if missing == 0 {
                break;
            }
        }
    }

    /// The tags `found` makes, in the order the names were configured.
    pub(super) fn tags<'a>(&'a self, found: &'a Found) -> SmallVec<[Tag<'a>; INLINE_SPAN_FIELDS]> {
        self.names
            .iter()
            .zip(found.iter())
            .filter_map(|(name, value)| Some(Tag::new(name, value.as_ref()?.as_tag_value())))
            .collect()
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
