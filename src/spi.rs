//! Small helpers over pgrx's SPI for the catalog code.

use crate::error::SpiOk;
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::spi::SpiError;

/// Runs a statement.
pub fn exec(sql: &str, args: &[DatumWithOid]) {
    Spi::run_with_args(sql, args).spi_ok()
}

/// The first column of the first row, `None` for no row or NULL.
pub fn one<T: FromDatum + IntoDatum>(sql: &str, args: &[DatumWithOid]) -> Option<T> {
    match Spi::get_one_with_args::<T>(sql, args) {
        Ok(v) => v,
        Err(SpiError::InvalidPosition) => None,
        Err(e) => Err(e).spi_ok(),
    }
}

/// All rows, each mapped by `f`.
pub fn rows<R>(
    sql: &str,
    args: &[DatumWithOid],
    mut f: impl FnMut(&pgrx::spi::SpiHeapTupleData) -> R,
) -> Vec<R> {
    Spi::connect(|client| {
        let table = client.select(sql, None, args).spi_ok();
        table.map(|row| f(&row)).collect()
    })
}

/// Runs each statement of `stmts` (generated DDL).
pub fn exec_all(stmts: &[String]) {
    for s in stmts {
        exec(s, &[]);
    }
}
