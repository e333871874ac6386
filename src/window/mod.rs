//! `window`: stateful windows per key in event time (the book's chapter 4),
//! one idea per module:
//!
//! - [`spec`]: the job as the user gives it (window kind, alignment, key,
//!   time, aggregates) and its canonical form;
//! - [`eventtime`]: event time read from a field (RFC 3339, epoch s or ms);
//! - [`watermark`]: per-partition watermarks and their minimum;
//! - [`assign`]: which tumbling or hopping windows a time falls in;
//! - [`aggregate`]: what each aggregate reads, keeps and writes;
//! - [`store`]: the open windows of each key, sessions merged, windows closed;
//! - [`emit`]: results as self-describing events, `--having`, `--shape`;
//! - [`state`]: the checkpoint file;
//! - [`engine`]: the read loop's side: lateness, routing to workers, close
//!   points, checkpoints and exactly-once emission.

pub mod aggregate;
pub mod assign;
pub mod emit;
pub mod engine;
pub mod eventtime;
pub mod spec;
pub mod state;
pub mod store;
pub mod watermark;
