//! Loading the Messaging Multiplexor's own configuration files, as they are.
//!
//! An MMP configuration directory holds `AService.cfg`, whose `ServiceList` names the proxy
//! services and their ports, and one file per service (`ImapProxyAService.cfg`,
//! `PopProxyAService.cfg`). Every file is a list of `section:Name value` lines; see
//! [`raw`] for the syntax and [`service`] for the parameters.
//!
//! Loading is pure and reports every problem at once: [`load`] returns the typed
//! [`Config`] and its warnings, or every error (and warning) with file and line.
//! Nothing here opens a socket, so `mailmux check` and the fuzzers share it.
//!
//! | module | what it knows |
//! | --- | --- |
//! | [`raw`] | line syntax: sections, quoting, comments, booleans |
//! | [`certmap`] | `certmap.conf`: client certificate → directory search |
//! | [`diagnostic`] | a problem with its file and line |
//! | [`dn`] | distinguished names: RFC 4514 strings, certificate string types, issuer comparison |
//! | [`service_list`] | `ServiceList` items and listening addresses |
//! | [`template`] | `SearchFormat` / `ReplayFormat` templates (`%s %U %V %o %C %S %A[attr]`) |
//! | [`directory_url`] | `LdapURL` entries: `ldap://host:port/base` and `ldif:` files |
//! | [`service`] | the per-service parameters, typed and validated |
//! | [`edge`] | BadGuy penalties and failed-login limits of a service |
//! | [`lookup`] | hosted domains or one tree, the canonical delimiter, the route cache |
//! | [`tls`] | TLS toward clients and stores, PEM files in place of the MMP's NSS databases |
//! | [`tcp_access`] | `TCPAccess` and the per-user `mailAllowedServiceAccess` filters: who may use which service |
//! | [`control`] | `MetricsListen`, `AdminListen`: where the Prometheus and admin endpoints listen |
//! | [`conn_limits`] | `ConnLimits`: simultaneous connections per client, by address range |
//! | [`address_list`] | address ranges (`IP\|MASK`, CIDR) and the `BGExcluded` list or file |
//! | [`vdmap`] | the vdmap file: a service's settings per local address (virtual domains) |
//! | [`origin`] | where each setting was written, file and line |
//! | [`effective`] | every parameter's effective value and origin (`mailmux check --effective`) |

pub mod address_list;
pub mod auth;
pub mod certmap;
pub mod conn_limits;
pub mod control;
pub mod diagnostic;
pub mod directory_url;
pub mod dn;
pub mod edge;
pub mod effective;
pub mod lookup;
pub mod origin;
pub mod raw;
pub mod service;
pub mod service_list;
pub mod spoof;
pub mod store_address;
pub mod store_capabilities;
pub mod tcp_access;
pub mod template;
pub mod tls;
pub mod vdmap;

use std::path::{Path, PathBuf};

pub use diagnostic::{Diagnostic, Diagnostics, Severity};
pub use directory_url::DirectoryUrl;
pub use service::{LogFormat, LogLevel, Protocol, ServiceConfig};
pub use template::{Template, Token};
pub use tls::{ServerTls, StoreTls, StoreTlsMode};
pub use vdmap::VirtualDomain;

/// The name of the file that lists the services.
pub const ASERVICE_FILE: &str = "AService.cfg";

/// A complete, validated configuration: what one mailmux process runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// The directory the files were read from; relative paths are resolved against it.
    pub dir: PathBuf,
    /// `LogDir` of `AService.cfg`: where process-wide log lines go.
    pub log_dir: Option<PathBuf>,
    /// `LogLevel` of `AService.cfg`.
    pub log_level: LogLevel,
    /// `LogFormat` (mailmux) of `AService.cfg`: text lines or JSON lines.
    pub log_format: LogFormat,
    /// `MaxSessions` (mailmux): sessions served at once; by default as many as the
    /// process's descriptor limit allows.
    pub max_sessions: Option<usize>,
    /// `MaxPreLoginSessions` (mailmux): sessions not yet logged in, at once; by default half
    /// of the session limit, so clients that never log in cannot crowd out those that do.
    pub max_prelogin_sessions: Option<usize>,
    /// `MaxPreLoginPerNetwork` (mailmux): sessions not yet logged in from one network (IPv4
    /// /24, IPv6 /48); by default an eighth of `MaxPreLoginSessions`.
    pub max_prelogin_per_network: Option<usize>,
    /// `PidFile` (mailmux): where `mailmux run` writes its process id, for `mailmux reload`
    /// and `mailmux stop`; by default `mailmux.pid` (`mailmux-INSTANCE.pid`) in the
    /// configuration directory.
    pub pid_file: PathBuf,
    /// `SlowClientBufferTotal` (mailmux): bytes all relayed sessions together may hold for
    /// clients slower than their stores (each up to its service's `SlowClientBuffer`).
    pub slow_client_buffer_total: usize,
    /// `MetricsListen` (mailmux): where the Prometheus endpoint listens; off when unset.
    pub metrics_listen: Option<control::ControlAddr>,
    /// `AdminListen` (mailmux): where the admin endpoint listens (loopback or a Unix
    /// socket); off when unset.
    pub admin_listen: Option<control::ControlAddr>,
    /// The `--instance` the files were read for, so a reload reads them the same way.
    pub instance: Option<String>,
    /// The services, in `ServiceList` order.
    pub services: Vec<ServiceConfig>,
    /// Where `AService.cfg`'s settings were written.
    pub origins: origin::Origins,
}

