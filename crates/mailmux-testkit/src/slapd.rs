//! A real OpenLDAP server for tests: `slapd.conf` in a temporary directory, data loaded
//! with `slapadd`, listening on a free loopback port.
//!
//! [`Slapd::start`] serves the flat test directory under [`SUFFIX`]; [`Slapd::start_config`]
//! takes a [`SlapdConfig`] for another suffix (even the empty one), extra schema files, TLS
//! and a log of every operation, from which [`Slapd::searches`] counts the searches served.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::daemon::Daemon;
use crate::pki::CertFiles;
use crate::{User, ports, require_binary};

/// The suffix of the test directory.
pub const SUFFIX: &str = "dc=example,dc=com";
/// The administrator (rootdn) mailmux binds as.
pub const ADMIN_DN: &str = "cn=admin,dc=example,dc=com";
/// The administrator's password.
pub const ADMIN_PASSWORD: &str = "ldap-secret";

/// Where Debian keeps the schema files slapd ships with.
const SYSTEM_SCHEMA_DIR: &str = "/etc/ldap/schema";

/// One schema file slapd loads (`include` in `slapd.conf`), in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schema {
    /// A schema shipped with slapd: `/etc/ldap/schema/NAME.schema` (e.g. `"core"`).
    System(&'static str),
    /// A schema written next to `slapd.conf` as `file_name` before slapd starts.
    Text {
        /// File name inside the slapd directory (e.g. `mailhosting.schema`).
        file_name: String,
        /// The schema text, in `slapd.conf` syntax (`attributetype`, `objectclass`).
        text: String,
    },
}

impl Schema {
    /// The schemas of the flat test directory: core, cosine, inetorgperson, nis and misc
    /// (`mailHost` is in misc).
    pub fn standard() -> Vec<Schema> {
        ["core", "cosine", "inetorgperson", "nis", "misc"].into_iter().map(Schema::System).collect()
    }

    /// Debian's `misc.schema` with `mailHost` made multi-valued, named `misc-multihost.schema`.
    ///
    /// `mailHost` is `SINGLE-VALUE` in OpenLDAP's misc.schema (and in the Sun schema), so a
    /// user with two mail hosts cannot exist in a real directory; use this instead of
    /// `System("misc")` for tests that need one anyway. Fails the test if the installed file
    /// no longer has the definition this edits.
    pub fn misc_multivalued_mailhost() -> Schema {
        let path = Path::new(SYSTEM_SCHEMA_DIR).join("misc.schema");
        let misc = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e} (install the Debian package `slapd`)", path.display()));
        let start = misc.find("NAME 'mailHost'").unwrap_or_else(|| panic!("no mailHost in {}", path.display()));
        let end = start + misc[start..].find(')').unwrap_or_else(|| panic!("mailHost definition unterminated"));
        let definition = &misc[start..end];
        assert!(
            definition.contains("SINGLE-VALUE"),
            "{}: mailHost is no longer SINGLE-VALUE; this edit is not needed any more",
            path.display()
        );
        let text = format!(
            "# Written by mailmux-testkit: {} with mailHost multi-valued.\n{}{}{}",
            path.display(),
            &misc[..start],
            definition.replace("SINGLE-VALUE", ""),
            &misc[end..]
        );
        Schema::Text { file_name: "misc-multihost.schema".into(), text }
    }

    fn include_line(&self, dir: &Path) -> String {
        match self {
            Schema::System(name) => format!("include {SYSTEM_SCHEMA_DIR}/{name}.schema\n"),
            Schema::Text { file_name, text } => {
                let path = dir.join(file_name);
                std::fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
                format!("include {}\n", path.display())
            }
        }
    }
}

/// How to configure a test slapd: one `mdb` database with one suffix.
#[derive(Debug, Clone)]
pub struct SlapdConfig {
    /// The database suffix; `""` (the null suffix) holds every DN, so several top-level
    /// trees (`o=internet`, `o=isp`) fit in one database.
    pub suffix: String,
    /// The `rootdn`, inside the suffix.
    pub admin_dn: String,
    /// The `rootpw`.
    pub admin_password: String,
    /// Schema files, in load order.
    pub schemas: Vec<Schema>,
    /// With a certificate, slapd also offers StartTLS and listens for `ldaps://`.
    pub tls: Option<CertFiles>,
    /// Run with `-d stats`: one log line per operation, which [`Slapd::searches`] counts.
    pub log_stats: bool,
    /// `access` directives of the database, in order (none: slapd's default, read by all;
    /// the rootdn is never subject to them).
    pub access: Vec<String>,
}

impl Default for SlapdConfig {
    /// The flat test directory: [`SUFFIX`], [`ADMIN_DN`], [`Schema::standard`], no TLS, no
    /// operation log.
    fn default() -> SlapdConfig {
        SlapdConfig {
            suffix: SUFFIX.into(),
            admin_dn: ADMIN_DN.into(),
            admin_password: ADMIN_PASSWORD.into(),
            schemas: Schema::standard(),
            tls: None,
            log_stats: false,
            access: Vec::new(),
        }
    }
}

