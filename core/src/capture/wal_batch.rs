//! The WAL consumer's assembly stage: decoded messages (see [`crate::wal_format`]) grouped into
//! committed transactions, each with its changes per relation — unchanged TOASTed values filled
//! in from the old row image and compacted into net changes ([`crate::compact`]) — ready to be
//! written to the relations' change buffers under the transaction's id.
//!
//! Logical decoding delivers a transaction's changes together and in commit order, but nothing
//! here relies on that: changes are kept per xid until that xid's commit message, and a
//! transaction that never commits (aborted: no commit message) is never emitted.

use crate::compact::{compact, Change};
use crate::wal_format::{Message, Value};
use std::collections::{BTreeMap, HashMap};

/// A row image: (attribute number, value) per live column.
pub type Image = Vec<(u16, Value)>;

/// One committed transaction's net changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    pub xid: u32,
    pub commit_lsn: u64,
    /// Commit time, microseconds since 2000-01-01 UTC.
    pub commit_time: i64,
    /// Per relation OID, the net changes in no particular order.
    pub changes: BTreeMap<u32, Vec<Change<Image>>>,
}

/// Why a message cannot be assembled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssembleError {
    #[error(
        "relation {relid}: an UPDATE left column {attnum} unchanged and TOASTed, and the old row \
         image does not carry it (the relation needs REPLICA IDENTITY FULL)"
    )]
    MissingOldValue { relid: u32, attnum: u16 },
    #[error(
        "transaction {xid} changed more than {limit} bytes of captured rows ({changes} changes so far), \
         more than the WAL consumer holds in memory (pg_trickle.wal_transaction_memory)"
    )]
    TransactionTooLarge { xid: u32, changes: u64, limit: u64 },
}

/// Groups changes by transaction until its commit.
#[derive(Debug, Default)]
pub struct Assembler {
    open: HashMap<u32, BTreeMap<u32, Vec<Change<Image>>>>,
    /// Per open transaction: its changes and their estimated size in memory (bytes).
    held: HashMap<u32, (u64, u64)>,
    /// The most one transaction may hold (bytes); 0: no limit.
    limit: u64,
    /// Per relation, the attribute numbers of its key (absent or empty: the whole row).
    keys: HashMap<u32, Vec<u16>>,
}

/// What a row image costs in memory, roughly: its values' text and a fixed cost per value.
fn image_bytes(img: &Option<Image>) -> u64 {
    img.as_ref().map_or(0, |img| {
        img.iter()
            .map(|(_, v)| {
                32 + match v {
                    Value::Text(t) => t.len() as u64,
                    Value::Null | Value::Unchanged => 0,
                }
            })
            .sum::<u64>()
            + 24
    })
}

impl Assembler {
    /// `keys`: per relation OID, its primary key's attribute numbers.
    pub fn new(keys: HashMap<u32, Vec<u16>>) -> Assembler {
        Assembler {
            open: HashMap::new(),
            held: HashMap::new(),
            limit: 0,
            keys,
        }
    }

    /// At most `bytes` of changes held for one transaction (0: no limit): past it,
    /// [`Assembler::push`] fails with [`AssembleError::TransactionTooLarge`] instead of holding
    /// more.
    pub fn with_limit(mut self, bytes: u64) -> Assembler {
        self.limit = bytes;
        self
    }

    /// Takes one message; returns the transaction it commits, if it is a commit.
    pub fn push(&mut self, m: Message) -> Result<Option<Committed>, AssembleError> {
        match m {
            Message::Change {
                relid,
                xid,
                old,
                mut new,
                ..
            } => {
                if let Some(new) = new.as_mut() {
                    for (attnum, v) in new.iter_mut() {
                        if *v != Value::Unchanged {
                            continue;
                        }
                        let from_old = old
                            .as_ref()
                            .and_then(|o| o.iter().find(|(a, _)| a == attnum))
                            .map(|(_, v)| v.clone())
                            .filter(|v| *v != Value::Unchanged);
                        *v = from_old.ok_or(AssembleError::MissingOldValue {
                            relid,
                            attnum: *attnum,
                        })?;
                    }
                }
                let held = self.held.entry(xid).or_default();
                held.0 += 1;
                held.1 += 48 + image_bytes(&old) + image_bytes(&new);
                if self.limit > 0 && held.1 > self.limit {
                    return Err(AssembleError::TransactionTooLarge {
                        xid,
                        changes: held.0,
                        limit: self.limit,
                    });
                }
                self.open
                    .entry(xid)
                    .or_default()
                    .entry(relid)
                    .or_default()
                    .push(Change { old, new });
                Ok(None)
            }
            Message::Commit { xid, lsn, time } => {
                let per_relation = self.open.remove(&xid).unwrap_or_default();
                self.held.remove(&xid);
                let changes = per_relation
                    .into_iter()
                    .map(|(relid, raw)| {
                        let key = self.keys.get(&relid).cloned().unwrap_or_default();
                        let net = compact(&raw, |img: &Image| -> Image {
                            if key.is_empty() {
                                img.clone()
                            } else {
                                img.iter()
                                    .filter(|(a, _)| key.contains(a))
                                    .cloned()
                                    .collect()
                            }
                        });
                        (relid, net)
                    })
                    .filter(|(_, net)| !net.is_empty())
                    .collect();
                Ok(Some(Committed {
                    xid,
                    commit_lsn: lsn,
                    commit_time: time,
                    changes,
                }))
            }
        }
    }

