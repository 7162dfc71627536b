//! Tier 1: the renderer's parentheses and quoting. Besides the cases below, a property test
//! renders random arithmetic and boolean expressions, parses the text back (sqlparser's
//! PostgreSQL dialect, whose precedence for these operators is PostgreSQL's) and evaluates both
//! trees: they agree exactly when no parenthesis was dropped or misplaced.

use super::sql::expr;
use super::*;
use proptest::prelude::*;
use sqlparser::ast::{BinaryOperator, Expr as U, UnaryOperator, Value};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

fn col(n: &str) -> Expr {
    Expr::Col(None, Name::quoted(n))
}

#[test]
fn operands_are_parenthesized_by_precedence() {
    let (a, b, c) = (col("a"), col("b"), col("c"));
    let sum = Expr::bin(Op::Add, a.clone(), b.clone());
    assert_eq!(
        expr(&Expr::bin(Op::Mul, sum.clone(), c.clone())),
        r#"("a" + "b") * "c""#
    );
    assert_eq!(
        expr(&Expr::bin(Op::Add, sum.clone(), c.clone())),
        r#""a" + "b" + "c""#
    );
    assert_eq!(
        expr(&Expr::bin(
            Op::Sub,
            a.clone(),
            Expr::bin(Op::Sub, b.clone(), c.clone())
        )),
        r#""a" - ("b" - "c")"#
    );
    assert_eq!(
        expr(&Expr::cast(sum.clone(), "numeric")),
        r#"("a" + "b")::numeric"#
    );
    assert_eq!(expr(&Expr::cast(Expr::int(-1), "int")), "(-1)::int");
    assert_eq!(expr(&Expr::Neg(Box::new(sum.clone()))), r#"-("a" + "b")"#);
    let cmp = Expr::bin(Op::Eq, a.clone(), b.clone());
    assert_eq!(
        expr(&Expr::negated(Expr::and(vec![cmp.clone(), c.clone()]))),
        r#"NOT ("a" = "b" AND "c")"#
    );
    assert_eq!(expr(&Expr::negated(cmp.clone())), r#"NOT ("a" = "b")"#);
    assert_eq!(
        expr(&Expr::or(vec![
            Expr::and(vec![a.clone(), b.clone()]),
            c.clone()
        ])),
        r#"("a" AND "b") OR "c""#
    );
    assert_eq!(
        expr(&Expr::and(vec![
            Expr::or(vec![a.clone(), b.clone()]),
            c.clone()
        ])),
        r#"("a" OR "b") AND "c""#
    );
    // Nested conjunctions flatten; a single item is itself.
    assert_eq!(
        expr(&Expr::and(vec![
            Expr::and(vec![a.clone(), b.clone()]),
            c.clone()
        ])),
        r#""a" AND "b" AND "c""#
    );
    assert_eq!(Expr::and(vec![a.clone()]), a);
    // SQL text not built from nodes is parenthesized wherever it is an operand.
    assert_eq!(
        expr(&Expr::and(vec![Expr::Sql("x OR y".into()), c.clone()])),
        r#"(x OR y) AND "c""#
    );
    assert_eq!(
        expr(&Expr::bin(Op::IsDistinctFrom, cmp.clone(), c.clone())),
        r#"("a" = "b") IS DISTINCT FROM "c""#
    );
}

#[test]
fn names_and_literals_are_quoted() {
    assert_eq!(Name::quoted(r#"Odd "name""#).render(), r#""Odd ""name""""#);
    assert_eq!(Name::internal("__pgt_w").render(), "__pgt_w");
    assert_eq!(expr(&Expr::str("it's")), "'it''s'");
    assert!(std::panic::catch_unwind(|| Name::internal("Upper")).is_err());
    assert!(std::panic::catch_unwind(|| Name::internal("a b")).is_err());
    assert!(std::panic::catch_unwind(|| Name::internal("1a")).is_err());
}

#[test]
fn product_of_no_factor_is_one() {
    assert_eq!(expr(&Expr::product(&[])), "1");
    assert_eq!(
        expr(&Expr::product(&[col("a"), Expr::Neg(Box::new(col("b")))])),
        r#""a" * -"b""#
    );
}

/// A value of the little language the property test evaluates.
#[derive(Debug, Clone, Copy, PartialEq)]
enum V {
    I(i64),
    B(bool),
}

const VARS: [(&str, i64); 3] = [("a", 3), ("b", -7), ("c", 11)];

fn int_expr() -> impl Strategy<Value = Expr> {
    let leaf = prop_oneof![
        (-5i64..6).prop_map(Expr::int),
        prop::sample::select(VARS.to_vec()).prop_map(|(n, _)| col(n)),
    ];
    leaf.prop_recursive(4, 24, 2, |inner| {
        prop_oneof![
            (
                inner.clone(),
                inner.clone(),
                prop::sample::select(vec![Op::Add, Op::Sub, Op::Mul])
            )
                .prop_map(|(l, r, op)| Expr::bin(op, l, r)),
            inner.prop_map(|e| Expr::Neg(Box::new(e))),
        ]
    })
}

fn bool_expr() -> impl Strategy<Value = Expr> {
    let cmp = (
        int_expr(),
        int_expr(),
        prop::sample::select(vec![Op::Eq, Op::Ne, Op::Lt, Op::Le, Op::Gt, Op::Ge]),
    )
        .prop_map(|(l, r, op)| Expr::bin(op, l, r));
    cmp.prop_recursive(3, 16, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..4).prop_map(Expr::and),
            prop::collection::vec(inner.clone(), 2..4).prop_map(Expr::or),
            inner.prop_map(Expr::negated),
        ]
    })
}

fn eval_ir(e: &Expr) -> V {
    let int = |e: &Expr| match eval_ir(e) {
        V::I(v) => v,
        V::B(_) => panic!("an integer"),
    };
    let boolean = |e: &Expr| match eval_ir(e) {
        V::B(v) => v,
        V::I(_) => panic!("a boolean"),
    };
    match e {
        Expr::Lit(Lit::Int(v)) => V::I(*v),
        Expr::Col(_, n) => V::I(VARS.iter().find(|(k, _)| *k == n.as_str()).expect("var").1),
        Expr::Neg(x) => V::I(-int(x)),
        Expr::Bin(op, l, r) => {
            let (l, r) = (int(l), int(r));
            match op {
                Op::Add => V::I(l + r),
                Op::Sub => V::I(l - r),
                Op::Mul => V::I(l * r),
                Op::Eq => V::B(l == r),
                Op::Ne => V::B(l != r),
                Op::Lt => V::B(l < r),
                Op::Le => V::B(l <= r),
                Op::Gt => V::B(l > r),
                Op::Ge => V::B(l >= r),
                other => panic!("{other:?} not generated"),
            }
        }
        Expr::And(items) => V::B(items.iter().all(boolean)),
        Expr::Or(items) => V::B(items.iter().any(boolean)),
        Expr::Not(x) => V::B(!boolean(x)),
        other => panic!("{other:?} not generated"),
    }
}

fn eval_parsed(e: &U) -> V {
    let int = |e: &U| match eval_parsed(e) {
        V::I(v) => v,
        V::B(_) => panic!("an integer"),
    };
    let boolean = |e: &U| match eval_parsed(e) {
        V::B(v) => v,
        V::I(_) => panic!("a boolean"),
    };
    match e {
        U::Nested(x) => eval_parsed(x),
        U::Value(v) => match &v.value {
            Value::Number(n, _) => V::I(n.parse().expect("a number")),
            other => panic!("{other:?}"),
        },
        U::Identifier(i) => V::I(VARS.iter().find(|(k, _)| *k == i.value).expect("var").1),
        U::UnaryOp { op, expr } => match op {
            UnaryOperator::Minus => V::I(-int(expr)),
            UnaryOperator::Not => V::B(!boolean(expr)),
            other => panic!("{other:?}"),
        },
        U::BinaryOp { left, op, right } => match op {
            BinaryOperator::And => V::B(boolean(left) && boolean(right)),
            BinaryOperator::Or => V::B(boolean(left) || boolean(right)),
            _ => {
                let (l, r) = (int(left), int(right));
                match op {
                    BinaryOperator::Plus => V::I(l + r),
                    BinaryOperator::Minus => V::I(l - r),
                    BinaryOperator::Multiply => V::I(l * r),
                    BinaryOperator::Eq => V::B(l == r),
                    BinaryOperator::NotEq => V::B(l != r),
                    BinaryOperator::Lt => V::B(l < r),
                    BinaryOperator::LtEq => V::B(l <= r),
                    BinaryOperator::Gt => V::B(l > r),
                    BinaryOperator::GtEq => V::B(l >= r),
                    other => panic!("{other:?}"),
                }
            }
        },
        other => panic!("{other:?}"),
    }
}

fn parse(text: &str) -> U {
    Parser::new(&PostgreSqlDialect {})
        .try_with_sql(text)
        .and_then(|mut p| p.parse_expr())
        .unwrap_or_else(|e| panic!("{text}: {e}"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    #[test]
    fn rendered_text_means_the_tree(e in prop_oneof![int_expr(), bool_expr()]) {
        let text = expr(&e);
        prop_assert_eq!(eval_parsed(&parse(&text)), eval_ir(&e), "{}", text);
    }
}
