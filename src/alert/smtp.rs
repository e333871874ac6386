//! An SMTP client (RFC 5321) for the executor: one connection kept open
//! across messages, STARTTLS (RFC 3207) or TLS from the first byte through
//! rustls, AUTH PLAIN and LOGIN (RFC 4954).
//!
//! Errors come in three kinds: worth another try (a refused or dropped
//! connection, a timeout, a 4xx reply), refused for this one message (a 5xx
//! reply to its sender, recipient or content), or a setup that can never work
//! with this server (no STARTTLS where it is needed, a certificate that does
//! not verify, a login refused, no common AUTH mechanism): the executor stops
//! at the first of those instead of failing every command the same way.
//!
//! Credentials go in plain text only to a loopback address, judged by the
//! address the connection actually reached (after the name was resolved),
//! never by how the name is spelled.
//!
//! Speed: TCP_NODELAY, and each message's content with its final dot goes in
//! one write, so no reply waits on Nagle's algorithm and a delayed ACK.

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};

use super::tls;

/// TLS for SMTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SmtpTls {
    /// Plain text; only for a relay on loopback or a trusted network.
    None,
    /// STARTTLS when the server offers it; plain text otherwise, but then
    /// never with credentials unless the server's address is loopback.
    Opportunistic,
    /// STARTTLS, required (the default for smtp://).
    Starttls,
    /// TLS from the first byte (smtps://, usually port 465).
    Tls,
}

/// How an SMTP exchange went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Worth another try.
    Transient(String),
    /// This message was refused; others may go through.
    Refused(String),
    /// The configuration cannot work with this server: no message will go.
    Setup(String),
}

/// A username and password (never shown by `Debug`).
#[derive(Clone)]
pub struct Credentials {
    /// The username.
    pub user: String,
    /// The password.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({:?}, ***)", self.user)
    }
}

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct Config {
    /// The server's name as given (also the name its certificate must have).
    pub host: String,
    /// The port.
    pub port: u16,
    /// TLS mode.
    pub mode: SmtpTls,
    /// Trust for TLS; needed unless `mode` is `None`.
    pub tls: Option<Arc<ClientConfig>>,
    /// Log in with these.
    pub credentials: Option<Credentials>,
    /// Limit of connecting, and of each wait for a reply.
    pub timeout: Duration,
}

/// An SMTP client that keeps its connection between messages.
pub struct Client {
    config: Config,
    hello: String,
    conn: Option<Conn>,
}

/// `12 s`, `0.5 s`: a duration as people read it in an error message.
pub fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0} s")
    } else {
        format!("{} s", (s * 1000.0).round() / 1000.0)
    }
}

/// True for a loopback address, IPv4-mapped IPv6 ones included.
pub fn is_loopback(ip: IpAddr) -> bool {
    ip.to_canonical().is_loopback()
}

impl Client {
    /// A client; it connects when the first message is sent.
    pub fn new(config: Config) -> Self {
        Client {
            config,
            hello: hello_name(),
            conn: None,
        }
    }

    /// `host:port`, for messages.
    fn target(&self) -> String {
        match self.config.host.parse::<IpAddr>() {
            Ok(IpAddr::V6(_)) => format!("[{}]:{}", self.config.host, self.config.port),
            _ => format!("{}:{}", self.config.host, self.config.port),
        }
    }

