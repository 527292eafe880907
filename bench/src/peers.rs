//! The proxies under test, each started on 127.0.0.1 in front of the lab's two Dovecot stores,
//! routed by the same `mailHost` in the same slapd, with a certificate from the same CA
//! (ECDSA P-256) for implicit TLS, and given the directory the same way: one search per login,
//! no password check at the proxy (the store checks it), no cache unless the row says so.
//!
//! | target | what runs | directory |
//! | --- | --- | --- |
//! | direct | nothing: the client connects to the user's store itself | — |
//! | mailmux | the release `mailmux` binary, `LdapCacheSize 0` | 4 pooled LDAP connections |
//! | mailmux, warm cache | the same, shipped cache settings, warmed before timing | answered from the cache |
//! | mailmux, PreAuth | `PreAuth yes`, `LdapCacheSize 0`, `AuthCacheSize 0`: a search and a bind as the user per login | 4 + 4 connections |
//! | Dovecot proxy | a third Dovecot 2.3: `passdb ldap`, `proxy=y host=%{ldap:mailHost} nopassword=y` | the auth process's LDAP connection |
//! | nginx mail | Debian nginx + `libnginx-mod-mail`, `auth_http` to [`crate::auth_http`] | its 4 pooled connections |
//!
//! TLS 1.3 is enabled everywhere (nginx 1.22 leaves it out of its default `ssl_protocols`,
//! so the configuration names it). Each proxy runs as it ships, sized for this machine's 2 cores: nginx `worker_processes 2`,
//! Dovecot `service_count = 0` and `process_min_avail = 2` on its login services (its
//! high-performance mode), mailmux's default runtime (one thread per core).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use mailmux_testkit::daemon::Daemon;
use mailmux_testkit::lab::{DirectoryKind, Lab, STORE_IPS};
use mailmux_testkit::ports::free_port;
use mailmux_testkit::{User, require_binary, slapd};

use crate::procs;

/// Where a proxy listens.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    /// Plain IMAP.
    pub imap: u16,
    /// Plain POP3.
    pub pop3: u16,
    /// IMAP over implicit TLS.
    pub imaps: u16,
}

impl Ports {
    fn free() -> Ports {
        Ports { imap: free_port(), pop3: free_port(), imaps: free_port() }
    }
}

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// One column of the table: the stores themselves, or a proxy in front of them.
pub struct Target {
    /// Short name, for the command line (`--targets`) and the SVG.
    pub key: &'static str,
    /// Column heading.
    pub name: &'static str,
    /// A variant of another column (mailmux with a cache, with PreAuth): measured only on
    /// the login workloads, where the variant makes a difference.
    pub variant: bool,
    process: Process,
}

enum Process {
    Direct { imap: u16, pop3: u16, imaps: u16 },
    Mailmux(Mailmux),
    Dovecot(DovecotProxy),
    Nginx(Nginx),
}

impl Target {
    /// The stores, reached directly (the baseline).
    pub fn direct(lab: &Lab) -> Target {
        Target {
            key: "direct",
            name: "direct to stores",
            variant: false,
            process: Process::Direct { imap: lab.imap_port, pop3: lab.pop3_port, imaps: lab.imaps_port },
        }
    }

    /// A mailmux process; `extra` is added to both service files.
    pub fn mailmux(
        key: &'static str,
        name: &'static str,
        variant: bool,
        lab: &Lab,
        binary: &Path,
        extra: &str,
    ) -> Target {
        Target { key, name, variant, process: Process::Mailmux(Mailmux::start(lab, binary, extra)) }
    }

    /// A Dovecot proxy.
    pub fn dovecot(lab: &Lab) -> Target {
        Target {
            key: "dovecot",
            name: "Dovecot proxy",
            variant: false,
            process: Process::Dovecot(DovecotProxy::start(lab)),
        }
    }

    /// nginx's mail proxy and its `auth_http` service.
    pub fn nginx(lab: &Lab) -> Target {
        Target { key: "nginx", name: "nginx mail", variant: false, process: Process::Nginx(Nginx::start(lab)) }
    }

    /// Whether this is the baseline.
    pub fn is_direct(&self) -> bool {
        matches!(self.process, Process::Direct { .. })
    }

    fn ports(&self) -> Option<Ports> {
        match &self.process {
            Process::Direct { .. } => None,
            Process::Mailmux(m) => Some(m.ports),
            Process::Dovecot(d) => Some(d.ports),
            Process::Nginx(n) => Some(n.ports),
        }
    }

