//! Tier 1: the renderer's parentheses and quoting.

use super::sql::expr;
use super::*;

#[test]
fn placeholder() {
    assert_eq!(expr(&Expr::int(1)), "1");
}
