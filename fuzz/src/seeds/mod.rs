//! The seed corpora, as a table: what clients, stores and operators really send, taken from the
//! integration-test transcripts (`crates/mailmux/tests`), the replay unit tests, the example
//! configuration, and a Dovecot 2.3.19.1 (Debian) store.
//!
//! Each seed names the state it was written to reach; `cargo test` (in `fuzz/`) runs every seed
//! through its harness and checks it still gets there, and that `corpus/` holds exactly these
//! bytes. `scripts/fuzz-seeds` writes the files (`cargo run --example write_seeds`).
//!
//! The store answers are in [`store`], the SASL client lines in [`sasl_exchange`].

use mailmux_proto::sasl::{self, bearer};
use mailmux_proto::{BearerMechanism, Secret};

use crate::front::{FrontEnd, FrontOutcome, settings};
use crate::maildrop::{MaildropEnd, MaildropOutcome};
use crate::probe::ProbeEnd;
use crate::sasl::SaslOutcome;
use crate::store::StoreOutcome;
use crate::text::{ConfigOutcome, FilterOutcome};

mod sasl_exchange;
mod store;

/// One seed file.
#[derive(Debug, Clone)]
pub struct Seed {
    /// The fuzz target.
    pub target: &'static str,
    /// The file name under `corpus/<target>/`.
    pub file: String,
    /// The bytes.
    pub data: Vec<u8>,
    /// What running it through the harness must give.
    pub expect: Expect,
}

/// What a seed is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// `imap_front` / `pop3_front`.
    Front(FrontOutcome),
    /// `store_replay`.
    Store(StoreOutcome),
    /// `sasl_exchange`.
    Sasl(SaslOutcome),
    /// `ldap_filter`.
    Filter(FilterOutcome),
    /// `config_file`.
    Config(ConfigOutcome),
    /// `store_probe`.
    Probe(ProbeEnd),
    /// `pop3_maildrop`.
    Maildrop(MaildropOutcome),
}

impl Expect {
    /// Runs `data` through the harness of `target`.
    pub fn run(target: &str, data: &[u8]) -> Expect {
        match target {
            "imap_front" => Expect::Front(crate::front::imap_front(data)),
            "pop3_front" => Expect::Front(crate::front::pop3_front(data)),
            "store_replay" => Expect::Store(crate::store::store_replay(data)),
            "sasl_exchange" => Expect::Sasl(crate::sasl::sasl_exchange(data)),
            "ldap_filter" => Expect::Filter(crate::text::ldap_filter(data)),
            "config_file" => Expect::Config(crate::text::config_file(data)),
            "store_probe" => Expect::Probe(crate::probe::store_probe(data)),
            "pop3_maildrop" => Expect::Maildrop(crate::maildrop::pop3_maildrop(data)),
            other => panic!("no target {other}"),
        }
    }
}

/// The fuzz targets (`cargo fuzz list`); each has seeds.
pub const TARGETS: [&str; 8] = [
    "imap_front",
    "pop3_front",
    "pop3_maildrop",
    "store_replay",
    "store_probe",
    "sasl_exchange",
    "ldap_filter",
    "config_file",
];

/// Every seed.
pub fn all() -> Vec<Seed> {
    let mut seeds = Vec::new();
    imap_front(&mut seeds);
    pop3_front(&mut seeds);
    pop3_sasl(&mut seeds);
    store::store_replay(&mut seeds);
    store::store_probe(&mut seeds);
    pop3_maildrop(&mut seeds);
    sasl_exchange::sasl_exchange(&mut seeds);
    ldap_filter(&mut seeds);
    config_file(&mut seeds);
    seeds
}

fn seed(seeds: &mut Vec<Seed>, target: &'static str, name: &str, data: Vec<u8>, expect: Expect) {
    seeds.push(Seed { target, file: format!("seed-{name}"), data, expect });
}

/// Client lines joined with CRLF, each ending in one.
fn lines(lines: &[&str]) -> Vec<u8> {
    lines.iter().flat_map(|l| [l.as_bytes(), b"\r\n"]).flatten().copied().collect()
}

