//! The boundary between core's typed errors and PostgreSQL's `ereport`.

use pg_trickle_core::PgtError;
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::{PgLogLevel, PgSqlErrorCode};

/// PostgreSQL's MAKE_SQLSTATE for a five-character code.
fn errcode(code: &str) -> PgSqlErrorCode {
    let b = code.as_bytes();
    let six = |c: u8| ((c.wrapping_sub(b'0')) & 0x3F) as i32;
    PgSqlErrorCode::from(
        six(b[0]) | (six(b[1]) << 6) | (six(b[2]) << 12) | (six(b[3]) << 18) | (six(b[4]) << 24),
    )
}

/// Raises `err` as an ERROR with its SQLSTATE and hint. Never returns.
pub fn raise(err: PgtError) -> ! {
    let mut report = ErrorReport::new(
        errcode(err.sqlstate().code()),
        err.to_string(),
        "pg_trickle",
    );
    if let Some(h) = err.hint() {
        report = report.set_hint(h);
    }
    report.report(PgLogLevel::ERROR);
    unreachable!("ereport(ERROR) returned")
}

/// Unwraps a core result, raising its error.
pub trait OrRaise<T> {
    fn or_raise(self) -> T;
}

impl<T> OrRaise<T> for Result<T, PgtError> {
    fn or_raise(self) -> T {
        self.unwrap_or_else(|e| raise(e))
    }
}

/// Unwraps an SPI result. SQL errors inside SPI are already PostgreSQL errors and propagate on
/// their own; what reaches here is a pgrx-side failure (a type mismatch), an internal bug.
pub trait SpiOk<T> {
    fn spi_ok(self) -> T;
}

impl<T> SpiOk<T> for Result<T, pgrx::spi::SpiError> {
    #[track_caller]
    fn spi_ok(self) -> T {
        self.unwrap_or_else(|e| {
            ErrorReport::new(
                PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
                format!("pg_trickle: SPI: {e}"),
                "pg_trickle",
            )
            .report(PgLogLevel::ERROR);
            unreachable!()
        })
    }
}

#[cfg(any(test, feature = "pg_test"))]
#[pgrx::pg_schema]
mod tests {
    use super::*;
    use pgrx::prelude::*;

    #[pg_test]
    fn sqlstates_map_to_postgres_codes() {
        assert_eq!(
            errcode("22023"),
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE
        );
        assert_eq!(
            errcode("0A000"),
            PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED
        );
        assert_eq!(errcode("42P01"), PgSqlErrorCode::ERRCODE_UNDEFINED_TABLE);
        assert_eq!(
            errcode("2BP01"),
            PgSqlErrorCode::ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST
        );
    }
}
