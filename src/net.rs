//! This host's own network addresses, for deciding whether a copied
//! `listen_addresses` can be bound here.

use std::net::IpAddr;

/// Every address on this host's interfaces (loopback included).
pub fn local_addresses() -> Vec<IpAddr> {
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return vec![];
    };
    addrs
        .filter_map(|a| {
            let sa = a.address?;
            if let Some(v4) = sa.as_sockaddr_in() {
                return Some(IpAddr::V4(v4.ip()));
            }
            sa.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip()))
        })
        .collect()
}

/// Whether a server on this host could listen on `ip`: tried, the way
/// the postmaster will (an address of any interface, and the whole of
/// 127.0.0.0/8 on Linux's loopback, binds; another host's does not).
pub fn can_bind(ip: IpAddr) -> bool {
    std::net::TcpListener::bind(std::net::SocketAddr::new(ip, 0)).is_ok()
}

/// Whether PostgreSQL could listen on one `listen_addresses` entry on
/// this host: `*`, `localhost` and the wildcards always; an address when
/// `can_bind` it; a name when it resolves to an address `can_bind`.
pub fn listen_entry_bindable(entry: &str, can_bind: &dyn Fn(IpAddr) -> bool) -> bool {
    let e = entry.trim().trim_matches('"');
    if matches!(e, "*" | "localhost" | "0.0.0.0" | "::") {
        return true;
    }
    match e.parse::<IpAddr>() {
        Ok(ip) => can_bind(ip),
        Err(_) => std::net::ToSocketAddrs::to_socket_addrs(&(e, 0))
            .map(|mut it| it.any(|a| can_bind(a.ip())))
            .unwrap_or(false),
    }
}

/// This host's name, as a primary shows a standby that does not name
/// itself (application_name's default).
pub fn host_name() -> Option<String> {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
}

/// Whether a conninfo host is this machine's loopback: `localhost`, or an
/// address in 127.0.0.0/8 or ::1 (a tunnel's local end, or this host).
pub fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost") || host.parse::<IpAddr>().is_ok_and(|a| a.is_loopback())
}

/// Whether a conninfo host is this machine: a socket directory, loopback,
/// or a name or address of one of its interfaces (a copy from there
/// crosses no network).
pub fn is_local(host: &str) -> bool {
    if host.starts_with('/') || host.starts_with('@') || is_loopback(host) {
        return true;
    }
    let local = local_addresses();
    match host.parse::<IpAddr>() {
        Ok(ip) => local.contains(&ip),
        Err(_) => std::net::ToSocketAddrs::to_socket_addrs(&(host, 0))
            .map(|mut it| it.any(|a| local.contains(&a.ip())))
            .unwrap_or(false),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn addresses_are_tried_by_binding() {
        // All of 127.0.0.0/8 is this host's on Linux, not only 127.0.0.1.
        assert!(super::can_bind("127.0.0.2".parse().unwrap()));
        // TEST-NET-1 (RFC 5737) is no host's, unless the kernel lets any
        // address be bound (then PostgreSQL could too).
        let nonlocal = std::fs::read_to_string("/proc/sys/net/ipv4/ip_nonlocal_bind")
            .is_ok_and(|v| v.trim() == "1");
        assert_eq!(super::can_bind("192.0.2.1".parse().unwrap()), nonlocal);
    }

    #[test]
    fn local_hosts() {
        assert!(super::is_local("/var/run/postgresql"));
        assert!(super::is_local("127.0.0.1"));
        assert!(super::is_local("localhost"));
        assert!(!super::is_local("192.0.2.1"));
    }
}
