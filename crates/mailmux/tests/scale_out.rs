//! Past one machine: HAProxy (started by the test) in front of two `mailmux` processes, with
//! PROXY protocol v2. Logins spread over both instances, and each instance's log and the
//! store see the real client's address, not HAProxy's.
//!
//! The client connects from 127.0.0.66; HAProxy connects to the instances from 127.0.0.1 (which
//! `ProxyProtocolFrom` lists), so an address lost on the way would show as 127.0.0.1.

mod common;

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use common::{MailmuxProcess, imap_expect_store, lab};
use mailmux_testkit::haproxy::HaProxy;
use mailmux_testkit::lab::DirectoryKind;
use mailmux_testkit::transcript::Transcript;

/// The test client's address: neither HAProxy's nor mailmux's.
const CLIENT: [u8; 4] = [127, 0, 0, 66];
const LOGINS: usize = 6;

/// Stops an instance with SIGTERM (its log is flushed at exit) and returns its log.
async fn stop(mut mm: MailmuxProcess, dir: &Path) -> String {
    let pid = mm.pid.to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().expect("kill").success());
    let status = tokio::time::timeout(Duration::from_secs(15), mm.child.wait()).await.expect("exits").expect("wait");
    assert!(status.success(), "{status}");
    mm.log(dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_spreads_logins_over_two_instances_and_the_client_address_survives() {
    let lab = lab(2);
    let trusted = "default:ProxyProtocolFrom 127.0.0.1\n";
    let dirs = [
        lab.write_config(DirectoryKind::Ldif, trusted, trusted),
        lab.write_config(DirectoryKind::Ldif, trusted, trusted),
    ];
    let mut instances = Vec::new();
    for dir in &dirs {
        instances.push(MailmuxProcess::start(dir, "").await);
    }
    let haproxy = HaProxy::start(&lab.dir.path().join("haproxy"), &[instances[0].imap, instances[1].imap]);

    let user = lab.user_on(0);
    for i in 0..LOGINS {
        let mut c = Transcript::connect_from(IpAddr::from(CLIENT), haproxy.addr).await;
        c.expect("* OK").await;
        c.send(&format!("a{i} LOGIN {} {}", user.uid, user.password)).await;
        c.expect(&format!("a{i} OK")).await;
        imap_expect_store(&mut c, 0).await;
    }
    // The store heard of the real client on every login (ID x-originating-ip).
    let store_logins = lab.stores[0].wait_for_logins(&user.uid, LOGINS, |l| l.contains("rip=127.0.0.66")).await;
    assert_eq!(store_logins.len(), LOGINS, "{store_logins:#?}");
    assert!(
        lab.stores[0].logins(&user.uid, |l| l.contains("rip=127.0.0.1,")).is_empty(),
        "a login reached the store with HAProxy's address:\n{}",
        lab.stores[0].log_text()
    );

    let mut per_instance = Vec::new();
    for (mm, dir) in instances.into_iter().zip(&dirs) {
        let log = stop(mm, dir).await;
        let logged_in: Vec<&str> = log.lines().filter(|l| l.contains("logged in")).collect();
        for line in &logged_in {
            assert!(line.contains("client=127.0.0.66:"), "the session's client is not the real one: {line}");
            assert!(line.contains(&format!("local={}", haproxy.addr)), "the address the client reached: {line}");
        }
        per_instance.push(logged_in.len());
    }
    assert_eq!(per_instance.iter().sum::<usize>(), LOGINS, "{per_instance:?}\n{}", haproxy.log_text());
    // Round robin over two: each instance gets every other connection.
    assert_eq!(per_instance, [LOGINS / 2, LOGINS / 2], "logins per instance");
}
