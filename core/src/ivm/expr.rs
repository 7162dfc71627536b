//! Expression helpers shared by the operators: finding aggregate calls, substituting group keys
//! and aggregates by the columns that hold them, and spotting functions whose result changes
//! between refreshes.

use sqlparser::ast::{
    visit_expressions, DuplicateTreatment, Expr, Function, FunctionArg, FunctionArgExpr,
    FunctionArguments, Ident, VisitMut, VisitorMut,
};
use std::ops::ControlFlow;

/// Aggregate functions pg_trickle recognises (lower case).
const AGGREGATES: &[&str] = &[
    "count",
    "sum",
    "avg",
    "min",
    "max",
    "bool_and",
    "bool_or",
    "every",
    "string_agg",
    "array_agg",
    "json_agg",
    "jsonb_agg",
    "json_object_agg",
    "jsonb_object_agg",
    "stddev",
    "stddev_samp",
    "stddev_pop",
    "variance",
    "var_samp",
    "var_pop",
    "corr",
    "covar_pop",
    "covar_samp",
    "regr_avgx",
    "regr_avgy",
    "regr_count",
    "regr_intercept",
    "regr_r2",
    "regr_slope",
    "regr_sxx",
    "regr_sxy",
    "regr_syy",
    "bit_and",
    "bit_or",
    "bit_xor",
    "xmlagg",
    "percentile_cont",
    "percentile_disc",
    "mode",
    "any_value",
    "range_agg",
    "range_intersect_agg",
];

/// Functions whose value depends on the moment or the session, or that have side effects:
/// a stream table over them cannot be maintained by deltas.
const NON_DETERMINISTIC: &[&str] = &[
    "now",
    "current_timestamp",
    "current_date",
    "current_time",
    "localtime",
    "localtimestamp",
    "transaction_timestamp",
    "statement_timestamp",
    "clock_timestamp",
    "timeofday",
    "random",
    "random_normal",
    "gen_random_uuid",
    "uuidv4",
    "uuidv7",
    "nextval",
    "currval",
    "lastval",
    "setval",
    "txid_current",
    "pg_current_xact_id",
    "current_user",
    "session_user",
    "user",
    "current_role",
    "current_schema",
    "current_setting",
    "pg_backend_pid",
    "inet_client_addr",
];

/// Whether a whole query calls a function whose value changes without its sources changing
/// (the clock, the session, random numbers, sequences), so that re-running it can give another
/// result over the same data. Unparseable text counts as such.
pub fn query_reads_changing_values(sql: &str) -> bool {
    use sqlparser::dialect::PostgreSqlDialect;
    use sqlparser::parser::Parser;
    match Parser::parse_sql(&PostgreSqlDialect {}, sql) {
        Ok(stmts) => visit_expressions(&stmts, |x| match x {
            Expr::Function(f) if NON_DETERMINISTIC.contains(&function_name(f).as_str()) => {
                ControlFlow::Break(())
            }
            _ => ControlFlow::Continue(()),
        })
        .is_break(),
        Err(_) => true,
    }
}

/// The names (last part, lower-cased) of every function a query calls, or `None` when the text
/// does not parse.
pub fn query_function_names(sql: &str) -> Option<Vec<String>> {
    use sqlparser::dialect::PostgreSqlDialect;
    use sqlparser::parser::Parser;
    let stmts = Parser::parse_sql(&PostgreSqlDialect {}, sql).ok()?;
    let mut names = Vec::new();
    let _ = visit_expressions(&stmts, |x| {
        if let Expr::Function(f) = x {
            let n = function_name(f);
            if !names.contains(&n) {
                names.push(n);
            }
        }
        ControlFlow::<()>::Continue(())
    });
    Some(names)
}

/// The last part of a function's name, lower-cased.
pub fn function_name(f: &Function) -> String {
    f.name
        .0
        .last()
        .and_then(|p| p.as_ident())
        .map(|i| i.value.to_ascii_lowercase())
        .unwrap_or_default()
}

/// Whether `f` is a call of an aggregate function (not a window function call).
pub fn is_aggregate(f: &Function) -> bool {
    f.over.is_none() && AGGREGATES.contains(&function_name(f).as_str())
}

