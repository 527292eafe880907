//! TLS with rustls (ring provider): configurations built once per configuration generation,
//! and the stream type sessions use whether or not TLS is on.
//!
//! * [`server_config`]: the certificate from `SSLCertFile`/`SSLKeyFile`, TLS 1.2 and 1.3 only,
//!   `SSLCipherSpecs` applied, and — with `SSLCACertFile` — client certificates requested (not
//!   required, so password users are not disturbed) and checked against the CA and `SSLCRLFile`.
//! * [`store_connector`]: TLS toward stores, verifying the store's certificate against
//!   `SSLBacksideCAFile` (or the system roots) with the mailHost as the expected name.
//! * [`directory_config`]: TLS toward LDAP servers (`ldaps://`, `LdapStartTLS`), verified
//!   against `LdapCAFile` (or the system roots) with the URL's host as the expected name.
//! * [`MaybeTls`]: one stream type for plain and TLS connections, so the session, the store
//!   login and the relay do not care, and STARTTLS can swap one for the other.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use mailmux_config::{DirectoryUrl, ServerTls, ServiceConfig, StoreTls, StoreTlsMode};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// Where the system's trusted roots are on Debian.
const SYSTEM_ROOTS: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The one crypto provider. Built explicitly: never rely on a process-wide default, which
/// panics when two providers are compiled in.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    /// A PEM file could not be read or holds nothing usable.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// rustls refused the combination (key does not match the certificate, no usable suite …).
    #[error("TLS configuration: {0}")]
    Rustls(String),
}

fn file_error(path: &std::path::Path, reason: impl ToString) -> TlsSetupError {
    TlsSetupError::File { path: path.display().to_string(), reason: reason.to_string() }
}

fn read_certs(path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_error(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(path, e))?;
    if certs.is_empty() {
        return Err(file_error(path, "no PEM certificate found"));
    }
    Ok(certs)
}

fn read_roots(path: &std::path::Path) -> Result<RootCertStore, TlsSetupError> {
    let mut roots = RootCertStore::empty();
    for cert in read_certs(path)? {
        roots.add(cert).map_err(|e| file_error(path, e))?;
    }
    Ok(roots)
}

/// Applies `SSLCipherSpecs`: IANA names (`TLS_AES_128_GCM_SHA256`,
/// `TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`) or rustls's (`TLS13_AES_128_GCM_SHA256`).
/// Returns the provider and the names it did not know.
fn with_suites(names: &[String]) -> Result<(Arc<CryptoProvider>, Vec<String>), TlsSetupError> {
    let mut provider = rustls::crypto::ring::default_provider();
    if names.is_empty() {
        return Ok((Arc::new(provider), Vec::new()));
    }
    let normalize = |s: &str| s.to_ascii_uppercase().replace("TLS13_", "TLS_");
    let wanted: Vec<String> = names.iter().map(|n| normalize(n)).collect();
    let unknown = names
        .iter()
        .filter(|n| !provider.cipher_suites.iter().any(|s| normalize(&format!("{:?}", s.suite())) == normalize(n)))
        .cloned()
        .collect();
    provider.cipher_suites.retain(|s| wanted.contains(&normalize(&format!("{:?}", s.suite()))));
    if provider.cipher_suites.is_empty() {
        return Err(TlsSetupError::Rustls(format!(
            "SSLCipherSpecs names no suite mailmux supports: {}",
            names.join(" ")
        )));
    }
    Ok((Arc::new(provider), unknown))
}

