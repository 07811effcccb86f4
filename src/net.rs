//! Socket set-up: the listening sockets (one per thread per bind address) and small
//! per-connection helpers. Everything here runs at start-up, on `CONFIG SET port|bind`
//! or once per accept.
//!
//! ```text
//!   bind "127.0.0.1 ::1", port P, 3 threads
//!     127.0.0.1:P  thread 0: bind WITHOUT SO_REUSEPORT (fails if anyone holds P),
//!                            then set SO_REUSEPORT, listen
//!                  thread 1: SO_REUSEPORT, bind, listen   ┐ join thread 0's group:
//!                  thread 2: SO_REUSEPORT, bind, listen   ┘ the kernel spreads accepts
//!     ::1:P        the same, with IPV6_V6ONLY
//! ```
//!
//! Why the first socket binds without `SO_REUSEPORT`: Linux lets a bind share a port
//! only when every socket on it has `SO_REUSEPORT` and the same effective uid. If every
//! socket set it before binding, a second Darter on the same port would start silently
//! and the kernel would split clients between two datasets. Binding the first socket
//! plainly is refused (`EADDRINUSE`) if any other socket holds the port, ours or not;
//! setting `SO_REUSEPORT` on it after the bind and before `listen` lets our own
//! threads' sockets join it and makes it part of the kernel's load-balancing group.
//! (Checked by hand and by `tests/hardening_net.rs::busy_port_*`.)
//!
//! Bind addresses follow Redis: `*` is every IPv4 address, `::*` every IPv6 one, and a
//! leading `-` marks an address as optional (skipped if it does not exist on the host).

use std::io;
use std::net::{IpAddr, SocketAddr};

/// Listen backlog of every listening socket.
const BACKLOG: i32 = 1024;

/// Why listening failed: Redis's wording, e.g. `*:6379: bind: Address already in use`.
#[derive(Debug)]
pub struct ListenError {
    /// The bind address as configured (e.g. `*` or `127.0.0.1`).
    pub addr: String,
    pub port: u16,
    /// The failing call and the OS error, e.g. `bind: Address already in use`.
    pub reason: String,
}

impl std::fmt::Display for ListenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Could not create server TCP listening socket {}:{}: {}", self.addr, self.port, self.reason)
    }
}

/// Parses one bind address (Redis syntax, without the optional `-`).
fn parse_bind_addr(a: &str) -> Option<IpAddr> {
    match a {
        "*" => Some(IpAddr::from([0u8, 0, 0, 0])),
        "::*" => Some(IpAddr::from([0u16; 8])),
        _ => a.parse().ok(),
    }
}

/// The addresses of a `bind` value (invalid ones left out).
pub fn bind_addrs(bind: &str) -> Vec<IpAddr> {
    bind.split_whitespace().filter_map(|a| parse_bind_addr(a.trim_start_matches('-'))).collect()
}

/// Checks a `bind` value without opening anything: 1 to 16 addresses, each `*`, `::*`
/// or an IP literal, optionally prefixed with `-`.
pub fn valid_bind(bind: &str) -> bool {
    let n = bind.split_whitespace().count();
    (1..=16).contains(&n) && bind.split_whitespace().all(|a| parse_bind_addr(a.trim_start_matches('-')).is_some())
}

