//! A real OpenLDAP server for tests: `slapd.conf` in a temporary directory, data loaded
//! with `slapadd`, listening on a free loopback port.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::daemon::Daemon;
use crate::pki::CertFiles;
use crate::{User, ports, require_binary};

/// The suffix of the test directory.
pub const SUFFIX: &str = "dc=example,dc=com";
/// The administrator (rootdn) mailmux binds as.
pub const ADMIN_DN: &str = "cn=admin,dc=example,dc=com";
/// The administrator's password.
pub const ADMIN_PASSWORD: &str = "ldap-secret";

/// A running slapd.
#[derive(Debug)]
pub struct Slapd {
    /// `ldap://127.0.0.1:PORT`
    pub url: String,
    /// The listening address.
    pub addr: SocketAddr,
    /// `ldaps://127.0.0.1:PORT`, when started with a certificate (which also enables StartTLS).
    pub ldaps_url: Option<String>,
    ldaps_addr: Option<SocketAddr>,
    dir: PathBuf,
    daemon: Daemon,
}

impl Slapd {
    /// Starts slapd in `dir`, loaded with `ldif` (as written by [`users_ldif`]).
    pub fn start(dir: &Path, ldif: &str) -> Slapd {
        Slapd::start_with_tls(dir, ldif, None)
    }

    /// Like [`Slapd::start`]; with `tls`, slapd also offers StartTLS and listens for `ldaps://`.
    pub fn start_with_tls(dir: &Path, ldif: &str, tls: Option<&CertFiles>) -> Slapd {
        require_binary("slapd", "slapd");
        let slapadd = require_binary("slapadd", "slapd");
        std::fs::create_dir_all(dir.join("db")).expect("slapd db dir");
        let conf = dir.join("slapd.conf");
        let schema = "/etc/ldap/schema";
        std::fs::write(
            &conf,
            format!(
                "include {schema}/core.schema\ninclude {schema}/cosine.schema\ninclude {schema}/inetorgperson.schema\n\
                 include {schema}/nis.schema\ninclude {schema}/misc.schema\n\
                 pidfile {d}/slapd.pid\nargsfile {d}/slapd.args\n\
                 modulepath /usr/lib/ldap\nmoduleload back_mdb\n\
                 database mdb\nmaxsize 104857600\nsuffix \"{SUFFIX}\"\nrootdn \"{ADMIN_DN}\"\nrootpw {ADMIN_PASSWORD}\n\
                 directory {d}/db\nindex uid eq\n{tls}",
                d = dir.display(),
                tls = tls.map_or(String::new(), |t| format!(
                    "TLSCertificateFile {}\nTLSCertificateKeyFile {}\n",
                    t.cert.display(),
                    t.key.display()
                )),
            ),
        )
        .expect("write slapd.conf");
        let data = dir.join("data.ldif");
        std::fs::write(&data, ldif).expect("write data.ldif");
        let out =
            Command::new(&slapadd).args(["-q", "-f"]).arg(&conf).arg("-l").arg(&data).output().expect("run slapadd");
        assert!(out.status.success(), "slapadd failed: {}", String::from_utf8_lossy(&out.stderr));
        let addr: SocketAddr = ([127, 0, 0, 1], ports::free_port()).into();
        let ldaps_addr = tls.map(|_| SocketAddr::from(([127, 0, 0, 1], ports::free_port())));
        Slapd {
            url: format!("ldap://{addr}"),
            addr,
            ldaps_url: ldaps_addr.map(|a| format!("ldaps://{a}")),
            ldaps_addr,
            daemon: run(dir, addr, ldaps_addr),
            dir: dir.to_path_buf(),
        }
    }

    /// Starts the stopped server again, same port and data (for reconnection tests).
    pub fn restart(&mut self) {
        self.daemon.stop();
        self.daemon = run(&self.dir, self.addr, self.ldaps_addr);
    }

    /// Stops the server (for "directory down" tests).
    pub fn stop(&mut self) {
        self.daemon.stop();
    }

    /// Freezes the server (SIGSTOP): connections are still accepted by the kernel, nothing is
    /// answered — a directory that hangs.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Lets a paused server go on (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let pid = std::fs::read_to_string(self.dir.join("slapd.pid")).expect("slapd.pid");
        let status = Command::new("kill").arg(signal).arg(pid.trim()).status().expect("run kill");
        assert!(status.success(), "kill {signal} slapd");
    }
}

/// Runs slapd on the configuration and database already in `dir`.
fn run(dir: &Path, addr: SocketAddr, ldaps: Option<SocketAddr>) -> Daemon {
    let slapd = require_binary("slapd", "slapd");
    let mut listen = format!("ldap://{addr}/");
    if let Some(ldaps) = ldaps {
        listen.push_str(&format!(" ldaps://{ldaps}/"));
    }
    let conf_arg = dir.join("slapd.conf").display().to_string();
    let mut daemon =
        Daemon::spawn("slapd", &slapd, &["-h", &listen, "-f", &conf_arg, "-d", "0"], &dir.join("slapd.log"));
    daemon.wait_for_port(addr);
    if let Some(ldaps) = ldaps {
        daemon.wait_for_port(ldaps);
    }
    daemon
}

/// The directory content: base entries, then one `inetOrgPerson` +
/// `inetLocalMailRecipient` per user with `mailHost` set to its store's address, plus
/// `extra` entries as given.
pub fn users_ldif(users: &[User], store_hosts: &[&str], extra: &str) -> String {
    let mut out = format!(
        "dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n\n\
         dn: ou=people,{SUFFIX}\nobjectClass: organizationalUnit\nou: people\n\n"
    );
    for u in users {
        out.push_str(&person(&u.uid, &u.password, Some(store_hosts[u.store])));
    }
    out.push_str(extra);
    out
}

/// One person entry; `mail_host` `None` leaves the attribute out.
pub fn person(uid: &str, password: &str, mail_host: Option<&str>) -> String {
    let mut e = format!(
        "dn: uid={uid},ou=people,{SUFFIX}\nobjectClass: inetOrgPerson\nobjectClass: inetLocalMailRecipient\n\
         uid: {uid}\ncn: {uid}\nsn: {uid}\nmail: {uid}@example.com\nuserPassword: {password}\n"
    );
    if let Some(host) = mail_host {
        e.push_str(&format!("mailHost: {host}\n"));
    }
    e.push('\n');
    e
}
