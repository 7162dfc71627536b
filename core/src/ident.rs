//! SQL identifiers: parsing user-supplied (optionally schema-qualified) names with PostgreSQL's
//! rules, and quoting identifiers and literals for generated SQL.

use crate::error::{PgtError, Result};

/// PostgreSQL's NAMEDATALEN - 1.
pub const MAX_IDENT_LEN: usize = 63;

/// A possibly schema-qualified relation name, as the user wrote it, after case folding.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QualifiedName {
    pub schema: Option<String>,
    pub name: String,
}

impl QualifiedName {
    /// Parses `name`, `schema.name`, `"Quoted Name"` or `"my schema"."My Table"`: unquoted parts
    /// are folded to lower case, quoted parts are kept as written (`""` stands for one quote).
    pub fn parse(input: &str) -> Result<Self> {
        let bad = |reason: &str| PgtError::InvalidName {
            input: input.to_string(),
            reason: reason.to_string(),
        };
        let mut parts: Vec<String> = Vec::new();
        let mut chars = input.trim().chars().peekable();
        loop {
            let mut part = String::new();
            match chars.peek() {
                None => return Err(bad("empty name")),
                Some('"') => {
                    chars.next();
                    loop {
                        match chars.next() {
                            None => return Err(bad("unterminated quoted identifier")),
                            Some('"') if chars.peek() == Some(&'"') => {
                                chars.next();
                                part.push('"');
                            }
                            Some('"') => break,
                            Some(c) => part.push(c),
                        }
                    }
                    if part.is_empty() {
                        return Err(bad("zero-length quoted identifier"));
                    }
                }
                Some(_) => {
                    while let Some(&c) = chars.peek() {
                        if c == '.' || c.is_whitespace() {
                            break;
                        }
                        if !(c.is_alphanumeric() || c == '_' || c == '$') || c == '"' {
                            return Err(bad(&format!("unexpected character '{c}'")));
                        }
                        part.push(c.to_ascii_lowercase());
                        chars.next();
                    }
                    if part.is_empty() {
                        return Err(bad("empty name part"));
                    }
                    if part.starts_with(|c: char| c.is_ascii_digit() || c == '$') {
                        return Err(bad("an unquoted identifier cannot start with a digit or $"));
                    }
                }
            }
            if part.len() > MAX_IDENT_LEN {
                return Err(bad("identifier longer than 63 bytes"));
            }
            parts.push(part);
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
            match chars.next() {
                None => break,
                Some('.') => {
                    while chars.peek().is_some_and(|c| c.is_whitespace()) {
                        chars.next();
                    }
                }
                Some(c) => return Err(bad(&format!("unexpected character '{c}'"))),
            }
        }
        match parts.len() {
            1 => Ok(QualifiedName {
                schema: None,
                name: parts.pop().unwrap(),
            }),
            2 => {
                let name = parts.pop().unwrap();
                Ok(QualifiedName {
                    schema: parts.pop(),
                    name,
                })
            }
            _ => Err(bad("expected name or schema.name")),
        }
    }
}

/// Quotes an identifier for generated SQL. Always quotes, so keywords and mixed case are safe.
pub fn quote_ident(ident: &str) -> String {
    let mut out = String::with_capacity(ident.len() + 2);
    out.push('"');
    for c in ident.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// `"schema"."name"`.
pub fn quote_qualified(schema: &str, name: &str) -> String {
    format!("{}.{}", quote_ident(schema), quote_ident(name))
}

/// Quotes a string literal (standard_conforming_strings): `'it''s'`.
pub fn quote_literal(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        if c == '\'' {
            out.push('\'');
        }
        out.push(c);
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn qn(schema: Option<&str>, name: &str) -> QualifiedName {
        QualifiedName {
            schema: schema.map(str::to_string),
            name: name.to_string(),
        }
    }

    #[test]
    fn folds_unquoted_and_keeps_quoted() {
        assert_eq!(QualifiedName::parse("Sales").unwrap(), qn(None, "sales"));
        assert_eq!(
            QualifiedName::parse("Ana.Sales").unwrap(),
            qn(Some("ana"), "sales")
        );
        assert_eq!(
            QualifiedName::parse("\"Ana\".\"My \"\"T\"\"\"").unwrap(),
            qn(Some("Ana"), "My \"T\"")
        );
        assert_eq!(QualifiedName::parse(" a . b ").unwrap(), qn(Some("a"), "b"));
        assert_eq!(QualifiedName::parse("x$1").unwrap(), qn(None, "x$1"));
    }

    #[test]
    fn rejects_malformed_names() {
        for bad in [
            "",
            "a.b.c",
            "a.",
            ".a",
            "\"unterminated",
            "\"\"",
            "1abc",
            "a-b",
            "a b",
            "a;drop",
        ] {
            assert!(
                QualifiedName::parse(bad).is_err(),
                "{bad:?} should be rejected"
            );
        }
        assert!(QualifiedName::parse(&"x".repeat(64)).is_err());
        assert!(QualifiedName::parse(&"x".repeat(63)).is_ok());
    }

    #[test]
    fn quoting() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_qualified("public", "T"), "\"public\".\"T\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
    }

    proptest! {
        /// Quoting then parsing any identifier gives it back unchanged.
        #[test]
        fn quote_then_parse_round_trips(schema in "[^\\x00]{1,20}", name in "[^\\x00]{1,20}") {
            prop_assume!(schema.len() <= MAX_IDENT_LEN && name.len() <= MAX_IDENT_LEN);
            let parsed = QualifiedName::parse(&quote_qualified(&schema, &name)).unwrap();
            prop_assert_eq!(parsed, qn(Some(&schema), &name));
        }
    }
}
