//! A real Dovecot store for tests: its own base_dir and configuration, a passwd-file with
//! every user, a master user for store-administrator logins, TLS on every port (STARTTLS /
//! STLS on the plain ones, implicit on the others), and in the INBOX of each of its users a
//! marker message naming the store.
//!
//! Every store knows every password (like stores sharing one directory), so a login that
//! reaches the wrong store succeeds; tests tell stores apart by the marker, never by the
//! login result.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::daemon::Daemon;
use crate::pki::CertFiles;
use crate::{User, require_binary};

/// The store administrator ("master user") every test store accepts: it may log in as any
/// user with SASL PLAIN (authzid = the user), which is how mailmux's `StoreAdmin` works.
pub const STORE_ADMIN: &str = "mmpstore";
/// Its password.
pub const STORE_ADMIN_PASSWORD: &str = "store-admin-secret";

/// The subject line of a store's marker message.
pub fn marker_subject(store_name: &str) -> String {
    format!("Welcome to {store_name}")
}

/// Where and how a store listens.
#[derive(Debug, Clone)]
pub struct StoreSpec {
    /// Its name, in its marker messages.
    pub name: String,
    /// 0 for store A, 1 for store B: users with this `store` get the marker.
    pub index: usize,
    /// Listening address.
    pub ip: IpAddr,
    /// Plain IMAP port (STARTTLS offered).
    pub imap_port: u16,
    /// Plain POP3 port (STLS offered).
    pub pop3_port: u16,
    /// IMAP over TLS.
    pub imaps_port: u16,
    /// POP3 over TLS.
    pub pop3s_port: u16,
    /// The store's certificate.
    pub tls: CertFiles,
}

/// A running Dovecot.
#[derive(Debug)]
pub struct Dovecot {
    /// How it was started.
    pub spec: StoreSpec,
    /// Its directory.
    pub dir: PathBuf,
    daemon: Daemon,
}

impl Dovecot {
    /// Starts a store in `dir`. `users` all get a password; those whose `store` is the
    /// spec's index get the marker message.
    pub fn start(dir: &Path, spec: &StoreSpec, users: &[User]) -> Dovecot {
        Dovecot::launch(dir, spec, users, None, "")
    }

    /// Like [`Dovecot::start`], with `extra_conf` appended to the store's `dovecot.conf` (e.g.
    /// `imap_capability = +XFOO` for stores that differ in what they offer).
    pub fn start_with_conf(dir: &Path, spec: &StoreSpec, users: &[User], extra_conf: &str) -> Dovecot {
        Dovecot::launch(dir, spec, users, None, extra_conf)
    }

    /// Like [`Dovecot::start`], and the store also takes bearer tokens (`AUTH=OAUTHBEARER`,
    /// `AUTH=XOAUTH2`, POP3 `SASL` likewise), checked by an `oauth2` passdb that asks the RFC 7662
    /// endpoint at `introspection_url` (see [`crate::oauth2::Introspection`]). Passwords work
    /// as on any store.
    pub fn start_with_oauth2(dir: &Path, spec: &StoreSpec, users: &[User], introspection_url: &str) -> Dovecot {
        Dovecot::launch(dir, spec, users, Some(introspection_url), "")
    }

