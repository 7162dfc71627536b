//! Typed errors of the pure core. Each variant carries the SQLSTATE the extension reports for it, so
//! the boundary never has to interpret English messages.

use thiserror::Error;

/// SQLSTATE codes used by pg_trickle (a subset of PostgreSQL's `errcodes.txt`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqlState {
    /// 22023
    InvalidParameterValue,
    /// 22004
    NullValueNotAllowed,
    /// 42601
    SyntaxError,
    /// 42602
    InvalidName,
    /// 42P01
    UndefinedTable,
    /// 42P07
    DuplicateTable,
    /// 42809
    WrongObjectType,
    /// 0A000
    FeatureNotSupported,
    /// 2BP01
    DependentObjectsStillExist,
    /// 3F000
    InvalidSchemaName,
    /// 42P17 (invalid_object_definition)
    InvalidObjectDefinition,
    /// 42501
    InsufficientPrivilege,
    /// 54000
    ProgramLimitExceeded,
    /// 55000
    ObjectNotInPrerequisiteState,
    /// XX000
    InternalError,
}

impl SqlState {
    /// The five-character SQLSTATE.
    pub fn code(self) -> &'static str {
        match self {
            SqlState::InvalidParameterValue => "22023",
            SqlState::NullValueNotAllowed => "22004",
            SqlState::SyntaxError => "42601",
            SqlState::InvalidName => "42602",
            SqlState::UndefinedTable => "42P01",
            SqlState::ObjectNotInPrerequisiteState => "55000",
            SqlState::DuplicateTable => "42P07",
            SqlState::WrongObjectType => "42809",
            SqlState::FeatureNotSupported => "0A000",
            SqlState::DependentObjectsStillExist => "2BP01",
            SqlState::InvalidSchemaName => "3F000",
            SqlState::InvalidObjectDefinition => "42P17",
            SqlState::InsufficientPrivilege => "42501",
            SqlState::ProgramLimitExceeded => "54000",
            SqlState::InternalError => "XX000",
        }
    }
}

/// Every error pg_trickle raises on purpose. The extension turns each into an `ereport(ERROR)` with
/// `sqlstate()`, the message from `Display`, and `hint()` when there is one.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PgtError {
    #[error("invalid schedule \"{input}\": {reason}")]
    InvalidSchedule { input: String, reason: String },
    #[error("{0} must not be NULL")]
    NullArgument(&'static str),
    #[error("schedule must not be NULL")]
    NullSchedule,
    #[error("invalid refresh mode \"{0}\"")]
    InvalidRefreshMode(String),
    /// The construct, and what to do about it when something specific can be said.
    #[error("DIFFERENTIAL refresh cannot maintain this query: it uses {0}")]
    NotDifferentiable(String, Option<String>),
    #[error("IMMEDIATE refresh needs a query DIFFERENTIAL can maintain; this one uses {0}")]
    NotImmediate(String, Option<String>),
    #[error("invalid stream table name \"{input}\": {reason}")]
    InvalidName { input: String, reason: String },
    #[error("schema \"{0}\" does not exist")]
    SchemaNotFound(String),
    #[error("stream table \"{0}\" does not exist")]
    StreamTableNotFound(String),
    #[error("\"{0}\" is not a stream table")]
    NotAStreamTable(String),
    #[error("relation \"{0}\" already exists")]
    RelationExists(String),
    #[error("stream table \"{0}\" already exists")]
    StreamTableExists(String),
    #[error("the defining query must be a single SELECT statement: {0}")]
    NotASelect(String),
    #[error("the defining query reads temporary table \"{0}\"")]
    TempSource(String),
    #[error(
        "the defining query reads {kind} \"{name}\", which pg_trickle cannot capture changes from"
    )]
    UnsupportedSource { name: String, kind: String },
    #[error("the defining query's output column \"{0}\" appears more than once")]
    DuplicateColumn(String),
    #[error("the defining query's output column \"{0}\" uses a name reserved by pg_trickle")]
    ReservedColumn(String),
    #[error("the defining query's output column \"{column}\" has type {type_name}, which a table cannot store")]
    UnstorableColumnType { column: String, type_name: String },
    #[error("stream table \"{name}\" is still read by stream table(s) {dependents}")]
    HasDependents { name: String, dependents: String },
    #[error("the stream table dependency graph would contain a cycle: {0}")]
    Cycle(String),
    #[error("{name} is an internal stream table of stream table {parent}")]
    InternalStreamTable { name: String, parent: String },
    #[error("invalid cdc_mode \"{0}\"")]
    InvalidCdcMode(String),
    #[error("cdc_mode 'wal': {table} cannot be captured from the WAL: {reason}")]
    WalCaptureUnavailable { table: String, reason: String },
    #[error("{wants}: {table} is also read by stream table(s) {others} with cdc_mode 'wal'")]
    CdcModeConflict {
        wants: String,
        table: String,
        others: String,
    },
    #[error(
        "cannot refresh {stream_table} differentially in a transaction that has already written: its source(s) {tables} are captured from the WAL, where uncommitted changes cannot be read"
    )]
    WalSourceWrittenInTransaction {
        stream_table: String,
        tables: String,
    },
    #[error("must be owner of stream table {0}")]
    NotOwner(String),
    #[error("permission denied for schema {0}")]
    NoCreateInSchema(String),
    #[error(
        "cannot alter type of column \"{column}\" of table {table}: stream table {stream_table} depends on it"
    )]
    RetypeUsedColumn {
        stream_table: String,
        column: String,
        table: String,
    },
    #[error("pg_trickle: {0}")]
    WalTransactionTooLarge(String),
    #[error("permission denied for {relation}")]
    OwnerCannotRead {
        relation: String,
        stream_table: String,
    },
    #[error("the pg_trickle library is version {library}, but this database's pg_trickle catalog is version {catalog}")]
    CatalogVersion { library: String, catalog: String },
}