    /// Sends one message: the envelope sender, its recipients, and the
    /// message as it goes over the wire (CRLF lines). `Ok` is the server's
    /// reply to the content. A kept connection the server has closed since
    /// is replaced once, without counting as a try.
    pub fn send(&mut self, from: &str, to: &[String], message: &[u8]) -> Result<String, Error> {
        let data = stuffed(message);
        let non_ascii = !from.is_ascii() || to.iter().any(|t| !t.is_ascii());
        if let Some(mut conn) = self.conn.take() {
            match self.transaction(&mut conn, from, to, &data, non_ascii, true) {
                Ok(reply) => {
                    self.conn = Some(conn);
                    return Ok(reply);
                }
                Err(Failure::Stale) => {} // reconnect below
                Err(Failure::Keep(e)) => {
                    self.conn = Some(conn);
                    return Err(e);
                }
                Err(Failure::Drop(e)) => return Err(e),
            }
        }
        let mut conn = self.connect()?;
        match self.transaction(&mut conn, from, to, &data, non_ascii, false) {
            Ok(reply) => {
                self.conn = Some(conn);
                Ok(reply)
            }
            Err(Failure::Keep(e)) => {
                self.conn = Some(conn);
                Err(e)
            }
            Err(Failure::Drop(e)) => Err(e),
            Err(Failure::Stale) => unreachable!("a new connection is never stale"),
        }
    }

    fn transaction(
        &self,
        conn: &mut Conn,
        from: &str,
        to: &[String],
        data: &[u8],
        non_ascii: bool,
        reused: bool,
    ) -> Result<String, Failure> {
        let mut mail = format!("MAIL FROM:<{from}>");
        if non_ascii {
            if !conn.ext.smtputf8 {
                return Err(Failure::Keep(Error::Refused(format!(
                    "{} does not accept addresses that are not ASCII (no SMTPUTF8)",
                    self.target()
                ))));
            }
            mail.push_str(" SMTPUTF8");
        }
        if !data.is_ascii() && conn.ext.eightbitmime {
            mail.push_str(" BODY=8BITMIME");
        }
        mail.push_str("\r\n");
        let reply = match conn.command(mail.as_bytes(), "MAIL FROM", self.config.timeout) {
            // A kept connection the server closed meanwhile (idle timeout):
            // nothing was sent, so a new connection may try at once.
            Err(_) if reused => return Err(Failure::Stale),
            Ok(r) if reused && r.code == 421 => return Err(Failure::Stale),
            Err(e) => return Err(Failure::Drop(e)),
            Ok(r) => r,
        };
        self.expect_ok(conn, &reply, "MAIL FROM")?;
        for rcpt in to {
            let reply = conn
                .command(
                    format!("RCPT TO:<{rcpt}>\r\n").as_bytes(),
                    "RCPT TO",
                    self.config.timeout,
                )
                .map_err(Failure::Drop)?;
            self.expect_ok(conn, &reply, &format!("RCPT TO:<{rcpt}>"))?;
        }
        let reply = conn
            .command(b"DATA\r\n", "DATA", self.config.timeout)
            .map_err(Failure::Drop)?;
        if reply.code != 354 {
            self.expect_ok(conn, &reply, "DATA")?;
            return Err(self.reset(conn, reply_error(&reply, "DATA")));
        }
        let reply = conn
            .command(data, "the message", self.config.timeout)
            .map_err(Failure::Drop)?;
        match reply.code {
            200..=299 => Ok(reply.line()),
            // The transaction is over either way; the connection is fine.
            _ => Err(Failure::Keep(reply_error(&reply, "the message"))),
        }
    }

    /// A 2xx reply, or the error (after RSET, so the connection can go on).
    fn expect_ok(&self, conn: &mut Conn, reply: &Reply, what: &str) -> Result<(), Failure> {
        if (200..300).contains(&reply.code) {
            return Ok(());
        }
        if reply.code == 530 {
            return Err(Failure::Drop(Error::Setup(format!(
                "{} requires authentication ({}): set UNILOG_SMTP_USERNAME and UNILOG_SMTP_PASSWORD, or --smtp-credentials FILE",
                self.target(),
                reply.line()
            ))));
        }
        let err = reply_error(reply, what);
        Err(self.reset(conn, err))
    }

    /// Ends a failed transaction with RSET; keeps the connection if that works.
    fn reset(&self, conn: &mut Conn, err: Error) -> Failure {
        match conn.command(b"RSET\r\n", "RSET", self.config.timeout) {
            Ok(r) if r.code == 250 => Failure::Keep(err),
            _ => Failure::Drop(err),
        }
    }