/// `SlowClientBufferTotal`'s default: 256 MiB.
pub const DEFAULT_SLOW_CLIENT_BUFFER_TOTAL: usize = 256 << 20;

/// A configuration and the warnings found while loading it.
#[derive(Debug)]
pub struct Loaded {
    /// The configuration.
    pub config: Config,
    /// Problems that did not stop loading (unknown names, ignored parameters).
    pub warnings: Diagnostics,
}

/// Loads the configuration directory. `instance` selects entries written `instance:Name`
/// in addition to the `default:` ones (they override them), so several instances can share
/// one set of files.
pub fn load(dir: &Path, instance: Option<&str>) -> Result<Loaded, Diagnostics> {
    let mut diags = Diagnostics::default();
    let aservice_path = dir.join(ASERVICE_FILE);
    let entries = match std::fs::read_to_string(&aservice_path) {
        Ok(text) => raw::parse(&aservice_path, &text, instance, &mut diags),
        Err(e) => {
            diags.error(&aservice_path, 0, format!("cannot read: {e}"));
            return Err(diags);
        }
    };
    let mut log_dir = None;
    let mut log_level = LogLevel::default();
    let mut log_format = LogFormat::default();
    let (mut max_sessions, mut max_prelogin_sessions, mut max_prelogin_per_network) = (None, None, None);
    let mut pid_file = default_pid_file(dir, instance);
    let mut slow_client_buffer_total = DEFAULT_SLOW_CLIENT_BUFFER_TOTAL;
    let mut service_list = None;
    let mut origins = origin::Origins::default();
    let metrics_remote = entries
        .iter()
        .rev()
        .find(|e| e.key == "metricsallowremote")
        .map_or(Ok(false), |e| raw::parse_bool(&e.value).map_err(|err| (e.line, err)));
    let metrics_remote = metrics_remote.unwrap_or_else(|(line, err)| {
        diags.error(&aservice_path, line, format!("MetricsAllowRemote: {err}"));
        false
    });
    let (mut metrics_listen, mut admin_listen) = (None, None);
    for entry in &entries {
        origins.set(&entry.key, &aservice_path, entry.line, false);
        match entry.key.as_str() {
            "servicelist" => {
                service_list = Some(service_list::parse(&entry.value, &aservice_path, entry.line, &mut diags));
            }
            "logdir" => log_dir = Some(resolve(dir, &entry.value)),
            "pidfile" => pid_file = resolve(dir, &entry.value),
            "slowclientbuffertotal" => match raw::parse_size(&entry.value) {
                Ok(n) => slow_client_buffer_total = n,
                Err(e) => diags.error(&aservice_path, entry.line, format!("SlowClientBufferTotal: {e}")),
            },
            "metricsallowremote" => {}
            "metricslisten" | "adminlisten" => {
                let (endpoint, setting) = match entry.key.as_str() {
                    "metricslisten" => (control::Endpoint::Metrics { remote: metrics_remote }, &mut metrics_listen),
                    _ => (control::Endpoint::Admin, &mut admin_listen),
                };
                match control::parse(&entry.value, dir, endpoint) {
                    Ok(addr) => *setting = Some(addr),
                    Err(e) => diags.error(&aservice_path, entry.line, format!("{}: {e}", entry.name)),
                }
            }
            "loglevel" => match LogLevel::parse(&entry.value) {
                Ok(level) => log_level = level,
                Err(e) => diags.error(&aservice_path, entry.line, format!("LogLevel: {e}")),
            },
            "logformat" => match LogFormat::parse(&entry.value) {
                Ok(format) => log_format = format,
                Err(e) => diags.error(&aservice_path, entry.line, format!("LogFormat: {e}")),
            },
            "maxsessions" | "maxpreloginsessions" | "maxpreloginpernetwork" => {
                match entry.value.trim().parse::<usize>() {
                    Ok(n) if n > 0 => {
                        let setting = match entry.key.as_str() {
                            "maxsessions" => &mut max_sessions,
                            "maxpreloginsessions" => &mut max_prelogin_sessions,
                            _ => &mut max_prelogin_per_network,
                        };
                        *setting = Some(n);
                    }
                    _ => diags.error(
                        &aservice_path,
                        entry.line,
                        format!("{}: '{}' is not a positive number", entry.name, entry.value),
                    ),
                }
            }
            "numthreads" => diags.warn(
                &aservice_path,
                entry.line,
                "NumThreads is ignored: mailmux sizes its worker pool to the machine's cores",
            ),
            _ => diags.warn(&aservice_path, entry.line, format!("unknown parameter '{}' ignored", entry.name)),
        }
    }
    let Some(service_list) = service_list else {
        diags.error(&aservice_path, 0, "ServiceList is missing: no service to run");
        return Err(diags);
    };
    let mut services = Vec::new();
    let mut vdmap_files = vdmap::Files::default();
    for item in service_list {
        let path = dir.join(&item.file);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let entries = raw::parse(&path, &text, instance, &mut diags);
                let mut svc = service::build(item.protocol, item.listeners, &path, dir, &entries, &mut diags);
                vdmap::attach(svc.as_mut(), &entries, &path, dir, &mut vdmap_files, &mut diags);
                services.extend(svc);
            }
            Err(e) => {
                diags.error(&aservice_path, item.line, format!("service file {} cannot be read: {e}", path.display()))
            }
        }
    }
    if diags.has_errors() {
        return Err(diags);
    }
    let config = Config {
        dir: dir.to_path_buf(),
        log_dir,
        log_level,
        log_format,
        max_sessions,
        max_prelogin_sessions,
        max_prelogin_per_network,
        pid_file,
        slow_client_buffer_total,
        metrics_listen,
        admin_listen,
        instance: instance.map(str::to_owned),
        services,
        origins,
    };
    Ok(Loaded { config, warnings: diags })
}

