//! What the scheduler refreshes on a tick, and how it reacts to slow and failing refreshes.
//!
//! - A stream table with a duration schedule is due at the first multiple of its interval
//!   (stretched by its auto-backoff factor) after its data's timestamp: its data is never older
//!   than one interval plus the refresh, and stream tables on one schedule refresh in one pass.
//!   One with a cron schedule is due when the expression fired since its last refresh.
//! - A CALCULATED stream table has no schedule of its own: it is refreshed in the same pass as
//!   any downstream stream table that is due and reads it, directly or through other CALCULATED
//!   stream tables, so it is as fresh as the tightest schedule below it. With no scheduled
//!   dependent it is refreshed only on demand.
//! - The pass runs in topological order, so an upstream refresh precedes its dependents.
//! - A stream table in ERROR is retried after a backoff that doubles with each consecutive
//!   failure (capped); SUSPENDED ones are skipped until resumed by hand.

use crate::dag::{Dag, RelId};
use crate::schedule::Schedule;
use std::collections::{BTreeSet, HashMap};

/// The longest auto-backoff stretch of a schedule.
pub const MAX_BACKOFF: u32 = 8;
/// The longest wait before retrying a failed refresh, in milliseconds.
pub const MAX_RETRY_MS: i64 = 300_000;

/// What the scheduler knows about one stream table.
#[derive(Debug, Clone)]
pub struct Entry {
    pub relid: RelId,
    pub schedule: Schedule,
    /// When the last refresh (successful or not) started, in ms since the epoch; `None` if never.
    pub last_attempt_ms: Option<i64>,
    /// When the last successful refresh started (the data's timestamp), in ms since the epoch.
    pub data_ms: Option<i64>,
    /// Consecutive failed refreshes (0 when the last one succeeded).
    pub consecutive_errors: u32,
    /// Not SUSPENDED (nor otherwise excluded from scheduling).
    pub schedulable: bool,
}

/// The retry wait after `errors` consecutive failures of a stream table refreshed every
/// `interval_ms`: the interval doubled per failure, at least one second, at most
/// [`MAX_RETRY_MS`].
pub fn retry_wait_ms(interval_ms: i64, errors: u32) -> i64 {
    let base = interval_ms.max(1000);
    let shift = errors.saturating_sub(1).min(20);
    base.saturating_mul(1i64 << shift).min(MAX_RETRY_MS)
}

/// When `e` next falls due by its own schedule (ms since the epoch), `None` for CALCULATED or a
/// cron expression that never fires again.
fn due_at(e: &Entry, backoff: u32) -> Option<i64> {
    let Some(since) = e.data_ms else {
        // Never populated: due now, unless a failure asks to wait.
        return Some(match (e.consecutive_errors, e.last_attempt_ms) {
            (n, Some(last)) if n > 0 => last + retry_wait_ms(1000, n),
            _ => i64::MIN,
        });
    };
    let (at, interval) = match &e.schedule {
        Schedule::Every { seconds, .. } => {
            // The first point of the schedule's grid (multiples of the stretched interval since
            // the epoch) after the data's timestamp: data is never older than one interval, and
            // stream tables on the same schedule fall due together, in one pass.
            let interval = (*seconds as i64) * 1000;
            let period = (interval * i64::from(backoff.max(1))).max(1);
            ((since.div_euclid(period) + 1) * period, interval)
        }
        Schedule::Cron(c) => (c.next_fire_after(since.div_euclid(1000))? * 1000, 60_000),
        Schedule::Calculated => return None,
    };
    // A failing stream table waits out its retry backoff.
    match (e.consecutive_errors, e.last_attempt_ms) {
        (n, Some(last)) if n > 0 => Some(at.max(last + retry_wait_ms(interval, n))),
        _ => Some(at),
    }
}

fn directly_due(e: &Entry, now_ms: i64, backoff: u32) -> bool {
    due_at(e, backoff).is_some_and(|t| t <= now_ms)
}

/// The earliest time (ms since the epoch) at which a stream table falls due by its own
/// schedule, for the scheduler to sleep until; `None` when nothing is scheduled.
pub fn next_due_ms(entries: &[Entry], backoff: &HashMap<RelId, u32>) -> Option<i64> {
    entries
        .iter()
        .filter(|e| e.schedulable)
        .filter_map(|e| due_at(e, backoff.get(&e.relid).copied().unwrap_or(1)))
        .min()
}

