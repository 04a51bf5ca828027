//! Record JSON written the way Python's `json.dumps` writes it.
//!
//! Morango's signed certificate text, record `serialized` text, instance JSON and FSIC JSON are all produced by
//! Python's `json.dumps` with its defaults. [`dumps`] reproduces that output byte for byte, so text we produce is
//! identical to what a Python peer would produce for the same value.
//!
//! Non-finite floats: Python writes `NaN`, `Infinity` and `-Infinity`, but a [`serde_json::Value`] cannot hold
//! them (serde_json turns them into `null`), so [`dumps`] never writes them. [`float_repr`] does spell them the
//! way Python's `json.dumps` does, for callers that format a bare `f64`.

use std::fmt::Write as _;

use serde_json::{Number, Value};

/// Python's `json.dumps(value)` with default arguments: separators `", "` and `": "`, `ensure_ascii=True`, object
/// keys in their stored order, floats as Python's `repr(float)`.
pub fn dumps(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value);
    out
}

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_string(out, key);
                out.push_str(": ");
                write_value(out, item);
            }
            out.push('}');
        }
    }
}

fn write_number(out: &mut String, n: &Number) {
    if let Some(i) = n.as_i64() {
        let _ = write!(out, "{i}");
    } else if let Some(u) = n.as_u64() {
        let _ = write!(out, "{u}");
    } else if let Some(f) = n.as_f64() {
        out.push_str(&float_repr(f));
    }
}

/// A JSON string literal with Python's ASCII escaping: `\"`, `\\`, `\n`, `\r`, `\t`, `\b`, `\f`, every other
/// character outside `' '..='~'` as `\uxxxx` (lowercase hex; astral characters as a surrogate pair).
fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

/// Python's `repr(float)` (which `json.dumps` uses): the shortest digits that round-trip, in positional form
/// with at least one fractional digit (`1.0`, `0.0001`, `-0.0`), or in exponent form (`1e+16`, `1e-05`,
/// `1.5e+300`) when the decimal exponent is below -4 or at least 16. Non-finite values are spelled as
/// `json.dumps` spells them: `NaN`, `Infinity`, `-Infinity`.
pub fn float_repr(value: f64) -> String {
    if value.is_nan() {
        return "NaN".to_owned();
    }
    if value.is_infinite() {
        return if value > 0.0 { "Infinity" } else { "-Infinity" }.to_owned();
    }
    let sign = if value.is_sign_negative() { "-" } else { "" };
    let (digits, exponent) = shortest_digits(value.abs());
    let point = exponent + 1; // position of the decimal point relative to the digits

    if !(-4 < point && point <= 16) {
        let (first, rest) = digits.split_at(1);
        let fraction = if rest.is_empty() { String::new() } else { format!(".{rest}") };
        let exp_sign = if exponent < 0 { '-' } else { '+' };
        return format!("{sign}{first}{fraction}e{exp_sign}{:02}", exponent.unsigned_abs());
    }
    if point <= 0 {
        return format!("{sign}0.{}{digits}", "0".repeat(point.unsigned_abs() as usize));
    }
    let point = point as usize;
    if point >= digits.len() {
        format!("{sign}{digits}{}.0", "0".repeat(point - digits.len()))
    } else {
        format!("{sign}{}.{}", &digits[..point], &digits[point..])
    }
}

/// The shortest digits that round-trip to `value` (non-negative, finite) and its decimal exponent, chosen as
/// Python chooses them: the candidate nearest to the exact value, an exact tie going to the even digit.
fn shortest_digits(value: f64) -> (String, i32) {
    let (digits, exponent) = split_scientific(&format!("{value:e}"));
    // Rust's shortest formatting breaks an exact tie upwards; Python (David Gay's dtoa) to the even digit.
    // Ties need at least 16 digits, and only matter when Rust's last digit is odd.
    let last = digits.as_bytes().last().copied().unwrap_or(b'0');
    if digits.len() < 16 || (last - b'0').is_multiple_of(2) {
        return (digits, exponent);
    }
    let mut lower = digits.clone();
    lower.pop();
    lower.push(char::from(last - 1));
    // 800 significant digits are enough to show any f64 exactly.
    let (exact, exact_exponent) = split_scientific(&format!("{value:.800e}"));
    let is_tie = exact_exponent == exponent
        && exact.starts_with(&lower)
        && exact[lower.len()..].starts_with('5')
        && exact[lower.len() + 1..].bytes().all(|b| b == b'0');
    let lower_round_trips = format!("{}.{}e{exponent}", &lower[..1], &lower[1..]).parse::<f64>() == Ok(value);
    if is_tie && lower_round_trips { (lower, exponent) } else { (digits, exponent) }
}

/// Splits Rust's `d[.ddd]e[-]N` into the digits without the point and the exponent.
fn split_scientific(scientific: &str) -> (String, i32) {
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((scientific, "0"));
    (mantissa.chars().filter(|&c| c != '.').collect(), exponent.parse().unwrap_or(0))
}
