//! Shared by the integration tests: the lab of each test binary, an in-process mailmux, and
//! a log capture (set `MAILMUX_TEST_LOG=1` to see mailmux's log on standard error).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use mailmux::Server;
use mailmux_config::Protocol;
use mailmux_testkit::dovecot::marker_subject;
use mailmux_testkit::lab::{Lab, STORE_NAMES};
use mailmux_testkit::transcript::Transcript;
use tokio_util::sync::CancellationToken;

/// Starts (once per test binary) a lab with `users` users and slapd.
pub fn lab(users: usize) -> &'static Lab {
    static LAB: OnceLock<Lab> = OnceLock::new();
    capture_logs();
    LAB.get_or_init(|| Lab::start(users, true))
}

/// A mailmux serving in this test's runtime.
pub struct Mailmux {
    pub imap: SocketAddr,
    pub pop3: SocketAddr,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Mailmux {
    /// Loads `dir` and serves it.
    pub async fn start(dir: &Path) -> Mailmux {
        Mailmux::start_instance(dir, None).await
    }

    /// Loads `dir` as instance `instance` (`NAME:Param` lines apply) and serves it.
    pub async fn start_instance(dir: &Path, instance: Option<&str>) -> Mailmux {
        let loaded = mailmux_config::load(dir, instance).unwrap_or_else(|d| panic!("config errors:\n{d}"));
        let server = Server::bind(&loaded.config).await.expect("bind");
        let addr =
            |p| server.local_addrs().into_iter().find(|(proto, _)| *proto == p).map(|(_, a)| a).expect("listener");
        let (imap, pop3) = (addr(Protocol::Imap), addr(Protocol::Pop3));
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(server.run(shutdown.clone()));
        Mailmux { imap, pop3, shutdown, task }
    }

    /// Cancels and waits for the drain.
    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.task.await;
    }
}

/// Everything mailmux logged in this test binary, at debug level.
pub fn captured_logs() -> String {
    String::from_utf8_lossy(
        &LOGS.get().expect("capture installed").lock().unwrap_or_else(std::sync::PoisonError::into_inner),
    )
    .into_owned()
}

static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();

/// Installs the log capture (once per test binary); [`lab`] does it too.
pub fn capture_logs() {
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = buf.clone();
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || LogWriter(writer.clone()))
            .try_init();
        buf
    });
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).extend_from_slice(data);
        if std::env::var_os("MAILMUX_TEST_LOG").is_some() {
            std::io::Write::write_all(&mut std::io::stderr(), data)?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// After login: the INBOX holds exactly the marker of `store`.
pub async fn imap_expect_store(c: &mut Transcript, store: usize) {
    c.send("s1 SELECT INBOX").await;
    let lines = c.until("s1 ").await;
    assert!(lines.iter().any(|l| l == "* 1 EXISTS"), "{}", c.transcript());
    assert!(lines.last().is_some_and(|l| l.starts_with("s1 OK")), "{}", c.transcript());
    c.send("s2 FETCH 1 BODY.PEEK[HEADER.FIELDS (SUBJECT)]").await;
    let lines = c.until("s2 ").await;
    let subject = format!("Subject: {}", marker_subject(STORE_NAMES[store]));
    if !lines.contains(&subject) {
        c.fail(&format!("expected the marker of {}", STORE_NAMES[store]));
    }
    c.send("s3 LOGOUT").await;
    c.expect("* BYE").await;
    c.expect("s3 OK").await;
    c.expect_closed().await;
}

/// After login: one message, and it is the marker of `store`.
pub async fn pop3_expect_store(c: &mut Transcript, store: usize) {
    c.send("STAT").await;
    c.expect("+OK 1 ").await;
    c.send("RETR 1").await;
    c.expect("+OK").await;
    let message = c.until(".").await;
    let subject = format!("Subject: {}", marker_subject(STORE_NAMES[store]));
    if !message.contains(&subject) {
        c.fail(&format!("expected the marker of {}", STORE_NAMES[store]));
    }
    c.send("QUIT").await;
    c.expect("+OK").await;
    c.expect_closed().await;
}