fn front(logins: u32, tls: bool, end: FrontEnd) -> Expect {
    Expect::Front(FrontOutcome { logins, tls, end })
}

// Front settings (the first byte is also the read size; a clear bit turns a feature on).
/// No STARTTLS, passwords allowed, no certificate; reads of 255 bytes.
const OPEN: u8 = 0xff;
/// The same with CRAMs and bearer tokens on, in reads of 15 bytes (commands cut mid-line).
const OPEN_SMALL_READS: u8 =
    settings::NO_STARTTLS | settings::PLAINTEXT_ALLOWED | settings::NO_CERTIFICATE | settings::NO_CERTIFICATE_AFTER_TLS;
/// No STARTTLS, passwords allowed, no certificate, CRAMs and bearer tokens on; reads of 207 bytes.
const CRAMS_AND_BEARER: u8 = OPEN & !(settings::NO_CRAMS | settings::NO_BEARER);
/// Everything on (STARTTLS offered, RestrictPlainPasswords, certificates, CRAMs, bearer
/// tokens); one byte per read.
const ALL_ON_BYTEWISE: u8 = 0x00;
/// A client certificate, passwords allowed, STARTTLS offered; reads of 250 bytes.
const CERTIFICATE: u8 = 0xf0 | settings::PLAINTEXT_ALLOWED | settings::NO_CERTIFICATE_AFTER_TLS;

/// Base64 of SASL PLAIN for `user1`/`secret1`, as the tests' `sasl_plain()` builds it.
fn plain_blob() -> String {
    sasl::encode(b"\0user1\0secret1")
}

/// Base64 of a bearer message for `user1` (RFC 7628's example token for OAUTHBEARER, Google's
/// for XOAUTH2).
fn token_blob(mechanism: BearerMechanism) -> String {
    let token = match mechanism {
        BearerMechanism::OAuthBearer => "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==",
        BearerMechanism::XOAuth2 => "ya29.vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg",
    };
    String::from_utf8_lossy(bearer::encode(mechanism, "user1", &Secret::new(token)).expose()).into_owned()
}

/// `user1`'s CRAM-MD5 answer (any digest: the front machines do not verify it).
const CRAM_ANSWER: &str = "dXNlcjEgYjkxM2E2MDJjN2VkYTdhNDk1YjRlNmU3MzM0ZDM4OTA=";

