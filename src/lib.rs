//! unilog: small Unix filters for unified log processing.
//!
//! Every binary in `src/bin/` is a thin shell over [`cmd`]; the modules here
//! own one idea each and are tested in-process. See `DESIGN.md` in the
//! project's shared folder and `man/unilog-log.5` for the on-disk log format.

pub mod alert;
pub mod archive;
pub mod cli;
pub mod cmd;
pub mod enrich;
pub mod event;
pub mod gen;
pub mod inspect;
pub mod io;
pub mod jq;
pub mod location;
pub mod json;
pub mod man;
pub mod parallel;
pub mod path;
pub mod position;
pub mod resume;
pub mod schema;
pub mod store;
pub mod time;
pub mod window;
