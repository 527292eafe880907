//! Server processes under a watchdog.
//!
//! Each daemon runs in the foreground under `sh`, which stops it when the test process
//! (its `PARENT`) is gone, or when the [`Daemon`] is dropped. Its output goes to a log file
//! (a daemon holding the test's stdout would keep pipes open forever).

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const WATCHDOG: &str = r#"
"$@" & child=$!
trap 'kill -TERM $child 2>/dev/null; wait $child; exit 0' TERM INT
while kill -0 "$PARENT" 2>/dev/null && kill -0 $child 2>/dev/null; do sleep 0.3; done
kill -TERM $child 2>/dev/null
wait $child
"#;

/// A running server process.
#[derive(Debug)]
pub struct Daemon {
    name: String,
    watchdog: Child,
    log: PathBuf,
}

impl Daemon {
    /// Starts `program args…` with its output appended to `log`.
    pub fn spawn(name: &str, program: &Path, args: &[&str], log: &Path) -> Daemon {
        // Appended, so a restarted daemon's log keeps what the previous run wrote.
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap_or_else(|e| panic!("{name}: cannot create {}: {e}", log.display()));
        let err = out.try_clone().expect("clone log handle");
        let watchdog = Command::new("sh")
            .arg("-c")
            .arg(WATCHDOG)
            .arg("watchdog")
            .arg(program)
            .args(args)
            .env("PARENT", std::process::id().to_string())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("{name}: cannot start {}: {e}", program.display()));
        Daemon { name: name.to_owned(), watchdog, log: log.to_path_buf() }
    }

    /// Waits until `addr` accepts connections, or fails the test with the daemon's log.
    pub fn wait_for_port(&mut self, addr: SocketAddr) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.watchdog.try_wait() {
                panic!("{} exited ({status}) before listening on {addr}:\n{}", self.name, self.log_text());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{} did not listen on {addr} within 20 s:\n{}", self.name, self.log_text());
    }

    /// The daemon's output so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stops the daemon and waits for it.
    pub fn stop(&mut self) {
        if let Ok(None) = self.watchdog.try_wait() {
            let _ = Command::new("kill").arg("-TERM").arg(self.watchdog.id().to_string()).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.watchdog.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.watchdog.kill();
            let _ = self.watchdog.wait();
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}
