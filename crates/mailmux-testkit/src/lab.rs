//! A small mail site for tests and for trying mailmux: two Dovecot stores, the users spread
//! over them, the same users as LDIF and (optionally) in a real slapd, and mailmux
//! configuration directories pointing at all of it.
//!
//! Layout of the users: `user1`, `user3`, … live on store A (127.0.0.2), `user2`, `user4`, …
//! on store B (127.0.0.3); both stores listen on the same ports, so `mailHost` is a bare
//! address and `BacksidePort` picks the port, as in an MMP site. Two more entries exist for
//! failure tests: `ghost` (mailHost 127.0.0.9, where nothing listens) and `nohost`
//! (no mailHost at all).

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::dovecot::{Dovecot, StoreSpec};
use crate::pki::{Ca, CertFiles};
use crate::slapd::{self, Slapd};
use crate::{User, ports};

/// Store addresses: A, B.
pub const STORE_IPS: [Ipv4Addr; 2] = [Ipv4Addr::new(127, 0, 0, 2), Ipv4Addr::new(127, 0, 0, 3)];
/// Store names, as their marker messages say.
pub const STORE_NAMES: [&str; 2] = ["store-a", "store-b"];
/// An address where no store listens.
pub const DOWN_STORE_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 9);
/// A user whose store is down.
pub const GHOST: &str = "ghost";
/// A user whose entry has no mailHost.
pub const NOHOST: &str = "nohost";
/// The alert text configured for unavailable stores.
pub const SERVER_DOWN_ALERT: &str = "your mail server appears to be temporarily out of service";

/// Which directory a mailmux configuration uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirectoryKind {
    /// The lab's slapd.
    Ldap,
    /// The lab's LDIF file (embedded directory).
    Ldif,
    /// An LDAP URL where nothing listens.
    Unreachable,
}

/// The running site.
#[derive(Debug)]
pub struct Lab {
    /// Everything lives under here.
    pub dir: tempfile::TempDir,
    /// The users, `user1` … `userN`.
    pub users: Vec<User>,
    /// Further store logins given to [`Lab::start_with`] (e.g. [`crate::hosted::Site::store_users`]);
    /// they are in the stores only, not in the lab's LDIF or slapd.
    pub extra_store_users: Vec<User>,
    /// Store A and store B.
    pub stores: Vec<Dovecot>,
    /// The LDAP server, when started.
    pub slapd: Option<Slapd>,
    /// The stores' IMAP port.
    pub imap_port: u16,
    /// The stores' POP3 port.
    pub pop3_port: u16,
    /// The stores' IMAP-over-TLS port.
    pub imaps_port: u16,
    /// The stores' POP3-over-TLS port.
    pub pop3s_port: u16,
    /// The CA that signed every certificate of the site (stores, mailmux, clients).
    pub ca: Ca,
    /// A CA nobody trusts, for certificates that must be refused.
    pub other_ca: Ca,
    /// mailmux's own certificate (127.0.0.1, localhost).
    pub mailmux_tls: CertFiles,
    /// The users as an LDIF file.
    pub ldif: PathBuf,
    configs: AtomicUsize,
}

impl Lab {
    /// Starts both stores with `n_users` users and, if `with_slapd`, an LDAP server.
    pub fn start(n_users: usize, with_slapd: bool) -> Lab {
        Lab::start_with(n_users, with_slapd, &[])
    }

    /// Like [`Lab::start`], and the stores also know `extra_store_users`: each login gets its
    /// password on both stores and the marker message on its own store (`store` 0 = A,
    /// 1 = B; any other value: no marker). A login is the user id the store sees, e.g.
    /// `joe@siroe.com`; it must not clash with `user1` … `userN` or `ghost`.
    pub fn start_with(n_users: usize, with_slapd: bool, extra_store_users: &[User]) -> Lab {
        Lab::start_with_store_conf(n_users, with_slapd, extra_store_users, "")
    }

