//! [`MorangoValue`] for the field types Django's encoder knows.
//!
//! Writing follows Django's `DjangoJSONEncoder` applied to a value read back from the database:
//!
//! | Rust type | record JSON |
//! |---|---|
//! | `String` | JSON string |
//! | `bool` | `true` / `false` |
//! | `i8`…`i64`, `u8`…`u64` | JSON integer |
//! | `f32`, `f64` | JSON number (`1.0`, `1e+16`, …); non-finite values are written as `null` |
//! | `DateTime<Utc>`, `DateTime<FixedOffset>` | `"2024-02-29T13:45:30.123Z"`: converted to UTC, truncated (not rounded) to milliseconds, no fraction when the microseconds are 0 |
//! | `NaiveDateTime` | the same without the `Z` |
//! | `NaiveDate` | `"2024-02-29"` |
//! | `NaiveTime` | `"08:09:10.500"` (same truncation rule) |
//! | `uuid::Uuid` | `"12345678-1234-5678-1234-567812345678"` (dashed lowercase, as Django's `UUIDField`) |
//! | `serde_json::Value` | the value inline (Django's `JSONField`) |
//! | `Option<T>` | `null` for `None` |
//!
//! Reading accepts what Django's field `to_python` accepts for these types from a Python peer: datetimes with
//! `Z`, `+hh:mm`, `+hhmm` or `+hh` offsets (converted to UTC), a space instead of `T`, up to six fraction digits
//! (more are ignored) and a bare date (midnight); naive datetimes are taken as UTC (Morango's peers run with
//! `USE_TZ = True`); times `HH:MM[:SS[.ffffff]]`; uuids with or without dashes, in either case, braced or as a
//! `urn:uuid:`; integers for floats.
//!
//! Django's `DecimalField` has no Rust counterpart here (SeaORM's `with-rust_decimal` is not enabled). Django
//! writes decimals as JSON strings (`"12.500"`), so map such a column to a `String` field.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Timelike, Utc};
use serde_json::{Number, Value};
use uuid::Uuid;

use crate::model::{MorangoValue, TemplateValue};

// ---------------------------------------------------------------------------------------------------------------
// Strings, booleans, JSON

impl MorangoValue for String {
    fn to_json(&self) -> Value {
        Value::String(self.clone())
    }

    fn from_json(value: &Value) -> Result<Self, String> {
        match value {
            Value::String(s) => Ok(s.clone()),
            other => Err(expected("a string", other)),
        }
    }
}

impl MorangoValue for bool {
    fn to_json(&self) -> Value {
        Value::Bool(*self)
    }

    /// Accepts `true`/`false`, and `0`/`1` as Django's `BooleanField` does.
    fn from_json(value: &Value) -> Result<Self, String> {
        match value {
            Value::Bool(b) => Ok(*b),
            Value::Number(n) if n.as_i64() == Some(0) => Ok(false),
            Value::Number(n) if n.as_i64() == Some(1) => Ok(true),
            other => Err(expected("a boolean", other)),
        }
    }
}

impl MorangoValue for Value {
    fn to_json(&self) -> Value {
        self.clone()
    }

    fn from_json(value: &Value) -> Result<Self, String> {
        Ok(value.clone())
    }
}

impl<T: MorangoValue> MorangoValue for Option<T> {
    fn to_json(&self) -> Value {
        match self {
            Some(v) => v.to_json(),
            None => Value::Null,
        }
    }

