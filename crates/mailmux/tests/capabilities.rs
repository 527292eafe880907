//! Capabilities learned from the stores: without `Capability`, IMAP clients are offered what
//! every store offers before login, POP3 clients' CAPA lists what every store lists; stores
//! that differ are logged; a reload keeps what was learned. Against real Dovecot stores, two
//! of them configured to differ (`imap_capability`).

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use common::{Mailmux, captured_logs, lab};
use mailmux_testkit::dovecot::{Dovecot, StoreSpec};
use mailmux_testkit::lab::{DirectoryKind, Lab};
use mailmux_testkit::ports::free_port_on;
use mailmux_testkit::transcript::Transcript;

const USERS: usize = 4;
const STORE_IPS: [Ipv4Addr; 2] = [Ipv4Addr::new(127, 0, 0, 44), Ipv4Addr::new(127, 0, 0, 45)];

/// Two stores that differ: both add CHILDREN, only the first XSTORE-A.
struct DifferentStores {
    /// Kept to keep them running (dropping one stops it).
    _stores: Vec<Dovecot>,
    imap_port: u16,
    pop3_port: u16,
}

fn different_stores(lab: &Lab) -> DifferentStores {
    let mut ports = Vec::new();
    while ports.len() < 4 {
        let p = free_port_on(&STORE_IPS);
        if !ports.contains(&p) {
            ports.push(p);
        }
    }
    let extras = ["imap_capability = +CHILDREN XSTORE-A\n", "imap_capability = +CHILDREN\n"];
    let stores = (0..2)
        .map(|i| {
            let name = format!("caps-{i}");
            let spec = StoreSpec {
                name: name.clone(),
                index: i,
                ip: IpAddr::V4(STORE_IPS[i]),
                imap_port: ports[0],
                pop3_port: ports[1],
                imaps_port: ports[2],
                pop3s_port: ports[3],
                tls: lab.ca.server(&name, &[&STORE_IPS[i].to_string()]),
            };
            Dovecot::start_with_conf(&lab.dir.path().join(&name), &spec, &lab.users, extras[i])
        })
        .collect();
    DifferentStores { _stores: stores, imap_port: ports[0], pop3_port: ports[1] }
}

/// The greeting's capability list, asked until `done` says it is the one wanted (at most 10 s).
async fn imap_capabilities_until(mm: &Mailmux, done: impl Fn(&str) -> bool) -> String {
    let mut last = String::new();
    for _ in 0..100 {
        let mut c = Transcript::connect(mm.imap).await;
        last = c.expect("* OK [CAPABILITY ").await;
        if done(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the capability list never became the expected one; last: {last}");
}

async fn pop3_capa(mm: &Mailmux) -> Vec<String> {
    let mut c = Transcript::connect(mm.pop3).await;
    c.expect("+OK").await;
    c.send("CAPA").await;
    c.until(".").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_are_offered_what_every_store_offers() {
    let lab = lab(USERS);
    let site = different_stores(lab);
    let stores = format!("default:CapabilityStores {} {}\n", STORE_IPS[0], STORE_IPS[1]);
    let imap = format!("{stores}default:BacksidePort {}\n", site.imap_port);
    let pop3 = format!("{stores}default:BacksidePort {}\n", site.pop3_port);
    let dir = lab.write_config(DirectoryKind::Ldif, &imap, &pop3);
    let mm = Mailmux::start(&dir).await;

    // Dovecot's pre-login list is IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE, then
    // imap_capability's additions (both CHILDREN, one XSTORE-A), LITERAL+ STARTTLS AUTH=….
    let greeting = imap_capabilities_until(&mm, |g| g.contains(" CHILDREN")).await;
    let caps = greeting.split(']').next().unwrap_or_default();
    assert!(
        caps.starts_with("* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE CHILDREN LITERAL+"),
        "{greeting}"
    );
    assert!(!caps.contains("XSTORE-A"), "offered by one store only: {greeting}");
    // mailmux's own: AUTH= from its configuration; the stores' STARTTLS (mailmux has no TLS here) is not copied.
    assert!(caps.contains("AUTH=PLAIN") && !caps.contains("STARTTLS"), "{greeting}");
    let logs = captured_logs();
    assert!(
        logs.lines().any(|l| l.contains("stores differ") && l.contains("127.0.0.44") && l.contains("XSTORE-A")),
        "the difference is logged:\n{logs}"
    );

    // POP3: Dovecot's pop3-login lists TOP, UIDL, RESP-CODES, PIPELINING, AUTH-RESP-CODE, STLS,
    // USER, SASL (and XCLIENT to mailmux, a trusted network).
    let mut capa = pop3_capa(&mm).await;
    for _ in 0..100 {
        if capa.iter().any(|l| l == "PIPELINING") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        capa = pop3_capa(&mm).await;
    }
    assert_eq!(capa[1..4], ["TOP", "UIDL", "PIPELINING"], "{capa:?}");
    assert!(!capa.iter().any(|l| l == "XCLIENT" || l == "STLS" || l.starts_with("IMPLEMENTATION")), "{capa:?}");

    // A reload keeps what was learned: the very next client sees it.
    mm.handle.reload(mailmux_config::load(&dir, None).expect("config").config).await.expect("reload");
    let mut c = Transcript::connect(mm.imap).await;
    let after = c.expect("* OK [CAPABILITY ").await;
    assert!(after.contains(" CHILDREN"), "forgotten by the reload: {after}");
    mm.stop().await;
    drop(site);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_become_known_by_routing_and_capability_overrides() {
    let lab = lab(USERS);
    // No CapabilityStores: mailmux's own list until a user is routed to a store.
    let dir = lab.write_config(DirectoryKind::Ldif, "", "");
    let mm = Mailmux::start(&dir).await;
    let mut c = Transcript::connect(mm.imap).await;
    let first = c.expect("* OK [CAPABILITY ").await;
    assert!(first.starts_with("* OK [CAPABILITY IMAP4rev1 ID LITERAL+ SASL-IR AUTH="), "{first}");
    let user = lab.user_on(0);
    c.send(&format!("a LOGIN {} {}", user.uid, user.password)).await;
    c.expect("a OK").await;
    let learned = imap_capabilities_until(&mm, |g| g.contains("LOGIN-REFERRALS")).await;
    assert!(learned.contains("ENABLE IDLE"), "{learned}");
    mm.stop().await;

    // Capability set: the operator's list, whatever the stores say.
    let dir = lab.write_config(DirectoryKind::Ldif, "default:Capability \"IMAP4rev1 XOPERATOR\"\n", "");
    let mm = Mailmux::start(&dir).await;
    let mut c = Transcript::connect(mm.imap).await;
    c.send(&format!("a LOGIN {} {}", user.uid, user.password)).await;
    let greeting = c.expect("* OK [CAPABILITY ").await;
    assert!(greeting.starts_with("* OK [CAPABILITY IMAP4rev1 XOPERATOR AUTH="), "{greeting}");
    c.expect("a OK").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut c = Transcript::connect(mm.imap).await;
    let again = c.expect("* OK [CAPABILITY ").await;
    assert!(again.starts_with("* OK [CAPABILITY IMAP4rev1 XOPERATOR AUTH="), "{again}");
    mm.stop().await;
}
