//! The log files of a running `mailmux`: `LogLevel` 1–7 on the syslog scale, the session id
//! on every line a session writes (at every level), and `LogFormat json`, every line of which
//! parses as a JSON object.
//!
//! Each test runs the binary, plays the same sessions (a refused login, a relayed one, one
//! whose store is down, and one with a hostile login name), stops it, and reads its log.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{MailmuxProcess, imap_expect_store, lab};
use mailmux_testkit::lab::{DirectoryKind, GHOST, Lab, SERVER_DOWN_ALERT};
use mailmux_testkit::transcript::Transcript;

const WRONG: &str = "Canary-Wrong-Pw";
/// A login name that tries to end a text line and a JSON object, and to reverse text.
const HOSTILE: &str = "ev\\\"il\"},{\u{202e}x";

/// Lines written outside any session: start-up, limits, listeners, stop.
const PROCESS_LINES: &[&str] = &[
    "open-files limit",
    "session limits",
    "listening",
    "stop signal received",
    "shutting down",
    "drain deadline",
    // The background questions to the stores (store/capabilities.rs) belong to no session.
    "capabilities learned from the stores",
    "stores differ in what they offer",
    "store capabilities not learned",
    "capabilities are learned from at most",
];

/// Plays the sessions; returns how many there were. (The log has a few more: the
/// connections `MailmuxProcess::start` made to see the ports listen.)
async fn play_sessions(mm: &MailmuxProcess, lab: &Lab) -> usize {
    // 1: a wrong password, then goodbye.
    let user = lab.user_on(0);
    let mut c = Transcript::connect(mm.imap).await;
    c.expect("* OK").await;
    c.send(&format!("a1 LOGIN {} {WRONG}", user.uid)).await;
    c.expect("a1 NO [AUTHENTICATIONFAILED]").await;
    c.send("a2 LOGOUT").await;
    c.expect("* BYE").await;
    // 2: relayed to store B.
    let user = lab.user_on(1);
    let mut c = Transcript::connect(mm.imap).await;
    c.expect("* OK").await;
    c.send(&format!("a1 LOGIN {} {}", user.uid, user.password)).await;
    c.expect("a1 OK").await;
    imap_expect_store(&mut c, 1).await;
    // 3: the store is down.
    let mut c = Transcript::connect(mm.imap).await;
    c.expect("* OK").await;
    c.send(&format!("a1 LOGIN {GHOST} ghostpw")).await;
    c.expect(&format!("* NO [ALERT] {SERVER_DOWN_ALERT}")).await;
    c.expect("a1 NO [UNAVAILABLE]").await;
    c.send("a2 LOGOUT").await;
    c.expect("* BYE").await;
    // 4: POP3 with a hostile name (an IMAP quoted string cannot carry every character).
    let mut p = Transcript::connect(mm.pop3).await;
    p.expect("+OK").await;
    p.send(&format!("USER {HOSTILE}")).await;
    p.expect("+OK").await;
    p.send(&format!("PASS {WRONG}")).await;
    p.expect("-ERR [AUTH]").await;
    p.send("QUIT").await;
    p.expect("+OK").await;
    4
}

/// Stops the process (SIGTERM, which flushes its log) and returns `dir/log/mailmux.log`.
async fn stop_and_read_log(mut mm: MailmuxProcess, dir: &Path) -> String {
    let pid = mm.pid.to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().expect("kill").success());
    let status = tokio::time::timeout(Duration::from_secs(15), mm.child.wait())
        .await
        .expect("mailmux exits after SIGTERM")
        .expect("wait");
    assert!(status.success(), "{status}");
    std::fs::read_to_string(dir.join("log/mailmux.log")).expect("LogDir/mailmux.log written")
}