/// The stream tables to refresh now, upstream first. `backoff` holds auto-backoff factors
/// (absent = 1).
pub fn due(entries: &[Entry], dag: &Dag, now_ms: i64, backoff: &HashMap<RelId, u32>) -> Vec<RelId> {
    let by_id: HashMap<RelId, &Entry> = entries.iter().map(|e| (e.relid, e)).collect();
    let mut chosen: BTreeSet<RelId> = BTreeSet::new();
    let mut stack: Vec<RelId> = entries
        .iter()
        .filter(|e| e.schedulable)
        .filter(|e| directly_due(e, now_ms, backoff.get(&e.relid).copied().unwrap_or(1)))
        .map(|e| e.relid)
        .collect();
    // Pull in CALCULATED upstreams of everything chosen.
    while let Some(id) = stack.pop() {
        if !chosen.insert(id) {
            continue;
        }
        for up in dag.sources(id) {
            if let Some(u) = by_id.get(&up) {
                if u.schedulable && matches!(u.schedule, Schedule::Calculated) {
                    stack.push(up);
                }
            }
        }
    }
    let mut order: Vec<RelId> = dag
        .topological_order()
        .into_iter()
        .filter(|id| chosen.contains(id))
        .collect();
    // A stream table with no edges (its query reads no relation) is not in the graph.
    order.extend(chosen.into_iter().filter(|id| !dag.contains(*id)));
    order
}

/// The effective refresh interval of each stream table in ms, for display: its own duration,
/// or for CALCULATED the tightest interval among the stream tables downstream that refresh it.
/// Cron schedules count as their gap from now to the next fire; `None` when nothing schedules it.
pub fn effective_interval_ms(
    entries: &[Entry],
    dag: &Dag,
    now_ms: i64,
) -> HashMap<RelId, Option<i64>> {
    let by_id: HashMap<RelId, &Entry> = entries.iter().map(|e| (e.relid, e)).collect();
    let mut out: HashMap<RelId, Option<i64>> = HashMap::new();
    // Downstream first, so a CALCULATED table sees its dependents' intervals.
    let mut order = dag.topological_order();
    order.reverse();
    for id in order {
        let Some(e) = by_id.get(&id) else { continue };
        let own = match &e.schedule {
            Schedule::Every { seconds, .. } => Some(*seconds as i64 * 1000),
            Schedule::Cron(c) => c
                .next_fire_after(now_ms.div_euclid(1000))
                .map(|t| t * 1000 - now_ms),
            Schedule::Calculated => dag
                .dependents(id)
                .into_iter()
                .filter_map(|d| out.get(&d).copied().flatten())
                .min(),
        };
        out.insert(id, own);
    }
    out
}