    fn addr(&self, user: &User, pick: impl Fn(Ports) -> u16) -> SocketAddr {
        match (&self.process, self.ports()) {
            (Process::Direct { imap, pop3, imaps }, _) => SocketAddr::new(
                IpAddr::V4(STORE_IPS[user.store]),
                pick(Ports { imap: *imap, pop3: *pop3, imaps: *imaps }),
            ),
            (_, Some(ports)) => SocketAddr::new(LOCALHOST, pick(ports)),
            (_, None) => unreachable!("a proxy has ports"),
        }
    }

    /// Where `user`'s IMAP client connects.
    pub fn imap(&self, user: &User) -> SocketAddr {
        self.addr(user, |p| p.imap)
    }

    /// Where `user`'s POP3 client connects.
    pub fn pop3(&self, user: &User) -> SocketAddr {
        self.addr(user, |p| p.pop3)
    }

    /// Where `user`'s implicit-TLS IMAP client connects.
    pub fn imaps(&self, user: &User) -> SocketAddr {
        self.addr(user, |p| p.imaps)
    }

    /// The processes whose CPU and memory count as this proxy's (with their descendants);
    /// none for the stores.
    pub fn pids(&self) -> Vec<u32> {
        match &self.process {
            Process::Direct { .. } => Vec::new(),
            Process::Mailmux(m) => vec![m.pid],
            Process::Dovecot(d) => vec![d.pid],
            Process::Nginx(n) => vec![n.pid, n.auth_pid],
        }
    }

    /// Stops the proxy and starts it again (a fresh process, for memory figures).
    pub fn restart(&mut self) {
        match &mut self.process {
            Process::Direct { .. } => {}
            Process::Mailmux(m) => m.restart(),
            Process::Dovecot(d) => d.restart(),
            Process::Nginx(n) => n.restart(),
        }
    }

