//! Validates a defining query with PostgreSQL itself: it must prepare as a single plain SELECT.
//! PostgreSQL's description of the prepared statement gives the output columns and types; the
//! planner's own dependency extraction gives every relation it reads (through views, subqueries,
//! CTEs and sublinks).

use crate::error::{raise, OrRaise};
use crate::spi;
use pg_trickle_core::render::{OutputColumn, RESERVED_PREFIX, ROW_ID};
use pg_trickle_core::PgtError;
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::ffi::{CStr, CString};

unsafe extern "C-unwind" {
    /// ruleutils.c: prints an analyzed query back as SQL (what `pg_get_viewdef` prints for a
    /// view's rule). Not in pgrx's bindings.
    fn pg_get_querydef(query: *mut pg_sys::Query, pretty: bool) -> *mut std::ffi::c_char;
}

/// What PostgreSQL says about a defining query.
pub struct Analyzed {
    pub columns: Vec<OutputColumn>,
    /// Every relation the query depends on, deduplicated, in first-seen order.
    pub relations: Vec<pg_sys::Oid>,
    /// Whether the query calls a volatile function (its result can change with no data change).
    pub volatile: bool,
    /// Whether a subquery in FROM, a WITH query or a set operation's branch has a set-returning
    /// function in its select list (it multiplies that level's rows).
    pub srf_below: bool,
    /// The analyzed query tree (`nodeToString`, as a view's rule stores it): relations and
    /// columns by OID and number, so it follows renames. See [`record_dependencies`].
    pub tree: String,
    /// The query as PostgreSQL prints the tree back (`*` expanded, names as they are now).
    pub deparsed: String,
    /// For each table the query reads, the columns it reads (the parser's own record, kept for
    /// column privilege checks: `selectedCols`), at every level; `None` when it reads a whole row
    /// (`t.*`, `row_to_json(t)`) or a system column.
    pub columns_read: Vec<(pg_sys::Oid, Option<Vec<i16>>)>,
}

/// Collects `selectedCols` of every range table permission entry of a query and its subqueries
/// (FROM, WITH, sublinks).
#[derive(Default)]
struct ReadColumns(Vec<(pg_sys::Oid, Option<Vec<i16>>)>);

impl ReadColumns {
    /// # Safety
    /// `q` must point to a valid analyzed `Query`.
    unsafe fn add_query(&mut self, q: *mut pg_sys::Query) {
        for info in ptr_list::<pg_sys::RTEPermissionInfo>((*q).rteperminfos) {
            let mut cols: Option<Vec<i16>> = Some(Vec::new());
            let mut bit = -1;
            loop {
                bit = pg_sys::bms_next_member((*info).selectedCols, bit);
                if bit < 0 {
                    break;
                }
                let attnum = bit + pg_sys::FirstLowInvalidHeapAttributeNumber;
                if attnum <= 0 {
                    cols = None;
                } else if let Some(c) = cols.as_mut() {
                    c.push(attnum as i16);
                }
            }
            let relid = (*info).relid;
            match self.0.iter_mut().find(|(r, _)| *r == relid) {
                Some((_, known)) => {
                    *known = match (known.take(), cols) {
                        (Some(mut a), Some(b)) => {
                            a.extend(b);
                            a.sort_unstable();
                            a.dedup();
                            Some(a)
                        }
                        _ => None,
                    }
                }
                None => self.0.push((relid, cols)),
            }
        }
    }
}

/// The tree walker behind [`ReadColumns`].
///
/// # Safety
/// `node` is NULL or a valid node of an analyzed query; `context` points to a `ReadColumns`.
unsafe extern "C-unwind" fn read_columns_walker(
    node: *mut pg_sys::Node,
    context: *mut std::ffi::c_void,
) -> bool {
    if node.is_null() {
        return false;
    }
    if (*node).type_ == pg_sys::NodeTag::T_Query {
        let q = node as *mut pg_sys::Query;
        (*(context as *mut ReadColumns)).add_query(q);
        return pg_sys::query_tree_walker_impl(q, Some(read_columns_walker), context, 0);
    }
    pg_sys::expression_tree_walker_impl(node, Some(read_columns_walker), context)
}

