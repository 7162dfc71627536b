//! Change compaction: the changes one transaction made to one table, collapsed into its net
//! changes before they are written to the change buffer (the WAL consumer's compaction stage).
//!
//! **Rule.** A change contributes its old row image with weight −1 and its new one with +1 (see
//! [`crate::ivm::scan`]); a transaction's net change is the sum, per image. Images whose weights
//! cancel (a row inserted and deleted again, an update undone, the middle of a chain of updates)
//! vanish. The remaining −1 and +1 images are paired into UPDATEs, first by key, then (a key
//! that changed) in order; what is left is DELETEs or INSERTs. So there are never more net
//! changes than changes. The buffer rows written carry the transaction's id, so a refresh window takes
//! all or none of them, as it does the trigger path's rows: compaction never crosses
//! transactions.

use std::collections::BTreeMap;

/// One change: its old row image (UPDATE, DELETE) and its new one (INSERT, UPDATE).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Change<R> {
    pub old: Option<R>,
    pub new: Option<R>,
}

/// The net changes of `changes` (one transaction, one table, in order). `key` gives a row
/// image's key (the primary key); rows whose images cancel do not appear. Images are compared
/// whole, so two identical rows of a keyless table are counted, not merged.
pub fn compact<R: Ord + Clone, K: Ord>(
    changes: &[Change<R>],
    key: impl Fn(&R) -> K,
) -> Vec<Change<R>> {
    let mut weight: BTreeMap<&R, i64> = BTreeMap::new();
    for c in changes {
        if let Some(o) = &c.old {
            *weight.entry(o).or_insert(0) -= 1;
        }
        if let Some(n) = &c.new {
            *weight.entry(n).or_insert(0) += 1;
        }
    }
    // Gone (−) and come (+) images, one entry per copy, grouped by key in image order.
    let mut gone: BTreeMap<K, Vec<R>> = BTreeMap::new();
    let mut come: BTreeMap<K, Vec<R>> = BTreeMap::new();
    for (img, w) in weight {
        let side = if w < 0 { &mut gone } else { &mut come };
        for _ in 0..w.unsigned_abs() {
            side.entry(key(img)).or_default().push(img.clone());
        }
    }
    let mut out = Vec::new();
    let (mut lone_old, mut lone_new) = (Vec::new(), Vec::new());
    for (k, olds) in gone {
        let mut news = come.remove(&k).unwrap_or_default().into_iter();
        for o in olds {
            match news.next() {
                Some(n) => out.push(Change {
                    old: Some(o),
                    new: Some(n),
                }),
                None => lone_old.push(o),
            }
        }
        lone_new.extend(news);
    }
    lone_new.extend(come.into_values().flatten());
    // What is left pairs up as key-changing UPDATEs (as the trigger path writes them), so there
    // are never more net changes than changes.
    let mut news = lone_new.into_iter();
    for o in lone_old {
        out.push(Change {
            old: Some(o),
            new: news.next(),
        });
    }
    out.extend(news.map(|n| Change {
        old: None,
        new: Some(n),
    }));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A row: (key, value).
    type Row = (u8, u8);

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u8, u8),
        Update(u8, u8, u8),
        Delete(u8),
    }

    /// Applies `ops` to a keyed table, logging the changes the way capture sees them.
    fn run(table: &mut BTreeMap<u8, u8>, ops: &[Op]) -> Vec<Change<Row>> {
        let mut log = Vec::new();
        for op in ops {
            match *op {
                Op::Insert(k, v) if !table.contains_key(&k) => {
                    table.insert(k, v);
                    log.push(Change {
                        old: None,
                        new: Some((k, v)),
                    });
                }
                Op::Update(k, to, v) => {
                    if let Some(old) = table.get(&k).copied() {
                        if to != k && table.contains_key(&to) {
                            continue;
                        }
                        table.remove(&k);
                        table.insert(to, v);
                        log.push(Change {
                            old: Some((k, old)),
                            new: Some((to, v)),
                        });
                    }
                }
                Op::Delete(k) => {
                    if let Some(old) = table.remove(&k) {
                        log.push(Change {
                            old: Some((k, old)),
                            new: None,
                        });
                    }
                }
                _ => {}
            }
        }
        log
    }

    fn weights(changes: &[Change<Row>]) -> BTreeMap<Row, i64> {
        let mut w = BTreeMap::new();
        for c in changes {
            if let Some(o) = c.old {
                *w.entry(o).or_insert(0) -= 1;
            }
            if let Some(n) = c.new {
                *w.entry(n).or_insert(0) += 1;
            }
        }
        w.retain(|_, v| *v != 0);
        w
    }

    fn arb_op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u8..6, 0u8..4).prop_map(|(k, v)| Op::Insert(k, v)),
            (0u8..6, 0u8..6, 0u8..4).prop_map(|(k, t, v)| Op::Update(k, t, v)),
            (0u8..6).prop_map(Op::Delete),
        ]
    }

    proptest! {
        /// The compacted changes have the same net weights as the raw ones, are no more
        /// numerous, and applied to the table as it was they give the table as it is.
        #[test]
        fn compaction_keeps_the_net_change(start in prop::collection::vec((0u8..6, 0u8..4), 0..6),
                                           ops in prop::collection::vec(arb_op(), 0..20)) {
            let mut table: BTreeMap<u8, u8> = start.into_iter().collect();
            let before = table.clone();
            let raw = run(&mut table, &ops);
            let net = compact(&raw, |r: &Row| r.0);
            prop_assert_eq!(weights(&net), weights(&raw));
            prop_assert!(net.len() <= raw.len());
            let mut replay = before;
            for c in &net {
                if let Some((k, v)) = c.old {
                    prop_assert_eq!(replay.remove(&k), Some(v));
                }
            }
            for c in &net {
                if let Some((k, v)) = c.new {
                    prop_assert!(replay.insert(k, v).is_none());
                }
            }
            prop_assert_eq!(replay, table);
        }
    }

    #[test]
    fn insert_then_delete_vanishes_and_updates_chain() {
        let raw = vec![
            Change {
                old: None,
                new: Some((1, 1)),
            },
            Change {
                old: Some((1, 1)),
                new: None,
            },
            Change {
                old: Some((2, 1)),
                new: Some((2, 2)),
            },
            Change {
                old: Some((2, 2)),
                new: Some((2, 3)),
            },
        ];
        assert_eq!(
            compact(&raw, |r: &(u8, u8)| r.0),
            vec![Change {
                old: Some((2, 1)),
                new: Some((2, 3))
            }]
        );
    }
}