/// Whether `e` contains an aggregate call.
pub fn contains_aggregate(e: &Expr) -> bool {
    visit_expressions(e, |x| match x {
        Expr::Function(f) if is_aggregate(f) => ControlFlow::Break(()),
        _ => ControlFlow::Continue(()),
    })
    .is_break()
}

/// The first construct in `e` that a delta cannot be computed for, named for the user.
pub fn unsupported_construct(e: &Expr) -> Option<String> {
    let mut found = None;
    let _ = visit_expressions(e, |x| {
        let what = match x {
            Expr::Subquery(_) | Expr::Exists { .. } | Expr::InSubquery { .. } => {
                Some("a subquery (supported in a later version)".to_string())
            }
            Expr::Function(f) if f.over.is_some() => {
                Some(format!("window function {}()", function_name(f)))
            }
            Expr::Function(f) if NON_DETERMINISTIC.contains(&function_name(f).as_str()) => {
                Some(format!(
                    "{}(), whose value changes between refreshes",
                    function_name(f)
                ))
            }
            _ => None,
        };
        match what {
            Some(w) => {
                found = Some(w);
                ControlFlow::Break(())
            }
            None => ControlFlow::Continue(()),
        }
    });
    found
}

/// A bare identifier expression.
pub fn ident(name: &str) -> Expr {
    Expr::Identifier(Ident::with_quote('"', name))
}

/// Replaces, outermost first, every sub-expression for which `f` returns a replacement.
pub fn substitute(e: &Expr, f: &dyn Fn(&Expr) -> Option<Expr>) -> Expr {
    struct Sub<'a>(&'a dyn Fn(&Expr) -> Option<Expr>);
    impl VisitorMut for Sub<'_> {
        type Break = ();
        fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            if let Some(r) = (self.0)(expr) {
                *expr = r;
            }
            ControlFlow::Continue(())
        }
    }
    let mut out = e.clone();
    let _ = out.visit(&mut Sub(f));
    out
}

/// Column references left in `e` (bare or qualified identifiers).
pub fn has_column_reference(e: &Expr) -> bool {
    visit_expressions(e, |x| match x {
        Expr::Identifier(i) if !i.value.starts_with("__pgt_") => ControlFlow::Break(()),
        Expr::CompoundIdentifier(_) => ControlFlow::Break(()),
        _ => ControlFlow::Continue(()),
    })
    .is_break()
}

/// The parts of an aggregate call that decide how it is maintained.
pub struct AggCall<'a> {
    pub name: String,
    /// `count(*)`.
    pub star: bool,
    /// The single plain argument, when there is exactly one.
    pub arg: Option<&'a Expr>,
    /// DISTINCT, ORDER BY inside the call, several arguments, WITHIN GROUP: maintained by rescan.
    pub complex: bool,
    pub filter: Option<&'a Expr>,
}

pub fn agg_call(f: &Function) -> AggCall<'_> {
    let mut star = false;
    let mut arg = None;
    let mut complex = !f.within_group.is_empty();
    match &f.args {
        FunctionArguments::List(list) => {
            if matches!(list.duplicate_treatment, Some(DuplicateTreatment::Distinct))
                || !list.clauses.is_empty()
            {
                complex = true;
            }
            match list.args.as_slice() {
                [FunctionArg::Unnamed(FunctionArgExpr::Wildcard)] => star = true,
                [FunctionArg::Unnamed(FunctionArgExpr::Expr(e))] => arg = Some(e),
                _ => complex = true,
            }
        }
        _ => complex = true,
    }
    AggCall {
        name: function_name(f),
        star,
        arg,
        complex,
        filter: f.filter.as_deref(),
    }
}

#[cfg(test)]
mod tests {
    use super::query_reads_changing_values as changing;

    #[test]
    fn clock_and_session_functions_anywhere_in_a_query() {
        assert!(changing(
            "SELECT id FROM t WHERE ts > now() - interval '1 hour'"
        ));
        assert!(changing(
            "WITH x AS (SELECT current_timestamp AS c) SELECT * FROM x"
        ));
        assert!(changing(
            "SELECT * FROM t WHERE id IN (SELECT nextval('s'))"
        ));
        assert!(!changing(
            "WITH RECURSIVE r AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT * FROM r"
        ));
        assert!(changing("this is not SQL"));
    }
}
