//! Scheduling: [`schedule`] and [`cron`] parse and validate refresh schedules, [`dag`] holds
//! the stream-table dependency graph (cycles refused, topological order), and [`tick`] decides
//! what the scheduler refreshes in a pass (due times, CALCULATED upstreams, retries,
//! auto-backoff).

pub mod cron;
pub mod dag;
pub mod schedule;
pub mod tick;