/// The server configuration of a service; the names of `SSLCipherSpecs` it ignored.
pub fn server_config(tls: &ServerTls) -> Result<(Arc<ServerConfig>, Vec<String>), TlsSetupError> {
    let (provider, unknown) = with_suites(&tls.cipher_suites)?;
    let certs = read_certs(&tls.cert_file)?;
    let key = PrivateKeyDer::from_pem_file(&tls.key_file).map_err(|e| file_error(&tls.key_file, e))?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsSetupError::Rustls(e.to_string()))?;
    let builder = match &tls.client_ca_file {
        Some(ca) => {
            let roots = Arc::new(read_roots(ca)?);
            let mut verifier = WebPkiClientVerifier::builder_with_provider(roots, provider).allow_unauthenticated();
            if let Some(crl_file) = &tls.crl_file {
                let crls = CertificateRevocationListDer::pem_file_iter(crl_file)
                    .map_err(|e| file_error(crl_file, e))?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| file_error(crl_file, e))?;
                verifier = verifier.with_crls(crls);
            }
            let verifier = verifier.build().map_err(|e| TlsSetupError::Rustls(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| TlsSetupError::Rustls(format!("{}: {e}", tls.key_file.display())))?;
    config.alpn_protocols = Vec::new();
    Ok((Arc::new(config), unknown))
}

/// The acceptor for a service, if it has TLS.
pub fn acceptor(config: &Arc<ServerConfig>) -> TlsAcceptor {
    TlsAcceptor::from(config.clone())
}

/// A client configuration trusting `ca_file` (or the system roots); `verify: false` accepts
/// any certificate.
fn client_config(ca_file: Option<&std::path::Path>, verify: bool) -> Result<Arc<ClientConfig>, TlsSetupError> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsSetupError::Rustls(e.to_string()))?;
    let config = if verify {
        let roots = read_roots(ca_file.unwrap_or(std::path::Path::new(SYSTEM_ROOTS)))?;
        builder.with_root_certificates(roots).with_no_client_auth()
    } else {
        builder.dangerous().with_custom_certificate_verifier(Arc::new(NoVerification(provider()))).with_no_client_auth()
    };
    Ok(Arc::new(config))
}

/// The connector toward stores, if TLS to stores is on.
pub fn store_connector(tls: &StoreTls) -> Result<Option<TlsConnector>, TlsSetupError> {
    if tls.mode == StoreTlsMode::Off {
        return Ok(None);
    }
    Ok(Some(TlsConnector::from(client_config(tls.ca_file.as_deref(), tls.verify)?)))
}

/// The configuration toward LDAP servers, if any `LdapURL` is `ldaps://` or `LdapStartTLS` is on.
pub fn directory_config(svc: &ServiceConfig) -> Result<Option<Arc<ClientConfig>>, TlsSetupError> {
    let ldaps =
        svc.directory.iter().any(|u| matches!(u, DirectoryUrl::Ldap { server, .. } if server.starts_with("ldaps://")));
    if !ldaps && !svc.ldap_starttls {
        return Ok(None);
    }
    client_config(svc.ldap_ca_file.as_deref(), true).map(Some)
}

/// The name a store's certificate must carry: its mailHost, as a DNS name or an IP address.
pub fn store_name(host: &str) -> Result<ServerName<'static>, String> {
    ServerName::try_from(host.to_owned()).map_err(|e| format!("'{host}' is not a valid TLS server name: {e}"))
}

/// `SSLBacksideVerify no`: accept any store certificate. Signatures are still checked, so
/// the handshake is sound; only the identity is not.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A TCP connection, before or after TLS.
#[derive(Debug)]
pub enum MaybeTls<T> {
    /// No TLS (yet).
    Plain(TcpStream),
    /// TLS over TCP.
    Tls(Box<T>),
}

/// A client connection.
pub type ClientStream = MaybeTls<tokio_rustls::server::TlsStream<TcpStream>>;
/// A store connection.
pub type StoreStream = MaybeTls<tokio_rustls::client::TlsStream<TcpStream>>;

impl ClientStream {
    /// The client certificate (leaf), when the client presented one that verified.
    pub fn peer_certificate(&self) -> Option<&CertificateDer<'static>> {
        match self {
            MaybeTls::Plain(_) => None,
            MaybeTls::Tls(tls) => tls.get_ref().1.peer_certificates().and_then(|c| c.first()),
        }
    }
}

impl<T> MaybeTls<T> {
    /// Whether TLS is on.
    pub fn is_tls(&self) -> bool {
        matches!(self, MaybeTls::Tls(_))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for MaybeTls<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_read(cx, buf),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for MaybeTls<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_write(cx, buf),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_flush(cx),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_shutdown(cx),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cipher_specs_take_iana_or_rustls_names_and_report_unknown_ones() {
        let names = [
            "TLS_AES_128_GCM_SHA256".to_owned(),
            "TLS13_AES_256_GCM_SHA384".to_owned(),
            "SSL_RSA_WITH_RC4_128_MD5".to_owned(),
        ];
        let (provider, unknown) = with_suites(&names).unwrap();
        assert_eq!(provider.cipher_suites.len(), 2);
        assert_eq!(unknown, vec!["SSL_RSA_WITH_RC4_128_MD5".to_owned()]);
        let (provider, unknown) = with_suites(&[]).unwrap();
        assert!(provider.cipher_suites.len() > 2 && unknown.is_empty());
        assert!(with_suites(&["rc4".to_owned()]).is_err(), "nothing usable is an error");
    }
}
