//! Filters: sets of partition prefixes (spec §3.5), scope templates and scopes.
//!
//! A [`Filter`] is an ordered list of partition prefixes; a partition is inside a filter when it starts with one
//! of them (a plain string prefix, not aware of `:` segments, and case-sensitive). A [`Scope`] is the read and
//! write filter that a certificate grants, expanded from a scope definition's templates.
//!
//! One deliberate difference from Python Morango (spec §15 W10): in Python a template that expands to no
//! prefixes becomes the single prefix `""`, which contains *every* partition, so a scope without write
//! templates may write everywhere. Here such an expansion is an empty filter that contains nothing, and
//! combining filters never turns "nothing" into "everything". Text read from the wire ([`Filter::parse`]) keeps
//! Python's reading, where blank text is the whole-database filter `[""]`.

use std::fmt;
use std::ops::Add;

use serde_json::{Map, Value};

use crate::json::float_repr;

/// Why scope parameters could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    /// `scope_params` was not JSON text of an object.
    #[error("scope params must be JSON text of an object: {0}")]
    InvalidScopeParams(String),
}

/// An ordered list of partition prefixes (Morango's `Filter`). Duplicates are kept, as Python keeps them.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    prefixes: Vec<String>,
}

impl Filter {
    /// A filter with exactly these prefixes, in this order. Prefixes must not contain whitespace (the wire form
    /// separates them with newlines); `[""]` is the whole-database filter and `[]` contains nothing.
    pub fn new<I, S>(prefixes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Filter { prefixes: prefixes.into_iter().map(Into::into).collect() }
    }

    /// The filter that contains every partition: the single prefix `""`.
    pub fn everything() -> Self {
        Filter::new([""])
    }

    /// Reads a filter the way Python's `Filter(text)` does: split on any whitespace; blank text is `[""]`, the
    /// whole-database filter. Use it for the wire form of transfer-session filters.
    pub fn parse(text: &str) -> Self {
        let prefixes = split_python_whitespace(text);
        if prefixes.is_empty() { Filter::everything() } else { Filter::new(prefixes) }
    }

    /// Expands a scope-definition template (`Filter.from_template`): [`safe_substitute`] with `params`, then split
    /// on whitespace. Unlike Python, a template that expands to nothing gives the empty filter (§15 W10).
    pub fn from_template(template: &str, params: &Map<String, Value>) -> Self {
        Filter::new(split_python_whitespace(&safe_substitute(template, params)))
    }

    /// The prefixes, in order.
    pub fn prefixes(&self) -> &[String] {
        &self.prefixes
    }

    /// The number of prefixes (duplicates counted).
    pub fn len(&self) -> usize {
        self.prefixes.len()
    }

    /// True when the filter has no prefixes and so contains no partition.
    pub fn is_empty(&self) -> bool {
        self.prefixes.is_empty()
    }

    /// The wire form: prefixes joined by `"\n"`. An empty filter gives `""`, which a Python peer reads as the
    /// whole-database filter, so never send an empty filter.
    pub fn to_wire(&self) -> String {
        self.prefixes.join("\n")
    }

    /// True when `partition` starts with one of the prefixes (`Filter.contains_partition` / `in`).
    pub fn contains_partition(&self, partition: &str) -> bool {
        self.prefixes.iter().any(|prefix| partition.starts_with(prefix.as_str()))
    }

    /// True when `partition` is one of the prefixes itself (`Filter.contains_exact_partition`).
    pub fn contains_exact_partition(&self, partition: &str) -> bool {
        self.prefixes.iter().any(|prefix| prefix == partition)
    }

    /// True when every prefix of this filter is inside `other` (`Filter.is_subset_of` / `<=`).
    pub fn is_subset_of(&self, other: &Filter) -> bool {
        self.prefixes.iter().all(|prefix| other.contains_partition(prefix))
    }

    /// Python 0.8.15's `Filter + Filter`: this filter's prefixes (duplicates kept), then the other's prefixes
    /// not already present; empty prefixes are dropped. Unlike Python, an empty result stays empty (§15 W10).
    pub fn union(&self, other: &Filter) -> Filter {
        let mut prefixes: Vec<String> = self.prefixes.iter().filter(|p| !p.is_empty()).cloned().collect();
        for prefix in &other.prefixes {
            if !prefix.is_empty() && !prefixes.contains(prefix) {
                prefixes.push(prefix.clone());
            }
        }
        Filter { prefixes }
    }
}

impl PartialEq for Filter {
    /// Python's `Filter.__eq__`: the same set of prefixes, ignoring order and duplicates.
    fn eq(&self, other: &Self) -> bool {
        self.prefixes.iter().all(|p| other.prefixes.contains(p))
            && other.prefixes.iter().all(|p| self.prefixes.contains(p))
    }
}

impl Eq for Filter {}

impl Add for &Filter {
    type Output = Filter;

    /// See [`Filter::union`].
    fn add(self, other: &Filter) -> Filter {
        self.union(other)
    }
}

impl Add for Filter {
    type Output = Filter;