/// Opens `nthreads` listening sockets for every address in `bind` (space separated) on
/// `port`: `result[t]` holds thread t's sockets. Fails, closing whatever it opened, if
/// any required address cannot be bound — in particular if another process (another
/// Darter included) already listens on the port. See the module doc for the
/// `SO_REUSEPORT` dance that makes that check work.
///
/// `ours`: the addresses this process already listens on at `port` (`CONFIG SET bind`
/// keeping the port; empty otherwise). Our old sockets make the exclusive bind of an
/// overlapping address fail, so then the address is bound sharing (`SO_REUSEPORT`
/// first), but only where no other process can hold it: it is one of `ours`, or `ours`
/// has the wildcard of its family, or it is itself a wildcard (a wildcard socket forms
/// its own `SO_REUSEPORT` group, so it cannot join another process's group).
pub fn listeners(bind: &str, port: u16, nthreads: usize, ours: &[IpAddr]) -> Result<Vec<Vec<i32>>, ListenError> {
    let mut per_thread: Vec<Vec<i32>> = (0..nthreads.max(1)).map(|_| Vec::new()).collect();
    let close_all = |per_thread: &Vec<Vec<i32>>| {
        for &fd in per_thread.iter().flatten() {
            // SAFETY: fds we opened above and hand to nobody on this error path.
            unsafe { libc::close(fd) };
        }
    };
    for a in bind.split_whitespace() {
        let optional = a.starts_with('-');
        let name = a.trim_start_matches('-');
        let Some(ip) = parse_bind_addr(name) else {
            close_all(&per_thread);
            return Err(ListenError { addr: name.to_string(), port, reason: "Invalid bind address".into() });
        };
        let addr = SocketAddr::new(ip, port);
        let may_share =
            ip.is_unspecified() || ours.iter().any(|o| *o == ip || (o.is_unspecified() && o.is_ipv4() == ip.is_ipv4()));
        for (t, fds) in per_thread.iter_mut().enumerate() {
            let mut r = listen_one(addr, t == 0);
            if t == 0 && may_share && matches!(&r, Err((_, e)) if e.raw_os_error() == Some(libc::EADDRINUSE)) {
                r = listen_one(addr, false);
            }
            match r {
                Ok(fd) => fds.push(fd),
                // Redis skips optional addresses that do not exist here (no IPv6...).
                Err((_, e))
                    if optional
                        && t == 0
                        && matches!(e.raw_os_error(), Some(libc::EADDRNOTAVAIL | libc::EAFNOSUPPORT)) =>
                {
                    break;
                }
                Err((call, e)) => {
                    close_all(&per_thread);
                    return Err(ListenError {
                        addr: name.to_string(),
                        port,
                        reason: format!("{call}: {}", strerror(&e)),
                    });
                }
            }
        }
    }
    if per_thread[0].is_empty() {
        close_all(&per_thread);
        return Err(ListenError { addr: bind.to_string(), port, reason: "no bind address".into() });
    }
    Ok(per_thread)
}

/// The C library's text of an OS error ("Address already in use"), without Rust's
/// " (os error 98)" suffix.
fn strerror(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

fn cvt(r: i32) -> io::Result<i32> {
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(r) }
}

/// One non-blocking listening socket on `addr`. `exclusive`: bind without
/// `SO_REUSEPORT` (the first thread's socket; see the module doc). On failure returns
/// the name of the failing call and its error.
fn listen_one(addr: SocketAddr, exclusive: bool) -> Result<i32, (&'static str, io::Error)> {
    let domain = if addr.is_ipv4() { libc::AF_INET } else { libc::AF_INET6 };
    // SAFETY: plain socket syscalls on a descriptor we create and own; every pointer
    // passed points at a live local of the stated size.
    unsafe {
        let fd = cvt(libc::socket(domain, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0)).map_err(|e| ("socket", e))?;
        let one: libc::c_int = 1;
        let p = &one as *const libc::c_int as *const libc::c_void;
        let len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        let guard = |call: &'static str, r: i32| -> Result<i32, (&'static str, io::Error)> {
            cvt(r).map_err(|e| {
                libc::close(fd);
                (call, e)
            })
        };
        guard("setsockopt SO_REUSEADDR", libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, p, len))?;
        if !addr.is_ipv4() {
            // As Redis: an IPv6 socket takes only IPv6, so "0.0.0.0" and "::" can share a port.
            guard("setsockopt IPV6_V6ONLY", libc::setsockopt(fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, p, len))?;
        }
        if !exclusive {
            guard("setsockopt SO_REUSEPORT", libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_REUSEPORT, p, len))?;
        }
        let (storage, slen) = sockaddr(addr);
        guard("bind", libc::bind(fd, &storage as *const libc::sockaddr_storage as *const libc::sockaddr, slen))?;
        if exclusive {
            // After the exclusive bind: our other threads' sockets may now join.
            guard("setsockopt SO_REUSEPORT", libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_REUSEPORT, p, len))?;
        }
        guard("listen", libc::listen(fd, BACKLOG))?;
        Ok(fd)
    }
}