/// Whether a query below `q` (in its range table or WITH list) has a set-returning function in
/// its select list.
///
/// # Safety
/// `q` must point to a valid analyzed `Query`.
unsafe fn srf_below(q: *mut pg_sys::Query) -> bool {
    let below = |sq: *mut pg_sys::Query| !sq.is_null() && ((*sq).hasTargetSRFs || srf_below(sq));
    ptr_list::<pg_sys::RangeTblEntry>((*q).rtable)
        .into_iter()
        .any(|rte| (*rte).rtekind == pg_sys::RTEKind::RTE_SUBQUERY && below((*rte).subquery))
        || ptr_list::<pg_sys::CommonTableExpr>((*q).cteList)
            .into_iter()
            .any(|cte| below((*cte).ctequery as *mut pg_sys::Query))
}

struct RawColumn {
    name: String,
    type_sql: String,
    collation: pg_sys::Oid,
}

/// Lists the cells of a PostgreSQL `List` of pointers.
///
/// # Safety
/// `list` must be NIL or a valid pointer `List`.
unsafe fn ptr_list<T>(list: *mut pg_sys::List) -> Vec<*mut T> {
    if list.is_null() {
        return Vec::new();
    }
    // SAFETY: a valid List has `length` initialised cells.
    (0..(*list).length as usize)
        .map(|i| (*(*list).elements.add(i)).ptr_value as *mut T)
        .collect()
}

/// # Safety
/// `list` must be NIL or a valid OID `List`.
unsafe fn oid_list(list: *mut pg_sys::List) -> Vec<pg_sys::Oid> {
    if list.is_null() {
        return Vec::new();
    }
    // SAFETY: as above, for an OID list.
    (0..(*list).length as usize)
        .map(|i| (*(*list).elements.add(i)).oid_value)
        .collect()
}