impl PgtError {
    pub fn sqlstate(&self) -> SqlState {
        use PgtError::*;
        match self {
            InvalidSchedule { .. } | InvalidRefreshMode(_) | InvalidCdcMode(_) => {
                SqlState::InvalidParameterValue
            }
            NullSchedule | NullArgument(_) => SqlState::NullValueNotAllowed,
            UnsupportedSource { .. } | NotDifferentiable(..) | NotImmediate(..) => {
                SqlState::FeatureNotSupported
            }
            TempSource(_) => SqlState::FeatureNotSupported,
            InvalidName { .. } => SqlState::InvalidName,
            StreamTableNotFound(_) => SqlState::UndefinedTable,
            SchemaNotFound(_) => SqlState::InvalidSchemaName,
            NotAStreamTable(_) => SqlState::WrongObjectType,
            RelationExists(_) | StreamTableExists(_) => SqlState::DuplicateTable,
            NotASelect(_) => SqlState::WrongObjectType,
            DuplicateColumn(_) | ReservedColumn(_) | UnstorableColumnType { .. } => {
                SqlState::InvalidObjectDefinition
            }
            HasDependents { .. } | RetypeUsedColumn { .. } => SqlState::DependentObjectsStillExist,
            InternalStreamTable { .. } => SqlState::WrongObjectType,
            Cycle(_) => SqlState::InvalidObjectDefinition,
            WalCaptureUnavailable { .. }
            | CdcModeConflict { .. }
            | WalSourceWrittenInTransaction { .. } => SqlState::FeatureNotSupported,
            WalTransactionTooLarge(_) => SqlState::ProgramLimitExceeded,
            NotOwner(_) | NoCreateInSchema(_) | OwnerCannotRead { .. } => {
                SqlState::InsufficientPrivilege
            }
            CatalogVersion { .. } => SqlState::ObjectNotInPrerequisiteState,
        }
    }