fn default_pid_file(dir: &Path, instance: Option<&str>) -> PathBuf {
    dir.join(match instance {
        Some(name) => format!("mailmux-{name}.pid"),
        None => "mailmux.pid".to_owned(),
    })
}

/// The pid file of an instance, read from `AService.cfg` alone: `mailmux stop` must find
/// a running instance even when an edit has broken some other file since it started.
pub fn pid_file(dir: &Path, instance: Option<&str>) -> PathBuf {
    let aservice_path = dir.join(ASERVICE_FILE);
    let text = std::fs::read_to_string(&aservice_path).unwrap_or_default();
    let entries = raw::parse(&aservice_path, &text, instance, &mut Diagnostics::default());
    entries
        .iter()
        .rev()
        .find(|entry| entry.key == "pidfile")
        .map_or_else(|| default_pid_file(dir, instance), |entry| resolve(dir, &entry.value))
}

/// The admin endpoint of an instance, read from `AService.cfg` alone (as [`pid_file`]), for
/// `mailmux admin`: `None` when `AdminListen` is not set, an error when it cannot be read.
pub fn admin_listen(dir: &Path, instance: Option<&str>) -> Result<Option<control::ControlAddr>, String> {
    let aservice_path = dir.join(ASERVICE_FILE);
    let text = std::fs::read_to_string(&aservice_path).map_err(|e| format!("{}: {e}", aservice_path.display()))?;
    let entries = raw::parse(&aservice_path, &text, instance, &mut Diagnostics::default());
    match entries.iter().rev().find(|entry| entry.key == "adminlisten") {
        None => Ok(None),
        Some(entry) => control::parse(&entry.value, dir, control::Endpoint::Admin)
            .map(Some)
            .map_err(|e| format!("{}:{}: AdminListen: {e}", aservice_path.display(), entry.line)),
    }
}

/// A path from a configuration value, relative to the configuration directory.
pub fn resolve(dir: &Path, value: &str) -> PathBuf {
    let p = Path::new(value);
    if p.is_absolute() { p.to_path_buf() } else { dir.join(p) }
}