fn imap_front(seeds: &mut Vec<Seed>) {
    let mut add = |name: &str, first: u8, client: Vec<u8>, expect: Expect| {
        let mut data = vec![first];
        data.extend(client);
        seed(seeds, "imap_front", name, data, expect);
    };
    let blob = plain_blob();
    add("login-atoms", OPEN, lines(&["a LOGIN user1 secret1"]), front(1, false, FrontEnd::Waiting));
    add(
        "login-quoted",
        OPEN_SMALL_READS,
        lines(&[r#"a1 LOGIN "user1" "secret1""#, r#"a2 LOGIN "us\"er" "pa\\ss""#]),
        front(2, false, FrontEnd::Waiting),
    );
    add(
        "login-sync-literals",
        OPEN,
        lines(&["a1 LOGIN {5}", "user1 {7}", "secret1"]),
        front(1, false, FrontEnd::Waiting),
    );
    add(
        "login-literal-plus",
        OPEN_SMALL_READS,
        lines(&["a1 LOGIN {5+}", "user1 {7+}", "secret1"]),
        front(1, false, FrontEnd::Waiting),
    );
    add(
        "login-8bit-literal",
        OPEN,
        [&b"a1 LOGIN {5}\r\nj\xc3\xb6e1 {10}\r\np\xc3\xa4ssw\xc3\xb6rd\r\n"[..]].concat(),
        front(1, false, FrontEnd::Waiting),
    );
    add(
        "authenticate-plain-sasl-ir",
        OPEN,
        lines(&[&format!("a1 AUTHENTICATE PLAIN {blob}")]),
        front(1, false, FrontEnd::Waiting),
    );
    add(
        "authenticate-plain-continuation",
        OPEN_SMALL_READS,
        lines(&["a1 AUTHENTICATE PLAIN", &blob]),
        front(1, false, FrontEnd::Waiting),
    );
    add(
        "authenticate-login",
        OPEN,
        lines(&["a1 AUTHENTICATE LOGIN", "dXNlcjE=", "c2VjcmV0MQ==", "a2 AUTHENTICATE LOGIN dXNlcjE=", "c2VjcmV0MQ=="]),
        front(2, false, FrontEnd::Waiting),
    );
    add(
        "authenticate-cancel-and-errors",
        OPEN,
        lines(&[
            "a1 AUTHENTICATE PLAIN",
            "*",
            "a2 AUTHENTICATE LOGIN",
            "*",
            "a3 AUTHENTICATE PLAIN =",
            "a4 AUTHENTICATE PLAIN !!!",
            "a5 AUTHENTICATE GSSAPI",
            "a6 AUTHENTICATE PLAIN AGpvZQ==",
        ]),
        front(0, false, FrontEnd::Waiting),
    );
    add(
        "authenticate-external",
        CERTIFICATE,
        lines(&[
            "a AUTHENTICATE EXTERNAL =",
            "b AUTHENTICATE EXTERNAL dXNlcjg=",
            "c AUTHENTICATE EXTERNAL",
            "dXNlcjE=",
            "d NOOP",
        ]),
        front(3, false, FrontEnd::Accepted),
    );
    add(
        "pre-login-commands",
        OPEN,
        lines(&[
            "c1 CAPABILITY",
            "c2 NOOP",
            r#"c3 ID ("name" "transcript" "version" "1.0")"#,
            "c3b ID NIL",
            "c4 SELECT INBOX",
            "c5 AUTHENTICATE GSSAPI",
            "c6 LOGIN user1 secret1",
            "c7 SELECT INBOX",
        ]),
        front(1, false, FrontEnd::Waiting),
    );
    add(
        "three-logins-then-pipelined-select",
        OPEN,
        lines(&[
            "l1 LOGIN user1 wrong",
            "l2 LOGIN nosuchuser wrong",
            "l3 LOGIN user1 secret1",
            "l4 SELECT INBOX",
            "l5 FETCH 1 BODY.PEEK[HEADER.FIELDS (SUBJECT)]",
        ]),
        front(3, false, FrontEnd::Accepted),
    );
    add("logout", OPEN, lines(&["a2 LOGOUT"]), front(0, false, FrontEnd::Logout));
    add(
        "garbage-then-overlong-line",
        OPEN,
        [&b"\x00\xff\xfe garbage\r\nx LOGIN {99999999}\r\n"[..], &[b'A'; 300]].concat(),
        front(0, false, FrontEnd::Close),
    );
    add("too-many-bad-commands", OPEN_SMALL_READS, b"x\r\n".repeat(11), front(0, false, FrontEnd::Close));
    add(
        "append-and-refused-literal",
        OPEN,
        lines(&["a APPEND INBOX {5}", "hello", "x LOGIN {99999}", "y LOGIN {3+}", "u+1 p"]),
        front(1, false, FrontEnd::Waiting),
    );
    // STARTTLS offered and passwords restricted; the STARTTLS line ends a read, so what follows
    // arrives after the handshake: refused before, accepted after.
    let starttls_read = "a STARTTLS\r\n".len() as u8;
    assert_eq!(starttls_read & (settings::NO_STARTTLS | settings::PLAINTEXT_ALLOWED), 0);
    add(
        "restricted-starttls-then-login",
        starttls_read,
        lines(&[
            "a1 LOGIN user1 secret1",
            "a STARTTLS",
            "b CAPABILITY",
            "c STARTTLS",
            "l1 LOGIN user1 secret1",
            "a2 AUTHENTICATE PLAIN",
            &blob,
        ]),
        front(2, true, FrontEnd::Waiting),
    );
    add(
        "restricted-bytewise",
        ALL_ON_BYTEWISE,
        lines(&[
            "a LOGIN user1 secret1",
            "b AUTHENTICATE PLAIN",
            "c AUTHENTICATE EXTERNAL =",
            "d STARTTLS",
            "e LOGIN user1 secret1",
        ]),
        front(2, true, FrontEnd::Waiting),
    );
    // The 2011 injection: a login pipelined behind STARTTLS in one plaintext packet.
    add("starttls-injection", 0x42, lines(&["a STARTTLS", "b LOGIN user1 secret1"]), front(0, true, FrontEnd::Waiting));
    let (ob, xo) = (token_blob(BearerMechanism::OAuthBearer), token_blob(BearerMechanism::XOAuth2));
    add(
        "authenticate-cram-md5",
        CRAMS_AND_BEARER,
        lines(&[
            "a1 AUTHENTICATE CRAM-MD5",
            CRAM_ANSWER,
            "a2 AUTHENTICATE CRAM-MD5 dGlt",
            "a3 AUTHENTICATE CRAM-MD5",
            "*",
        ]),
        front(1, false, FrontEnd::Waiting),
    );
    // Refused (error report, answered), unavailable (no report), accepted.
    add(
        "authenticate-bearer-tokens",
        CRAMS_AND_BEARER,
        lines(&[
            &format!("a1 AUTHENTICATE OAUTHBEARER {ob}"),
            "AQ==",
            "a2 AUTHENTICATE XOAUTH2",
            &xo,
            &format!("a3 AUTHENTICATE XOAUTH2 {xo}"),
            "a4 SELECT INBOX",
        ]),
        front(3, false, FrontEnd::Accepted),
    );
    add(
        "restricted-cram-before-tls-bearer-after",
        ALL_ON_BYTEWISE,
        lines(&[
            &format!("a AUTHENTICATE XOAUTH2 {xo}"),
            "b AUTHENTICATE CRAM-MD5",
            CRAM_ANSWER,
            "c STARTTLS",
            &format!("d AUTHENTICATE OAUTHBEARER {ob}"),
        ]),
        front(2, true, FrontEnd::Waiting),
    );
}

fn pop3_front(seeds: &mut Vec<Seed>) {
    let mut add = |name: &str, first: u8, client: Vec<u8>, expect: Expect| {
        let mut data = vec![first];
        data.extend(client);
        seed(seeds, "pop3_front", name, data, expect);
    };
    let blob = plain_blob();
    add("capa-user-pass", OPEN, lines(&["CAPA", "USER user1", "PASS secret1"]), front(1, false, FrontEnd::Waiting));
    add(
        "auth-plain-initial-response",
        OPEN_SMALL_READS,
        lines(&[&format!("AUTH PLAIN {blob}")]),
        front(1, false, FrontEnd::Waiting),
    );
    add("auth-plain-continuation", OPEN, lines(&["AUTH PLAIN", &blob]), front(1, false, FrontEnd::Waiting));
    add(
        "auth-login",
        OPEN,
        lines(&["AUTH LOGIN", "dXNlcjE=", "c2VjcmV0MQ==", "AUTH LOGIN dXNlcjE=", "c2VjcmV0MQ=="]),
        front(2, false, FrontEnd::Waiting),
    );
    add(
        "auth-list-cancel-errors",
        OPEN,
        lines(&["AUTH", "AUTH PLAIN", "*", "AUTH LOGIN", "*", "AUTH PLAIN =", "AUTH CRAM-MD5", "PASS x", "USER"]),
        front(0, false, FrontEnd::Waiting),
    );
    add(
        "three-logins-then-pipelined-stat",
        OPEN,
        lines(&[
            "USER user1",
            "PASS wrong",
            "USER nosuchuser",
            "PASS wrong",
            "USER user1",
            "PASS secret1",
            "STAT",
            "RETR 1",
        ]),
        front(3, false, FrontEnd::Accepted),
    );
    // CRAMs are on in these settings, so the APOP is a login (refused), the rest are not.
    add(
        "transaction-commands-before-login",
        OPEN_SMALL_READS,
        lines(&["STAT", "LIST", "APOP user1 c4c9334bac560ecc979e58001b3e22fb", "TOP 1 0", "NOOP", "XYZZY", "QUIT"]),
        front(1, false, FrontEnd::Logout),
    );
    add("too-many-bad-commands", OPEN, b"FOO\r\n".repeat(10), front(0, false, FrontEnd::Close));
    add(
        "auth-external",
        CERTIFICATE,
        lines(&["AUTH EXTERNAL =", "AUTH EXTERNAL", "dXNlcjE=", "AUTH EXTERNAL dXNlcjg=", "STAT"]),
        front(3, false, FrontEnd::Accepted),
    );
    let stls_read = "STLS\r\n".len() as u8;
    assert_eq!(stls_read & settings::NO_STARTTLS, 0);
    add(
        "stls-then-login",
        stls_read,
        lines(&["STLS", "CAPA", "STLS", "USER user1", "PASS secret1"]),
        front(1, true, FrontEnd::Waiting),
    );
    add(
        "restricted-bytewise",
        ALL_ON_BYTEWISE,
        lines(&["USER user1", "AUTH PLAIN", "AUTH EXTERNAL =", "STLS", "USER user1", "PASS secret1"]),
        front(2, true, FrontEnd::Waiting),
    );
    add(
        "stls-injection",
        0x42,
        lines(&["STLS", "USER user1", "PASS secret1", "STAT"]),
        front(0, true, FrontEnd::Waiting),
    );
}

fn pop3_sasl(seeds: &mut Vec<Seed>) {
    let mut add = |name: &str, first: u8, client: Vec<u8>, expect: Expect| {
        let mut data = vec![first];
        data.extend(client);
        seed(seeds, "pop3_front", name, data, expect);
    };
    let (ob, xo) = (token_blob(BearerMechanism::OAuthBearer), token_blob(BearerMechanism::XOAuth2));
    add(
        "apop-and-cram-md5",
        CRAMS_AND_BEARER,
        lines(&[
            "APOP user1 c4c9334bac560ecc979e58001b3e22fb",
            "AUTH CRAM-MD5",
            CRAM_ANSWER,
            "AUTH CRAM-MD5",
            "*",
            "APOP user1 c4c9",
            "APOP user1 C4C9334BAC560ECC979E58001B3E22FB",
            "STAT",
        ]),
        front(3, false, FrontEnd::Accepted),
    );
    add(
        "auth-bearer-tokens",
        CRAMS_AND_BEARER,
        lines(&[&format!("AUTH OAUTHBEARER {ob}"), "AQ==", "AUTH XOAUTH2", &xo, &format!("AUTH XOAUTH2 {xo}"), "STAT"]),
        front(3, false, FrontEnd::Accepted),
    );
    add(
        "restricted-apop-before-stls-bearer-after",
        ALL_ON_BYTEWISE,
        lines(&[
            "USER user1",
            "APOP user1 c4c9334bac560ecc979e58001b3e22fb",
            &format!("AUTH XOAUTH2 {xo}"),
            "STLS",
            &format!("AUTH XOAUTH2 {xo}"),
        ]),
        front(2, true, FrontEnd::Waiting),
    );
}

fn ldap_filter(seeds: &mut Vec<Seed>) {
    let mut add = |name: &str, text: &str, parsed: bool| {
        seed(seeds, "ldap_filter", name, text.as_bytes().to_vec(), Expect::Filter(FilterOutcome { parsed }));
    };
    // SearchFormat as configured, once filled in (the user name escaped).
    add("search-format", "(uid=joe@example.com)", true);
    add("search-format-bare", "uid=joe", true);
    add(
        "and-or-not",
        "(&(objectClass=inetOrgPerson)(|(uid=joe)(mail=joe@example.com))(!(inetUserStatus=inactive)))",
        true,
    );
    add("presence-and-substrings", "(&(mailHost=*)(mail=*@example.*m)(cn=J*o*e))", true);
    add("ordering-and-approx", "(|(uid>=a)(uid<=m)(cn~=joe))", true);
    add("escaped-specials", "(uid=a\\2ab\\28c\\29d\\5ce\\00)", true);
    add("certmap-filter", "(&(mail=alice@example.com)(uid=pilar))", true);
    add("nested", "(&(uid=joe)(|(mail=*@x*)(!(cn=a\\2a))))", true);
    add("malformed", "(&(uid=joe)(mail=\\zz)", false);
    add("empty-list", "(&)", false);
    // User name and another user's, separated by a newline: the escaped name must not match them.
    add("injection-wildcard", "a*b(c)d\\e\naXb(c)d\\e", false);
    add("injection-or", "joe)(|(uid=*\nadmin", false);
    add("case-only", "Joe\njOE", false);
    add("unicode-case", "\u{130}stanbul \u{3a3}\u{391}\u{3a3}\n\u{69}\u{307}stanbul \u{3c3}\u{3b1}\u{3c2}", false);
}

fn config_file(seeds: &mut Vec<Seed>) {
    let mut add = |name: &str, text: &str, entries: usize, built: bool, cert_maps: usize| {
        let expect = Expect::Config(ConfigOutcome { entries, built, cert_maps });
        seed(seeds, "config_file", name, text.as_bytes().to_vec(), expect);
    };
    add("example-aservice", include_str!("../../../examples/mmp/AService.cfg"), 3, false, 0);
    add("example-imap", include_str!("../../../examples/mmp/ImapProxyAService.cfg"), 26, true, 0);
    add("example-pop3", include_str!("../../../examples/mmp/PopProxyAService.cfg"), 13, true, 0);
    add("example-certmap", include_str!("../../../examples/mmp/certmap.conf"), 3, false, 2);
    add(
        "vendor-sample-6x",
        "default:LdapUrl ldap://phonebook.siroe.com/o=internet\n\
         default:LogDir /opt/SUNWmsgsr/config/log\n\
         default:LogLevel 5\n\
         default:BindDN \"cn=Directory Manager\"\n\
         default:BindPass S3cr3t-bind\n\
         default:BacksidePort 143\n\
         default:Timeout 1800\n\
         default:Capability \"IMAP4 IMAP4rev1 ACL QUOTA LITERAL+ NAMESPACE UIDPLUS CHILDREN BINARY LANGUAGE XSENDER X-NETSCAPE XSERVERINFO\"\n\
         default:SearchFormat (uid=%s)\n\
         default:SSLEnable yes\n\
         default:SSLPorts 993\n\
         default:SSLCertNicknames Siroe.com Server-Cert\n\
         default:SSLBacksidePort 993\n\
         default:VirtualDomainFile /opt/SUNWmsgsr/config/vdmap.cfg\n\
         default:VirtualDomainDelim @\n\
         default:ServerDownAlert \"your IMAP server appears to be temporarily out of service\"\n\
         default:MailHostAttrs mailHost\n\
         default:PreAuth no\n\
         default:CRAMs no\n\
         default:AuthCacheSize 10000\n\
         default:BGMax 10000\n",
        21,
        false,
        0,
    );
    add(
        "instances-tls-and-admin",
        "# instances override default lines\n\
         default:ServiceList imapproxy@143|993 popproxy@[::1]:110 popproxy@127.0.0.1:995\n\
         default:LdapURL ldap://ldap1.example.com:389/o=example ldap://ldap2.example.com/o=example\n\
         default:Banner \"mailmux\"\n\
         east:Banner \"East entrance\"\n\
         inst:Banner \"Instance entrance\"\n\
         default:SSLEnable yes\n\
         default:SSLPorts 993\n\
         default:SSLCertFile /etc/mailmux/tls/server.pem\n\
         default:SSLKeyFile key.pem\n\
         default:SSLCACertFile ca.pem\n\
         default:BacksideStartTLS yes\n\
         default:SSLBacksideCAFile ca.pem\n\
         default:SSLBacksideVerify no\n\
         default:RestrictPlainPasswords yes\n\
         default:CertMapFile certmap.conf\n\
         default:StoreAdmin mailmux-admin\n\
         default:StoreAdminPass S3cr3t-admin\n\
         default:ReplayFormat %U@%V\n\
         default:ReplayMechanism plain\n\
         default:ForwardClientAddress no\n\
         default:DefaultDomain example.com\n",
        19,
        true,
        0,
    );
    add(
        "certmap-forms",
        "# MMP QA form\n\
         certmap default default\n\
         default:DNComps\n\
         default:FilterComps e=mail\n\
         default:VerifyCert on\n\
         \n\
         certmap lab cn=mailmux-test-ca, o=mailmux tests\n\
         lab:DNComps\n\
         lab:FilterComps ou=uid\n\
         certmap siroe o=siroe.com, c=US\n\
         siroe:DNComps o, c\n\
         siroe:CmapLdapAttr certSubjectDN\n\
         siroe:library /usr/lib/plugin.so\n",
        4,
        false,
        3,
    );
    add(
        "syntax-errors",
        "ServiceList imapproxy@143\n\
         default:\n\
         default:Banner \"unterminated\n\
         continued\" trailing\n\
         default:Timeout soon\n\
         default:LogLevel 9\n\
         default:LdapURL http://nowhere\n\
         default:SearchFormat (uid=%q\n\
         default:BindPass \"S3cr3t \" x\n\
         default:ServiceList imapproxy@notaport popproxy\n\
         default:Timeout 10\n",
        5,
        false,
        0,
    );
}

/// Client dialogues with the spoof maildrop: what poplib, fetchmail and curl send after PASS
/// (the integration test's transcript), pipelined, bytewise, hostile.
fn pop3_maildrop(seeds: &mut Vec<Seed>) {
    use MaildropEnd::*;
    let mut add = |name: &str, mode: u8, client: Vec<u8>, end: MaildropEnd, answers: u32| {
        let mut data = vec![mode];
        data.extend(client);
        seed(seeds, "pop3_maildrop", name, data, Expect::Maildrop(MaildropOutcome { end, answers }));
    };
    const MESSAGE: u8 = 0;
    const EMPTY: u8 = 1;
    const BYTEWISE: u8 = 1 << 1;
    let poplib = lines(&["STAT", "LIST", "UIDL", "RETR 1", "TOP 1 0", "DELE 1", "STAT", "QUIT"]);
    add("poplib-session", MESSAGE, poplib.clone(), Quit, 8);
    add("poplib-session-bytewise", MESSAGE | BYTEWISE, poplib, Quit, 8);
    add("empty-maildrop", EMPTY, lines(&["STAT", "LIST", "RETR 1", "UIDL 1", "QUIT"]), Quit, 5);
    add("capa-rset-noop", MESSAGE, lines(&["CAPA", "DELE 1", "RSET", "NOOP", "LIST 1", "quit"]), Quit, 6);
    add("relogin-and-garbage", MESSAGE, lines(&["USER joe", "PASS x", "TOP 1 x", "LIST 2"]), Waiting, 4);
    add("too-many-bad-commands", EMPTY, lines(&["XYZZY"; 12]), Closed, 10);
    add("line-too-long", MESSAGE, [vec![b'A'; 600], b"\r\n".to_vec()].concat(), Closed, 1);
    add("pipelined-retrs", MESSAGE | (7 << 1), lines(&["RETR 1"; 20]), Waiting, 20);
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn every_seed_reaches_the_state_it_was_written_for() {
        let mut wrong = Vec::new();
        for s in all() {
            let got = Expect::run(s.target, &s.data);
            if got != s.expect {
                wrong.push(format!("{}/{}: expected {:?}, got {:?}", s.target, s.file, s.expect, got));
            }
        }
        assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
    }

    #[test]
    fn every_target_has_seeds_and_names_are_unique() {
        let seeds = all();
        for target in TARGETS {
            assert!(seeds.iter().filter(|s| s.target == target).count() >= 5, "{target}");
        }
        let mut names: Vec<_> = seeds.iter().map(|s| (s.target, s.file.as_str())).collect();
        names.sort();
        let before = names.len();
        names.dedup();
        assert_eq!(names.len(), before, "duplicate seed names");
    }

    #[test]
    fn committed_corpus_holds_the_table() {
        let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
        let mut stale = Vec::new();
        for s in all() {
            let path = corpus.join(s.target).join(&s.file);
            if std::fs::read(&path).ok().as_deref() != Some(&s.data[..]) {
                stale.push(path.display().to_string());
            }
        }
        assert!(stale.is_empty(), "seed files differ from the table; run scripts/fuzz-seeds:\n{}", stale.join("\n"));
    }
}