/// Closes listening sockets; `shutdown` first, which stops a socket listening (and
/// ends a pending multishot accept) even while io_uring still holds a reference.
pub fn close_listeners(fds: &[i32]) {
    for &fd in fds {
        // SAFETY: our own listening sockets, each closed exactly once by the caller's
        // contract (they are dropped from every list before this call).
        unsafe {
            libc::shutdown(fd, libc::SHUT_RDWR);
            libc::close(fd);
        }
    }
}

fn sockaddr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain old data; all-zero is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    match addr {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is large and aligned enough for sockaddr_in.
            let sin = unsafe { &mut *(&mut storage as *mut _ as *mut libc::sockaddr_in) };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = a.port().to_be();
            sin.sin_addr.s_addr = u32::from_ne_bytes(a.ip().octets());
            (storage, std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t)
        }
        SocketAddr::V6(a) => {
            // SAFETY: sockaddr_storage is large and aligned enough for sockaddr_in6.
            let sin6 = unsafe { &mut *(&mut storage as *mut _ as *mut libc::sockaddr_in6) };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_addr.s6_addr = a.ip().octets();
            (storage, std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t)
        }
    }
}

fn from_storage(s: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match s.ss_family as i32 {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let sin = unsafe { &*(s as *const _ as *const libc::sockaddr_in) };
            let ip = std::net::Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
            Some(SocketAddr::new(ip.into(), u16::from_be(sin.sin_port)))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let sin6 = unsafe { &*(s as *const _ as *const libc::sockaddr_in6) };
            let ip = std::net::Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            Some(SocketAddr::new(ip.into(), u16::from_be(sin6.sin6_port)))
        }
        _ => None,
    }
}

/// Peer and local address of a connected socket, as "ip:port".
pub fn addrs(fd: i32) -> (String, String) {
    let get = |peer: bool| -> String {
        // SAFETY: zeroed sockaddr_storage is valid; len is its size; fd is a socket.
        unsafe {
            let mut s: libc::sockaddr_storage = std::mem::zeroed();
            let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            let p = &mut s as *mut _ as *mut libc::sockaddr;
            let r = if peer { libc::getpeername(fd, p, &mut len) } else { libc::getsockname(fd, p, &mut len) };
            if r != 0 {
                return "?:0".to_string();
            }
            from_storage(&s).map(|a| a.to_string()).unwrap_or_else(|| "?:0".to_string())
        }
    };
    (get(true), get(false))
}

/// Disables Nagle's algorithm: replies go out as soon as they are written.
pub fn set_nodelay(fd: i32) {
    let one: libc::c_int = 1;
    // SAFETY: fd is a TCP socket; the option value is a live c_int.
    unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            &one as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// File descriptors Redis keeps for itself beyond one per client
/// (`CONFIG_MIN_RESERVED_FDS`).
pub const MIN_RESERVED_FDS: u64 = 32;

/// Descriptors Darter needs besides its clients: Redis's reserve plus, per thread, its
/// io_uring and one listening socket per bind address.
pub fn reserved_fds(nthreads: usize, naddrs: usize) -> u64 {
    MIN_RESERVED_FDS + (nthreads as u64) * (1 + naddrs as u64)
}

/// What [`adjust_open_files_limit`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum FdLimit {
    /// The limit already fit, or was raised from `from` to `to`.
    Fits { raised: Option<(u64, u64)> },
    /// The limit could only go up to `limit`: maxclients must shrink to `maxclients`.
    /// `os_error` is why the wanted limit was refused.
    Reduced { maxclients: usize, wanted: u64, limit: u64, os_error: String },
    /// Not even the reserve fits: Redis exits.
    TooLow { limit: u64, wanted: u64 },
}

