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
    /// For reloads.
    pub handle: mailmux::server::ServerHandle,
    /// The metrics and admin endpoints, when `MetricsListen` / `AdminListen` are set.
    pub control: Vec<(mailmux::control::Surface, mailmux::control::ControlAddr)>,
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
        let handle = server.handle();
        let control = server.control_addrs();
        let task = tokio::spawn(server.run(shutdown.clone()));
        Mailmux { imap, pop3, handle, control, shutdown, task }
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
            .fmt_fields(mailmux::logging::safe_fields())
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

/// The `mailmux` binary running as a process of its own (for what only a process shows:
/// its memory, its descriptor limit, its log files, signals).
pub struct MailmuxProcess {
    pub child: tokio::process::Child,
    pub pid: u32,
    pub imap: SocketAddr,
    pub pop3: SocketAddr,
}

impl MailmuxProcess {
    /// Rewrites `dir`'s AService.cfg to listen on fixed free ports and log to `dir/log` at
    /// level 6 (plus `aservice_extra` lines, which may set another `LogLevel`), starts
    /// `mailmux run`, and waits until it listens. `MAILMUX_TEST_BINARY`, when
    /// set, names another build to run instead (to show a test failing on an older one).
    pub async fn start(dir: &Path, aservice_extra: &str) -> MailmuxProcess {
        use mailmux_testkit::ports::free_port;
        let (imap_port, pop3_port) = (free_port(), free_port());
        std::fs::write(
            dir.join("AService.cfg"),
            format!(
                "default:ServiceList imapproxy@127.0.0.1:{imap_port} popproxy@127.0.0.1:{pop3_port}\n\
                 default:LogDir {}/log\n{}{aservice_extra}",
                dir.display(),
                if aservice_extra.to_ascii_lowercase().contains(":loglevel ") { "" } else { "default:LogLevel 6\n" }
            ),
        )
        .expect("write AService.cfg");
        let binary = std::env::var_os("MAILMUX_TEST_BINARY")
            .map_or_else(|| std::path::PathBuf::from(env!("CARGO_BIN_EXE_mailmux")), std::path::PathBuf::from);
        let child = tokio::process::Command::new(binary)
            .arg("run")
            .arg("-c")
            .arg(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start mailmux");
        let pid = child.id().expect("pid");
        let (imap, pop3) = (([127, 0, 0, 1], imap_port).into(), ([127, 0, 0, 1], pop3_port).into());
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(imap).await.is_ok() && tokio::net::TcpStream::connect(pop3).await.is_ok()
            {
                return MailmuxProcess { child, pid, imap, pop3 };
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("mailmux did not listen on {imap} and {pop3}");
    }

    /// Resident memory, from /proc.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).expect("read /proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }

    /// Everything the process logged so far (its LogDir under the configuration directory).
    pub fn log(&self, dir: &Path) -> String {
        std::fs::read_to_string(dir.join("log/mailmux.log")).unwrap_or_default()
    }
}
