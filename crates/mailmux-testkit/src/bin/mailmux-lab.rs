//! `mailmux-lab`: a throwaway mail site to try mailmux against.
//!
//! Starts two Dovecot stores on 127.0.0.2 and 127.0.0.3, writes an LDIF directory of users
//! spread over them and a mailmux configuration directory, runs `mailmux run` on it, and
//! prints commands that log in through it. Ctrl-C stops everything.
//!
//! Usage: `mailmux-lab [--mailmux PATH] [--users N]`

use std::process::Command;

use mailmux_testkit::lab::{DirectoryKind, Lab, STORE_NAMES};

fn main() {
    let mut args = std::env::args().skip(1);
    let mut mailmux = "mailmux".to_owned();
    let mut users = 4;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--mailmux" => mailmux = args.next().expect("--mailmux PATH"),
            "--users" => users = args.next().and_then(|n| n.parse().ok()).expect("--users N"),
            _ => {
                eprintln!("usage: mailmux-lab [--mailmux PATH] [--users N]");
                std::process::exit(2);
            }
        }
    }
    eprintln!("Starting two Dovecot stores …");
    let lab = Lab::start(users, false);
    let imap_port = mailmux_testkit::ports::free_port();
    let pop3_port = mailmux_testkit::ports::free_port();
    let cfg = lab.write_config(DirectoryKind::Ldif, "", "");
    std::fs::write(
        cfg.join("AService.cfg"),
        format!(
            "default:ServiceList imapproxy@127.0.0.1:{imap_port} popproxy@127.0.0.1:{pop3_port}\ndefault:LogLevel 5\n"
        ),
    )
    .expect("write AService.cfg");
    let a = lab.user_on(0);
    let b = lab.user_on(1);
    println!("\nmailmux configuration: {}", cfg.display());
    println!("directory (LDIF):      {}", lab.ldif.display());
    println!(
        "stores:                {} on 127.0.0.2, {} on 127.0.0.3 (IMAP {}, POP3 {})",
        STORE_NAMES[0], STORE_NAMES[1], lab.imap_port, lab.pop3_port
    );
    println!("\nTry, in another terminal:");
    println!(
        "  curl -s 'imap://127.0.0.1:{imap_port}/INBOX;MAILINDEX=1' -u {}:{}   # {}'s mailbox on {}",
        a.uid, a.password, a.uid, STORE_NAMES[0]
    );
    println!(
        "  curl -s 'imap://127.0.0.1:{imap_port}/INBOX;MAILINDEX=1' -u {}:{}   # {}'s mailbox on {}",
        b.uid, b.password, b.uid, STORE_NAMES[1]
    );
    println!("  curl -s 'pop3://127.0.0.1:{pop3_port}/1' -u {}:{}", b.uid, b.password);
    println!("\nmailmux log follows; Ctrl-C stops everything.\n");
    let status = Command::new(&mailmux)
        .args(["run", "--log-stderr", "-c"])
        .arg(&cfg)
        .status()
        .unwrap_or_else(|e| panic!("cannot run {mailmux}: {e}"));
    eprintln!("mailmux exited: {status}");
}
