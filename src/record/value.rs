//! The values of tags and properties, typed as given: [`TagValue`] (borrowed),
//! [`OwnedTagValue`], and [`Tag`], a key and its value.

use std::fmt;

/// The value of a tag or property, typed as it was given.
///
/// The function form (`track_event(name, &[("plan", "pro")])`) gives strings; the macro
/// form keeps integers, floats and booleans as such (`seats = 3` is [`TagValue::I64`]).
///
/// ```
/// use tracing_telemetry::TagValue;
///
/// assert_eq!(TagValue::from(3_i64).as_i64(), Some(3));
/// assert_eq!(TagValue::from("pro").as_str(), Some("pro"));
/// assert_eq!(TagValue::from(true).to_string(), "true");
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TagValue<'a> {
    /// A string.
    Str(&'a str),
    /// A signed integer.
    I64(i64),
    /// An unsigned integer too large for `i64`, or given as unsigned.
    U64(u64),
    /// A floating-point number (possibly NaN or infinite).
    F64(f64),
    /// A boolean.
    Bool(bool),
}

impl<'a> TagValue<'a> {
    /// The string, if this is a [`TagValue::Str`].
    ///
    /// ```
    /// assert_eq!(tracing_telemetry::TagValue::Str("emails").as_str(), Some("emails"));
    /// ```
    pub fn as_str(&self) -> Option<&'a str> {
        match *self {
            TagValue::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, if this is an integer that fits in an `i64`.
    ///
    /// ```
    /// assert_eq!(tracing_telemetry::TagValue::U64(7).as_i64(), Some(7));
    /// ```
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            TagValue::I64(v) => Some(v),
            TagValue::U64(v) => i64::try_from(v).ok(),
            _ => None,
        }
    }

    /// The integer, if this is a non-negative integer.
    ///
    /// ```
    /// assert_eq!(tracing_telemetry::TagValue::I64(-1).as_u64(), None);
    /// ```
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            TagValue::U64(v) => Some(v),
            TagValue::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// The float, if this is a [`TagValue::F64`].
    ///
    /// ```
    /// assert_eq!(tracing_telemetry::TagValue::F64(0.5).as_f64(), Some(0.5));
    /// ```
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            TagValue::F64(v) => Some(v),
            _ => None,
        }
    }

    /// The boolean, if this is a [`TagValue::Bool`].
    ///
    /// ```
    /// assert_eq!(tracing_telemetry::TagValue::Bool(false).as_bool(), Some(false));
    /// ```
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            TagValue::Bool(v) => Some(v),
            _ => None,
        }
    }

    /// An owned copy, for keeping past the sink call.
    ///
    /// ```
    /// use tracing_telemetry::{OwnedTagValue, TagValue};
    ///
    /// assert_eq!(TagValue::Str("a").into_owned(), OwnedTagValue::Str("a".to_owned()));
    /// ```
    pub fn into_owned(self) -> OwnedTagValue {
        match self {
            TagValue::Str(s) => OwnedTagValue::Str(s.to_owned()),
            TagValue::I64(v) => OwnedTagValue::I64(v),
            TagValue::U64(v) => OwnedTagValue::U64(v),
            TagValue::F64(v) => OwnedTagValue::F64(v),
            TagValue::Bool(v) => OwnedTagValue::Bool(v),
        }
    }
}

impl fmt::Display for TagValue<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TagValue::Str(s) => f.write_str(s),
            TagValue::I64(v) => fmt::Display::fmt(v, f),
            TagValue::U64(v) => fmt::Display::fmt(v, f),
            TagValue::F64(v) => fmt::Display::fmt(v, f),
            TagValue::Bool(v) => fmt::Display::fmt(v, f),
        }
    }
}

impl<'a> From<&'a str> for TagValue<'a> {
    fn from(v: &'a str) -> Self {
        TagValue::Str(v)
    }
}

impl From<i64> for TagValue<'_> {
    fn from(v: i64) -> Self {
        TagValue::I64(v)
    }
}

impl From<u64> for TagValue<'_> {
    fn from(v: u64) -> Self {
        TagValue::U64(v)
    }
}