    fn connect(&self) -> Result<Conn, Error> {
        let c = &self.config;
        let target = self.target();
        let addrs: Vec<SocketAddr> = (c.host.as_str(), c.port)
            .to_socket_addrs()
            .map_err(|e| Error::Transient(format!("cannot resolve {}: {e}", c.host)))?
            .collect();
        let mut last = None;
        let mut tcp = None;
        for addr in &addrs {
            match TcpStream::connect_timeout(addr, c.timeout) {
                Ok(s) => {
                    tcp = Some(s);
                    break;
                }
                Err(e) => last = Some((addr, e)),
            }
        }
        let tcp = match (tcp, last) {
            (Some(t), _) => t,
            (None, Some((addr, e))) => {
                return Err(Error::Transient(match e.kind() {
                    io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => format!(
                        "cannot connect to {target} ({addr}): timed out after {}",
                        seconds(c.timeout)
                    ),
                    _ => format!("cannot connect to {target} ({addr}): {e}"),
                }))
            }
            (None, None) => {
                return Err(Error::Transient(format!(
                    "{} resolves to no address",
                    c.host
                )))
            }
        };
        let io_setup = |e: io::Error| Error::Transient(format!("{target}: {e}"));
        tcp.set_nodelay(true).map_err(io_setup)?;
        tcp.set_read_timeout(Some(c.timeout)).map_err(io_setup)?;
        tcp.set_write_timeout(Some(c.timeout)).map_err(io_setup)?;
        let peer = tcp.peer_addr().map_err(io_setup)?;
        let loopback = is_loopback(peer.ip());
        let stream = match c.mode {
            SmtpTls::Tls => Stream::Tls(Box::new(self.handshake(tcp)?)),
            _ => Stream::Tcp(tcp),
        };
        let mut conn = Conn {
            stream,
            buf: Vec::with_capacity(512),
            start: 0,
            ext: Extensions::default(),
            target: target.clone(),
        };
        let greeting = conn.reply("the server's greeting", c.timeout).map_err(|e| match (&e, c.mode) {
            (Error::Transient(m), SmtpTls::None | SmtpTls::Opportunistic | SmtpTls::Starttls)
                if m.contains("timed out") =>
            {
                Error::Transient(format!(
                    "{m} (a server that waits for a TLS handshake? smtps:// speaks TLS from the first byte)"
                ))
            }
            _ => e,
        })?;
        match greeting.code {
            220 => {}
            400..=499 => return Err(Error::Transient(format!("{target}: {}", greeting.line()))),
            _ => {
                return Err(Error::Setup(format!(
                    "{target} refuses SMTP service: {}",
                    greeting.line()
                )))
            }
        }
        self.ehlo(&mut conn)?;
        if matches!(c.mode, SmtpTls::Opportunistic | SmtpTls::Starttls) {
            if conn.ext.starttls {
                let reply = conn.command(b"STARTTLS\r\n", "STARTTLS", c.timeout)?;
                match reply.code {
                    220 => {}
                    400..=499 => return Err(reply_error(&reply, "STARTTLS")),
                    _ => {
                        return Err(Error::Setup(format!(
                            "{target} offers STARTTLS but refuses it: {}",
                            reply.line()
                        )))
                    }
                }
                if conn.start < conn.buf.len() {
                    // Bytes that came before TLS must not be taken as if
                    // they came over it (a STARTTLS command injection).
                    return Err(Error::Setup(format!(
                        "{target} sent data after its reply to STARTTLS, before TLS began: refusing the connection"
                    )));
                }
                let Stream::Tcp(tcp) = conn.stream else {
                    unreachable!("STARTTLS on a plain connection")
                };
                conn.stream = Stream::Tls(Box::new(self.handshake(tcp)?));
                conn.ext = Extensions::default();
                self.ehlo(&mut conn)?;
            } else if c.mode == SmtpTls::Starttls {
                return Err(Error::Setup(format!(
                    "{target} does not offer STARTTLS, which --smtp-tls starttls (the default for smtp://) requires: \
                     use smtps:// if the server speaks TLS on another port, or --smtp-tls none for a plain relay \
                     on loopback or a trusted network"
                )));
            }
        }
        if let Some(creds) = &c.credentials {
            if !conn.stream.is_tls() && !loopback {
                return Err(Error::Setup(format!(
                    "refusing to send SMTP credentials in plain text to {target} ({}, not a loopback address): {}",
                    peer.ip(),
                    if conn.ext.starttls || c.mode == SmtpTls::None {
                        "use --smtp-tls starttls, or smtps://"
                    } else {
                        "the server does not offer STARTTLS; use smtps:// if it speaks TLS on another port, \
                         or remove the credentials for a relay that needs none"
                    }
                )));
            }
            self.login(&mut conn, creds)?;
        }
        Ok(conn)
    }

