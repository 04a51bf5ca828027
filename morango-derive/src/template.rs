//! Partition and source-id templates: text with `${field}` placeholders.

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Literal text.
    Text(String),
    /// `${name}`: the value of a field (or, for `name == "id"` in a partition, the record id placeholder).
    Field(String),
}

/// Splits a template into pieces; the error says what is malformed.
pub fn parse(template: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        text.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err(format!(
                "unterminated `${{` in template \"{template}\": write `${{field}}`, where `field` is a field of this model"
            ));
        };
        let name = after[..end].trim();
        if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
            return Err(format!(
                "`${{{}}}` in template \"{template}\" is not a field name: write `${{field}}`, where `field` is a field \
                 of this model",
                &after[..end]
            ));
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(std::mem::take(&mut text)));
        }
        pieces.push(Piece::Field(name.to_owned()));
        rest = &after[end + 1..];
    }
    text.push_str(rest);
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Ok(pieces)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_and_text_alternate() {
        assert_eq!(
            parse("${facility_id}:user-ro:${id}").unwrap(),
            vec![Piece::Field("facility_id".into()), Piece::Text(":user-ro:".into()), Piece::Field("id".into())]
        );
        assert_eq!(parse("").unwrap(), vec![]);
        assert_eq!(parse("p:$id:{id}").unwrap(), vec![Piece::Text("p:$id:{id}".into())]);
    }

    #[test]
    fn malformed_placeholders_are_errors() {
        assert!(parse("a:${b").is_err());
        assert!(parse("a:${}").is_err());
        assert!(parse("a:${b-c}").is_err());
    }
}
