//! `pg_trickle_decoder`: pg_trickle's logical decoding output plugin (loaded by name by
//! `pg_create_logical_replication_slot(..., 'pg_trickle_decoder')`; PostgreSQL ≥ 18.6 must list it
//! in `output_plugin_libraries`).
//!
//! Output is binary (`pg_logical_slot_get_binary_changes`), one message per change and one per
//! commit, format version 1, integers big-endian (`pg_trickle_core::wal_format` decodes it):
//!
//! - change: `'C'`, version `1`, action `'I' | 'U' | 'D'`, relation OID (u32), xid (u32), the
//!   change's LSN (u64), then the old row image and the new one, each a presence byte (0/1)
//!   followed, when present, by: column count (u16), and per column its attribute number (u16)
//!   and `'n'` (NULL), `'u'` (an unchanged TOASTed value the WAL does not carry: an UPDATE's new
//!   image; the old image has it under REPLICA IDENTITY FULL) or `'t'` + length (u32) + the value
//!   in its type's text output form (exact for every type: the input function reads it back).
//! - commit: `'X'`, version `1`, xid (u32), commit LSN (u64), commit time (i64, microseconds
//!   since 2000-01-01, PostgreSQL's timestamptz).
//!
//! Option `relations` (comma-separated OIDs) keeps only changes of those relations; without it,
//! every relation's changes are written. Dropped columns are skipped; TRUNCATE and messages are
//! not written (pg_trickle captures TRUNCATE with a statement trigger).

use pgrx::pg_sys;
use pgrx::prelude::*;
use std::collections::HashSet;
use std::ffi::CStr;

use pg_trickle_core::wal_format as format;

pgrx::pg_module_magic!();

struct State {
    /// `None`: every relation.
    relations: Option<HashSet<u32>>,
}

fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}
fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}
fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// Registers the callbacks.
///
/// # Safety
/// Called by PostgreSQL with a valid callbacks struct to fill.
#[pg_guard]
#[no_mangle]
pub unsafe extern "C-unwind" fn _PG_output_plugin_init(cb: *mut pg_sys::OutputPluginCallbacks) {
    // SAFETY: PostgreSQL passes a valid, writable struct.
    unsafe {
        (*cb).startup_cb = Some(startup);
        (*cb).begin_cb = Some(begin);
        (*cb).change_cb = Some(change);
        (*cb).commit_cb = Some(commit);
        (*cb).shutdown_cb = Some(shutdown);
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn startup(
    ctx: *mut pg_sys::LogicalDecodingContext,
    opt: *mut pg_sys::OutputPluginOptions,
    _is_init: bool,
) {
    let mut relations = None;
    // SAFETY: ctx and opt are valid for the callback; the options list holds DefElems.
    unsafe {
        (*opt).output_type = pg_sys::OutputPluginOutputType::OUTPUT_PLUGIN_BINARY_OUTPUT;
        let options = pgrx::PgList::<pg_sys::DefElem>::from_pg((*ctx).output_plugin_options);
        for elem in options.iter_ptr() {
            let name = CStr::from_ptr((*elem).defname).to_string_lossy();
            if name != "relations" {
                error!("pg_trickle_decoder: unknown option \"{name}\"");
            }
            let value = CStr::from_ptr(pg_sys::defGetString(elem)).to_string_lossy();
            let mut set = HashSet::new();
            for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                match part.parse::<u32>() {
                    Ok(oid) => {
                        set.insert(oid);
                    }
                    Err(_) => error!("pg_trickle_decoder: relations: \"{part}\" is not an OID"),
                }
            }
            relations = Some(set);
        }
        (*ctx).output_plugin_private = Box::into_raw(Box::new(State { relations })).cast();
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn shutdown(ctx: *mut pg_sys::LogicalDecodingContext) {
    // SAFETY: output_plugin_private is the Box made in startup (or NULL).
    unsafe {
        let p = (*ctx).output_plugin_private as *mut State;
        if !p.is_null() {
            drop(Box::from_raw(p));
            (*ctx).output_plugin_private = std::ptr::null_mut();
        }
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn begin(
    _ctx: *mut pg_sys::LogicalDecodingContext,
    _txn: *mut pg_sys::ReorderBufferTXN,
) {
}

/// Writes `msg` as one output message.
unsafe fn write(ctx: *mut pg_sys::LogicalDecodingContext, msg: &[u8]) {
    // SAFETY: ctx is valid; ctx->out is the StringInfo PostgreSQL prepared for this message.
    unsafe {
        pg_sys::OutputPluginPrepareWrite(ctx, true);
        pg_sys::appendBinaryStringInfo((*ctx).out, msg.as_ptr().cast(), msg.len() as i32);
        pg_sys::OutputPluginWrite(ctx, true);
    }
}

/// Appends a row image: column count, then each live column.
unsafe fn put_tuple(out: &mut Vec<u8>, desc: pg_sys::TupleDesc, tuple: pg_sys::HeapTuple) {
    // SAFETY: desc is the relation's descriptor and tuple a heap tuple of it, both valid for
    // the callback; values are read with heap_deform_tuple and printed by the type's output
    // function.
    unsafe {
        let natts = (*desc).natts as usize;
        let mut values = vec![pg_sys::Datum::from(0usize); natts];
        let mut nulls = vec![false; natts];
        pg_sys::heap_deform_tuple(tuple, desc, values.as_mut_ptr(), nulls.as_mut_ptr());
        let live: Vec<usize> = (0..natts)
            .filter(|&i| !(*pg_sys::TupleDescAttr(desc, i as i32)).attisdropped)
            .collect();
        put_u16(out, live.len() as u16);
        for i in live {
            let att = &*pg_sys::TupleDescAttr(desc, i as i32);
            put_u16(out, att.attnum as u16);
            if nulls[i] {
                out.push(b'n');
                continue;
            }
            let datum = values[i];
            if att.attlen == -1 {
                let ptr = datum.cast_mut_ptr::<pg_sys::varlena>();
                if pgrx::varlena::varatt_is_1b_e(ptr)
                    && pgrx::varlena::vartag_external(ptr) as u32
                        == pg_sys::vartag_external::VARTAG_ONDISK
                {
                    out.push(b'u');
                    continue;
                }
            }
            let mut typoutput = pg_sys::InvalidOid;
            let mut varlena = false;
            pg_sys::getTypeOutputInfo(att.atttypid, &mut typoutput, &mut varlena);
            let text = pg_sys::OidOutputFunctionCall(typoutput, datum);
            let bytes = CStr::from_ptr(text).to_bytes();
            out.push(b't');
            put_u32(out, bytes.len() as u32);
            out.extend_from_slice(bytes);
            pg_sys::pfree(text.cast());
        }
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn change(
    ctx: *mut pg_sys::LogicalDecodingContext,
    txn: *mut pg_sys::ReorderBufferTXN,
    relation: pg_sys::Relation,
    change: *mut pg_sys::ReorderBufferChange,
) {
    // SAFETY: all pointers are valid for the callback; the change is an INSERT, UPDATE or
    // DELETE (the only actions delivered to change_cb), so its `tp` member is the active one.
    unsafe {
        let state = &*((*ctx).output_plugin_private as *const State);
        let relid = (*relation).rd_id.to_u32();
        if let Some(set) = &state.relations {
            if !set.contains(&relid) {
                return;
            }
        }
        let action = match (*change).action {
            pg_sys::ReorderBufferChangeType::REORDER_BUFFER_CHANGE_INSERT => b'I',
            pg_sys::ReorderBufferChangeType::REORDER_BUFFER_CHANGE_UPDATE => b'U',
            pg_sys::ReorderBufferChangeType::REORDER_BUFFER_CHANGE_DELETE => b'D',
            _ => return,
        };
        let tp = (*change).data.tp;
        let desc = (*relation).rd_att;
        let mut out = Vec::with_capacity(128);
        out.push(b'C');
        out.push(format::VERSION);
        out.push(action);
        put_u32(&mut out, relid);
        put_u32(&mut out, (*txn).xid.into_inner());
        put_u64(&mut out, (*change).lsn);
        for tuple in [tp.oldtuple, tp.newtuple] {
            if tuple.is_null() {
                out.push(0);
            } else {
                out.push(1);
                put_tuple(&mut out, desc, tuple);
            }
        }
        write(ctx, &out);
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn commit(
    ctx: *mut pg_sys::LogicalDecodingContext,
    txn: *mut pg_sys::ReorderBufferTXN,
    commit_lsn: pg_sys::XLogRecPtr,
) {
    // SAFETY: ctx and txn are valid for the callback.
    unsafe {
        let mut out = Vec::with_capacity(24);
        out.push(b'X');
        out.push(format::VERSION);
        put_u32(&mut out, (*txn).xid.into_inner());
        put_u64(&mut out, commit_lsn);
        out.extend_from_slice(&(*txn).xact_time.commit_time.to_be_bytes());
        write(ctx, &out);
    }
}