impl SlapdConfig {
    /// Sets the suffix and the rootdn.
    pub fn with_suffix(mut self, suffix: &str, admin_dn: &str) -> SlapdConfig {
        self.suffix = suffix.into();
        self.admin_dn = admin_dn.into();
        self
    }

    /// Adds a schema after those already listed.
    pub fn with_schema(mut self, schema: Schema) -> SlapdConfig {
        self.schemas.push(schema);
        self
    }

    /// Offers StartTLS and `ldaps://` with this certificate.
    pub fn with_tls(mut self, tls: &CertFiles) -> SlapdConfig {
        self.tls = Some(tls.clone());
        self
    }

    /// Adds an `access` directive (e.g. `to attrs=userPassword by self write by anonymous auth
    /// by * none`).
    pub fn with_access(mut self, rule: &str) -> SlapdConfig {
        self.access.push(rule.into());
        self
    }

    /// Logs every operation, so the searches can be counted.
    pub fn with_stats(mut self) -> SlapdConfig {
        self.log_stats = true;
        self
    }
}

/// A running slapd.
#[derive(Debug)]
pub struct Slapd {
    /// `ldap://127.0.0.1:PORT`
    pub url: String,
    /// The listening address.
    pub addr: SocketAddr,
    /// `ldaps://127.0.0.1:PORT`, when started with a certificate (which also enables StartTLS).
    pub ldaps_url: Option<String>,
    /// The database suffix.
    pub suffix: String,
    /// The rootdn.
    pub admin_dn: String,
    /// The rootdn's password.
    pub admin_password: String,
    ldaps_addr: Option<SocketAddr>,
    log_stats: bool,
    dir: PathBuf,
    daemon: Daemon,
}

impl Slapd {
    /// Starts slapd in `dir`, loaded with `ldif` (as written by [`users_ldif`]).
    pub fn start(dir: &Path, ldif: &str) -> Slapd {
        Slapd::start_config(dir, ldif, &SlapdConfig::default())
    }

    /// Like [`Slapd::start`]; with `tls`, slapd also offers StartTLS and listens for `ldaps://`.
    pub fn start_with_tls(dir: &Path, ldif: &str, tls: Option<&CertFiles>) -> Slapd {
        Slapd::start_config(dir, ldif, &SlapdConfig { tls: tls.cloned(), ..SlapdConfig::default() })
    }

