//! Who runs what (docs/SQL_REFERENCE.md, "Security").
//!
//! - The SQL API runs as its caller for the checks (ownership, CREATE on the schema) and for
//!   whatever executes the caller's own SQL, and as the extension's owner for pg_trickle's own
//!   work (catalog rows, change buffers, capture triggers, storage DDL), always with a
//!   `search_path` that puts `pg_catalog` first and `pg_temp` last, so no name in pg_trickle's
//!   statements resolves to a function or operator of the caller's.
//! - A refresh (scheduled, manual, IMMEDIATE) runs the statements that evaluate the defining
//!   query as the stream table's owner (the owner of its storage table), as REFRESH
//!   MATERIALIZED VIEW does; its bookkeeping runs as the extension's owner.
//! - A stream table belongs to the role that created it; its internal tables belong to the same
//!   role, which also gets SELECT on the change buffers its refreshes read.

use crate::catalog::StreamTable;
use crate::error::raise;
use crate::error::SpiOk;
use crate::spi;
use pg_trickle_core::PgtError;
use pgrx::pg_sys::{self, Oid};
use std::cell::Cell;

thread_local! {
    /// The role that called the API function now running (innermost call).
    static CALLER: Cell<Option<Oid>> = const { Cell::new(None) };
}

/// The current user and security context.
fn current() -> (Oid, i32) {
    let (mut user, mut context) = (pg_sys::InvalidOid, 0);
    // SAFETY: reads the backend's current user id and security context.
    unsafe { pg_sys::GetUserIdAndSecContext(&mut user, &mut context) };
    (user, context)
}

/// Restores a saved identity when dropped (an ERROR restores it through the (sub)transaction
/// abort as well).
struct Restore(Oid, i32);

impl Drop for Restore {
    fn drop(&mut self) {
        // SAFETY: restores the identity saved when this guard was made.
        unsafe { pg_sys::SetUserIdAndSecContext(self.0, self.1) };
    }
}

/// Runs `f` as `role`, as a SECURITY DEFINER function does (`SET ROLE` inside is refused).
pub fn as_role<R>(role: Oid, f: impl FnOnce() -> R) -> R {
    let (user, context) = current();
    if user == role {
        return f();
    }
    let _restore = Restore(user, context);
    // SAFETY: switches the current user id for the duration of `f`; restored by the guard, or
    // by the transaction's abort on an ERROR.
    unsafe {
        pg_sys::SetUserIdAndSecContext(role, context | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32)
    };
    f()
}

/// The owner of the pg_trickle extension (the role its own objects belong to).
pub fn extension_owner() -> Oid {
    spi::one_p::<Oid>(
        "SELECT extowner FROM pg_catalog.pg_extension WHERE extname = 'pg_trickle'",
        &[],
    )
    .unwrap_or(Oid::from(pg_sys::BOOTSTRAP_SUPERUSERID))
}

/// Refuses (55000, with the fix as hint) to work on a catalog of another version than this
/// library's: new binaries were installed and the server restarted, but `ALTER EXTENSION
/// pg_trickle UPDATE` has not run yet in this database. Not while the extension is being
/// created or updated (its scripts call pg_trickle's functions).
pub fn require_catalog_version() {
    // SAFETY: reads a flag PostgreSQL sets while running an extension's script.
    if unsafe { pg_sys::creating_extension } {
        return;
    }
    if let Some(catalog) = older_catalog() {
        crate::error::raise(pg_trickle_core::PgtError::CatalogVersion {
            library: crate::catalog::PLANNER.to_string(),
            catalog,
        });
    }
}

thread_local! {
    /// The extension (by OID) whose catalog [`older_catalog`] found to be this library's
    /// version.
    static CATALOG_CHECKED: std::cell::Cell<Option<Oid>> = const { std::cell::Cell::new(None) };
}