    /// Like [`Lab::start_with`], with `store_conf` appended to both stores' `dovecot.conf`
    /// (Dovecot merges a repeated `service` block into the first, so this can change the
    /// process model, e.g. many idle sessions per `imap` process for a scale run).
    pub fn start_with_store_conf(
        n_users: usize,
        with_slapd: bool,
        extra_store_users: &[User],
        store_conf: &str,
    ) -> Lab {
        let dir = tempfile::Builder::new().prefix("mailmux-lab-").tempdir().expect("temp dir");
        // Dovecot drops privileges; its files must be reachable by other users.
        let _ = std::process::Command::new("chmod").arg("755").arg(dir.path()).status();
        let users: Vec<User> = (1..=n_users)
            .map(|i| User { uid: format!("user{i}"), password: format!("secret{i}"), store: (i + 1) % 2 })
            .collect();
        let mut all_passwords = users.clone();
        all_passwords.push(User { uid: GHOST.into(), password: "ghostpw".into(), store: 9 });
        for extra in extra_store_users {
            assert!(
                !all_passwords.iter().any(|u| u.uid == extra.uid),
                "extra store user {} clashes with a lab user",
                extra.uid
            );
            all_passwords.push(extra.clone());
        }
        let mut store_ports: Vec<u16> = Vec::new();
        while store_ports.len() < 4 {
            let p = ports::free_port_on(&STORE_IPS);
            if !store_ports.contains(&p) {
                store_ports.push(p);
            }
        }
        let [imap_port, pop3_port, imaps_port, pop3s_port] =
            [store_ports[0], store_ports[1], store_ports[2], store_ports[3]];
        let ca = Ca::new(&dir.path().join("pki"), "mailmux-test-ca");
        let other_ca = Ca::new(&dir.path().join("pki-other"), "untrusted-ca");
        let mailmux_tls = ca.server("mailmux", &["127.0.0.1", "localhost"]);
        let stores = (0..2)
            .map(|i| {
                let spec = StoreSpec {
                    name: STORE_NAMES[i].to_owned(),
                    index: i,
                    ip: IpAddr::V4(STORE_IPS[i]),
                    imap_port,
                    pop3_port,
                    imaps_port,
                    pop3s_port,
                    tls: ca.server(STORE_NAMES[i], &[&STORE_IPS[i].to_string()]),
                };
                Dovecot::start_with_conf(&dir.path().join(STORE_NAMES[i]), &spec, &all_passwords, store_conf)
            })
            .collect();
        let hosts: Vec<String> = STORE_IPS.iter().map(ToString::to_string).collect();
        let hosts: Vec<&str> = hosts.iter().map(String::as_str).collect();
        let extra = slapd::person(GHOST, "ghostpw", Some(&DOWN_STORE_IP.to_string()))
            + &slapd::person(NOHOST, "nohostpw", None);
        let ldif_text = slapd::users_ldif(&users, &hosts, &extra);
        let ldif = dir.path().join("users.ldif");
        std::fs::write(&ldif, &ldif_text).expect("write users.ldif");
        let slapd = with_slapd.then(|| {
            let cert = ca.server("slapd", &["127.0.0.1"]);
            Slapd::start_with_tls(&dir.path().join("slapd"), &ldif_text, Some(&cert))
        });
        Lab {
            dir,
            users,
            extra_store_users: extra_store_users.to_vec(),
            stores,
            slapd,
            imap_port,
            pop3_port,
            imaps_port,
            pop3s_port,
            ca,
            other_ca,
            mailmux_tls,
            ldif,
            configs: AtomicUsize::new(0),
        }
    }

    /// The first user on store `store` (0 = A, 1 = B).
    pub fn user_on(&self, store: usize) -> &User {
        self.users.iter().find(|u| u.store == store).expect("a user on each store")
    }