/// Redis's `adjustOpenFilesLimit`: makes RLIMIT_NOFILE hold `maxclients + reserved`
/// descriptors, trying the wanted value and then 16 fewer at a time down to the current
/// limit. Unlike Redis it never lowers the hard limit (a later `CONFIG SET maxclients`
/// can still raise the soft one).
pub fn adjust_open_files_limit(maxclients: usize, reserved: u64) -> FdLimit {
    let wanted = (maxclients as u64).saturating_add(reserved);
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the live local `lim`.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        // Redis assumes 1024 when it cannot read the limit.
        let maxclients = 1024u64.saturating_sub(reserved) as usize;
        return FdLimit::Reduced { maxclients, wanted, limit: 1024, os_error: io::Error::last_os_error().to_string() };
    }
    let old = lim.rlim_cur;
    if old >= wanted {
        return FdLimit::Fits { raised: None };
    }
    let mut best = wanted;
    let mut os_error = String::new();
    while best > old {
        let try_lim = libc::rlimit { rlim_cur: best, rlim_max: best.max(lim.rlim_max) };
        // SAFETY: setrlimit reads the live local `try_lim`.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &try_lim) } == 0 {
            break;
        }
        os_error = strerror(&io::Error::last_os_error());
        if best < 16 {
            best = old;
            break;
        }
        best -= 16;
    }
    best = best.max(old);
    if best >= wanted {
        return FdLimit::Fits { raised: Some((old, wanted)) };
    }
    if best <= reserved {
        return FdLimit::TooLow { limit: old, wanted };
    }
    FdLimit::Reduced { maxclients: (best - reserved) as usize, wanted, limit: best, os_error }
}

/// True if `peer` ("ip:port", as [`addrs`] gives it) is a loopback address: Redis's
/// `connIsLocal`, which protected mode uses to tell local clients from remote ones.
pub fn is_loopback_peer(peer: &str) -> bool {
    match peer.parse::<SocketAddr>().map(|a| a.ip()) {
        Ok(IpAddr::V4(ip)) => ip.is_loopback(),
        Ok(IpAddr::V6(ip)) => ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Redis's bind syntax: `*`, `::*`, IP literals, optional `-` prefix, 1..=16 of them.
    #[test]
    fn bind_syntax() {
        assert!(valid_bind("* -::*"));
        assert!(valid_bind("127.0.0.1 ::1"));
        assert!(!valid_bind(""));
        assert!(!valid_bind("localhost"));
        assert!(!valid_bind(&"127.0.0.1 ".repeat(17)));
    }

    // Loopback peers are local for protected mode, whatever their port.
    #[test]
    fn loopback_peers() {
        assert!(is_loopback_peer("127.0.0.1:5000"));
        assert!(is_loopback_peer("127.3.2.1:1"));
        assert!(is_loopback_peer("[::1]:6379"));
        assert!(is_loopback_peer("[::ffff:127.0.0.1]:6379"));
        assert!(!is_loopback_peer("10.231.0.2:4000"));
        assert!(!is_loopback_peer("?:0"));
    }

    // Our own threads share a port; anyone else (a plain listener, or another set of
    // Darter listeners) holding it makes the bind fail with EADDRINUSE.
    #[test]
    fn exclusive_first_bind() {
        let probe = listeners("127.0.0.1", 0, 1, &[]).unwrap();
        let port: u16 = addrs(probe[0][0]).1.parse::<SocketAddr>().unwrap().port();
        close_listeners(&probe[0]);
        let first = listeners("127.0.0.1", port, 3, &[]).expect("our own threads share the port");
        let err = listeners("127.0.0.1", port, 2, &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("Could not create server TCP listening socket 127.0.0.1:{port}: bind: Address already in use")
        );
        // CONFIG SET bind keeping the port: the same address and a wildcard may share
        // with our own sockets.
        let again = listeners("127.0.0.1", port, 2, &bind_addrs("127.0.0.1")).expect("rebind our own address");
        let wider = listeners("*", port, 2, &bind_addrs("127.0.0.1")).expect("widen to the wildcard");
        for fds in first.iter().chain(&again).chain(&wider) {
            close_listeners(fds);
        }
        let plain = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        assert!(listeners("127.0.0.1", port, 1, &[]).is_err());
        assert!(listeners("127.0.0.1", port, 1, &bind_addrs("127.0.0.1")).is_err(), "a plain listener never shares");
        drop(plain);
    }
}