    fn launch(
        dir: &Path,
        spec: &StoreSpec,
        users: &[User],
        introspection_url: Option<&str>,
        extra_conf: &str,
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
        let passwd: String = users.iter().map(|u| format!("{}:{{PLAIN}}{}\n", u.uid, u.password)).collect();
        std::fs::write(dir.join("passwd"), passwd).expect("write passwd");
        std::fs::write(dir.join("master-passwd"), format!("{STORE_ADMIN}:{{PLAIN}}{STORE_ADMIN_PASSWORD}\n"))
            .expect("write master-passwd");
        for user in users.iter().filter(|u| u.store == spec.index) {
            write_marker(&dir.join("mail").join(&user.uid), &spec.name, &user.uid);
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
            dir.file_name().and_then(|f| f.to_str()).unwrap_or(&spec.name)
        );
        let StoreSpec { ip, imap_port, pop3_port, imaps_port, pop3s_port, .. } = spec;
        let (cert, key) = (spec.tls.cert.display(), spec.tls.key.display());
        // The oauth2 passdb comes first and only for the bearer mechanisms, so passwords never
        // reach the introspection endpoint.
        let (auth_mechanisms, oauth2_passdb) = match introspection_url {
            None => ("plain login", String::new()),
            Some(url) => {
                std::fs::write(
                    dir.join("oauth2.conf.ext"),
                    format!(
                        "introspection_mode = post\nintrospection_url = {url}\nusername_attribute = username\n\
                         active_attribute = active\nactive_value = true\nforce_introspection = yes\n"
                    ),
                )
                .expect("write oauth2.conf.ext");
                (
                    "plain login oauthbearer xoauth2",
                    format!(
                        "passdb {{\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n  args = {}/oauth2.conf.ext\n}}\n",
                        dir.display()
                    ),
                )
            }
        };
        std::fs::write(
            &conf,
            format!(
                r#"instance_name = {instance}
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
listen = {ip}
protocols = imap pop3
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
ssl_dh = </usr/share/dovecot/dh.pem
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = no
auth_mechanisms = {auth_mechanisms}
auth_master_user_separator = *
mail_location = maildir:{d}/mail/%u
login_trusted_networks = 127.0.0.0/8
mail_max_userip_connections = 1000
default_client_limit = 4000
pop3_uidl_format = %08Xu%08Xv
{oauth2_passdb}passdb {{
  driver = passwd-file
  master = yes
  pass = yes
  args = scheme=PLAIN {d}/master-passwd
}}
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
    port = {imaps_port}
    ssl = yes
  }}
  service_count = 0
}}
service pop3-login {{
  inet_listener pop3 {{
    port = {pop3_port}
  }}
  inet_listener pop3s {{
    port = {pop3s_port}
    ssl = yes
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
{extra_conf}
"#
            ),
        )
        .expect("write dovecot.conf");
        let conf_arg = conf.display().to_string();
        let mut daemon = Daemon::spawn(
            &format!("dovecot {}", spec.name),
            &dovecot,
            &["-F", "-c", &conf_arg],
            &dir.join("dovecot.stdout"),
        );
        for port in [imap_port, pop3_port, imaps_port, pop3s_port] {
            daemon.wait_for_port(SocketAddr::new(*ip, *port));
        }
        Dovecot { spec: spec.clone(), dir: dir.to_path_buf(), daemon }
    }

    /// Dovecot's own log.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.dir.join("dovecot.log")).unwrap_or_default() + &self.daemon.log_text()
    }

    /// The store's `Login:` log lines for `uid` that satisfy `filter`, so far.
    pub fn logins(&self, uid: &str, filter: impl Fn(&str) -> bool) -> Vec<String> {
        let user = format!("user=<{uid}>");
        self.log_text()
            .lines()
            .filter(|l| l.contains("Login:") && l.contains(&user) && filter(l))
            .map(str::to_owned)
            .collect()
    }

    /// Waits until the store logged at least `count` such logins (Dovecot's log process writes
    /// asynchronously); fails the test with the store's log after 5 s.
    pub async fn wait_for_logins(&self, uid: &str, count: usize, filter: impl Fn(&str) -> bool) -> Vec<String> {
        for _ in 0..50 {
            let lines = self.logins(uid, &filter);
            if lines.len() >= count {
                return lines;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("{} logged fewer than {count} matching logins of {uid}:\n{}", self.spec.name, self.log_text());
    }

    /// Delivers `message` (CRLF line ends) into the INBOX of `uid`, after the marker; Dovecot
    /// sees it at the next SELECT.
    pub fn add_message(&self, uid: &str, name: &str, message: &[u8]) {
        let maildir = self.dir.join("mail").join(uid);
        for sub in ["cur", "new", "tmp"] {
            std::fs::create_dir_all(maildir.join(sub)).expect("maildir");
        }
        // Written aside and renamed, as a delivery agent does, so Dovecot never sees half of it.
        let (tmp, new) = (maildir.join("tmp").join(name), maildir.join("new").join(name));
        std::fs::write(&tmp, message).expect("write message");
        std::fs::rename(&tmp, &new).expect("deliver message");
        let status = Command::new("chown").args(["-R", "vmail:vmail"]).arg(&maildir).status().expect("run chown");
        assert!(status.success(), "chown of {} failed", maildir.display());
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
    // Hosted-domain logins (`joe@siroe.com`) are addresses already.
    let to = if uid.contains('@') { uid.to_owned() } else { format!("{uid}@example.com") };
    let message = format!(
        "From: postmaster@example.com\r\nTo: {to}\r\nSubject: {}\r\n\
         Message-ID: <marker-{id}@{store_name}>\r\nDate: Sat, 28 Nov 2026 12:00:00 +0000\r\n\r\n\
         This mailbox lives on {store_name}.\r\n",
        marker_subject(store_name),
        id = uid.replace('@', ".")
    );
    std::fs::write(maildir.join("new").join("1700000000.M1P1.marker"), message).expect("marker message");
}

/// Dovecot refuses to access mail as root; tests use an unprivileged `vmail` account.
fn ensure_vmail_user() {
    let exists = Command::new("id").arg("vmail").output().is_ok_and(|o| o.status.success());
    if !exists {
        let status = Command::new("useradd")
            .args(["-r", "-M", "-s", "/usr/sbin/nologin", "vmail"])
            .status()
            .expect("run useradd");
        assert!(
            status.success() || Command::new("id").arg("vmail").status().is_ok_and(|s| s.success()),
            "cannot create the vmail user (tests must run as root)"
        );
    }
}
