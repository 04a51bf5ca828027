//! Names: the JSON key of a field and the database column SeaORM gives it.
//!
//! SeaORM names columns with `heck`; the word splitting and case styles below follow heck 0.5 and
//! `sea-orm-macros` 2.0 (`DeriveEntityModel`), so `SYNCED_COLUMNS` holds the names the database really has.

use syn::Ident;

/// A struct-level `#[sea_orm(rename_all = "...")]` style.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaseStyle {
    /// `camelCase`
    Camel,
    /// `PascalCase`, `camel_case`
    Pascal,
    /// `snake_case`
    Snake,
    /// `kebab-case`
    Kebab,
    /// `SCREAMING-KEBAB-CASE`
    ScreamingKebab,
    /// `SCREAMING_SNAKE_CASE`
    ShoutySnake,
    /// `title_case`
    Title,
    /// `mixed_case`
    Mixed,
    /// `lowercase`
    Lower,
    /// `UPPERCASE`
    Upper,
}

impl CaseStyle {
    /// Parses a style the way `sea-orm-macros` does; `None` for an unknown style (SeaORM reports it).
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "camel_case" | "PascalCase" => CaseStyle::Pascal,
            "camelCase" => CaseStyle::Camel,
            "snake_case" | "snek_case" => CaseStyle::Snake,
            "kebab_case" | "kebab-case" => CaseStyle::Kebab,
            "SCREAMING-KEBAB-CASE" => CaseStyle::ScreamingKebab,
            "shouty_snake_case" | "shouty_snek_case" | "SCREAMING_SNAKE_CASE" => CaseStyle::ShoutySnake,
            "title_case" => CaseStyle::Title,
            "mixed_case" => CaseStyle::Mixed,
            "lowercase" => CaseStyle::Lower,
            "UPPERCASE" => CaseStyle::Upper,
            _ => return None,
        })
    }
}

/// The Rust field name without a leading `r#`: the JSON key of the field.
pub fn field_name(ident: &Ident) -> String {
    let name = ident.to_string();
    name.strip_prefix("r#").map(str::to_owned).unwrap_or(name)
}

/// The database column of a field, as `DeriveEntityModel` computes it.
pub fn column_name(field: &str, explicit: Option<String>, rename_all: Option<CaseStyle>) -> String {
    if let Some(explicit) = explicit {
        return explicit;
    }
    let pascal = upper_camel(field);
    match rename_all {
        Some(style) => convert(&pascal, style),
        None if field != snake(&pascal) => snake(field),
        None => field.to_owned(),
    }
}

fn convert(ident: &str, style: CaseStyle) -> String {
    match style {
        CaseStyle::Pascal => upper_camel(ident),
        CaseStyle::Kebab => join(ident, "-", str::to_lowercase),
        CaseStyle::Mixed => lower_camel(ident),
        CaseStyle::ShoutySnake => join(ident, "_", str::to_uppercase),
        CaseStyle::Snake => snake(ident),
        CaseStyle::Title => join(ident, " ", capitalize),
        CaseStyle::Upper => ident.to_uppercase(),
        CaseStyle::Lower => ident.to_lowercase(),
        CaseStyle::ScreamingKebab => join(ident, "-", str::to_lowercase).to_uppercase(),
        CaseStyle::Camel => {
            let pascal = upper_camel(ident);
            let mut chars = pascal.chars();
            match chars.next() {
                Some(first) => first.to_lowercase().chain(chars).collect(),
                None => String::new(),
            }
        }
    }
}

fn snake(s: &str) -> String {
    join(s, "_", str::to_lowercase)
}

fn upper_camel(s: &str) -> String {
    words(s).iter().map(|w| capitalize(w)).collect()
}

fn lower_camel(s: &str) -> String {
    words(s).iter().enumerate().map(|(i, w)| if i == 0 { w.to_lowercase() } else { capitalize(w) }).collect()
}

fn join(s: &str, separator: &str, case: fn(&str) -> String) -> String {
    words(s).iter().map(|w| case(w)).collect::<Vec<_>>().join(separator)
}

fn capitalize(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars.as_str().to_lowercase().chars()).collect(),
        None => String::new(),
    }
}

/// heck's word splitting: non-alphanumeric characters separate words; inside a word, a boundary falls between a
/// lowercase and an uppercase letter, and before the last capital of an uppercase run followed by a lowercase.
fn words(s: &str) -> Vec<&str> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mode {
        Boundary,
        Lower,
        Upper,
    }
    let mut out = Vec::new();
    for word in s.split(|c: char| !c.is_alphanumeric()) {
        let mut chars = word.char_indices().peekable();
        let mut init = 0;
        let mut mode = Mode::Boundary;
        while let Some((i, c)) = chars.next() {
            let Some(&(next_i, next)) = chars.peek() else {
                out.push(&word[init..]);
                break;
            };
            let next_mode = if c.is_lowercase() {
                Mode::Lower
            } else if c.is_uppercase() {
                Mode::Upper
            } else {
                mode
            };
            if next_mode == Mode::Lower && next.is_uppercase() {
                out.push(&word[init..next_i]);
                init = next_i;
                mode = Mode::Boundary;
            } else if mode == Mode::Upper && c.is_uppercase() && next.is_lowercase() {
                out.push(&word[init..i]);
                init = i;
                mode = Mode::Boundary;
            } else {
                mode = next_mode;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_snake_case_fields_keep_their_name() {
        assert_eq!(column_name("facility_id", None, None), "facility_id");
        assert_eq!(column_name("line1", None, None), "line1");
    }

    #[test]
    fn a_leading_underscore_is_dropped_like_sea_orm_does() {
        assert_eq!(column_name("_morango_source_id", None, None), "morango_source_id");
        assert_eq!(column_name("_morango_dirty_bit", None, None), "morango_dirty_bit");
    }

    #[test]
    fn column_name_and_rename_all_win() {
        assert_eq!(column_name("username", Some("user_name".into()), None), "user_name");
        assert_eq!(column_name("facility_id", None, Some(CaseStyle::Camel)), "facilityId");
        assert_eq!(column_name("facility_id", None, Some(CaseStyle::Upper)), "FACILITYID");
        assert_eq!(column_name("facility_id", None, Some(CaseStyle::ScreamingKebab)), "FACILITY-ID");
    }

    #[test]
    fn words_split_like_heck() {
        assert_eq!(words("HTTPServer_x"), ["HTTP", "Server", "x"]);
        assert_eq!(words("__a__b"), ["a", "b"]);
    }
}