    /// A hint for the user, where one helps.
    pub fn hint(&self) -> Option<String> {
        use PgtError::*;
        match self {
            InvalidSchedule { .. } => Some(
                "Use a duration such as '30s', '5m', '1h30m', '1d' or '1w', a cron expression \
                 such as '*/5 * * * *' or '@hourly', or 'calculated'."
                    .into(),
            ),
            NullSchedule => Some(
                "Pass schedule => 'calculated' to inherit the tightest schedule of downstream \
                 stream tables."
                    .into(),
            ),
            InvalidRefreshMode(_) => {
                Some("Use 'AUTO', 'DIFFERENTIAL', 'FULL' or 'IMMEDIATE'.".into())
            }
            NotImmediate(_, hint) => Some(match hint {
                Some(h) => format!("{h} Or use refresh_mode => 'AUTO' or 'FULL' with a short schedule."),
                None => "Use refresh_mode => 'AUTO' or 'FULL' with a short schedule instead.".into(),
            }),
            NotDifferentiable(_, hint) => Some(match hint {
                Some(h) => format!("{h} Or use refresh_mode => 'AUTO', which refreshes such a query FULL."),
                None => "Use refresh_mode => 'AUTO' to refresh FULL when the query cannot be maintained differentially, \
                         or see docs/SQL_REFERENCE.md for what DIFFERENTIAL supports."
                    .into(),
            }),
            NotAStreamTable(_) => Some("Use pgtrickle.pgt_status() to list stream tables.".into()),
            CatalogVersion { library, .. } => Some(format!(
                "Run ALTER EXTENSION pg_trickle UPDATE (to {library}) in this database."
            )),
            StreamTableNotFound(_) => {
                Some("Use pgtrickle.pgt_status() to list stream tables.".into())
            }
            TempSource(_) => Some(
                "Stream tables outlive sessions; read a permanent or unlogged table instead."
                    .into(),
            ),
            DuplicateColumn(_) => Some("Give each output column a distinct alias.".into()),
            ReservedColumn(_) => Some("Column names starting with __pgt_ are reserved.".into()),
            UnstorableColumnType { .. } => {
                Some("Cast the expression to a concrete type, or expand the record.".into())
            }
            HasDependents { .. } => Some("Drop the dependent stream tables first.".into()),
            InternalStreamTable { parent, .. } => Some(format!(
                "It maintains a subquery of {parent}, is refreshed by {parent}'s refreshes and dropped with it; use {parent}."
            )),
            InvalidCdcMode(_) => Some("Use 'trigger', 'wal' or 'auto'.".into()),
            WalCaptureUnavailable { .. } => Some(
                "Use cdc_mode 'auto' (WAL capture where possible, triggers elsewhere) or 'trigger', for the stream table \
                 (cdc_mode => ...) or the server (pg_trickle.cdc_mode)."
                    .into(),
            ),
            CdcModeConflict { .. } => Some(
                "A source is captured one way for all the stream tables that read it: give them compatible \
                 cdc_mode values ('auto' goes with either)."
                    .into(),
            ),
            WalSourceWrittenInTransaction { .. } => Some(
                "Commit the writes first (uncommitted changes are not in the WAL stream yet), or refresh it in its own transaction."
                    .into(),
            ),
            NotOwner(_) => Some(
                "Only the stream table's owner (a member of the role that owns its storage table) or a superuser \
                 may refresh, alter or drop it."
                    .into(),
            ),
            NoCreateInSchema(_) => Some(
                "A stream table is created like a table: its creator needs the CREATE privilege on the schema.".into(),
            ),
            WalTransactionTooLarge(_) => Some(
                "The WAL consumer falls back to trigger capture for its sources (recorded in cdc_status()); \
                 the stream tables reading them recompute at their next refresh. Raise pg_trickle.wal_transaction_memory \
                 to capture such transactions from the WAL."
                    .into(),
            ),
            RetypeUsedColumn { stream_table, .. } => Some(format!(
                "A stream table depends on the columns its query uses, as a view does. Drop {stream_table} first \
                 (pgtrickle.drop_stream_table, or ALTER TABLE ... DROP COLUMN ... CASCADE), change the column, then create it again."
            )),
            OwnerCannotRead { stream_table, .. } => Some(format!(
                "Stream table {stream_table} is refreshed with its owner's privileges; grant its owner SELECT again."
            )),
            _ => None,
        }
    }
}

pub type Result<T> = std::result::Result<T, PgtError>;
