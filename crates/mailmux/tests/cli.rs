//! The `mailmux` binary: `check` on good and bad configurations, `run` until SIGTERM.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::lab;
use mailmux_testkit::lab::DirectoryKind;
use mailmux_testkit::ports::free_port;
use mailmux_testkit::transcript::Transcript;

const MAILMUX: &str = env!("CARGO_BIN_EXE_mailmux");

fn check(dir: &Path) -> (bool, String) {
    let out = Command::new(MAILMUX).arg("check").arg("-c").arg(dir).output().expect("run mailmux check");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn check_names_unknown_parameters_and_bad_values_with_file_and_line() {
    let lab = lab(2);
    let dir = lab.write_config(DirectoryKind::Ldif, "default:Frobnicate yes\ndefault:BacksidePort 99999\n", "");
    let (ok, out) = check(&dir);
    assert!(!ok, "bad values must fail the check:\n{out}");
    let file = dir.join("ImapProxyAService.cfg");
    let text = std::fs::read_to_string(&file).expect("read the written file");
    let line_of = |needle: &str| text.lines().position(|l| l.contains(needle)).expect("line written") + 1;
    let imap = file.display().to_string();
    let (frobnicate, port) = (line_of("Frobnicate"), line_of("99999"));
    assert!(out.contains(&format!("{imap}:{frobnicate}: warning: unknown parameter 'Frobnicate' ignored")), "{out}");
    assert!(out.contains(&format!("{imap}:{port}: error: BacksidePort: '99999' is not a port")), "{out}");
}

#[test]
fn check_accepts_a_good_configuration_and_says_what_it_would_run() {
    let lab = lab(2);
    let dir = lab.write_config(DirectoryKind::Ldif, "", "");
    let (ok, out) = check(&dir);
    assert!(ok, "{out}");
    assert!(out.contains("imap on 127.0.0.1:0"), "{out}");
    assert!(out.contains("pop3 on 127.0.0.1:0"), "{out}");
    assert!(out.contains(": ok, 0 warning(s)"), "{out}");
}

#[test]
fn shipped_examples_pass_the_check() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/mmp");
    let (ok, out) = check(&examples);
    assert!(ok, "{out}");
    assert!(out.contains(": ok, 0 warning(s)"), "{out}");
}

#[test]
fn shipped_certmap_example_parses_cleanly() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/mmp/certmap.conf");
    let text = std::fs::read_to_string(&path).expect("examples/mmp/certmap.conf");
    let mut diags = mailmux_config::Diagnostics::default();
    let map = mailmux_config::certmap::parse(&path, &text, &mut diags);
    assert!(diags.is_empty(), "{diags}");
    assert_eq!(map.mappings.len(), 2);
    let issuer = mailmux_config::dn::Dn::parse("O=example, CN=Example Mail CA").expect("a DN");
    assert_eq!(map.for_issuer(&issuer).map(|m| m.name.as_str()), Some("example"));
}

