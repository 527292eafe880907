//! Free TCP ports on loopback addresses.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};

/// A port that is free on every one of `ips` right now (the caller binds it next).
pub fn free_port_on(ips: &[Ipv4Addr]) -> u16 {
    for _ in 0..200 {
        let Ok(probe) = TcpListener::bind(SocketAddr::from((ips[0], 0))) else {
            continue;
        };
        let Ok(port) = probe.local_addr().map(|a| a.port()) else {
            continue;
        };
        // Hold every address at once, so the port is free on all of them together.
        let held: Vec<_> = ips[1..].iter().map(|ip| TcpListener::bind(SocketAddr::from((*ip, port)))).collect();
        if held.iter().all(Result::is_ok) {
            return port;
        }
    }
    panic!("no port free on all of {ips:?} after 200 tries");
}

/// A free port on 127.0.0.1.
pub fn free_port() -> u16 {
    free_port_on(&[Ipv4Addr::LOCALHOST])
}