/// The version of this database's pg_trickle catalog when it is not this library's. Asked once
/// per backend and installation of the extension: a catalog of this version stays so (there is
/// no downgrade script); a dropped and re-created extension has another OID.
pub fn older_catalog() -> Option<String> {
    // SAFETY: a catalog lookup by name; `missing_ok` returns InvalidOid instead of raising.
    let ext = unsafe { pg_sys::get_extension_oid(c"pg_trickle".as_ptr(), true) };
    if CATALOG_CHECKED.get() == Some(ext) {
        return None;
    }
    let catalog = spi::one_p::<String>(
        "SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'pg_trickle'",
        &[],
    )
    .unwrap_or_default();
    if catalog == crate::catalog::PLANNER {
        CATALOG_CHECKED.set(Some(ext));
        return None;
    }
    Some(catalog)
}

/// The role that called the API function now running (the current user outside of one).
pub fn caller() -> Oid {
    CALLER.with(|c| c.get()).unwrap_or_else(|| current().0)
}

/// Runs `f` with `role` taken as the caller (see [`as_caller`]).
pub fn with_caller<R>(role: Oid, f: impl FnOnce() -> R) -> R {
    let outer = CALLER.with(|c| c.replace(Some(role)));
    let _pop = PopCaller(outer);
    f()
}

/// Puts the outer caller back when dropped.
struct PopCaller(Option<Oid>);

impl Drop for PopCaller {
    fn drop(&mut self) {
        CALLER.with(|c| c.set(self.0));
    }
}

/// Runs the body of an API function: remembers the caller, pins `search_path` (see
/// [`pg_trickle_core::ident::pinned_search_path`]) and runs `f` as the extension's owner.
/// Refuses first when the catalog is not this version's ([`require_catalog_version`]).
pub fn api<R>(f: impl FnOnce() -> R) -> R {
    require_catalog_version();
    internal(f)
}

/// [`api`] for the functions pg_trickle's event triggers call: never refused for the catalog's
/// version (a user's DDL must not fail because `ALTER EXTENSION pg_trickle UPDATE` is pending).
pub fn internal<R>(f: impl FnOnce() -> R) -> R {
    let (user, _) = current();
    let outer = CALLER.with(|c| c.replace(Some(user)));
    let _pop = PopCaller(outer);
    let path = spi::one::<String>("SELECT pg_catalog.current_setting('search_path')", &[])
        .unwrap_or_default();
    let owner = extension_owner();
    spi::with_settings(
        &[(
            "search_path",
            &pg_trickle_core::ident::pinned_search_path(&path),
        )],
        || as_role(owner, f),
    )
}

/// Runs `f` as the caller of the API function now running (for SQL of the caller's own that
/// pg_trickle executes while planning).
pub fn as_caller<R>(f: impl FnOnce() -> R) -> R {
    as_role(caller(), f)
}

/// Whether `role` has the privileges of `of` (is a member that inherits them, or a superuser).
fn has_privs_of(role: Oid, of: Oid) -> bool {
    // SAFETY: a catalog lookup of two role ids.
    unsafe { pg_sys::has_privs_of_role(role, of) }
}

/// The role that owns relation `relid`.
pub fn owner_of(relid: Oid) -> Oid {
    spi::one_p::<Oid>(
        "SELECT relowner FROM pg_catalog.pg_class WHERE oid = $1",
        &[relid.into()],
    )
    .unwrap_or(pg_sys::InvalidOid)
}

/// Refuses (42501) unless the caller may act as the owner of stream table `st`.
pub fn require_owner(st: &StreamTable) {
    if !has_privs_of(caller(), owner_of(st.relid)) {
        raise(PgtError::NotOwner(st.display()));
    }
}

/// Refuses (42501) unless the caller may create tables in `schema`.
pub fn require_create_in(schema: &str) {
    let ok = spi::one::<bool>(
        "SELECT pg_catalog.has_schema_privilege($1, n.oid, 'CREATE') FROM pg_catalog.pg_namespace n WHERE n.nspname = $2",
        &[caller().into(), schema.to_string().into()],
    )
    .unwrap_or(true);
    if !ok {
        raise(PgtError::NoCreateInSchema(
            pg_trickle_core::ident::quote_ident(schema),
        ));
    }
}