    /// The proxy's log so far (for a failed run).
    pub fn log_tail(&self) -> String {
        let text = match &self.process {
            Process::Direct { .. } => String::new(),
            Process::Mailmux(m) => m.daemon.log_text(),
            Process::Dovecot(d) => std::fs::read_to_string(d.dir.join("dovecot.log")).unwrap_or_default(),
            Process::Nginx(n) => {
                std::fs::read_to_string(n.dir.join("error.log")).unwrap_or_default() + &n.auth.log_text()
            }
        };
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

fn wait_for(daemon: &mut Daemon, ports: Ports) {
    for port in [ports.imap, ports.pop3, ports.imaps] {
        daemon.wait_for_port(SocketAddr::new(LOCALHOST, port));
    }
}

/// mailmux, as a separate process from the release build.
struct Mailmux {
    binary: PathBuf,
    config: PathBuf,
    ports: Ports,
    daemon: Daemon,
    pid: u32,
}

impl Mailmux {
    fn start(lab: &Lab, binary: &Path, extra: &str) -> Mailmux {
        let tls = lab.write_tls_config(DirectoryKind::Ldap, extra, extra);
        // No client certificates asked for (the lab's configuration accepts them), as the
        // peers ask for none: the handshakes compared are the same.
        for service in ["ImapProxyAService.cfg", "PopProxyAService.cfg"] {
            let path = tls.dir.join(service);
            let text = std::fs::read_to_string(&path).expect("read a service file");
            let kept: String =
                text.lines().filter(|l| !l.starts_with("default:SSLCACertFile")).map(|l| format!("{l}\n")).collect();
            std::fs::write(&path, kept).expect("write a service file");
        }
        let ports = Ports { imap: free_port(), pop3: free_port(), imaps: tls.imaps };
        // LogLevel 5 is the shipped default: one line per session, as Dovecot logs by default.
        std::fs::write(
            tls.dir.join("AService.cfg"),
            format!(
                "default:ServiceList imapproxy@127.0.0.1:{}|127.0.0.1:{} popproxy@127.0.0.1:{}|127.0.0.1:{}\ndefault:LogLevel 5\n",
                ports.imap, ports.imaps, ports.pop3, tls.pop3s
            ),
        )
        .expect("write AService.cfg");
        let (daemon, pid) = Mailmux::spawn(binary, &tls.dir, ports);
        Mailmux { binary: binary.to_path_buf(), config: tls.dir, ports, daemon, pid }
    }

    fn spawn(binary: &Path, config: &Path, ports: Ports) -> (Daemon, u32) {
        let config_arg = config.display().to_string();
        let mut daemon =
            Daemon::spawn("mailmux", binary, &["run", "--log-stderr", "-c", &config_arg], &config.join("mailmux.log"));
        wait_for(&mut daemon, ports);
        let pid = procs::find_by_cmdline(&format!("-c {config_arg} ")).expect("mailmux's pid");
        (daemon, pid)
    }

    fn restart(&mut self) {
        self.daemon.stop();
        (self.daemon, self.pid) = Mailmux::spawn(&self.binary, &self.config, self.ports);
    }
}

/// A Dovecot 2.3 instance as a proxy only: no mail of its own.
struct DovecotProxy {
    dir: PathBuf,
    ports: Ports,
    daemon: Daemon,
    pid: u32,
}

impl DovecotProxy {
    fn start(lab: &Lab) -> DovecotProxy {
        assert!(
            Path::new("/usr/lib/dovecot/modules/auth/libauthdb_ldap.so").exists(),
            "Dovecot's LDAP driver is not installed: install the Debian package `dovecot-ldap` (scripts/bench does)"
        );
        let dir = lab.dir.path().join("dovecot-proxy");
        std::fs::create_dir_all(dir.join("run")).expect("dovecot proxy dir");
        std::fs::create_dir_all(dir.join("state")).expect("dovecot proxy dir");
        let slapd = lab.slapd.as_ref().expect("the lab has a slapd");
        let ports = Ports::free();
        let cert = lab.ca.server("dovecot-proxy", &["127.0.0.1"]);
        let d = dir.display();
        // The password is not checked here (nopassword): Dovecot forwards the one the client
        // gave, and the store checks it, as with mailmux (PreAuth off) and nginx. `port`
        // follows the protocol of the session (`%s`).
        std::fs::write(
            dir.join("dovecot-ldap.conf.ext"),
            format!(
                "hosts = {host}\ndn = {dn}\ndnpass = {pw}\nauth_bind = no\nbase = {base}\nscope = subtree\n\
                 pass_filter = (uid=%u)\n\
                 pass_attrs = =proxy=y, =host=%{{ldap:mailHost}}, =port=%{{if;%s;eq;pop3;{pop3};{imap}}}, =nopassword=y\n",
                host = slapd.addr,
                dn = slapd::ADMIN_DN,
                pw = slapd::ADMIN_PASSWORD,
                base = slapd::SUFFIX,
                pop3 = lab.pop3_port,
                imap = lab.imap_port,
            ),
        )
        .expect("write dovecot-ldap.conf.ext");
        std::fs::write(
            dir.join("dovecot.conf"),
            format!(
                r#"instance_name = mailmux-bench-proxy-{pid}
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
listen = 127.0.0.1
protocols = imap pop3
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
ssl_dh = </usr/share/dovecot/dh.pem
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = no
auth_mechanisms = plain login
default_client_limit = 6000
passdb {{
  driver = ldap
  args = {d}/dovecot-ldap.conf.ext
}}
# Never consulted: every login is proxied.
userdb {{
  driver = static
  args = uid=vmail gid=vmail
}}
service imap-login {{
  inet_listener imap {{
    port = {imap}
  }}
  inet_listener imaps {{
    port = {imaps}
    ssl = yes
  }}
  service_count = 0
  process_min_avail = 2
  client_limit = 6000
}}
service pop3-login {{
  inet_listener pop3 {{
    port = {pop3}
  }}
  service_count = 0
  process_min_avail = 2
  client_limit = 6000
}}
service auth {{
  client_limit = 6000
}}
service anvil {{
  client_limit = 6000
}}
"#,
                pid = std::process::id(),
                cert = cert.cert.display(),
                key = cert.key.display(),
                imap = ports.imap,
                imaps = ports.imaps,
                pop3 = ports.pop3,
            ),
        )
        .expect("write dovecot.conf");
        let (daemon, pid) = DovecotProxy::spawn(&dir, ports);
        DovecotProxy { dir, ports, daemon, pid }
    }

    fn spawn(dir: &Path, ports: Ports) -> (Daemon, u32) {
        let dovecot = require_binary("dovecot", "dovecot-imapd");
        let conf = dir.join("dovecot.conf").display().to_string();
        let _ = std::fs::remove_file(dir.join("run/master.pid"));
        let mut daemon = Daemon::spawn("Dovecot proxy", &dovecot, &["-F", "-c", &conf], &dir.join("dovecot.stdout"));
        wait_for(&mut daemon, ports);
        (daemon, procs::pid_file(&dir.join("run/master.pid")))
    }

    fn restart(&mut self) {
        self.daemon.stop();
        (self.daemon, self.pid) = DovecotProxy::spawn(&self.dir, self.ports);
    }
}

/// nginx's mail proxy, and the `auth_http` service it asks.
struct Nginx {
    dir: PathBuf,
    ports: Ports,
    daemon: Daemon,
    pid: u32,
    auth: Daemon,
    auth_pid: u32,
}

impl Nginx {
    fn start(lab: &Lab) -> Nginx {
        require_binary("nginx", "nginx");
        let module = Path::new("/usr/lib/nginx/modules/ngx_mail_module.so");
        assert!(
            module.exists(),
            "nginx's mail module is not installed: install `libnginx-mod-mail` (scripts/bench does)"
        );
        let dir = lab.dir.path().join("nginx");
        std::fs::create_dir_all(&dir).expect("nginx dir");
        let slapd = lab.slapd.as_ref().expect("the lab has a slapd");
        let auth_port = free_port();
        let auth_settings = dir.join("auth-http.conf");
        std::fs::write(
            &auth_settings,
            format!(
                "listen 127.0.0.1:{auth_port}\nldap {}\nbase {}\nbind_dn {}\nbind_pass {}\nimap_port {}\npop3_port {}\npid_file {}\n",
                slapd.url,
                slapd::SUFFIX,
                slapd::ADMIN_DN,
                slapd::ADMIN_PASSWORD,
                lab.imap_port,
                lab.pop3_port,
                dir.join("auth-http.pid").display()
            ),
        )
        .expect("write auth-http.conf");
        let _ = std::fs::remove_file(dir.join("auth-http.pid"));
        let me = std::env::current_exe().expect("the bench binary's path");
        let settings_arg = auth_settings.display().to_string();
        let mut auth = Daemon::spawn("auth-http", &me, &["auth-http", &settings_arg], &dir.join("auth-http.log"));
        auth.wait_for_port(SocketAddr::new(LOCALHOST, auth_port));
        let auth_pid = procs::pid_file(&dir.join("auth-http.pid"));
        let ports = Ports::free();
        let cert = lab.ca.server("nginx", &["127.0.0.1"]);
        let d = dir.display();
        std::fs::write(
            dir.join("nginx.conf"),
            format!(
                r#"load_module {module};
daemon off;
master_process on;
worker_processes 2;
worker_rlimit_nofile 20000;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{
  worker_connections 10000;
}}
mail {{
  server_name localhost;
  auth_http 127.0.0.1:{auth_port}/auth;
  proxy_pass_error_message on;
  ssl_protocols TLSv1.2 TLSv1.3;
  ssl_certificate {cert};
  ssl_certificate_key {key};
  server {{
    listen 127.0.0.1:{imap};
    protocol imap;
  }}
  server {{
    listen 127.0.0.1:{imaps} ssl;
    protocol imap;
  }}
  server {{
    listen 127.0.0.1:{pop3};
    protocol pop3;
  }}
}}
"#,
                module = module.display(),
                cert = cert.cert.display(),
                key = cert.key.display(),
                imap = ports.imap,
                imaps = ports.imaps,
                pop3 = ports.pop3,
            ),
        )
        .expect("write nginx.conf");
        let (daemon, pid) = Nginx::spawn(&dir, ports);
        Nginx { dir, ports, daemon, pid, auth, auth_pid }
    }

    fn spawn(dir: &Path, ports: Ports) -> (Daemon, u32) {
        let nginx = require_binary("nginx", "nginx");
        let (prefix, conf, log) = (
            format!("{}/", dir.display()),
            dir.join("nginx.conf").display().to_string(),
            dir.join("error.log").display().to_string(),
        );
        let _ = std::fs::remove_file(dir.join("nginx.pid"));
        let mut daemon =
            Daemon::spawn("nginx", &nginx, &["-p", &prefix, "-e", &log, "-c", &conf], &dir.join("nginx.stdout"));
        wait_for(&mut daemon, ports);
        (daemon, procs::pid_file(&dir.join("nginx.pid")))
    }

    fn restart(&mut self) {
        self.daemon.stop();
        (self.daemon, self.pid) = Nginx::spawn(&self.dir, self.ports);
    }
}