/// Auto-backoff: the next factor after a refresh that took `took_ms` of a schedule of
/// `interval_ms`. Over 95% of the (stretched) window doubles the factor up to [`MAX_BACKOFF`];
/// a refresh that fits the plain schedule resets it to 1. Returns the new factor.
pub fn next_backoff(current: u32, took_ms: i64, interval_ms: i64) -> u32 {
    let current = current.max(1);
    if took_ms * 100 > interval_ms * i64::from(current) * 95 {
        (current * 2).min(MAX_BACKOFF)
    } else if took_ms * 100 <= interval_ms * 95 {
        1
    } else {
        current
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every(relid: RelId, secs: u64, data_ms: Option<i64>) -> Entry {
        Entry {
            relid,
            schedule: Schedule::Every {
                seconds: secs,
                text: format!("{secs}s"),
            },
            last_attempt_ms: data_ms,
            data_ms,
            consecutive_errors: 0,
            schedulable: true,
        }
    }

    fn calculated(relid: RelId, data_ms: Option<i64>) -> Entry {
        Entry {
            schedule: Schedule::Calculated,
            ..every(relid, 1, data_ms)
        }
    }

    /// The guide's chain: departments(1) -> tree(10, calculated) -> stats(11, calculated,
    /// also reads employees(2)) -> report(12, 1s).
    fn guide() -> (Vec<Entry>, Dag) {
        let dag = Dag::from_edges([(1, 10), (10, 11), (2, 11), (11, 12)]);
        (
            vec![
                calculated(10, Some(0)),
                calculated(11, Some(0)),
                every(12, 1, Some(0)),
            ],
            dag,
        )
    }

    #[test]
    fn calculated_upstreams_refresh_with_their_scheduled_dependent_in_order() {
        let (entries, dag) = guide();
        let none = HashMap::new();
        assert!(due(&entries, &dag, 500, &none).is_empty());
        assert_eq!(due(&entries, &dag, 1000, &none), vec![10, 11, 12]);
        let iv = effective_interval_ms(&entries, &dag, 0);
        assert_eq!(
            (iv[&10], iv[&11], iv[&12]),
            (Some(1000), Some(1000), Some(1000))
        );
    }

    #[test]
    fn calculated_without_scheduled_dependents_waits_for_demand() {
        let dag = Dag::from_edges([(1, 10)]);
        let entries = vec![calculated(10, Some(0))];
        assert!(due(&entries, &dag, 10_000_000, &HashMap::new()).is_empty());
        assert_eq!(effective_interval_ms(&entries, &dag, 0)[&10], None);
    }

    #[test]
    fn an_own_schedule_upstream_keeps_its_schedule() {
        // 10 (1h) -> 11 (1s): 11 is due, 10 is not pulled in.
        let dag = Dag::from_edges([(1, 10), (10, 11)]);
        let entries = vec![every(10, 3600, Some(0)), every(11, 1, Some(0))];
        assert_eq!(due(&entries, &dag, 1000, &HashMap::new()), vec![11]);
    }

    #[test]
    fn suspended_and_failing_tables_wait() {
        let dag = Dag::from_edges([(1, 10), (1, 11)]);
        let mut a = every(10, 1, Some(0));
        a.schedulable = false;
        let mut b = every(11, 1, Some(0));
        b.consecutive_errors = 3;
        b.last_attempt_ms = Some(5000);
        let entries = vec![a, b];
        // Retry after 1s * 2^2 = 4s from the last attempt.
        assert!(due(&entries, &dag, 8999, &HashMap::new()).is_empty());
        assert_eq!(due(&entries, &dag, 9000, &HashMap::new()), vec![11]);
        assert_eq!(retry_wait_ms(1000, 30), MAX_RETRY_MS);
    }

    #[test]
    fn auto_backoff_stretches_and_resets() {
        assert_eq!(next_backoff(1, 960, 1000), 2);
        assert_eq!(next_backoff(2, 1950, 1000), 4);
        assert_eq!(next_backoff(8, 20_000, 1000), 8);
        assert_eq!(next_backoff(4, 1200, 1000), 4);
        assert_eq!(next_backoff(4, 900, 1000), 1);
        let (entries, dag) = guide();
        let slow = HashMap::from([(12, 4)]);
        assert!(due(&entries, &dag, 3999, &slow).is_empty());
        assert_eq!(due(&entries, &dag, 4000, &slow), vec![10, 11, 12]);
    }

    #[test]
    fn next_due_is_the_earliest_own_schedule() {
        let (mut entries, _) = guide();
        let none = HashMap::new();
        assert_eq!(next_due_ms(&entries, &none), Some(1000));
        entries[2].data_ms = Some(5000);
        assert_eq!(next_due_ms(&entries, &none), Some(6000));
        // Stretched 2x: the grid of 2 s.
        assert_eq!(next_due_ms(&entries, &HashMap::from([(12, 2)])), Some(6000));
        entries[2].data_ms = Some(5300);
        assert_eq!(
            next_due_ms(&entries, &none),
            Some(6000),
            "aligned to the 1 s grid"
        );
        entries[2].schedulable = false;
        assert_eq!(
            next_due_ms(&entries, &none),
            None,
            "CALCULATED alone is never due"
        );
    }

    #[test]
    fn tables_outside_the_graph_and_unpopulated_failures() {
        let dag = Dag::from_edges([(1, 10)]);
        let mut lonely = every(20, 1, None);
        assert_eq!(due(&[lonely.clone()], &dag, 0, &HashMap::new()), vec![20]);
        lonely.consecutive_errors = 2;
        lonely.last_attempt_ms = Some(10_000);
        assert!(due(&[lonely.clone()], &dag, 11_999, &HashMap::new()).is_empty());
        assert_eq!(due(&[lonely], &dag, 12_000, &HashMap::new()), vec![20]);
    }

    #[test]
    fn cron_schedules_fire_once_per_match() {
        let dag = Dag::from_edges([(1, 10)]);
        let e = Entry {
            schedule: Schedule::parse(Some("*/5 * * * *")).unwrap(),
            ..every(10, 1, Some(60_000))
        };
        let entries = vec![e];
        assert!(due(&entries, &dag, 299_999, &HashMap::new()).is_empty());
        assert_eq!(due(&entries, &dag, 300_000, &HashMap::new()), vec![10]);
    }
}