impl From<f64> for TagValue<'_> {
    fn from(v: f64) -> Self {
        TagValue::F64(v)
    }
}

impl From<bool> for TagValue<'_> {
    fn from(v: bool) -> Self {
        TagValue::Bool(v)
    }
}

/// An owned [`TagValue`], as kept by [`MemorySink`](crate::MemorySink).
///
/// Both compare with plain values, the tag on the left: integers of any type by value,
/// whether the tag holds the number as [`I64`](Self::I64) or [`U64`](Self::U64);
/// `f32` and `f64` with [`F64`](Self::F64) (an `f32` is widened exactly, so a tag
/// recorded as `0.1` is `0.1` but not `0.1_f32`; NaN equals nothing); `bool`; `&str`,
/// `str` and `String`. Nothing converts between kinds: `3` is not `3.0` nor `"3"`. An
/// integer beyond 64 bits travels as its decimal string, so compare it with that.
/// Two tag values compare by kind too: `I64(3)` is not `U64(3)`.
///
/// ```
/// use tracing_telemetry::OwnedTagValue;
///
/// let v = OwnedTagValue::from("emails");
/// assert_eq!(v.as_str(), Some("emails"));
/// assert_eq!(v, "emails");
/// assert_eq!(OwnedTagValue::from(3_i64), 3_i64);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum OwnedTagValue {
    /// A string.
    Str(String),
    /// A signed integer.
    I64(i64),
    /// An unsigned integer.
    U64(u64),
    /// A floating-point number.
    F64(f64),
    /// A boolean.
    Bool(bool),
}

impl OwnedTagValue {
    /// Borrows this value as a [`TagValue`].
    ///
    /// ```
    /// use tracing_telemetry::{OwnedTagValue, TagValue};
    ///
    /// assert_eq!(OwnedTagValue::Bool(true).as_tag_value(), TagValue::Bool(true));
    /// ```
    pub fn as_tag_value(&self) -> TagValue<'_> {
        match self {
            OwnedTagValue::Str(s) => TagValue::Str(s),
            OwnedTagValue::I64(v) => TagValue::I64(*v),
            OwnedTagValue::U64(v) => TagValue::U64(*v),
            OwnedTagValue::F64(v) => TagValue::F64(*v),
            OwnedTagValue::Bool(v) => TagValue::Bool(*v),
        }
    }

    /// The string, if this is a string.
    ///
    /// ```
    /// assert_eq!(tracing_telemetry::OwnedTagValue::I64(1).as_str(), None);
    /// ```
    pub fn as_str(&self) -> Option<&str> {
        self.as_tag_value().as_str()
    }

    /// The integer, if this is an integer that fits in an `i64`.
    ///
    /// ```
    /// assert_eq!(tracing_telemetry::OwnedTagValue::I64(3).as_i64(), Some(3));
    /// ```
    pub fn as_i64(&self) -> Option<i64> {
        self.as_tag_value().as_i64()
    }

    /// The integer, if this is a non-negative integer.
    ///
    /// ```
    /// assert_eq!(tracing_telemetry::OwnedTagValue::U64(3).as_u64(), Some(3));
    /// ```
    pub fn as_u64(&self) -> Option<u64> {
        self.as_tag_value().as_u64()
    }

    /// The float, if this is a float.
    ///
    /// ```
    /// assert_eq!(tracing_telemetry::OwnedTagValue::F64(2.5).as_f64(), Some(2.5));
    /// ```
    pub fn as_f64(&self) -> Option<f64> {
        self.as_tag_value().as_f64()
    }

    /// The boolean, if this is a boolean.
    ///
    /// ```
    /// assert_eq!(tracing_telemetry::OwnedTagValue::Bool(true).as_bool(), Some(true));
    /// ```
    pub fn as_bool(&self) -> Option<bool> {
        self.as_tag_value().as_bool()
    }
}

impl fmt::Display for OwnedTagValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.as_tag_value(), f)
    }
}

impl From<&str> for OwnedTagValue {
    fn from(v: &str) -> Self {
        OwnedTagValue::Str(v.to_owned())
    }
}

impl From<String> for OwnedTagValue {
    fn from(v: String) -> Self {
        OwnedTagValue::Str(v)
    }
}

