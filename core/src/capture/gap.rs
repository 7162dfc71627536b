//! Whether a stretch of WAL holds a change the consumer must decode: the check that lets a
//! refresh (and the WAL consumer) skip logical decoding when nothing it captures committed.
//!
//! **Why.** Decoding the slot in a backend ends with PostgreSQL resetting that backend's catalog
//! caches and invalidating every cached plan (the decoder read the catalog in historic
//! snapshots). A refresh that decodes therefore re-plans every statement it runs afterwards:
//! about 10 ms on a 2-core machine, where the refresh itself needs well under 1 ms. Reading the
//! raw WAL records (no decoding context, no catalog access) tells, for most refreshes, that there
//! is nothing to decode.
//!
//! **The rule.** The consumer's progress is a pair `(C, N)`: every transaction whose commit
//! record starts before the WAL position `C` is in the change buffers, and `N` is the server's
//! next transaction id read *after* `C` was fixed, so a transaction with an id at or past `N`
//! wrote all its records after `C`. The stretch `[C, L)` is **clean** when every transaction
//! that commits in it
//! - has an id at or past `N`, or is the transaction that recorded `(C, N)` having written no WAL
//!   before `C` (either way all its records are in the stretch, so the reader saw them all),
//! - changed no row of a captured source, in itself or in a committed subtransaction (no record
//!   of theirs names a source's storage; a TRUNCATE counts as a change of every table), and
//! - changed no catalog (its commit carries no invalidation messages: DDL, a rewrite that gives a
//!   source new storage, ANALYZE, ...).
//!
//! A transaction of another database is never one to decode (a transaction writes only to its
//! own database and the shared catalogs): one with a record in the stretch that names another
//! database's storage, or whose commit names another database, passes whatever its id.
//!
//! A clean stretch holds no change to capture, so the consumer may move `C` to `L` without
//! decoding (and the buffers already hold every change a snapshot taken before `L` sees). Any
//! doubt is "not clean": the caller decodes, as it would without this check.

use std::collections::HashSet;

/// What one WAL record says, as far as the check is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// A record written by transaction `xid` (a subtransaction's own id for its records);
    /// `touches_source`: it names the storage of a captured source, or truncates tables;
    /// `other_database`: it names the storage of a relation of another database.
    Data {
        xid: u64,
        touches_source: bool,
        other_database: bool,
    },
    /// The commit of `xid` (a prepared transaction's id for COMMIT PREPARED) with its committed
    /// subtransactions; `catalog_change`: the commit carries invalidation messages of this
    /// database; `other_database`: the commit names another database as the transaction's.
    Commit {
        xid: u64,
        subxacts: Vec<u64>,
        catalog_change: bool,
        other_database: bool,
    },
    /// Anything else (aborts, records of no transaction, ...).
    Other,
}

/// Why a stretch is not clean (for the log and the tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unclean {
    /// A transaction that began before the stretch committed in it.
    Older { xid: u64 },
    /// A committed transaction changed a captured source.
    Source { xid: u64 },
    /// A committed transaction changed the catalog.
    Catalog { xid: u64 },
}

/// The check over one stretch, fed its records in WAL order.
#[derive(Debug)]
pub struct GapCheck {
    horizon: u64,
    own: Option<u64>,
    touched: HashSet<u64>,
    elsewhere: HashSet<u64>,
}

impl GapCheck {
    /// A check of the stretch that starts at a position whose horizon (the next transaction id
    /// read after the position was fixed) is `horizon`, recorded by transaction `own` when that
    /// transaction had written no WAL before the position.
    pub fn new(horizon: u64, own: Option<u64>) -> GapCheck {
        GapCheck {
            horizon,
            own,
            touched: HashSet::new(),
            elsewhere: HashSet::new(),
        }
    }

    /// Takes the next record; `Err` as soon as the stretch is known not to be clean.
    pub fn push(&mut self, record: Record) -> Result<(), Unclean> {
        match record {
            Record::Data {
                xid,
                touches_source,
                other_database,
            } => {
                if touches_source {
                    self.touched.insert(xid);
                }
                if other_database {
                    self.elsewhere.insert(xid);
                }
                Ok(())
            }
            Record::Other => Ok(()),
            Record::Commit {
                xid,
                subxacts,
                catalog_change,
                other_database,
            } => {
                let elsewhere = other_database
                    || self.elsewhere.contains(&xid)
                    || subxacts.iter().any(|s| self.elsewhere.contains(s));
                if elsewhere {
                    Ok(())
                } else if xid < self.horizon && self.own != Some(xid) {
                    Err(Unclean::Older { xid })
                } else if catalog_change {
                    Err(Unclean::Catalog { xid })
                } else if self.touched.contains(&xid)
                    || subxacts.iter().any(|s| self.touched.contains(s))
                {
                    Err(Unclean::Source { xid })
                } else {
                    Ok(())
                }
            }
        }
    }
}