    /// Transactions seen but not yet committed (their changes are held).
    pub fn open_transactions(&self) -> usize {
        self.open.len()
    }
}

/// The 64-bit id (`xid8`) of a recent transaction whose 32-bit id is `xid`, given the server's
/// next full transaction id: the id at or below `next_full` whose low 32 bits are `xid` (a
/// decoded transaction is at most 2^31 transactions old, or the server would have stopped).
pub fn full_xid(xid: u32, next_full: u64) -> u64 {
    let epoch = next_full >> 32;
    if xid < next_full as u32 {
        (epoch << 32) | u64::from(xid)
    } else {
        (epoch.saturating_sub(1) << 32) | u64::from(xid)
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn full_xid_takes_the_epoch_of_the_most_recent_match() {
        assert_eq!(full_xid(700, 1000), 700);
        assert_eq!(full_xid(999, (3 << 32) | 1000), (3 << 32) | 999);
        // Wrapped: the transaction is from the previous epoch.
        assert_eq!(
            full_xid(u32::MAX - 5, (3 << 32) | 10),
            (2 << 32) | u64::from(u32::MAX - 5)
        );
        assert_eq!(full_xid(10, (1 << 32) | 10), 10);
    }

    use super::*;

    fn t(s: &str) -> Value {
        Value::Text(s.into())
    }

    fn change(xid: u32, relid: u32, old: Option<Image>, new: Option<Image>) -> Message {
        Message::Change {
            action: b'U',
            relid,
            xid,
            lsn: 0,
            old,
            new,
        }
    }

    #[test]
    fn a_transaction_past_the_limit_is_refused_not_held() {
        let mut a = Assembler::new(HashMap::from([(10, vec![1])])).with_limit(2_000);
        let row = |id: u32| Some(vec![(1, t(&id.to_string())), (2, t(&"x".repeat(100)))]);
        let mut refused = None;
        for i in 0..100 {
            if let Err(e) = a.push(change(7, 10, None, row(i))) {
                refused = Some((i, e));
                break;
            }
        }
        let (at, e) = refused.expect("the limit stops the transaction");
        assert!(at > 3 && at < 20, "refused at change {at}");
        assert!(matches!(
            e,
            AssembleError::TransactionTooLarge {
                xid: 7,
                limit: 2_000,
                ..
            }
        ));
        // Other transactions, and one under the limit, go on.
        let mut b = Assembler::new(HashMap::new()).with_limit(2_000);
        b.push(change(8, 10, None, row(1))).unwrap();
        assert!(b
            .push(Message::Commit {
                xid: 8,
                lsn: 1,
                time: 0
            })
            .unwrap()
            .is_some());
    }

    #[test]
    fn a_transaction_is_emitted_at_its_commit_netted_and_filled() {
        let mut a = Assembler::new(HashMap::from([(10, vec![1])]));
        let row = |id: &str, v: Value| vec![(1, t(id)), (2, v)];
        // xid 7: insert id 1, update it twice (the last leaves column 2 TOASTed and unchanged).
        assert_eq!(
            a.push(change(7, 10, None, Some(row("1", t("a"))))),
            Ok(None)
        );
        // xid 8 interleaves and never commits.
        assert_eq!(
            a.push(change(8, 10, None, Some(row("9", t("z"))))),
            Ok(None)
        );
        a.push(change(
            7,
            10,
            Some(row("1", t("a"))),
            Some(row("1", t("b"))),
        ))
        .unwrap();
        a.push(change(
            7,
            10,
            Some(row("1", t("b"))),
            Some(row("1", Value::Unchanged)),
        ))
        .unwrap();
        let done = a
            .push(Message::Commit {
                xid: 7,
                lsn: 42,
                time: 0,
            })
            .unwrap()
            .unwrap();
        assert_eq!(done.xid, 7);
        assert_eq!(done.commit_lsn, 42);
        assert_eq!(
            done.changes[&10],
            vec![Change {
                old: None,
                new: Some(row("1", t("b")))
            }]
        );
        assert_eq!(
            a.open_transactions(),
            1,
            "the uncommitted xid 8 is held, not emitted"
        );
    }

    #[test]
    fn an_unchanged_value_without_an_old_image_is_an_error() {
        let mut a = Assembler::new(HashMap::new());
        let err = a
            .push(change(
                3,
                11,
                None,
                Some(vec![(1, t("1")), (2, Value::Unchanged)]),
            ))
            .unwrap_err();
        assert_eq!(
            err,
            AssembleError::MissingOldValue {
                relid: 11,
                attnum: 2
            }
        );
        assert!(err.to_string().contains("REPLICA IDENTITY FULL"));
    }

    #[test]
    fn changes_that_cancel_leave_nothing() {
        let mut a = Assembler::new(HashMap::new());
        let r = vec![(1, t("x"))];
        a.push(change(5, 12, None, Some(r.clone()))).unwrap();
        a.push(change(5, 12, Some(r), None)).unwrap();
        let done = a
            .push(Message::Commit {
                xid: 5,
                lsn: 1,
                time: 0,
            })
            .unwrap()
            .unwrap();
        assert!(done.changes.is_empty());
    }
}
