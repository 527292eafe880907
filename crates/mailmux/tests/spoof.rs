//! The spoof maildrop: a POP3 user whose store is down gets the administrator's message
//! (`SpoofMessageFile`) or an empty maildrop (`SpoofEmptyMailbox`) instead of an error. The
//! store is a closed port (the lab's `ghost` user, mailHost 127.0.0.9); the clients are
//! Python's poplib and a transcript.

mod common;

use common::{Mailmux, captured_logs, lab};
use mailmux_testkit::lab::{DirectoryKind, GHOST};
use mailmux_testkit::transcript::Transcript;

const USERS: usize = 4;

/// The administrator's notice, as an operator would write it (LF line ends, a dot line).
const NOTICE: &str = "From: postmaster@example.com\nSubject: Your mailbox is being moved\n\n\
                      Your mail is safe and will be back shortly.\n.\nThe mail team\n";

fn spoof_config(extra: &str) -> std::path::PathBuf {
    let lab = lab(USERS);
    // One file per configuration: the tests of this binary run at once, and a file being
    // rewritten by one could be read empty by the other's load.
    static FILES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = FILES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let file = lab.dir.path().join(format!("spoof-{}-{n}.txt", std::process::id()));
    std::fs::write(&file, NOTICE).expect("write the notice");
    lab.write_config(DirectoryKind::Ldif, "", &format!("default:SpoofMessageFile {}\n{extra}", file.display()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poplib_reads_the_notice_when_the_store_is_down() {
    let mm = Mailmux::start(&spoof_config("")).await;
    let script = r#"
import poplib, sys, json
p = poplib.POP3(sys.argv[1], int(sys.argv[2]), timeout=20)
p.user(sys.argv[3])
out = {"pass": p.pass_(sys.argv[4]).decode()}
out["stat"] = list(p.stat())
out["list"] = [l.decode() for l in p.list()[1]]
out["uidl"] = [l.decode() for l in p.uidl()[1]]
out["retr"] = [l.decode() for l in p.retr(1)[1]]
out["top"] = [l.decode() for l in p.top(1, 0)[1]]
out["dele"] = p.dele(1).decode()
out["stat_after_dele"] = list(p.stat())
out["quit"] = p.quit().decode()
print(json.dumps(out))
"#;
    let output = tokio::process::Command::new("python3")
        .args(["-c", script, &mm.pop3.ip().to_string(), &mm.pop3.port().to_string(), GHOST, "any-password"])
        .output()
        .await
        .expect("python3 (Debian package python3) must be installed");
    assert!(output.status.success(), "poplib failed: {}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let normalised = NOTICE.replace('\n', "\r\n");
    let octets = normalised.len();
    for expected in [
        "\"pass\": \"+OK Logged in.\"".to_owned(),
        format!("\"stat\": [1, {octets}]"),
        format!("\"list\": [\"1 {octets}\"]"),
        "\"uidl\": [\"1 mailmux-spoof-".to_owned(),
        // poplib undoes the dot-stuffing of the lone "." line.
        "\"retr\": [\"From: postmaster@example.com\", \"Subject: Your mailbox is being moved\", \"\", \
         \"Your mail is safe and will be back shortly.\", \".\", \"The mail team\"]"
            .to_owned(),
        "\"top\": [\"From: postmaster@example.com\", \"Subject: Your mailbox is being moved\", \"\"]".to_owned(),
        "\"dele\": \"+OK message 1 deleted\"".to_owned(),
        "\"stat_after_dele\": [0, 0]".to_owned(),
        "\"quit\": \"+OK Logging out\"".to_owned(),
    ] {
        assert!(text.contains(&expected), "missing {expected} in {text}");
    }
    mm.stop().await;
    let logs = captured_logs();
    assert!(logs.contains("serving the spoof maildrop"), "{logs}");
    assert!(logs.contains("outcome=\"spoofed\"") || logs.contains("outcome=spoofed"), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_maildrop_and_the_real_store_untouched() {
    let mm = Mailmux::start(&spoof_config("default:SpoofEmptyMailbox yes\n")).await;
    let mut c = Transcript::connect(mm.pop3).await;
    c.expect("+OK").await;
    // USER, PASS and the maildrop's commands in one write: they are the maildrop's.
    c.send_raw(format!("USER {GHOST}\r\nPASS x\r\nSTAT\r\nLIST\r\nRETR 1\r\nQUIT\r\n").as_bytes()).await;
    c.expect("+OK").await;
    c.expect("+OK Logged in.").await;
    c.expect("+OK 0 0").await;
    c.expect("+OK 0 messages (0 octets)").await;
    c.expect(".").await;
    c.expect("-ERR no such message").await;
    c.expect("+OK Logging out").await;
    c.expect_closed().await;
    // A user whose store is up is relayed as ever: the spoof is only for stores that are down.
    let user = lab(USERS).user_on(0);
    let mut c = Transcript::connect(mm.pop3).await;
    c.expect("+OK").await;
    c.send(&format!("USER {}", user.uid)).await;
    c.expect("+OK").await;
    c.send(&format!("PASS {}", user.password)).await;
    c.expect("+OK").await;
    common::pop3_expect_store(&mut c, 0).await;
    // An unknown user is refused, spoof or not.
    let mut c = Transcript::connect(mm.pop3).await;
    c.expect("+OK").await;
    c.send("USER nobody-here").await;
    c.expect("+OK").await;
    c.send("PASS x").await;
    c.expect("-ERR [AUTH]").await;
    mm.stop().await;
}
