//! Alerts (the book's chapter 8): rules turn events into alert commands, and
//! an executor carries the commands out once each.
//!
//! - [`expr`]: jq conditions and `{{ }}` templates (the jaq crates).
//! - [`rule`]: rules files, throttles.
//! - [`command`]: the alert command and outcome events, command ids, making
//!   values safe for one-line places.
//! - [`decide`]: events in, commands out.
//! - [`journal`]: the executor's durable record of commands started and done.
//! - [`send`]: the channels (SMTP, HTTP, a program), retries with backoff.
//! - [`smtp`]: the SMTP client (STARTTLS, TLS, AUTH, one kept connection).
//! - [`tls`]: whom TLS trusts (public roots or a `--ca` file), shared by
//!   SMTP and HTTPS.

pub mod command;
pub mod decide;
pub mod expr;
pub mod journal;
pub mod prefilter;
pub mod rule;
pub mod send;
pub mod smtp;
pub mod tls;
