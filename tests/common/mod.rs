//! Helpers shared by the integration tests: paths to the real binaries and
//! generated events.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The path of one of the project's binaries, built by cargo for the tests.
pub fn bin(name: &str) -> PathBuf {
    assert_cmd::cargo::cargo_bin(name)
}

/// The python that runs the tests' Python fixtures: `UNILOG_TEST_PYTHON`
/// (set by scripts/test.sh), else the venv python that
/// scripts/install-test-deps.sh recorded in target/test-python, else
/// `python3` from PATH.
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("UNILOG_TEST_PYTHON").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let recorded = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-python");
    if let Ok(p) = std::fs::read_to_string(recorded) {
        let p = PathBuf::from(p.trim());
        if p.exists() {
            return p;
        }
    }
    PathBuf::from("python3")
}

/// A command for one of the project's binaries.
pub fn cmd(name: &str) -> assert_cmd::Command {
    assert_cmd::Command::new(bin(name))
}

/// Asserts that a command exited 0, showing its stderr when it did not.
#[track_caller]
pub fn assert_success(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Appends `input` to the log at `log` with `log-append ARGS`, which must
/// succeed.
pub fn append(log: &Path, args: &[&str], input: impl Into<Vec<u8>>) {
    cmd("log-append")
        .arg(log)
        .args(args)
        .write_stdin(input)
        .assert()
        .success();
}

/// `n` generated Nile events, one per line, each ending in `\n`.
pub fn nile_events(n: u64, seed: u64) -> Vec<u8> {
    let mut out = Vec::new();
    let options = unilog::gen::GenOptions {
        count: n,
        seed,
        ..Default::default()
    };
    unilog::gen::generate(&options, &mut out).unwrap();
    out
}

/// The lines of a byte buffer, without their newlines.
pub fn lines(bytes: &[u8]) -> Vec<&[u8]> {
    let mut v: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    if v.last() == Some(&&b""[..]) {
        v.pop();
    }
    v
}

/// Runs a shell pipeline with the binaries' directory first on PATH.
pub fn shell(script: &str, dir: &Path) -> std::process::Output {
    let bin_dir = bin("log-tail").parent().unwrap().to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    Command::new("bash")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .env("PATH", path)
        .output()
        .unwrap()
}

/// A server process started for a test, killed when dropped.
pub struct Served {
    child: Child,
    /// The first line it printed (servers print their address or port).
    pub first_line: String,
}

impl Served {
    /// Starts `command` with its stdout piped and waits for its first line.
    pub fn start(command: &mut Command) -> std::io::Result<Served> {
        let mut child = command.stdout(Stdio::piped()).spawn()?;
        let mut first_line = String::new();
        BufReader::new(child.stdout.take().expect("stdout is piped")).read_line(&mut first_line)?;
        Ok(Served { child, first_line })
    }

    /// Stops the server now (as dropping it does).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `log-tail LOG ARGS…`'s stdout; the test fails when it does not succeed.
pub fn tail(log: &Path, args: &[&str]) -> Vec<u8> {
    let out = cmd("log-tail").arg(log).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "log-tail {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A tool that scripts/install-test-deps.sh installs outside the repository:
/// the path in `$var` (scripts/test.sh sets it), else the one it recorded in
/// target/`recorded`. `None` when neither names an existing file and `$var`
/// is unset, so a plain `cargo test` skips what needs the tool; with `$var`
/// set, a missing tool fails the test (CI must not pass by skipping).
fn installed_tool(var: &str, recorded: &str) -> Option<PathBuf> {
    let set = std::env::var_os(var).filter(|p| !p.is_empty());
    if let Some(p) = &set {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "{var}={} does not exist: run scripts/install-test-deps.sh",
            p.display()
        );
        return Some(p);
    }
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join(recorded);
    let p = PathBuf::from(std::fs::read_to_string(file).ok()?.trim());
    p.is_file().then_some(p)
}

/// The Kafka-compatible test broker (nisshi), if installed.
pub fn nisshi() -> Option<PathBuf> {
    installed_tool("UNILOG_TEST_NISSHI", "test-nisshi")
}

/// kcat running on a librdkafka that talks to the test broker, if installed.
pub fn kcat() -> Option<PathBuf> {
    installed_tool("UNILOG_TEST_KCAT", "test-kcat")
}

/// Evaluates to `Some`'s value, or returns from the calling test after
/// saying on stderr that it skips because `$what` is not installed.
#[macro_export]
macro_rules! require {
    ($tool:expr, $what:literal) => {
        match $tool {
            Some(found) => found,
            None => {
                eprintln!(
                    "skipped: {} is not installed; run scripts/install-test-deps.sh (scripts/test.sh does)",
                    $what
                );
                return;
            }
        }
    };
}

/// A nisshi broker on 127.0.0.1, in memory, started from a scratch directory
/// of its own (nisshi reads a `.env` from its working directory). Killed when
/// dropped, and by the kernel when the thread that started it ends
/// (PR_SET_PDEATHSIG), so none outlives the test process.
pub struct Broker {
    child: Child,
    /// The port it listens on.
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Broker {
    /// Starts a broker for one test (killed when dropped) and waits until it
    /// accepts connections.
    pub fn start(nisshi: &Path) -> Broker {
        Broker::start_with(nisshi, &[])
    }

    /// [`Broker::start`] with more of nisshi's broker options (`--cert F
    /// --key F` makes its listener TLS only).
    pub fn start_with(nisshi: &Path, options: &[&str]) -> Broker {
        Broker::spawn(nisshi, options, |mut command| command.spawn())
    }

    /// Starts the broker from a thread that lives as long as the process, so
    /// that the kernel kills it when the process ends, however it ends.
    fn start_kept(nisshi: &Path) -> Broker {
        Broker::spawn(nisshi, &[], |mut command| {
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                tx.send(command.spawn()).unwrap();
                loop {
                    std::thread::park();
                }
            });
            rx.recv().unwrap()
        })
    }

    fn spawn(
        nisshi: &Path,
        options: &[&str],
        spawn: impl FnOnce(Command) -> std::io::Result<Child>,
    ) -> Broker {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("tcp://127.0.0.1:{port}");
        let log = std::fs::File::create(dir.path().join("nisshi.log")).unwrap();
        let mut command = Command::new(nisshi);
        command
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "memory://nisshi/"])
            .args(["--group-initial-rebalance-delay", "0s"])
            .args(options)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork
        // and exec.
        unsafe {
            use std::os::unix::process::CommandExt;
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = spawn(command).expect("start nisshi");
        let mut broker = Broker { child, port, dir };
        broker.wait_ready();
        broker
    }

    /// Waits until the broker accepts connections; panics with its log when
    /// it exits or takes more than a minute.
    fn wait_ready(&mut self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], self.port));
        loop {
            if std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_millis(200))
                .is_ok()
            {
                return;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "nisshi exited ({status}) before it listened:\n{}",
                    self.log()
                );
            }
            assert!(
                std::time::Instant::now() < deadline,
                "nisshi did not listen on {addr} within a minute:\n{}",
                self.log()
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// The broker's output so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("nisshi.log")).unwrap_or_default()
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `kafka://127.0.0.1:PORT/TOPIC`, a log location for log-append and
    /// log-tail.
    pub fn url(&self, topic: &str) -> String {
        format!("kafka://{}/{topic}", self.addr())
    }

    /// Sends the broker a signal (SIGSTOP freezes it with its connections
    /// open, SIGCONT lets it go on).
    pub fn signal(&self, signal: i32) {
        // SAFETY: a plain kill(2) on our own child's pid.
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, signal) }, 0);
    }

    /// Kills the broker now (as dropping it does).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The broker the tests of one test binary share, started on first use;
/// `None` (the test skips) when nisshi is not installed. Tests give their
/// topics names of their own (see [`topic`]).
pub fn shared_broker() -> Option<&'static Broker> {
    static BROKER: std::sync::OnceLock<Option<Broker>> = std::sync::OnceLock::new();
    BROKER
        .get_or_init(|| nisshi().map(|n| Broker::start_kept(&n)))
        .as_ref()
}

/// A topic name no other test of this process uses: NAME and a counter.
pub fn topic(name: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{name}-{n}")
}

/// A test PKI made by tests/fixtures/smtp_server.py --make-certs in
/// DIR/pki: a CA (ca.pem), a certificate it signed for localhost and
/// 127.0.0.1 (good.pem, good.key), an expired one, one for another name and
/// one from a CA nobody trusts (see the fixture).
pub fn test_pki(dir: &Path) -> PathBuf {
    let pki = dir.join("pki");
    let status = Command::new(python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/smtp_server.py"))
        .arg("--make-certs")
        .arg(&pki)
        .status()
        .expect("python3 runs");
    assert!(
        status.success(),
        "making certificates (is python3-cryptography installed? run scripts/install-test-deps.sh)"
    );
    pki
}
