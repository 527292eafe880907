//! A real Dovecot store for tests: its own base_dir and configuration, a passwd-file with
//! every user, and in the INBOX of each user it holds a marker message naming the store.
//!
//! Every store knows every password (like stores sharing one directory), so a login that
//! reaches the wrong store succeeds; tests tell stores apart by the marker, never by the
//! login result.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::daemon::Daemon;
use crate::{User, require_binary};

/// The subject line of a store's marker message.
pub fn marker_subject(store_name: &str) -> String {
    format!("Welcome to {store_name}")
}

/// A running Dovecot.
#[derive(Debug)]
pub struct Dovecot {
    /// The store's name, in its marker message.
    pub name: String,
    /// Listening address (IMAP and POP3 share it).
    pub ip: IpAddr,
    /// IMAP port.
    pub imap_port: u16,
    /// POP3 port.
    pub pop3_port: u16,
    /// Its directory.
    pub dir: PathBuf,
    daemon: Daemon,
}

impl Dovecot {
    /// Starts a store in `dir`. `users` all get a password; those with `store == index`
    /// get the marker message.
    pub fn start(
        dir: &Path,
        name: &str,
        index: usize,
        ip: IpAddr,
        imap_port: u16,
        pop3_port: u16,
        users: &[User],
    ) -> Dovecot {
        let dovecot = require_binary("dovecot", "dovecot-imapd");
        require_binary("doveadm", "dovecot-core");
        assert!(
            Path::new("/usr/lib/dovecot/pop3-login").exists(),
            "Dovecot POP3 is not installed: install the Debian package `dovecot-pop3d`"
        );
        ensure_vmail_user();
        std::fs::create_dir_all(dir.join("run")).expect("dovecot run dir");
        std::fs::create_dir_all(dir.join("state")).expect("dovecot state dir");
        let passwd: String = users
            .iter()
            .map(|u| format!("{}:{{PLAIN}}{}\n", u.uid, u.password))
            .collect();
        std::fs::write(dir.join("passwd"), passwd).expect("write passwd");
        for user in users.iter().filter(|u| u.store == index) {
            write_marker(&dir.join("mail").join(&user.uid), name, &user.uid);
        }
        std::fs::create_dir_all(dir.join("home")).expect("home dir");
        let status = Command::new("chown")
            .args(["-R", "vmail:vmail"])
            .arg(dir.join("mail"))
            .arg(dir.join("home"))
            .status()
            .expect("run chown");
        assert!(status.success(), "chown of the mail directories failed");
        let conf = dir.join("dovecot.conf");
        let d = dir.display();
        let instance = format!(
            "mailmux-test-{}-{}",
            std::process::id(),
            dir.file_name().and_then(|f| f.to_str()).unwrap_or(name)
        );
        std::fs::write(
            &conf,
            format!(
                r#"instance_name = {instance}
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
listen = {ip}
protocols = imap pop3
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{d}/mail/%u
login_trusted_networks = 127.0.0.0/8
mail_max_userip_connections = 1000
default_client_limit = 4000
pop3_uidl_format = %08Xu%08Xv
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/passwd
}}
userdb {{
  driver = static
  args = uid=vmail gid=vmail home={d}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    port = {imap_port}
  }}
  inet_listener imaps {{
    port = 0
  }}
  service_count = 0
}}
service pop3-login {{
  inet_listener pop3 {{
    port = {pop3_port}
  }}
  inet_listener pop3s {{
    port = 0
  }}
  service_count = 0
}}
service imap {{
  process_limit = 1024
  service_count = 100
}}
service pop3 {{
  process_limit = 1024
}}
service auth {{
  client_limit = 4000
}}
service anvil {{
  client_limit = 4000
}}
"#
            ),
        )
        .expect("write dovecot.conf");
        let conf_arg = conf.display().to_string();
        let mut daemon = Daemon::spawn(
            &format!("dovecot {name}"),
            &dovecot,
            &["-F", "-c", &conf_arg],
            &dir.join("dovecot.stdout"),
        );
        daemon.wait_for_port(SocketAddr::new(ip, imap_port));
        daemon.wait_for_port(SocketAddr::new(ip, pop3_port));
        Dovecot {
            name: name.to_owned(),
            ip,
            imap_port,
            pop3_port,
            dir: dir.to_path_buf(),
            daemon,
        }
    }

    /// Dovecot's own log.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.dir.join("dovecot.log")).unwrap_or_default()
            + &self.daemon.log_text()
    }

    /// Stops the store.
    pub fn stop(&mut self) {
        self.daemon.stop();
    }
}

fn write_marker(maildir: &Path, store_name: &str, uid: &str) {
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(maildir.join(sub)).expect("maildir");
    }
    let message = format!(
        "From: postmaster@example.com\r\nTo: {uid}@example.com\r\nSubject: {}\r\n\
         Message-ID: <marker-{uid}@{store_name}>\r\nDate: Sat, 28 Nov 2026 12:00:00 +0000\r\n\r\n\
         This mailbox lives on {store_name}.\r\n",
        marker_subject(store_name)
    );
    std::fs::write(maildir.join("new").join("1700000000.M1P1.marker"), message)
        .expect("marker message");
}

/// Dovecot refuses to access mail as root; tests use an unprivileged `vmail` account.
fn ensure_vmail_user() {
    let exists = Command::new("id")
        .arg("vmail")
        .output()
        .is_ok_and(|o| o.status.success());
    if !exists {
        let status = Command::new("useradd")
            .args(["-r", "-M", "-s", "/usr/sbin/nologin", "vmail"])
            .status()
            .expect("run useradd");
        assert!(
            status.success()
                || Command::new("id")
                    .arg("vmail")
                    .status()
                    .is_ok_and(|s| s.success()),
            "cannot create the vmail user (tests must run as root)"
        );
    }
}