#[test]
fn check_reports_a_broken_ldif_file() {
    let lab = lab(2);
    let dir = lab.write_config(DirectoryKind::Ldif, "", "");
    let bad = dir.join("bad.ldif");
    std::fs::write(&bad, "dn: uid=x\nchangetype: add\n").expect("write");
    let imap = dir.join("ImapProxyAService.cfg");
    let text = std::fs::read_to_string(&imap)
        .expect("read")
        .replace(&format!("ldif:{}", lab.ldif.display()), &format!("ldif:{}", bad.display()));
    std::fs::write(&imap, text).expect("write");
    let (ok, out) = check(&dir);
    assert!(!ok, "{out}");
    assert!(out.contains("bad.ldif:2: change records are not supported"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_serves_until_sigterm_and_says_goodbye_and_logs_per_service() {
    let lab = lab(2);
    // IMAP logs to a directory of its own; POP3 has none, so its lines join AService's log.
    let tmp = tempfile::tempdir().expect("temp dir");
    let imap_log = tmp.path().join("imaplog");
    let dir = lab.write_config(
        DirectoryKind::Ldif,
        &format!("default:LogDir {}\ndefault:LogLevel 5\n", imap_log.display()),
        "",
    );
    let (imap_port, pop3_port) = (free_port(), free_port());
    std::fs::write(
        dir.join("AService.cfg"),
        format!("default:ServiceList imapproxy@127.0.0.1:{imap_port} popproxy@127.0.0.1:{pop3_port}\ndefault:LogDir {}/log\ndefault:LogLevel 6\n", dir.display()),
    )
    .expect("write AService.cfg");
    let mut child = tokio::process::Command::new(MAILMUX)
        .arg("run")
        .arg("-c")
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start mailmux");
    let imap = ([127, 0, 0, 1], imap_port).into();
    let mut tries = 0;
    while tokio::net::TcpStream::connect(imap).await.is_err() {
        tries += 1;
        assert!(tries < 100, "mailmux did not listen on {imap}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let user = lab.user_on(1);
    let mut c = Transcript::connect(imap).await;
    c.expect("* OK").await;
    c.send(&format!("a1 LOGIN {} {}", user.uid, user.password)).await;
    c.expect("a1 OK").await;
    c.send("a2 LOGOUT").await;
    c.expect("* BYE").await;
    c.expect("a2 OK").await;
    c.expect_closed().await;
    // Closed both ways, the session ends and writes its summary (with the user) before the
    // drain: at LogLevel 5 that line is the only one naming the user.
    drop(c);

    let mut p = Transcript::connect(([127, 0, 0, 1], pop3_port).into()).await;
    p.expect("+OK").await;
    p.send("QUIT").await;
    p.expect("+OK").await;

    let mut waiting = Transcript::connect(imap).await;
    waiting.expect("* OK").await;
    let pid = child.id().expect("pid").to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().expect("kill").success());
    waiting.expect("* BYE [UNAVAILABLE]").await;
    let status =
        tokio::time::timeout(Duration::from_secs(10), child.wait()).await.expect("exits after SIGTERM").expect("wait");
    assert!(status.success(), "{status}");

    let imap = std::fs::read_to_string(imap_log.join("ImapProxy.log")).expect("IMAP LogDir/ImapProxy.log written");
    assert!(imap.contains("imap{id=") && imap.contains("session end"), "{imap}");
    assert!(imap.contains(&format!("user={}", user.uid)), "{imap}");
    assert!(!imap.contains(&user.password), "a password reached the log");
    let main = std::fs::read_to_string(dir.join("log/mailmux.log")).expect("AService LogDir/mailmux.log written");
    assert!(main.contains("listening") && main.contains("pop3{id="), "{main}");
    assert!(!main.contains("imap{"), "IMAP sessions belong in ImapProxy.log:\n{main}");
}

#[test]
fn log_lines_to_a_pipe_carry_no_colour_codes() {
    let lab = lab(2);
    let dir = lab.write_config(DirectoryKind::Ldif, "", "");
    let child = Command::new(MAILMUX)
        .args(["run", "--log-stderr", "-c"])
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start mailmux");
    std::thread::sleep(Duration::from_millis(700));
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("listening"), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "ANSI escapes in a pipe: {stderr:?}");
}

/// The shipped examples in a temporary directory, their vdmap file enabled.
fn examples_with_vdmap() -> tempfile::TempDir {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/mmp");
    let dir = tempfile::tempdir().expect("temp dir");
    for entry in std::fs::read_dir(&examples).expect("examples/mmp") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("read an example");
        let text = text.replace("#default:VirtualDomainFile vdmap.cfg", "default:VirtualDomainFile vdmap.cfg");
        std::fs::write(dir.path().join(path.file_name().expect("a file name")), text).expect("write");
    }
    dir
}

#[test]
fn check_effective_prints_every_value_with_its_origin_and_hides_secrets() {
    let dir = examples_with_vdmap();
    let out = Command::new(MAILMUX)
        .args(["check", "--effective", "-c"])
        .arg(dir.path())
        .output()
        .expect("run mailmux check --effective");
    let out_text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{out_text}");
    let line_of = |file: &str, needle: &str| {
        let text = std::fs::read_to_string(dir.path().join(file)).expect("read");
        text.lines().position(|l| l.starts_with(needle)).unwrap_or_else(|| panic!("{needle} in {file}")) + 1
    };
    // The sections, in order: AService.cfg, each service, the IMAP service's vdmap entries.
    let sections: Vec<&str> = out_text.lines().filter(|l| l.starts_with("# ")).collect();
    let vdmap = |name: &str| format!("# imap: vdmap {name} 192.0.2.1");
    assert!(sections[0].ends_with("AService.cfg"), "{out_text}");
    assert!(sections[1].starts_with("# imap: ImapProxyAService.cfg"), "{out_text}");
    assert!(sections[2].starts_with(&vdmap("org")), "{out_text}");
    assert!(sections[3].starts_with(&vdmap("net")), "{out_text}");
    assert!(sections.iter().any(|s| s.starts_with("# pop3: PopProxyAService.cfg")), "{out_text}");
    let section = |header: &str| -> Vec<&str> {
        out_text.lines().skip_while(|l| !l.starts_with(header)).skip(1).take_while(|l| !l.is_empty()).collect()
    };
    let setting = |lines: &[&str], name: &str| -> String {
        let prefix = format!("{name} = ");
        lines.iter().find(|l| l.starts_with(&prefix)).map(|l| (*l).to_owned()).unwrap_or_else(|| panic!("{name}"))
    };
    let imap = section("# imap: ImapProxyAService.cfg");
    let origin = |line: usize| format!("# ImapProxyAService.cfg:{line}");
    let timeout = setting(&imap, "Timeout");
    assert!(
        timeout.starts_with("Timeout = 1800 ")
            && timeout.ends_with(&origin(line_of("ImapProxyAService.cfg", "default:Timeout"))),
        "{timeout}"
    );
    let bind_pass = setting(&imap, "BindPass");
    assert!(bind_pass.starts_with("BindPass = <hidden> "), "{bind_pass}");
    assert!(bind_pass.ends_with(&origin(line_of("ImapProxyAService.cfg", "default:BindPass"))), "{bind_pass}");
    assert!(setting(&imap, "LdapCacheTTL").ends_with("# default"), "{out_text}");
    assert!(setting(&imap, "LdapURL").contains(&format!("ldif:{}", dir.path().join("users.ldif").display())));
    let net = section(&vdmap("net"));
    let vdmap_origin = |needle: &str| format!("# vdmap: vdmap.cfg:{}", line_of("vdmap.cfg", needle));
    assert!(setting(&net, "BindPass").ends_with(&vdmap_origin("net:BindPass")), "{out_text}");
    assert!(setting(&net, "DefaultDomain").starts_with("DefaultDomain = example.net "), "{out_text}");
    assert!(setting(&net, "SearchFormat").ends_with(&origin(line_of("ImapProxyAService.cfg", "default:SearchFormat"))));
    assert!(!net.iter().any(|l| l.starts_with("Timeout = ")), "not a vdmap parameter:\n{out_text}");
    assert!(!out_text.contains("net-secret") && !out_text.contains("= secret"), "a secret printed:\n{out_text}");
}