    fn handshake(
        &self,
        mut tcp: TcpStream,
    ) -> Result<StreamOwned<ClientConnection, TcpStream>, Error> {
        let c = &self.config;
        let target = self.target();
        let config = c
            .tls
            .clone()
            .ok_or_else(|| Error::Setup("TLS asked for without a TLS configuration".into()))?;
        let name = ServerName::try_from(c.host.clone()).map_err(|e| {
            Error::Setup(format!(
                "{:?} cannot be checked against a certificate: {e}",
                c.host
            ))
        })?;
        let mut tls = ClientConnection::new(config, name)
            .map_err(|e| Error::Setup(format!("cannot start TLS with {target}: {e}")))?;
        while tls.is_handshaking() {
            if let Err(e) = tls.complete_io(&mut tcp) {
                return Err(match tls::rustls_error(&e) {
                    Some(r) => Error::Setup(match tls::certificate_problem(r, &c.host) {
                        Some(problem) => problem,
                        None => format!("TLS with {target} failed: {r}"),
                    }),
                    None => io_error(&e, &target, "the TLS handshake", c.timeout),
                });
            }
        }
        Ok(StreamOwned::new(tls, tcp))
    }

    fn ehlo(&self, conn: &mut Conn) -> Result<(), Error> {
        let t = self.config.timeout;
        let reply = conn.command(format!("EHLO {}\r\n", self.hello).as_bytes(), "EHLO", t)?;
        match reply.code {
            250 => conn.ext = Extensions::parse(&reply),
            400..=499 => return Err(reply_error(&reply, "EHLO")),
            _ => {
                // An old server without extensions.
                let reply =
                    conn.command(format!("HELO {}\r\n", self.hello).as_bytes(), "HELO", t)?;
                if reply.code != 250 {
                    return Err(match reply.code {
                        400..=499 => reply_error(&reply, "HELO"),
                        _ => Error::Setup(format!(
                            "{} refuses HELO: {}",
                            self.target(),
                            reply.line()
                        )),
                    });
                }
                conn.ext = Extensions::default();
            }
        }
        Ok(())
    }

