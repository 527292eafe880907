//! Test certificates, generated at test time (fixed files would expire): a CA, server
//! certificates with IP subject-alternative names, client certificates with chosen subject
//! DNs, and CRLs.
//!
//! A self-signed `openssl req -x509` certificate carries CA:TRUE and webpki refuses it as a
//! server certificate, so every leaf here is signed by a separate CA.
//!
//! Subjects rcgen cannot write (multi-valued RDNs, repeated attributes, undecodable values)
//! come from [`Ca::client_with_subject`]; see [`crate::subject`].

use std::path::{Path, PathBuf};

use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CertifiedIssuer, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyIdMethod, KeyPair, KeyUsagePurpose, RevokedCertParams, SerialNumber, SigningKey,
};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::subject::{self, RawAva};

/// A certificate and its key, as PEM files.
#[derive(Debug, Clone)]
pub struct CertFiles {
    /// The certificate (PEM).
    pub cert: PathBuf,
    /// The private key (PEM).
    pub key: PathBuf,
    /// The serial number, for revocation.
    pub serial: u64,
}

impl CertFiles {
    /// The certificate, DER.
    pub fn der(&self) -> Vec<u8> {
        CertificateDer::from_pem_file(&self.cert).expect("read certificate").to_vec()
    }
}

/// A certificate authority that writes what it signs into a directory.
pub struct Ca {
    /// Where files go.
    pub dir: PathBuf,
    /// The CA certificate (PEM), to trust.
    pub cert: PathBuf,
    name: String,
    issuer: CertifiedIssuer<'static, KeyPair>,
    next_serial: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca").field("name", &self.name).field("cert", &self.cert).finish()
    }
}

impl Ca {
    /// A new CA named `name`, its certificate written to `dir/NAME.pem`.
    pub fn new(dir: &Path, name: &str) -> Ca {
        std::fs::create_dir_all(dir).expect("pki dir");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.distinguished_name.push(DnType::OrganizationName, "mailmux tests");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let issuer =
            CertifiedIssuer::self_signed(params, KeyPair::generate().expect("CA key")).expect("CA certificate");
        let cert = dir.join(format!("{name}.pem"));
        std::fs::write(&cert, issuer.pem()).expect("write CA certificate");
        Ca {
            dir: dir.to_path_buf(),
            cert,
            name: name.to_owned(),
            issuer,
            next_serial: std::sync::atomic::AtomicU64::new(100),
        }
    }

    fn serial(&self) -> u64 {
        self.next_serial.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    /// A server certificate for `names` (DNS names or IP addresses), as `file.pem`/`file.key`.
    pub fn server(&self, file: &str, names: &[&str]) -> CertFiles {
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).expect("server params");
        params.distinguished_name.push(DnType::CommonName, names[0]);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.sign(file, params)
    }

    /// A client certificate with the subject `dn` (pairs in order, e.g. `("CN", "Pilar")`,
    /// `("OU", "pilar")`, `("E", "p@x")`); `expired` backdates it.
    pub fn client(&self, file: &str, dn: &[(&str, &str)], expired: bool) -> CertFiles {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("client params");
        for (kind, value) in dn {
            let kind = match kind.to_ascii_uppercase().as_str() {
                "CN" => DnType::CommonName,
                "OU" => DnType::OrganizationalUnitName,
                "O" => DnType::OrganizationName,
                "C" => DnType::CountryName,
                "L" => DnType::LocalityName,
                "ST" => DnType::StateOrProvinceName,
                // emailAddress, 1.2.840.113549.1.9.1 (certmap calls it "E").
                "E" | "EMAIL" => DnType::CustomDnType(vec![1, 2, 840, 113_549, 1, 9, 1]),
                "UID" => DnType::CustomDnType(vec![0, 9, 2342, 19_200_300, 100, 1, 1]),
                other => panic!("unknown DN attribute {other}"),
            };
            params.distinguished_name.push(kind, *value);
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        self.sign(file, params)
    }

    /// A client certificate whose subject is exactly `rdns`, in certificate order (least
    /// specific first); each inner `Vec` is one RDN, multi-valued when it holds several.
    /// Anything else about it is as [`Ca::client`] makes it, so the handshake accepts it.
    pub fn client_with_subject(&self, file: &str, rdns: &[Vec<RawAva>]) -> CertFiles {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("client params");
        params.distinguished_name.push(DnType::CommonName, "placeholder, replaced below");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let files = self.sign(file, params);
        let der = subject::replace_subject(&files.der(), &subject::name_der(rdns), |tbs| {
            self.issuer.key().sign(tbs).expect("sign the new TBSCertificate")
        });
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let lines: Vec<&str> =
            b64.as_bytes().chunks(64).map(|l| std::str::from_utf8(l).expect("base64 is ASCII")).collect();
        let pem = format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", lines.join("\n"));
        std::fs::write(&files.cert, pem).expect("write certificate");
        files
    }

    fn sign(&self, file: &str, mut params: CertificateParams) -> CertFiles {
        let serial = self.serial();
        params.serial_number = Some(SerialNumber::from(serial));
        let key = KeyPair::generate().expect("leaf key");
        let cert = params.signed_by(&key, &self.issuer).expect("sign certificate");
        let files =
            CertFiles { cert: self.dir.join(format!("{file}.pem")), key: self.dir.join(format!("{file}.key")), serial };
        std::fs::write(&files.cert, cert.pem()).expect("write certificate");
        std::fs::write(&files.key, key.serialize_pem()).expect("write key");
        files
    }

    /// A CRL revoking `revoked`, written to `file.pem`.
    pub fn crl(&self, file: &str, revoked: &[&CertFiles]) -> PathBuf {
        let now = rcgen::date_time_ymd(2026, 1, 1);
        let params = CertificateRevocationListParams {
            this_update: now,
            next_update: rcgen::date_time_ymd(2036, 1, 1),
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: revoked
                .iter()
                .map(|c| RevokedCertParams {
                    serial_number: SerialNumber::from(c.serial),
                    revocation_time: now,
                    reason_code: None,
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        };
        let crl = params.signed_by(&self.issuer).expect("sign CRL");
        let path = self.dir.join(format!("{file}.pem"));
        std::fs::write(&path, crl.pem().expect("CRL PEM")).expect("write CRL");
        path
    }
}