    fn from_json(value: &Value) -> Result<Self, String> {
        match value {
            Value::Null => Ok(None),
            v => T::from_json(v).map(Some),
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Numbers

/// Reads a JSON number as an `i64`; integral floats (`5.0`) are accepted, fractions are not.
fn json_to_i64(value: &Value) -> Result<i64, String> {
    let Value::Number(n) = value else {
        return Err(expected("an integer", value));
    };
    if let Some(i) = n.as_i64() {
        return Ok(i);
    }
    if n.is_u64() {
        return Err(format!("integer {n} is out of range"));
    }
    match n.as_f64() {
        // i64's range is [-2^63, 2^63) exactly.
        Some(f) if f.fract() == 0.0 && (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&f) => {
            Ok(f as i64)
        }
        _ => Err(format!("expected an integer, got {n}")),
    }
}

macro_rules! signed_int {
    ($($t:ty),*) => {$(
        impl MorangoValue for $t {
            fn to_json(&self) -> Value {
                Value::Number(Number::from(*self))
            }

            fn from_json(value: &Value) -> Result<Self, String> {
                let i = json_to_i64(value)?;
                <$t>::try_from(i).map_err(|_| format!("integer {i} is out of range for {}", stringify!($t)))
            }
        }

        impl TemplateValue for $t {
            fn template_text(&self) -> Option<String> {
                Some(self.to_string())
            }
        }
    )*};
}

signed_int!(i8, i16, i32, i64);

macro_rules! unsigned_int {
    ($($t:ty),*) => {$(
        impl MorangoValue for $t {
            fn to_json(&self) -> Value {
                Value::Number(Number::from(*self))
            }

            fn from_json(value: &Value) -> Result<Self, String> {
                if let Value::Number(n) = value {
                    if let Some(u) = n.as_u64() {
                        return <$t>::try_from(u)
                            .map_err(|_| format!("integer {u} is out of range for {}", stringify!($t)));
                    }
                }
                let i = json_to_i64(value)?;
                <$t>::try_from(i).map_err(|_| format!("integer {i} is out of range for {}", stringify!($t)))
            }
        }

        impl TemplateValue for $t {
            fn template_text(&self) -> Option<String> {
                Some(self.to_string())
            }
        }
    )*};
}

unsigned_int!(u8, u16, u32, u64);

impl MorangoValue for f64 {
    /// A finite float as a JSON number; NaN and infinities (which JSON cannot hold) as `null`.
    fn to_json(&self) -> Value {
        Number::from_f64(*self).map_or(Value::Null, Value::Number)
    }

    fn from_json(value: &Value) -> Result<Self, String> {
        match value {
            Value::Number(n) => n.as_f64().ok_or_else(|| format!("number {n} is not representable as a float")),
            other => Err(expected("a number", other)),
        }
    }
}

impl MorangoValue for f32 {
    /// Written with the shortest digits that identify the `f32` (`0.1f32` → `0.1`), like a Python float of the
    /// same text.
    fn to_json(&self) -> Value {
        if !self.is_finite() {
            return Value::Null;
        }
        let widened: f64 = self.to_string().parse().unwrap_or(f64::from(*self));
        Number::from_f64(widened).map_or(Value::Null, Value::Number)
    }

    fn from_json(value: &Value) -> Result<Self, String> {
        let f = f64::from_json(value)?;
        let narrowed = f as f32;
        if narrowed.is_finite() { Ok(narrowed) } else { Err(format!("number {f} is out of range for f32")) }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Dates and times: writing

/// `.mmm` for a non-zero microsecond part (Django drops the fraction only when the microseconds are 0).
fn millis_suffix(nanos: u32) -> String {
    let micros = nanos.min(999_999_999) / 1_000;
    if micros == 0 { String::new() } else { format!(".{:03}", micros / 1_000) }
}

fn format_date(date: NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}

fn format_time(time: NaiveTime) -> String {
    format!("{}{}", time.format("%H:%M:%S"), millis_suffix(time.nanosecond()))
}

fn format_naive_datetime(datetime: NaiveDateTime) -> String {
    format!("{}T{}", format_date(datetime.date()), format_time(datetime.time()))
}

impl MorangoValue for DateTime<Utc> {
    fn to_json(&self) -> Value {
        Value::String(format!("{}Z", format_naive_datetime(self.naive_utc())))
    }

    fn from_json(value: &Value) -> Result<Self, String> {
        parse_datetime(json_str(value, "a datetime string")?)
    }
}

impl MorangoValue for DateTime<FixedOffset> {
    /// Converted to UTC first, as Django stores aware datetimes in UTC.
    fn to_json(&self) -> Value {
        self.with_timezone(&Utc).to_json()
    }

    /// The result is in UTC (offset `+00:00`).
    fn from_json(value: &Value) -> Result<Self, String> {
        Ok(DateTime::<Utc>::from_json(value)?.fixed_offset())
    }
}

impl MorangoValue for NaiveDateTime {
    fn to_json(&self) -> Value {
        Value::String(format_naive_datetime(*self))
    }

    /// A value with an offset is converted to UTC.
    fn from_json(value: &Value) -> Result<Self, String> {
        Ok(DateTime::<Utc>::from_json(value)?.naive_utc())
    }
}

impl MorangoValue for NaiveDate {
    fn to_json(&self) -> Value {
        Value::String(format_date(*self))
    }

    fn from_json(value: &Value) -> Result<Self, String> {
        let text = json_str(value, "a date string")?;
        let mut cursor = Cursor::new(text);
        let date = cursor.date();
        match date {
            Some(parts) if cursor.at_end() => parts
                .to_date()
                .ok_or_else(|| format!("“{text}” has the correct format (YYYY-MM-DD) but it is an invalid date")),
            _ => Err(format!("“{text}” has an invalid date format; it must be in YYYY-MM-DD format")),
        }
    }
}

impl MorangoValue for NaiveTime {
    fn to_json(&self) -> Value {
        Value::String(format_time(*self))
    }

    fn from_json(value: &Value) -> Result<Self, String> {
        let text = json_str(value, "a time string")?;
        let mut cursor = Cursor::new(text);
        match cursor.time() {
            Some(parts) if cursor.at_end() => parts.to_time().ok_or_else(|| {
                format!("“{text}” has the correct format (HH:MM[:ss[.uuuuuu]]) but it is an invalid time")
            }),
            _ => Err(format!("“{text}” has an invalid format; it must be in HH:MM[:ss[.uuuuuu]] format")),
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Dates and times: parsing (Django's `parse_datetime` / `parse_date` / `parse_time` grammar)

/// Parses a datetime the way Django's `DateTimeField.to_python` does for a string, with UTC as default zone.
fn parse_datetime(text: &str) -> Result<DateTime<Utc>, String> {
    let invalid_format =
        || format!("“{text}” has an invalid format; it must be in YYYY-MM-DD HH:MM[:ss[.uuuuuu]][TZ] format");
    let invalid_value = || {
        format!("“{text}” has the correct format (YYYY-MM-DD HH:MM[:ss[.uuuuuu]][TZ]) but it is an invalid date/time")
    };

    let mut cursor = Cursor::new(text);
    let date = cursor.date().ok_or_else(invalid_format)?;
    if cursor.at_end() {
        // Django falls back to `parse_date` and takes midnight.
        let date = date.to_date().ok_or_else(invalid_value)?;
        return date.and_hms_opt(0, 0, 0).map(|naive| Utc.from_utc_datetime(&naive)).ok_or_else(invalid_value);
    }
    if !(cursor.eat('T') || cursor.eat(' ')) {
        return Err(invalid_format());
    }
    let time = cursor.time().ok_or_else(invalid_format)?;
    cursor.skip_whitespace();
    let offset_seconds = cursor.offset().ok_or_else(invalid_format)?;
    if !cursor.at_end() {
        return Err(invalid_format());
    }
    let naive = date.to_date().zip(time.to_time()).map(|(d, t)| d.and_time(t)).ok_or_else(invalid_value)?;
    let offset = FixedOffset::east_opt(offset_seconds).ok_or_else(invalid_value)?;
    offset.from_local_datetime(&naive).single().map(|dt| dt.with_timezone(&Utc)).ok_or_else(invalid_value)
}

/// Year, month and day as written (not yet validated).
struct DateParts(i32, u32, u32);

impl DateParts {
    /// The date, if it exists in Python's calendar (years 1 to 9999).
    fn to_date(&self) -> Option<NaiveDate> {
        if self.0 < 1 {
            return None;
        }
        NaiveDate::from_ymd_opt(self.0, self.1, self.2)
    }
}

/// Hour, minute, second and microsecond as written (not yet validated).
struct TimeParts(u32, u32, u32, u32);

impl TimeParts {
    fn to_time(&self) -> Option<NaiveTime> {
        NaiveTime::from_hms_micro_opt(self.0, self.1, self.2, self.3)
    }
}

/// A tiny scanner over ASCII date/time text.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(text: &'a str) -> Self {
        Cursor { bytes: text.as_bytes(), pos: 0 }
    }

    fn at_end(&self) -> bool {
        self.pos == self.bytes.len()
    }

    fn eat(&mut self, c: char) -> bool {
        if self.bytes.get(self.pos) == Some(&(c as u8)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn skip_whitespace(&mut self) {
        while self.bytes.get(self.pos).is_some_and(|b| b.is_ascii_whitespace()) {
            self.pos += 1;
        }
    }

    /// Between `min` and `max` ASCII digits, as text.
    fn digits(&mut self, min: usize, max: usize) -> Option<&'a str> {
        let start = self.pos;
        while self.pos - start < max && self.bytes.get(self.pos).is_some_and(u8::is_ascii_digit) {
            self.pos += 1;
        }
        if self.pos - start < min {
            self.pos = start;
            return None;
        }
        std::str::from_utf8(&self.bytes[start..self.pos]).ok()
    }

    fn number(&mut self, min: usize, max: usize) -> Option<u32> {
        self.digits(min, max)?.parse().ok()
    }

    /// `YYYY-M[M]-D[D]`.
    fn date(&mut self) -> Option<DateParts> {
        let year = self.number(4, 4)?;
        self.eat('-').then_some(())?;
        let month = self.number(1, 2)?;
        self.eat('-').then_some(())?;
        let day = self.number(1, 2)?;
        Some(DateParts(i32::try_from(year).ok()?, month, day))
    }

    /// `H[H]:M[M][:S[S][(.|,)ffffff[ignored digits]]]`.
    fn time(&mut self) -> Option<TimeParts> {
        let hour = self.number(1, 2)?;
        self.eat(':').then_some(())?;
        let minute = self.number(1, 2)?;
        let mut second = 0;
        let mut micro = 0;
        if self.eat(':') {
            second = self.number(1, 2)?;
            let checkpoint = self.pos;
            if self.eat('.') || self.eat(',') {
                match self.digits(1, 6) {
                    Some(fraction) => {
                        micro = format!("{fraction:0<6}").parse().ok()?;
                        self.digits(0, 6);
                    }
                    None => self.pos = checkpoint,
                }
            }
        }
        Some(TimeParts(hour, minute, second, micro))
    }

    /// An optional `Z` or `±HH[[:]MM]` offset, in seconds east of UTC (0 when absent).
    fn offset(&mut self) -> Option<i32> {
        if self.eat('Z') {
            return Some(0);
        }
        let sign = if self.eat('+') {
            1
        } else if self.eat('-') {
            -1
        } else {
            return Some(0);
        };
        let hours = i32::try_from(self.number(2, 2)?).ok()?;
        let checkpoint = self.pos;
        let colon = self.eat(':');
        let minutes = match self.number(2, 2) {
            Some(m) => i32::try_from(m).ok()?,
            None if colon => return None,
            None => {
                self.pos = checkpoint;
                0
            }
        };
        Some(sign * (hours * 3600 + minutes * 60))
    }
}

// ---------------------------------------------------------------------------------------------------------------
// UUIDs

impl MorangoValue for Uuid {
    fn to_json(&self) -> Value {
        Value::String(self.hyphenated().to_string())
    }

    fn from_json(value: &Value) -> Result<Self, String> {
        parse_uuid(json_str(value, "a uuid string")?)
    }
}

/// Parses a uuid as Python's `uuid.UUID(hex=...)` does: `urn:`/`uuid:` and surrounding braces are stripped,
/// dashes are ignored, and 32 hex digits of either case must remain.
fn parse_uuid(text: &str) -> Result<Uuid, String> {
    let stripped = text.replace("urn:", "").replace("uuid:", "");
    let hex: String = stripped.trim_matches(|c| c == '{' || c == '}').chars().filter(|&c| c != '-').collect();
    if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("“{text}” is not a valid UUID"));
    }
    Uuid::try_parse(&hex).map_err(|_| format!("“{text}” is not a valid UUID"))
}

// ---------------------------------------------------------------------------------------------------------------
// Template values

impl TemplateValue for String {
    fn template_text(&self) -> Option<String> {
        Some(self.clone())
    }
}

impl TemplateValue for Uuid {
    /// The 32-hex simple form, as Morango's ids are written.
    fn template_text(&self) -> Option<String> {
        Some(self.simple().to_string())
    }
}

impl TemplateValue for bool {
    /// `True` / `False`, as Python's `str()` writes a boolean into a partition string.
    fn template_text(&self) -> Option<String> {
        Some(if *self { "True" } else { "False" }.to_owned())
    }
}

impl<T: TemplateValue> TemplateValue for Option<T> {
    fn template_text(&self) -> Option<String> {
        self.as_ref().and_then(TemplateValue::template_text)
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Helpers

fn json_str<'v>(value: &'v Value, what: &str) -> Result<&'v str, String> {
    match value {
        Value::String(s) => Ok(s),
        other => Err(expected(what, other)),
    }
}

/// "expected X, got <kind of JSON value>".
fn expected(what: &str, got: &Value) -> String {
    let kind = match got {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    format!("expected {what}, got {kind}")
}