/// The session id of a text line (`imap{id=7 …}` / `pop3{id=7 …}`), if it has one.
fn text_session_id(line: &str) -> Option<u64> {
    let at = line.find("imap{id=").or_else(|| line.find("pop3{id="))?;
    let digits: String = line[at + 8..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

fn is_process_line(message: &str) -> bool {
    PROCESS_LINES.iter().any(|p| message.contains(p))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_line_of_a_session_carries_its_id_at_debug_level() {
    let lab = lab(2);
    let dir = lab.write_config(DirectoryKind::Ldif, "", "");
    let mm = MailmuxProcess::start(&dir, "default:LogLevel 7\n").await;
    let sessions = play_sessions(&mm, lab).await;
    let log = stop_and_read_log(mm, &dir).await;

    let mut ids = std::collections::BTreeSet::new();
    for line in log.lines() {
        match text_session_id(line) {
            Some(id) => {
                ids.insert(id);
            }
            None => assert!(is_process_line(line), "a line without a session id:\n{line}\n\nwhole log:\n{log}"),
        }
    }
    let with_id = |needle: &str| log.lines().filter(|l| l.contains(needle) && text_session_id(l).is_some()).count();
    assert_eq!(with_id("session end"), ids.len(), "one summary per session id:\n{log}");
    assert!(ids.len() >= sessions, "{log}");
    assert_eq!(with_id("login refused"), 2, "{log}");
    assert_eq!(with_id("logged in"), 1, "{log}");
    assert_eq!(with_id("login failed"), 1, "the store failure:\n{log}");
    assert!(with_id("directory search") >= 3, "debug lines are written at 7:\n{log}");
    assert!(!log.contains(WRONG) && !log.contains("ghostpw"), "a password reached the log:\n{log}");
    assert!(!log.contains('\u{202e}'), "an unescaped bidirectional override:\n{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warning_level_log_keeps_the_session_id_and_drops_notices() {
    let lab = lab(2);
    let dir = lab.write_config(DirectoryKind::Ldif, "", "");
    let mm = MailmuxProcess::start(&dir, "default:LogLevel 4\n").await;
    play_sessions(&mm, lab).await;
    let log = stop_and_read_log(mm, &dir).await;
    // The store failure is a warning, written inside the session's span (an `info` span):
    // the span must exist at level 4 for the line to name its session.
    let failed: Vec<&str> = log.lines().filter(|l| l.contains("login failed")).collect();
    assert_eq!(failed.len(), 1, "{log}");
    assert!(text_session_id(failed[0]).is_some(), "{log}");
    assert!(failed[0].contains(GHOST), "{log}");
    for line in log.lines() {
        assert!(line.contains(" WARN ") || line.contains(" ERROR "), "below warning at LogLevel 4: {line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notices_at_five_information_at_six() {
    let lab = lab(2);
    for (level, logged_in) in [(5, 0), (6, 1)] {
        let dir = lab.write_config(DirectoryKind::Ldif, "", "");
        let mm = MailmuxProcess::start(&dir, &format!("default:LogLevel {level}\n")).await;
        let sessions = play_sessions(&mm, lab).await;
        let log = stop_and_read_log(mm, &dir).await;
        let count = |needle: &str| log.lines().filter(|l| l.contains(needle)).count();
        assert!(count("session end") >= sessions, "level {level}:\n{log}");
        assert_eq!(count("login refused"), 2, "level {level}:\n{log}");
        assert_eq!(count("logged in"), logged_in, "level {level}:\n{log}");
        assert_eq!(count("session limits"), logged_in, "level {level}:\n{log}");
        assert_eq!(count(" DEBUG "), 0, "level {level}:\n{log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_lines_parse_and_name_their_session() {
    let lab = lab(2);
    let dir = lab.write_config(DirectoryKind::Ldif, "", "");
    let mm = MailmuxProcess::start(&dir, "default:LogLevel 7\ndefault:LogFormat json\n").await;
    let client_port = mm.imap.port();
    let sessions = play_sessions(&mm, lab).await;
    let log = stop_and_read_log(mm, &dir).await;
    assert!(!log.contains(WRONG) && !log.contains("ghostpw"), "a password reached the log:\n{log}");

    let mut ids = std::collections::BTreeSet::new();
    let mut summaries = 0;
    let mut hostile_seen = false;
    for line in log.lines() {
        let object: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}):\n{line}\n\nwhole log:\n{log}"));
        let text = |key: &str| object.get(key).and_then(serde_json::Value::as_str);
        assert!(text("timestamp").is_some_and(|t| t.ends_with('Z') && t.contains('T')), "{line}");
        let severity = object.get("severity").and_then(serde_json::Value::as_u64).expect("severity");
        let level = text("level").expect("level");
        assert!((1..=7).contains(&severity), "{line}");
        assert_eq!(
            level,
            ["alert", "crit", "err", "warning", "notice", "info", "debug"][severity as usize - 1],
            "{line}"
        );
        let message = text("message").expect("message");
        let fields = object.get("fields").and_then(serde_json::Value::as_object).expect("fields object");
        match object.get("sid").and_then(serde_json::Value::as_u64) {
            Some(sid) => {
                ids.insert(sid);
                assert!(matches!(text("service"), Some("imap" | "pop3")), "{line}");
                let client = text("client").expect("client with sid");
                assert!(client.starts_with("127.0.0.1:") && !client.ends_with(&format!(":{client_port}")), "{line}");
                assert!(text("local").is_some_and(|l| l.starts_with("127.0.0.1:")), "{line}");
            }
            None => assert!(is_process_line(message), "a line without a session id:\n{line}\n\nwhole log:\n{log}"),
        }
        if message == "session end" {
            summaries += 1;
            assert!(fields.get("bytes_in").is_some_and(serde_json::Value::is_u64), "{line}");
            assert!(fields.get("tls").is_some_and(serde_json::Value::is_boolean), "{line}");
        }
        if message == "login refused" && fields.get("user").and_then(serde_json::Value::as_str) == Some(HOSTILE) {
            hostile_seen = true;
        }
    }
    assert_eq!(summaries, ids.len(), "one summary per session id:\n{log}");
    assert!(ids.len() >= sessions, "{log}");
    assert!(hostile_seen, "the hostile name, read back exactly:\n{log}");
    assert!(!log.contains('\u{202e}'), "an unescaped bidirectional override:\n{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_that_cannot_serve_says_so_at_level_one() {
    let lab = lab(2);
    let dir = lab.write_config(DirectoryKind::Ldif, "", "");
    // Another process holds the IMAP port: binding it fails after the log is open.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    std::fs::write(
        dir.join("AService.cfg"),
        format!(
            "default:ServiceList imapproxy@127.0.0.1:{port}\ndefault:LogDir {}/log\ndefault:LogLevel 1\n\
             default:LogFormat json\n",
            dir.display()
        ),
    )
    .expect("write AService.cfg");
    // Bounded: a regression that keeps serving after the failed bind must fail, not hang.
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_mailmux"))
        .arg("run")
        .arg("-c")
        .arg(&dir)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(std::time::Duration::from_secs(15), run)
        .await
        .expect("mailmux exits when it cannot serve")
        .expect("run mailmux");
    assert!(!out.status.success());
    let log = std::fs::read_to_string(dir.join("log/mailmux.log")).expect("the log was opened");
    let lines: Vec<serde_json::Value> =
        log.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect();
    assert_eq!(lines.len(), 1, "at LogLevel 1 only the alert:\n{log}");
    assert_eq!(lines[0]["level"], "alert", "{log}");
    let message = lines[0]["message"].as_str().unwrap_or_default();
    assert!(message.starts_with("cannot serve: ") && message.contains(&port.to_string()), "{log}");
    drop(taken);
}