    fn login(&self, conn: &mut Conn, creds: &Credentials) -> Result<(), Error> {
        let t = self.config.timeout;
        let target = self.target();
        let b64 = |s: &[u8]| base64::engine::general_purpose::STANDARD.encode(s);
        let has = |m: &str| conn.ext.auth.iter().any(|a| a == m);
        let reply = if has("PLAIN") {
            let mut token = vec![0u8];
            token.extend_from_slice(creds.user.as_bytes());
            token.push(0);
            token.extend_from_slice(creds.password.as_bytes());
            conn.command(
                format!("AUTH PLAIN {}\r\n", b64(&token)).as_bytes(),
                "AUTH",
                t,
            )?
        } else if has("LOGIN") {
            let mut reply = conn.command(b"AUTH LOGIN\r\n", "AUTH", t)?;
            for secret in [&creds.user, &creds.password] {
                if reply.code != 334 {
                    break;
                }
                reply = conn.command(
                    format!("{}\r\n", b64(secret.as_bytes())).as_bytes(),
                    "AUTH",
                    t,
                )?;
            }
            reply
        } else if conn.ext.auth.is_empty() {
            return Err(Error::Setup(format!(
                "{target} offers no authentication (no AUTH in its EHLO reply{}), but credentials are set: \
                 remove them for a server that needs none",
                if conn.stream.is_tls() { "" } else { " before TLS" }
            )));
        } else {
            return Err(Error::Setup(format!(
                "{target} offers AUTH {} only; alert logs in with PLAIN or LOGIN: enable one of those on the server",
                conn.ext.auth.join(" ")
            )));
        };
        match reply.code {
            235 => Ok(()),
            400..=499 => Err(reply_error(&reply, "AUTH")),
            _ => Err(Error::Setup(format!(
                "{target} refused the login of {:?}: {}: check UNILOG_SMTP_USERNAME and UNILOG_SMTP_PASSWORD, or --smtp-credentials",
                creds.user,
                reply.line()
            ))),
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        if let Some(mut conn) = self.conn.take() {
            // Polite, and quick: the server's answer matters to nobody.
            let _ = conn.command(b"QUIT\r\n", "QUIT", Duration::from_secs(1));
        }
    }
}

/// Why a transaction failed, and what becomes of its connection.
enum Failure {
    /// A kept connection that had gone away before anything was accepted.
    Stale,
    /// The connection can carry the next message.
    Keep(Error),
    /// The connection is broken or in an unknown state.
    Drop(Error),
}

fn reply_error(reply: &Reply, what: &str) -> Error {
    let text = format!("{what}: {}", reply.line());
    match reply.code {
        400..=499 => Error::Transient(text),
        _ => Error::Refused(text),
    }
}

fn io_error(e: &io::Error, target: &str, waiting_for: &str, timeout: Duration) -> Error {
    Error::Transient(match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => format!(
            "{target}: timed out after {} waiting for {waiting_for}",
            seconds(timeout)
        ),
        io::ErrorKind::UnexpectedEof => {
            format!("{target}: the server closed the connection during {waiting_for}")
        }
        _ => format!("{target}: {e} (during {waiting_for})"),
    })
}

/// The name this client gives in EHLO: the host's name if it is a plain
/// domain name, else `localhost`.
fn hello_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let name = if rc == 0 {
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        String::from_utf8_lossy(&buf[..end]).into_owned()
    } else {
        String::new()
    };
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if ok {
        name
    } else {
        "localhost".into()
    }
}