    /// Writes a mailmux configuration directory for this lab and returns its path.
    /// Both services listen on 127.0.0.1 port 0 (read the real ports from the server).
    /// `imap_extra` and `pop3_extra` are appended to the service files.
    pub fn write_config(&self, directory: DirectoryKind, imap_extra: &str, pop3_extra: &str) -> PathBuf {
        let n = self.configs.fetch_add(1, Ordering::Relaxed);
        let cfg = self.dir.path().join(format!("config-{n}"));
        std::fs::create_dir_all(&cfg).expect("config dir");
        let ldap_url = match directory {
            DirectoryKind::Ldap => {
                format!("{}/{}", self.slapd.as_ref().expect("this lab was started without slapd").url, slapd::SUFFIX)
            }
            DirectoryKind::Ldif => format!("ldif:{}", self.ldif.display()),
            DirectoryKind::Unreachable => {
                format!("ldap://127.0.0.1:{}/{}", ports::free_port(), slapd::SUFFIX)
            }
        };
        std::fs::write(
            cfg.join("AService.cfg"),
            "# Written by mailmux-testkit\ndefault:ServiceList imapproxy@127.0.0.1:0 popproxy@127.0.0.1:0\ndefault:LogLevel 7\n",
        )
        .expect("write AService.cfg");
        let common = |port: u16| {
            format!(
                "default:LdapURL {ldap_url}\n\
                 default:BindDN \"{}\"\n\
                 default:BindPass {}\n\
                 default:SearchFormat (uid=%s)\n\
                 default:MailHostAttrs mailHost\n\
                 default:VirtualDomainDelim @\n\
                 default:BacksidePort {port}\n\
                 default:Timeout 1800\n\
                 default:LdapTimeout 10\n\
                 default:BacksideTimeout 15\n\
                 default:ShutdownTimeout 2\n\
                 default:ServerDownAlert \"{SERVER_DOWN_ALERT}\"\n\
                 # Tests fail logins on purpose: no failure floor or BadGuy penalty unless a\n\
                 # test sets them (tests of those features do).\n\
                 default:FailureDelay 0\n\
                 default:BGPenalty 0\n\
                 # Every test client comes from loopback; tests of ConnLimits set their own.\n\
                 default:ConnLimits 0.0.0.0|0.0.0.0:100000\n\
                 # The lab's directory is one user tree (tests of hosted domains set yes).\n\
                 default:HostedDomains no\n",
                slapd::ADMIN_DN,
                slapd::ADMIN_PASSWORD
            )
        };
        std::fs::write(cfg.join("ImapProxyAService.cfg"), common(self.imap_port) + imap_extra)
            .expect("write IMAP config");
        std::fs::write(cfg.join("PopProxyAService.cfg"), common(self.pop3_port) + pop3_extra)
            .expect("write POP3 config");
        cfg
    }

    /// Like [`Lab::write_config`], with TLS toward clients: each service listens on port 0
    /// (STARTTLS/STLS offered) and on a fixed free port with implicit TLS (`SSLPorts`), with
    /// mailmux's certificate from the lab CA, and client certificates from the lab CA accepted.
    pub fn write_tls_config(&self, directory: DirectoryKind, imap_extra: &str, pop3_extra: &str) -> TlsConfig {
        let (imaps, pop3s) = (ports::free_port(), ports::free_port());
        let tls = |port: u16| {
            format!(
                "default:SSLEnable yes\ndefault:SSLPorts {port}\ndefault:SSLCertFile {}\ndefault:SSLKeyFile {}\ndefault:SSLCACertFile {}\n",
                self.mailmux_tls.cert.display(),
                self.mailmux_tls.key.display(),
                self.ca.cert.display()
            )
        };
        let dir = self.write_config(directory, &(tls(imaps) + imap_extra), &(tls(pop3s) + pop3_extra));
        std::fs::write(
            dir.join("AService.cfg"),
            format!("default:ServiceList imapproxy@127.0.0.1:0|127.0.0.1:{imaps} popproxy@127.0.0.1:0|127.0.0.1:{pop3s}\ndefault:LogLevel 7\n"),
        )
        .expect("write AService.cfg");
        TlsConfig { dir, imaps, pop3s }
    }
}

/// A configuration directory with TLS listeners.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    /// The directory.
    pub dir: PathBuf,
    /// mailmux's implicit-TLS IMAP port.
    pub imaps: u16,
    /// mailmux's implicit-TLS POP3 port.
    pub pop3s: u16,
}
