//! Distinct: `SELECT DISTINCT items`.
//!
//! **Delta rule.** DISTINCT is an aggregate grouped by every output column with no aggregate
//! calls: a row is present while its multiplicity (`__pgt_count`, maintained as Σw by the
//! Aggregate rule) is positive. A window that takes a row's count from 0 to n inserts it, from n
//! to 0 deletes it, and anything else leaves the stream table untouched.

use super::aggregate::GroupPlan;
use super::parse::QuerySpec;
use super::Unsupported;

/// The DISTINCT plan: the Aggregate plan with keys = outputs and no aggregate calls.
pub fn plan(spec: &QuerySpec, input: super::join::Input) -> Result<GroupPlan, Unsupported> {
    debug_assert!(spec.distinct);
    GroupPlan::new(spec, input, &[], &[], &[])
}
