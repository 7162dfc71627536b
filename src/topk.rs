//! The internal table of a TopK stream table (`pgtrickle_changes.topk_<pgt_id>`, see
//! `pg_trickle_core::ivm::topk`): created with the stream table's plan, dropped with its storage
//! (an internal dependency in `pg_depend`, so `DROP TABLE` of the stream table takes it along and
//! dropping it alone is refused), replaced when the stream table is redefined.

use crate::capture::{forget_relation_dependencies, record_dependency};
use crate::plan::{topk_table, Built};
use crate::spi;
use pg_trickle_core::ident::quote_qualified;
use pgrx::pg_sys::{self, Oid};

/// Creates the internal table of stream table `pgt_id` (stored in `storage`) when its plan has
/// one.
pub fn install(pgt_id: i64, storage: Oid, built: &Built) {
    let Some(topk) = &built.topk else {
        return;
    };
    spi::exec_all(&topk.ddl);
    let internal = internal_oid(pgt_id).expect("internal table just created");
    record_dependency(
        pg_sys::RelationRelationId,
        internal,
        storage,
        pg_sys::DependencyType::DEPENDENCY_INTERNAL,
    );
}

fn internal_oid(pgt_id: i64) -> Option<Oid> {
    let (schema, name) = topk_table(pgt_id);
    spi::one::<Oid>(
        "SELECT pg_catalog.to_regclass($1)::oid",
        &[quote_qualified(&schema, &name).into()],
    )
}

/// Drops the internal table of stream table `pgt_id`, if it has one.
pub fn remove(pgt_id: i64) {
    let (schema, name) = topk_table(pgt_id);
    let Some(internal) = internal_oid(pgt_id) else {
        return;
    };
    // The internal dependency on the storage would refuse the DROP.
    forget_relation_dependencies(internal, pg_sys::DependencyType::DEPENDENCY_INTERNAL);
    spi::exec(
        &format!("DROP TABLE {}", quote_qualified(&schema, &name)),
        &[],
    );
}
