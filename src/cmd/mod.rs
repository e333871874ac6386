//! One module per binary: its clap `Args` and its `run`.

pub mod alert;
pub mod archive;
pub mod enrich;
pub mod log_append;
pub mod log_tail;
pub mod validate;
pub mod window;

/// Every tool's command definition, named as its binary; the man pages in
/// `man/` are generated from these (and a test keeps them in sync).
pub fn commands() -> Vec<clap::Command> {
    use clap::CommandFactory;
    vec![
        alert::Args::command().name("alert"),
        archive::Args::command().name("archive"),
        enrich::Args::command().name("enrich"),
        log_append::Args::command().name("log-append"),
        log_tail::Args::command().name("log-tail"),
        validate::Args::command().name("validate"),
        window::Args::command().name("window"),
    ]
}