impl From<i64> for OwnedTagValue {
    fn from(v: i64) -> Self {
        OwnedTagValue::I64(v)
    }
}

impl From<u64> for OwnedTagValue {
    fn from(v: u64) -> Self {
        OwnedTagValue::U64(v)
    }
}

impl From<f64> for OwnedTagValue {
    fn from(v: f64) -> Self {
        OwnedTagValue::F64(v)
    }
}

impl From<bool> for OwnedTagValue {
    fn from(v: bool) -> Self {
        OwnedTagValue::Bool(v)
    }
}

impl TagValue<'_> {
    /// Whether this is an integer (signed or unsigned, however it was recorded) equal
    /// to `other`; `None` is a number no tag can hold.
    fn eq_int(self, other: Option<i128>) -> bool {
        match (self, other) {
            (TagValue::I64(v), Some(other)) => i128::from(v) == other,
            (TagValue::U64(v), Some(other)) => i128::from(v) == other,
            _ => false,
        }
    }
}

/// Compares tag values with plain values, so that tests read
/// `assert_eq!(record.tag("seats").unwrap(), 3)` (the rules are on `OwnedTagValue`).
macro_rules! eq_plain {
    ($($target:ty),* $(,)?) => {$(
        eq_plain!(@each $target; i8 i16 i32 i64 i128 isize u8 u16 u32 u64 u128 usize
            => |v, other| v.eq_int(i128::try_from(*other).ok()));
        eq_plain!(@each $target; f32 f64 => |v, other| v.as_f64() == Some(f64::from(*other)));
        eq_plain!(@each $target; bool => |v, other| v.as_bool() == Some(*other));
        eq_plain!(@each $target; str => |v, other| v.as_str() == Some(other));
        eq_plain!(@each $target; String => |v, other| v.as_str() == Some(other.as_str()));
    )*};
    (@each $target:ty; $($plain:ty)* => |$v:ident, $other:ident| $eq:expr) => {$(
        impl PartialEq<$plain> for $target {
            fn eq(&self, $other: &$plain) -> bool {
                let $v = self.as_tag_value();
                $eq
            }
        }
    )*};
}

eq_plain!(TagValue<'_>, OwnedTagValue, &OwnedTagValue);
// `&OwnedTagValue == &str` comes from the standard library's `&A == &B` and the `str`
// comparison above.
eq_plain!(@each TagValue<'_>; &str => |v, other| v.as_str() == Some(*other));
eq_plain!(@each OwnedTagValue; &str => |v, other| v.as_str() == Some(*other));

impl<'a> TagValue<'a> {
    /// Itself: what the plain comparisons call on every kind of tag value.
    fn as_tag_value(&self) -> TagValue<'a> {
        *self
    }
}

/// One tag or property: a key as given and its typed value.
///
/// ```
/// use tracing_telemetry::{Tag, TagValue};
///
/// let tag = Tag::new("queue", "emails");
/// assert_eq!(tag.key(), "queue");
/// assert_eq!(tag.value(), TagValue::Str("emails"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tag<'a> {
    pub(crate) key: &'a str,
    pub(crate) value: TagValue<'a>,
}

impl<'a> Tag<'a> {
    /// A tag with this key and value.
    ///
    /// ```
    /// let tag = tracing_telemetry::Tag::new("seats", 3_i64);
    /// assert_eq!(tag.value().as_i64(), Some(3));
    /// ```
    pub fn new(key: &'a str, value: impl Into<TagValue<'a>>) -> Self {
        Tag {
            key,
            value: value.into(),
        }
    }

    /// The key, exactly as given.
    ///
    /// ```
    /// assert_eq!(tracing_telemetry::Tag::new("plan", "pro").key(), "plan");
    /// ```
    pub fn key(&self) -> &'a str {
        self.key
    }

    /// The typed value.
    ///
    /// ```
    /// assert_eq!(tracing_telemetry::Tag::new("trial", false).value().as_bool(), Some(false));
    /// ```
    pub fn value(&self) -> TagValue<'a> {
        self.value
    }
}

impl fmt::Display for Tag<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.key, self.value)
    }
}