    /// Starts slapd in `dir` as `config` says, loaded with `ldif` (whose entries must lie
    /// under the configured suffix, parents first).
    pub fn start_config(dir: &Path, ldif: &str, config: &SlapdConfig) -> Slapd {
        require_binary("slapd", "slapd");
        let slapadd = require_binary("slapadd", "slapd");
        std::fs::create_dir_all(dir.join("db")).expect("slapd db dir");
        let conf = dir.join("slapd.conf");
        let includes: String = config.schemas.iter().map(|s| s.include_line(dir)).collect();
        std::fs::write(
            &conf,
            format!(
                "{includes}\
                 pidfile {d}/slapd.pid\nargsfile {d}/slapd.args\n\
                 modulepath /usr/lib/ldap\nmoduleload back_mdb\n\
                 database mdb\nmaxsize 104857600\nsuffix \"{suffix}\"\nrootdn \"{admin}\"\nrootpw {password}\n\
                 directory {d}/db\nindex uid eq\n{access}{tls}",
                d = dir.display(),
                suffix = config.suffix,
                admin = config.admin_dn,
                password = config.admin_password,
                access = config.access.iter().map(|rule| format!("access {rule}\n")).collect::<String>(),
                tls = config.tls.as_ref().map_or(String::new(), |t| format!(
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
        let ldaps_addr = config.tls.as_ref().map(|_| SocketAddr::from(([127, 0, 0, 1], ports::free_port())));
        Slapd {
            url: format!("ldap://{addr}"),
            addr,
            ldaps_url: ldaps_addr.map(|a| format!("ldaps://{a}")),
            suffix: config.suffix.clone(),
            admin_dn: config.admin_dn.clone(),
            admin_password: config.admin_password.clone(),
            ldaps_addr,
            log_stats: config.log_stats,
            daemon: run(dir, addr, ldaps_addr, config.log_stats),
            dir: dir.to_path_buf(),
        }
    }

    /// Starts the stopped server again, same port and data (for reconnection tests).
    pub fn restart(&mut self) {
        self.daemon.stop();
        self.daemon = run(&self.dir, self.addr, self.ldaps_addr, self.log_stats);
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

    /// The searches slapd received since it was first started (restarts included), as
    /// logged: `base="…" scope=N deref=N filter="…"` (scope 0 base, 1 one level, 2 subtree;
    /// deref 0 never, 1 searching, 2 finding, 3 always). slapd logs a search when it starts
    /// working on it, so one sent a moment ago may be missing: see [`Slapd::wait_for_searches`].
    ///
    /// Fails the test unless slapd was started with [`SlapdConfig::log_stats`].
    pub fn search_log(&self) -> Vec<String> {
        assert!(self.log_stats, "this slapd was started without log_stats: its searches are not logged");
        // slapd 2.5 `-d stats` lines: `<time> <thread> conn=1009 op=1 SRCH base="o=isp" scope=2
        // deref=0 filter="(uid=joe)"`, then `… SRCH attr=…` when attributes were asked for.
        self.daemon
            .log_text()
            .lines()
            .filter_map(|l| l.find(" SRCH base=").map(|i| l[i + " SRCH ".len()..].to_owned()))
            .collect()
    }

    /// The DNs slapd was asked to bind as since it was first started, as logged (`-d stats`
    /// lines `conn=N op=N BIND dn="…" method=128`; a successful bind adds a second `BIND`
    /// line with `mech=`, not counted); the rootdn's binds included.
    ///
    /// Fails the test unless slapd was started with [`SlapdConfig::log_stats`].
    pub fn bind_log(&self) -> Vec<String> {
        assert!(self.log_stats, "this slapd was started without log_stats: its binds are not logged");
        self.daemon
            .log_text()
            .lines()
            .filter_map(|l| {
                let rest = &l[l.find(" BIND dn=\"")? + " BIND dn=\"".len()..];
                let (dn, after) = rest.split_once('"')?;
                after.contains(" method=").then(|| dn.to_owned())
            })
            .collect()
    }

    /// How many times slapd was asked to bind as `dn` (compared ignoring case).
    pub fn binds_as(&self, dn: &str) -> usize {
        self.bind_log().iter().filter(|d| d.eq_ignore_ascii_case(dn)).count()
    }

    /// Runs `ldapmodify -x` as the administrator with `ldif` (changetype records); fails the
    /// test if it fails. Each change is in effect when it returns.
    pub fn ldapmodify(&self, ldif: &str) {
        use std::io::Write;
        let ldapmodify = require_binary("ldapmodify", "ldap-utils");
        let mut child = Command::new(ldapmodify)
            .args(["-x", "-H", &self.url, "-D", &self.admin_dn, "-w", &self.admin_password])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run ldapmodify");
        child.stdin.take().expect("stdin").write_all(ldif.as_bytes()).expect("write to ldapmodify");
        let out = child.wait_with_output().expect("ldapmodify output");
        assert!(out.status.success(), "ldapmodify failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr));
    }

    /// How many searches slapd received so far (see [`Slapd::search_log`]).
    pub fn searches(&self) -> usize {
        self.search_log().len()
    }

    /// Waits until slapd logged at least `count` searches and returns how many it logged;
    /// fails the test with the log after 5 s.
    pub async fn wait_for_searches(&self, count: usize) -> usize {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let n = self.searches();
            if n >= count {
                return n;
            }
            assert!(Instant::now() < deadline, "slapd logged {n} searches, not {count}, within 5 s:\n{}", self.log());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// [`Slapd::wait_for_searches`] for tests without an async runtime (blocks the thread).
    pub fn wait_for_searches_blocking(&self, count: usize) -> usize {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let n = self.searches();
            if n >= count {
                return n;
            }
            assert!(Instant::now() < deadline, "slapd logged {n} searches, not {count}, within 5 s:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// slapd's output so far (with [`SlapdConfig::log_stats`], one line per operation).
    pub fn log(&self) -> String {
        self.daemon.log_text()
    }

    /// Runs `ldapsearch -x -LLL` against this server, bound as the administrator, with `args`
    /// appended (e.g. `["-a", "always", "-b", "o=internet", "(uid=joe)", "mailHost"]`), and
    /// returns its output; fails the test if ldapsearch fails. It counts as a search.
    pub fn ldapsearch(&self, args: &[&str]) -> String {
        let ldapsearch = require_binary("ldapsearch", "ldap-utils");
        let out = Command::new(ldapsearch)
            .args([
                "-x",
                "-LLL",
                "-o",
                "ldif-wrap=no",
                "-H",
                &self.url,
                "-D",
                &self.admin_dn,
                "-w",
                &self.admin_password,
            ])
            .args(args)
            .output()
            .expect("run ldapsearch");
        assert!(
            out.status.success(),
            "ldapsearch {args:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// Runs slapd on the configuration and database already in `dir`.
fn run(dir: &Path, addr: SocketAddr, ldaps: Option<SocketAddr>, log_stats: bool) -> Daemon {
    let slapd = require_binary("slapd", "slapd");
    let mut listen = format!("ldap://{addr}/");
    if let Some(ldaps) = ldaps {
        listen.push_str(&format!(" ldaps://{ldaps}/"));
    }
    let conf_arg = dir.join("slapd.conf").display().to_string();
    let debug = if log_stats { "stats" } else { "0" };
    let mut daemon =
        Daemon::spawn("slapd", &slapd, &["-h", &listen, "-f", &conf_arg, "-d", debug], &dir.join("slapd.log"));
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