fn c_string(p: *const std::ffi::c_char) -> String {
    // SAFETY: PostgreSQL returns NUL-terminated strings from the functions this is used with.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// Prepares `sql` with SPI and returns its plan sources (one per statement).
///
/// # Safety
/// The caller must be connected to SPI; the returned pointers live until the connection closes.
unsafe fn prepare_sources(sql: &CString) -> Vec<*mut pg_sys::CachedPlanSource> {
    // SAFETY: connected to SPI (caller's contract); SPI_prepare returns a plan or raises an
    // ERROR, which unwinds through pgrx's guard.
    let plan = pg_sys::SPI_prepare(sql.as_ptr(), 0, std::ptr::null_mut());
    if plan.is_null() {
        raise(PgtError::NotASelect(
            "the query could not be prepared".into(),
        ));
    }
    ptr_list(pg_sys::SPI_plan_get_plan_sources(plan))
}

/// Prepares `query` and describes it. Errors from PostgreSQL (syntax, unknown relation or column,
/// parameters) propagate with their own SQLSTATE.
pub fn analyze(query: &str) -> Analyzed {
    analyze_as(query, false)
}

/// [`analyze`] for a query pg_trickle wrote itself, whose output columns may have reserved names
/// (a TopK stream table's inner query and its `__pgt_k<i>` key columns).
pub fn analyze_internal(query: &str) -> Analyzed {
    analyze_as(query, true)
}

fn analyze_as(query: &str, internal: bool) -> Analyzed {
    let cquery = CString::new(query)
        .unwrap_or_else(|_| raise(PgtError::NotASelect("the query contains a NUL byte".into())));
    let (raw, relations, volatile, srf_below, tree, deparsed, columns_read) =
        Spi::connect(|_client| {
            // SAFETY: we are connected to SPI; SPI_prepare either returns a plan or raises an ERROR
            // (which unwinds through pgrx's guard). The plan and everything it points to live in
            // SPI's procedure memory until the connection closes, and we copy what we need into Rust
            // values before that.
            unsafe {
                let sources = prepare_sources(&cquery);
                match sources.len() {
                    0 => raise(PgtError::NotASelect("the query is empty".into())),
                    1 => {}
                    n => raise(PgtError::NotASelect(format!("found {n} statements"))),
                }
                let ps = sources[0];
                let queries: Vec<*mut pg_sys::Query> = ptr_list((*ps).query_list);
                let volatile = queries
                    .iter()
                    .any(|&q| pg_sys::contain_volatile_functions(q as *mut pg_sys::Node));
                let srf = queries.iter().any(|&q| srf_below(q));
                let mut read = ReadColumns::default();
                for &q in &queries {
                    read_columns_walker(
                        q as *mut pg_sys::Node,
                        &mut read as *mut ReadColumns as *mut std::ffi::c_void,
                    );
                }
                for &q in &queries {
                    if (*q).commandType != pg_sys::CmdType::CMD_SELECT
                        || !(*q).utilityStmt.is_null()
                    {
                        let tag = c_string(pg_sys::GetCommandTagName((*ps).commandTag));
                        raise(PgtError::NotASelect(format!("found {tag}")));
                    }
                    if (*q).hasModifyingCTE {
                        raise(PgtError::NotASelect(
                            "found a data-modifying WITH clause".into(),
                        ));
                    }
                    if !(*q).rowMarks.is_null() {
                        raise(PgtError::NotASelect("found FOR UPDATE/SHARE".into()));
                    }
                }
                // The tree before rewriting (views as relations, as a view's own rule keeps it).
                let tree = pg_sys::parse_analyze_fixedparams(
                    (*ps).raw_parse_tree,
                    cquery.as_ptr(),
                    std::ptr::null(),
                    0,
                    std::ptr::null_mut(),
                );
                let deparsed = print_query(tree);
                let tree = c_string(pg_sys::nodeToString(tree as *const std::ffi::c_void));
                let desc = (*ps).resultDesc;
                let mut raw = Vec::new();
                if !desc.is_null() {
                    let tupdesc = pgrx::PgTupleDesc::from_pg_unchecked(desc);
                    for att in tupdesc.iter().filter(|a| !a.attisdropped) {
                        let name = att.name().to_string();
                        if pg_sys::get_typtype(att.atttypid) as u8 == pg_sys::TYPTYPE_PSEUDO {
                            raise(PgtError::UnstorableColumnType {
                                column: name,
                                type_name: c_string(pg_sys::format_type_with_typemod(
                                    att.atttypid,
                                    -1,
                                )),
                            });
                        }
                        let collation = if att.attcollation != pg_sys::InvalidOid
                            && att.attcollation != pg_sys::get_typcollation(att.atttypid)
                        {
                            att.attcollation
                        } else {
                            pg_sys::InvalidOid
                        };
                        raw.push(RawColumn {
                            type_sql: c_string(pg_sys::format_type_with_typemod(
                                att.atttypid,
                                att.atttypmod,
                            )),
                            collation,
                            name,
                        });
                    }
                }
                let mut rel_list: *mut pg_sys::List = std::ptr::null_mut();
                let mut inval: *mut pg_sys::List = std::ptr::null_mut();
                let mut rls = false;
                pg_sys::extract_query_dependencies(
                    (*ps).query_list as *mut pg_sys::Node,
                    &mut rel_list,
                    &mut inval,
                    &mut rls,
                );
                let mut relations: Vec<pg_sys::Oid> = Vec::new();
                for oid in oid_list(rel_list) {
                    if !relations.contains(&oid) {
                        relations.push(oid);
                    }
                }
                (raw, relations, volatile, srf, tree, deparsed, read.0)
            }
        });
    let columns = describe_columns(raw, internal);
    Analyzed {
        columns,
        relations,
        volatile,
        srf_below,
        tree,
        deparsed,
        columns_read,
    }
}

/// Deletes what pg_trickle recorded of storage `storage`'s dependencies (see
/// [`record_dependencies`]): its whole-object normal dependencies other than on its schema
/// (its columns' types and collations are the columns' own, objsubid <> 0). As superuser
/// (pg_trickle runs as the extension's owner here).
pub fn forget_dependencies(storage: pg_sys::Oid) {
    spi::exec(
        "DELETE FROM pg_catalog.pg_depend WHERE classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND objid = $1 \
            AND objsubid = 0 AND deptype = 'n' AND refclassid <> 'pg_catalog.pg_namespace'::pg_catalog.regclass",
        &[storage.into()],
    );
    // SAFETY: makes the deletion visible to this transaction's later catalog reads.
    unsafe { pg_sys::CommandCounterIncrement() };
}

/// Makes stream table storage `storage` depend, in `pg_depend`, on everything the analyzed
/// query `tree` ([`Analyzed::tree`]) uses, as a view's rule does: the relations, the columns
/// (so `DROP COLUMN` of one is refused, and `CASCADE` drops the stream table), functions,
/// operators, types and collations.
pub fn record_dependencies(storage: pg_sys::Oid, tree: &str) {
    let ctree = CString::new(tree).expect("a node string has no NUL");
    let depender = pg_sys::ObjectAddress {
        classId: pg_sys::RelationRelationId,
        objectId: storage,
        objectSubId: 0,
    };
    // SAFETY: `ctree` is a node string nodeToString made of an analyzed Query; stringToNode
    // rebuilds it in the current memory context; recordDependencyOnExpr walks it (pushing its
    // range table) and inserts pg_depend rows, raising an ERROR on failure; the command
    // counter increment makes them visible to this transaction's later catalog reads.
    unsafe {
        let node = pg_sys::stringToNode(ctree.as_ptr()) as *mut pg_sys::Node;
        pg_sys::recordDependencyOnExpr(
            &depender,
            node,
            std::ptr::null_mut(),
            pg_sys::DependencyType::DEPENDENCY_NORMAL,
        );
        pg_sys::CommandCounterIncrement();
    }
}

/// The query a stored tree ([`Analyzed::tree`]) prints back as now: after a rename of a
/// relation or column it names, the new names.
pub fn deparse(tree: &str) -> String {
    let ctree = CString::new(tree).expect("a node string has no NUL");
    // SAFETY: as in [`record_dependencies`]; pg_get_querydef reads the catalog for the names
    // of what the tree references (raising an ERROR if something no longer exists).
    unsafe { print_query(pg_sys::stringToNode(ctree.as_ptr()) as *mut pg_sys::Query) }
}

/// `pg_get_querydef` with `search_path = pg_catalog`, so every relation is printed with its
/// schema: the same text whoever prints it (a query printed under another path would name
/// fewer schemas), and text that means the same under any path.
///
/// # Safety
/// `query` must point to a valid analyzed `Query`.
unsafe fn print_query(query: *mut pg_sys::Query) -> String {
    spi::with_settings(&[("search_path", "pg_catalog")], || {
        // SAFETY: the caller's contract; pg_get_querydef reads the catalog for names and
        // raises an ERROR if something the query references no longer exists.
        c_string(unsafe { pg_get_querydef(query, true) })
    })
}

fn describe_columns(raw: Vec<RawColumn>, internal: bool) -> Vec<OutputColumn> {
    let mut seen = std::collections::HashSet::new();
    raw.into_iter()
        .map(|c| {
            if !internal && (c.name.starts_with(RESERVED_PREFIX) || c.name == ROW_ID) {
                raise(PgtError::ReservedColumn(c.name));
            }
            if !seen.insert(c.name.clone()) {
                raise(PgtError::DuplicateColumn(c.name));
            }
            let collation = (c.collation != pg_sys::InvalidOid).then(|| {
                spi::one::<String>(
                    "SELECT format('%I.%I', n.nspname, c.collname) FROM pg_catalog.pg_collation c \
                     JOIN pg_catalog.pg_namespace n ON n.oid = c.collnamespace WHERE c.oid = $1",
                    &[c.collation.into()],
                )
                .ok_or(PgtError::NotASelect("unknown collation".into()))
                .or_raise()
            });
            OutputColumn {
                name: c.name,
                type_sql: c.type_sql,
                collation,
            }
        })
        .collect()
}

/// The `format_type` names of the result columns of `sql` (which must prepare).
pub fn result_types(sql: &str) -> Vec<String> {
    let csql = CString::new(sql).unwrap_or_else(|_| raise(PgtError::NotASelect("NUL byte".into())));
    Spi::connect(|_client| {
        // SAFETY: connected to SPI; SPI_prepare returns a plan or raises an ERROR. We read the
        // plan's result descriptor before the connection (and the plan) goes away.
        unsafe {
            let sources = prepare_sources(&csql);
            let Some(&ps) = sources.first() else {
                return Vec::new();
            };
            let desc = (*ps).resultDesc;
            if desc.is_null() {
                return Vec::new();
            }
            pgrx::PgTupleDesc::from_pg_unchecked(desc)
                .iter()
                .filter(|a| !a.attisdropped)
                .map(|a| c_string(pg_sys::format_type_with_typemod(a.atttypid, a.atttypmod)))
                .collect()
        }
    })
}
