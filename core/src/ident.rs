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

/// A `search_path` value with `pg_catalog` first and `pg_temp` last, keeping the other entries of
/// `path` in their order: names in those schemas still resolve (tables, types, and functions or
/// operators pg_catalog does not have), but never in place of pg_catalog's, and nothing in a
/// temporary schema is found before them. pg_trickle runs its own statements with it.
pub fn pinned_search_path(path: &str) -> String {
    let mut parts = vec!["pg_catalog".to_string()];
    for p in split_search_path(path) {
        let bare = p.trim_matches('"');
        if bare != "pg_catalog" && bare != "pg_temp" && !parts.contains(&p) {
            parts.push(p);
        }
    }
    parts.push("pg_temp".to_string());
    parts.join(", ")
}

/// The entries of a `search_path` value, quoted ones kept quoted.
fn split_search_path(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for ch in path.chars() {
        match ch {
            '"' => {
                quoted = !quoted;
                cur.push(ch);
            }
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            _ => cur.push(ch),
        }
    }
    out.push(cur);
    out.into_iter()
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
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

    #[test]
    fn pinned_search_path_puts_pg_catalog_first_and_pg_temp_last() {
        assert_eq!(
            pinned_search_path("\"$user\", public"),
            "pg_catalog, \"$user\", public, pg_temp"
        );
        assert_eq!(
            pinned_search_path("evil, pg_catalog, pg_temp, app"),
            "pg_catalog, evil, app, pg_temp"
        );
        assert_eq!(pinned_search_path(""), "pg_catalog, pg_temp");
        assert_eq!(
            pinned_search_path("\"a,b\", x, x"),
            "pg_catalog, \"a,b\", x, pg_temp"
        );
    }
}