/// The message with dot-stuffing (RFC 5321 4.5.2), CRLF line ends, and the
/// final `.` line: ready to go in one write.
fn stuffed(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + message.len() / 64 + 5);
    let mut line_start = true;
    let mut prev = 0u8;
    for &b in message {
        if line_start && b == b'.' {
            out.push(b'.');
        }
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        line_start = b == b'\n';
        prev = b;
    }
    if !message.is_empty() && !line_start {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// One SMTP reply.
#[derive(Debug)]
struct Reply {
    code: u16,
    lines: Vec<String>,
}

impl Reply {
    fn line(&self) -> String {
        format!("{} {}", self.code, self.lines.join(" "))
            .trim_end()
            .to_string()
    }
}

/// What the server said it supports in its EHLO reply.
#[derive(Debug, Default)]
struct Extensions {
    starttls: bool,
    smtputf8: bool,
    eightbitmime: bool,
    auth: Vec<String>,
}

impl Extensions {
    fn parse(reply: &Reply) -> Self {
        let mut ext = Extensions::default();
        for line in reply.lines.iter().skip(1) {
            let upper = line.to_ascii_uppercase();
            let mut words = upper.split([' ', '=']).filter(|w| !w.is_empty());
            match words.next() {
                Some("STARTTLS") => ext.starttls = true,
                Some("SMTPUTF8") => ext.smtputf8 = true,
                Some("8BITMIME") => ext.eightbitmime = true,
                Some("AUTH") => {
                    for m in words {
                        if !ext.auth.iter().any(|a| a == m) {
                            ext.auth.push(m.to_string());
                        }
                    }
                }
                _ => {}
            }
        }
        ext
    }
}

enum Stream {
    Tcp(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Stream {
    fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// A connection and the bytes read from it but not yet used.
struct Conn {
    stream: Stream,
    buf: Vec<u8>,
    start: usize,
    ext: Extensions,
    target: String,
}

/// Longest reply accepted (Postfix's smtp_response_limit is of this order).
const MAX_REPLY: usize = 64 * 1024;

impl Conn {
    /// Writes `bytes` (one write) and reads the reply.
    fn command(&mut self, bytes: &[u8], what: &str, timeout: Duration) -> Result<Reply, Error> {
        self.stream
            .write_all(bytes)
            .and_then(|_| self.stream.flush())
            .map_err(|e| io_error(&e, &self.target, &format!("sending {what}"), timeout))?;
        self.reply(&format!("the reply to {what}"), timeout)
    }

    fn reply(&mut self, what: &str, timeout: Duration) -> Result<Reply, Error> {
        let mut lines = Vec::new();
        let mut code = None;
        loop {
            let line = self.line(what, timeout)?;
            let text = String::from_utf8_lossy(&line);
            let text = text.trim_end_matches(['\r', '\n']);
            let bad =
                || Error::Transient(format!("{}: not an SMTP reply: {:?}", self.target, text));
            let c: u16 = text
                .get(..3)
                .filter(|c| c.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|c| c.parse().ok())
                .ok_or_else(bad)?;
            if code.is_some_and(|k| k != c) {
                return Err(bad());
            }
            code = Some(c);
            let sep = text.as_bytes().get(3).copied();
            lines.push(text.get(4..).unwrap_or("").to_string());
            match sep {
                Some(b'-') => continue,
                None | Some(b' ') => break,
                _ => return Err(bad()),
            }
        }
        Ok(Reply {
            code: code.expect("one line read"),
            lines,
        })
    }

    fn line(&mut self, what: &str, timeout: Duration) -> Result<Vec<u8>, Error> {
        loop {
            if let Some(nl) = memchr::memchr(b'\n', &self.buf[self.start..]) {
                let line = self.buf[self.start..self.start + nl + 1].to_vec();
                self.start += nl + 1;
                if self.start == self.buf.len() {
                    self.buf.clear();
                    self.start = 0;
                }
                return Ok(line);
            }
            if self.buf.len() - self.start > MAX_REPLY {
                return Err(Error::Transient(format!("{}: reply too long", self.target)));
            }
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    return Err(Error::Transient(format!(
                        "{}: the server closed the connection before {what}",
                        self.target
                    )))
                }
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_error(&e, &self.target, what, timeout)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dots_are_stuffed_and_the_end_is_one_write() {
        assert_eq!(stuffed(b"a\r\n.b\r\n..\r\n"), b"a\r\n..b\r\n...\r\n.\r\n");
        assert_eq!(stuffed(b".x\nend"), b"..x\r\nend\r\n.\r\n");
        assert_eq!(stuffed(b""), b".\r\n");
    }

    #[test]
    fn extensions_and_durations() {
        let r = Reply {
            code: 250,
            lines: vec![
                "mail.example.com".into(),
                "STARTTLS".into(),
                "AUTH LOGIN PLAIN".into(),
                "AUTH=CRAM-MD5".into(),
                "8BITMIME".into(),
            ],
        };
        let e = Extensions::parse(&r);
        assert!(e.starttls && e.eightbitmime && !e.smtputf8);
        assert_eq!(e.auth, ["LOGIN", "PLAIN", "CRAM-MD5"]);
        assert_eq!(seconds(Duration::from_secs(10)), "10 s");
        assert_eq!(seconds(Duration::from_millis(1500)), "1.5 s");
        assert!(is_loopback("::ffff:127.0.0.1".parse().unwrap()));
        assert!(is_loopback("127.1.2.3".parse().unwrap()));
        assert!(!is_loopback("10.0.0.1".parse().unwrap()));
    }
}