/// Checks a whole stretch given as records.
pub fn check(
    horizon: u64,
    own: Option<u64>,
    records: impl IntoIterator<Item = Record>,
) -> Result<(), Unclean> {
    let mut gap = GapCheck::new(horizon, own);
    records.into_iter().try_for_each(|r| gap.push(r))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn data(xid: u64, touches_source: bool) -> Record {
        Record::Data {
            xid,
            touches_source,
            other_database: false,
        }
    }

    fn elsewhere(xid: u64) -> Record {
        Record::Data {
            xid,
            touches_source: false,
            other_database: true,
        }
    }

    fn commit(xid: u64, subxacts: &[u64]) -> Record {
        Record::Commit {
            xid,
            subxacts: subxacts.to_vec(),
            catalog_change: false,
            other_database: false,
        }
    }

    #[test]
    fn an_empty_stretch_is_clean() {
        assert_eq!(check(100, None, []), Ok(()));
    }

    #[test]
    fn commits_of_new_transactions_that_wrote_elsewhere_are_clean() {
        assert_eq!(
            check(
                100,
                None,
                [
                    data(100, false),
                    data(101, false),
                    commit(101, &[]),
                    commit(100, &[])
                ]
            ),
            Ok(())
        );
    }

    #[test]
    fn a_change_to_a_source_is_not_clean() {
        assert_eq!(
            check(100, None, [data(105, true), commit(105, &[])]),
            Err(Unclean::Source { xid: 105 })
        );
    }

    #[test]
    fn a_change_by_a_committed_subtransaction_is_not_clean() {
        assert_eq!(
            check(100, None, [data(106, true), commit(105, &[106])]),
            Err(Unclean::Source { xid: 105 })
        );
    }

    #[test]
    fn a_change_that_was_rolled_back_is_clean() {
        // The subtransaction 106 rolled back: the commit does not list it.
        assert_eq!(
            check(
                100,
                None,
                [data(106, true), Record::Other, commit(105, &[])]
            ),
            Ok(())
        );
        // And a change whose transaction does not commit in the stretch is for a later one.
        assert_eq!(check(100, None, [data(107, true)]), Ok(()));
    }

    #[test]
    fn a_transaction_older_than_the_horizon_is_not_clean_whatever_it_wrote_here() {
        // 99 may have changed a source before the stretch began.
        assert_eq!(
            check(100, None, [data(99, false), commit(99, &[])]),
            Err(Unclean::Older { xid: 99 })
        );
        assert_eq!(
            check(100, None, [commit(42, &[])]),
            Err(Unclean::Older { xid: 42 })
        );
    }

    #[test]
    fn the_recording_transaction_is_not_older_when_it_wrote_nothing_before() {
        // 90 recorded the position (its id was assigned earlier, but it wrote its WAL after).
        assert_eq!(
            check(100, Some(90), [data(90, false), commit(90, &[])]),
            Ok(())
        );
        assert_eq!(
            check(100, Some(90), [data(90, true), commit(90, &[])]),
            Err(Unclean::Source { xid: 90 })
        );
        assert_eq!(
            check(100, Some(90), [commit(91, &[])]),
            Err(Unclean::Older { xid: 91 })
        );
    }

    #[test]
    fn a_transaction_of_another_database_passes_whatever_its_id() {
        assert_eq!(check(100, None, [elsewhere(42), commit(42, &[])]), Ok(()));
        assert_eq!(check(100, None, [elsewhere(43), commit(42, &[43])]), Ok(()));
        assert_eq!(
            check(
                100,
                None,
                [Record::Commit {
                    xid: 42,
                    subxacts: vec![],
                    catalog_change: false,
                    other_database: true,
                }]
            ),
            Ok(())
        );
        // Without a sign of its database, an older transaction is decoded.
        assert_eq!(
            check(100, None, [elsewhere(44), commit(42, &[])]),
            Err(Unclean::Older { xid: 42 })
        );
    }

    #[test]
    fn a_catalog_change_is_not_clean() {
        assert_eq!(
            check(
                100,
                None,
                [Record::Commit {
                    xid: 100,
                    subxacts: vec![],
                    catalog_change: true,
                    other_database: false,
                }]
            ),
            Err(Unclean::Catalog { xid: 100 })
        );
    }

    fn record() -> impl Strategy<Value = Record> {
        prop_oneof![
            (95u64..110, any::<bool>()).prop_map(|(xid, t)| data(xid, t)),
            (95u64..110).prop_map(elsewhere),
            (
                95u64..110,
                proptest::collection::vec(95u64..110, 0..3),
                any::<bool>(),
                proptest::bool::weighted(0.1)
            )
                .prop_map(|(xid, subxacts, catalog_change, other_database)| {
                    Record::Commit {
                        xid,
                        subxacts,
                        catalog_change,
                        other_database,
                    }
                }),
            Just(Record::Other),
        ]
    }

    proptest! {
        /// Against a direct statement of the rule: clean exactly when every committed
        /// transaction not shown to be of another database (by its commit, or a record of it
        /// or a listed subtransaction before the commit) is not older than the horizon, changed
        /// no catalog and (itself or a listed subtransaction) wrote no source before its commit.
        #[test]
        fn agrees_with_the_rule(records in proptest::collection::vec(record(), 0..30)) {
            let expected = records.iter().enumerate().all(|(i, r)| match r {
                Record::Commit { xid, subxacts, catalog_change, other_database } => {
                    let before = &records[..i];
                    let wrote = |x: u64| before.iter().any(|e| *e == data(x, true));
                    let away = |x: u64| before.iter().any(|e| *e == elsewhere(x));
                    *other_database || away(*xid) || subxacts.iter().any(|s| away(*s))
                        || (*xid >= 100 && !catalog_change && !wrote(*xid)
                            && !subxacts.iter().any(|s| wrote(*s)))
                }
                _ => true,
            });
            prop_assert_eq!(check(100, None, records.clone()).is_ok(), expected);
        }
    }
}
