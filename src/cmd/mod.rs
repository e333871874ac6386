//! One module per binary: its clap `Args` and its `run`.

pub mod alert;
pub mod archive;
pub mod enrich;
pub mod log_append;
pub mod log_tail;
pub mod nile_events;
pub mod validate;
pub mod window;

/// Every tool's command definition, named as its binary; the man pages in
/// `man/` are generated from these (and a test keeps them in sync).
pub fn commands() -> Vec<clap::Command> {
    use crate::cli::command;
    vec![
        command::<alert::Args>("alert"),
        command::<archive::Args>("archive"),
        command::<enrich::Args>("enrich"),
        command::<log_append::Args>("log-append"),
        command::<log_tail::Args>("log-tail"),
        command::<nile_events::Args>("nile-events"),
        command::<validate::Args>("validate"),
        command::<window::Args>("window"),
    ]
}
