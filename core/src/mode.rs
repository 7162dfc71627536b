//! Refresh modes: what the user asks for, and what a refresh actually runs.

use crate::error::{PgtError, Result};
use std::fmt;

/// The refresh mode a stream table was created with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshMode {
    /// DIFFERENTIAL where the query allows it, FULL (with a NOTICE saying why) otherwise.
    Auto,
    /// Recompute the whole query on every refresh.
    Full,
    /// Apply only the delta; an error if the query cannot be differentiated.
    Differential,
    /// Maintain synchronously in the writing transaction.
    Immediate,
}

impl RefreshMode {
    /// Parses a mode name, case-insensitively, ignoring surrounding white space.
    pub fn parse(input: &str) -> Result<Self> {
        match input.trim().to_ascii_uppercase().as_str() {
            "AUTO" => Ok(RefreshMode::Auto),
            "FULL" => Ok(RefreshMode::Full),
            "DIFFERENTIAL" => Ok(RefreshMode::Differential),
            "IMMEDIATE" => Ok(RefreshMode::Immediate),
            _ => Err(PgtError::InvalidRefreshMode(input.to_string())),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RefreshMode::Auto => "AUTO",
            RefreshMode::Full => "FULL",
            RefreshMode::Differential => "DIFFERENTIAL",
            RefreshMode::Immediate => "IMMEDIATE",
        }
    }
}

impl fmt::Display for RefreshMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a stream table wants its sources' changes captured (`cdc_mode`). A source read by several
/// stream tables is captured from the WAL only when none of them asks for triggers (and the
/// server's `pg_trickle.cdc_mode` is not `trigger`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureMode {
    /// Row-level triggers only.
    Trigger,
    /// WAL capture, required: a source that cannot be captured from the WAL is an error.
    Wal,
    /// WAL capture where possible, triggers elsewhere.
    Auto,
}

impl CaptureMode {
    /// Parses a capture mode name, case-insensitively, ignoring surrounding white space.
    pub fn parse(input: &str) -> Result<Self> {
        match input.trim().to_ascii_lowercase().as_str() {
            "trigger" => Ok(CaptureMode::Trigger),
            "wal" => Ok(CaptureMode::Wal),
            "auto" => Ok(CaptureMode::Auto),
            _ => Err(PgtError::InvalidCdcMode(input.to_string())),
        }
    }

    /// The catalog's (and the GUC's) spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            CaptureMode::Trigger => "trigger",
            CaptureMode::Wal => "wal",
            CaptureMode::Auto => "auto",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::SqlState;

    #[test]
    fn parses_case_insensitively() {
        assert_eq!(RefreshMode::parse("auto").unwrap(), RefreshMode::Auto);
        assert_eq!(RefreshMode::parse(" Full ").unwrap(), RefreshMode::Full);
        assert_eq!(
            RefreshMode::parse("DIFFERENTIAL").unwrap(),
            RefreshMode::Differential
        );
        assert_eq!(
            RefreshMode::parse("immediate").unwrap(),
            RefreshMode::Immediate
        );
    }

    #[test]
    fn rejects_unknown_modes() {
        for bad in ["", "fast", "INCREMENTAL", "full refresh"] {
            let err = RefreshMode::parse(bad).unwrap_err();
            assert_eq!(err.sqlstate(), SqlState::InvalidParameterValue, "{bad}");
        }
    }

    #[test]
    fn parses_capture_modes() {
        assert_eq!(CaptureMode::parse(" WAL ").unwrap(), CaptureMode::Wal);
        assert_eq!(CaptureMode::parse("Trigger").unwrap(), CaptureMode::Trigger);
        assert_eq!(CaptureMode::parse("auto").unwrap().as_str(), "auto");
        for bad in ["", "logical", "triggers", "wal2"] {
            let err = CaptureMode::parse(bad).unwrap_err();
            assert_eq!(err.sqlstate(), SqlState::InvalidParameterValue, "{bad}");
        }
    }
}
