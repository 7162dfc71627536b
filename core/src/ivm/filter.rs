//! Filter: `WHERE p`.
//!
//! **Delta rule.** Δσp(T) = σp(ΔT): the predicate is applied to each weighted row image of the
//! window, so an update whose old image passed and new image fails contributes only its −1 (the
//! row leaves), and the reverse only its +1 (the row enters). The predicate must be deterministic
//! (checked when the query is parsed).

use sqlparser::ast::Expr;

/// ` WHERE <p>` or nothing.
pub fn where_clause(filter: Option<&Expr>) -> String {
    filter.map(|p| format!(" WHERE {p}")).unwrap_or_default()
}

/// ` AND <p>` or nothing, to add to an existing WHERE.
pub fn and_clause(filter: Option<&Expr>) -> String {
    filter.map(|p| format!(" AND ({p})")).unwrap_or_default()
}