    /// See [`Filter::union`].
    fn add(self, other: Filter) -> Filter {
        self.union(&other)
    }
}

impl fmt::Display for Filter {
    /// The wire form, as Python's `str(filter)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_wire())
    }
}

/// The read and write filters a certificate grants (Morango's `Scope`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scope {
    /// Partitions the holder may read (pull).
    pub read: Filter,
    /// Partitions the holder may write (push).
    pub write: Filter,
}

impl Scope {
    /// Expands a scope definition's templates with the certificate's params: `read = read_write + read` and
    /// `write = read_write + write` (see [`Filter::union`] and [`Filter::from_template`]).
    pub fn from_templates(
        read_filter_template: &str,
        write_filter_template: &str,
        read_write_filter_template: &str,
        params: &Map<String, Value>,
    ) -> Scope {
        let read_write = Filter::from_template(read_write_filter_template, params);
        Scope {
            read: read_write.union(&Filter::from_template(read_filter_template, params)),
            write: read_write.union(&Filter::from_template(write_filter_template, params)),
        }
    }

    /// True when this scope's read filter is a subset of `other`'s and its write filter of `other`'s.
    pub fn is_subset_of(&self, other: &Scope) -> bool {
        self.read.is_subset_of(&other.read) && self.write.is_subset_of(&other.write)
    }
}

/// Reads a certificate's `scope_params` text (`json.loads(scope_params)`), which must be a JSON object.
pub fn parse_scope_params(text: &str) -> Result<Map<String, Value>, FilterError> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(FilterError::InvalidScopeParams(format!("{text:?} is not an object"))),
        Err(e) => Err(FilterError::InvalidScopeParams(format!("{text:?}: {e}"))),
    }
}

/// Python's `string.Template(template).safe_substitute(params)`: `$name` and `${name}` (ASCII identifiers) are
/// replaced by the param's Python `str()`, `$$` becomes `$`, unknown names and malformed placeholders stay as
/// written. The result is not substituted again.
pub fn safe_substitute(template: &str, params: &Map<String, Value>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        let (replacement, consumed) = placeholder(after, params);
        out.push_str(&replacement);
        rest = &after[consumed..];
    }
    out.push_str(rest);
    out
}

/// Reads the placeholder after a `$`; returns its replacement text and how many bytes after the `$` it used.
fn placeholder(after: &str, params: &Map<String, Value>) -> (String, usize) {
    if after.starts_with('$') {
        return ("$".to_owned(), 1);
    }
    let named = identifier_len(after);
    if named > 0 {
        let name = &after[..named];
        return (lookup(name, params).unwrap_or_else(|| format!("${name}")), named);
    }
    if let Some(inner) = after.strip_prefix('{') {
        let braced = identifier_len(inner);
        if braced > 0 && inner[braced..].starts_with('}') {
            let name = &inner[..braced];
            return (lookup(name, params).unwrap_or_else(|| format!("${{{name}}}")), braced + 2);
        }
    }
    ("$".to_owned(), 0)
}

/// Length of the ASCII identifier (`[_a-zA-Z][_a-zA-Z0-9]*`) at the start of `s`, 0 if none.
fn identifier_len(s: &str) -> usize {
    let bytes = s.as_bytes();
    match bytes.first() {
        Some(b) if b.is_ascii_alphabetic() || *b == b'_' => {
            bytes.iter().take_while(|b| b.is_ascii_alphanumeric() || **b == b'_').count()
        }
        _ => 0,
    }
}

fn lookup(name: &str, params: &Map<String, Value>) -> Option<String> {
    params.get(name).map(python_str)
}

/// Python's `str()` of a JSON-decoded value: strings as-is, `True`/`False`/`None`, floats as `repr`, lists
/// and dicts as Python's repr (close approximation for unusual characters inside nested strings).
fn python_str(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => python_repr(other),
    }
}

fn python_repr(value: &Value) -> String {
    match value {
        Value::Null => "None".to_owned(),
        Value::Bool(true) => "True".to_owned(),
        Value::Bool(false) => "False".to_owned(),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (None, Some(u), _) => u.to_string(),
            (None, None, Some(f)) => float_repr(f),
            _ => n.to_string(),
        },
        Value::String(s) => python_str_repr(s),
        Value::Array(items) => format!("[{}]", items.iter().map(python_repr).collect::<Vec<_>>().join(", ")),
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!("{}: {}", python_str_repr(k), python_repr(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Python's `repr(str)`: single quotes unless the text has a `'` and no `"`.
fn python_str_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') { '"' } else { '\'' };
    let mut out = String::from(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || (0x7f..0xa0).contains(&(c as u32)) => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Python's `str.split()` with no arguments: split on runs of Unicode whitespace, no empty pieces.
fn split_python_whitespace(text: &str) -> Vec<String> {
    text.split(is_python_whitespace).filter(|piece| !piece.is_empty()).map(str::to_owned).collect()
}

/// Python's `str.isspace()`: Unicode `White_Space` plus the ASCII information separators `\x1c`–`\x1f`.
fn is_python_whitespace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}
