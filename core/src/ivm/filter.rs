//! Filter: `WHERE p`.
//!
//! **Delta rule.** Δσp(T) = σp(ΔT): the predicate is applied to each weighted row image of the
//! window, so an update whose old image passed and new image fails contributes only its −1 (the
//! row leaves), and the reverse only its +1 (the row enters). The predicate must be deterministic
//! (checked when the query is parsed). In the plan it is one more conjunct of every delta
//! variant's condition ([`super::join::Input::delta_query`]) and the WHERE of the full result;
//! the renderer parenthesizes it.