/// Gives stream table `relid` (its storage, TopK table and internal stream tables, theirs too)
/// to `owner`, and grants `owner` SELECT on the change buffers their refreshes read.
pub fn settle(relid: Oid, owner: Oid) {
    let tables: Vec<String> = spi::rows(
        "WITH RECURSIVE t AS (SELECT pgt_id, pgt_relid FROM pgtrickle.pgt_stream_tables WHERE pgt_relid = $1 \
                 UNION ALL SELECT c.pgt_id, c.pgt_relid FROM pgtrickle.pgt_stream_tables c JOIN t ON c.parent_pgt_id = t.pgt_id) \
         SELECT pg_catalog.format('%I.%I', n.nspname, c.relname) FROM pg_catalog.pg_class c \
           JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
          WHERE c.relowner <> $2 AND (c.oid IN (SELECT pgt_relid FROM t) \
             OR c.oid IN (SELECT pg_catalog.to_regclass(pg_catalog.format('pgtrickle_changes.topk_%s', pgt_id))::oid FROM t))",
        &[relid.into(), owner.into()],
        |r| r.get::<String>(1).spi_ok().unwrap_or_default(),
    );
    let role = role_name(owner);
    for t in tables {
        spi::exec(&format!("ALTER TABLE {t} OWNER TO {role}"), &[]);
    }
    if has_privs_of(owner, extension_owner()) {
        return;
    }
    let buffers: Vec<String> = spi::rows(
        "WITH RECURSIVE t AS (SELECT pgt_id FROM pgtrickle.pgt_stream_tables WHERE pgt_relid = $1 \
                 UNION ALL SELECT c.pgt_id FROM pgtrickle.pgt_stream_tables c JOIN t ON c.parent_pgt_id = t.pgt_id) \
         SELECT DISTINCT pg_catalog.format('pgtrickle_changes.%I', s.buffer_table) \
           FROM pgtrickle.pgt_dependencies d JOIN pgtrickle.pgt_sources s USING (source_relid) \
          WHERE d.pgt_id IN (SELECT pgt_id FROM t) \
            AND NOT pg_catalog.has_table_privilege($2, pg_catalog.format('pgtrickle_changes.%I', s.buffer_table), 'SELECT')",
        &[relid.into(), owner.into()],
        |r| r.get::<String>(1).spi_ok().unwrap_or_default(),
    );
    for b in buffers {
        spi::exec(&format!("GRANT SELECT ON {b} TO {role}"), &[]);
    }
}

/// The quoted name of role `role`.
fn role_name(role: Oid) -> String {
    spi::one::<String>(
        "SELECT pg_catalog.quote_ident(rolname) FROM pg_catalog.pg_roles WHERE oid = $1",
        &[role.into()],
    )
    .unwrap_or_else(|| pgrx::error!("pg_trickle: role {} does not exist", role.to_u32()))
}

/// Refuses (42501, as PostgreSQL would) a refresh whose owner may no longer read one of the
/// relations its plan reads: a delta may read only a change buffer, which would otherwise
/// bypass a revoked privilege. Nothing to check for a superuser owner.
pub fn require_source_privileges(st: &StreamTable) {
    // SAFETY: a syscache lookup of a role id.
    if unsafe { pg_sys::superuser_arg(st.owner) } {
        return;
    }
    let denied = spi::one_p::<String>(
        "SELECT pg_catalog.format('%s %s', CASE c.relkind WHEN 'v' THEN 'view' ELSE 'table' END, c.relname) \
           FROM pgtrickle.pgt_dependencies d JOIN pg_catalog.pg_class c ON c.oid = d.source_relid \
          WHERE d.pgt_id = $1 AND NOT pg_catalog.has_any_column_privilege($2, c.oid, 'SELECT') LIMIT 1",
        &[st.pgt_id.into(), st.owner.into()],
    );
    if let Some(relation) = denied {
        raise(PgtError::OwnerCannotRead {
            relation,
            stream_table: st.display(),
        });
    }
}

/// Runs `f` (statements that evaluate `st`'s defining query) as `st`'s owner.
pub fn as_owner<R>(st: &StreamTable, f: impl FnOnce() -> R) -> R {
    as_role(st.owner, f)
}
