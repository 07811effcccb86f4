//! Socket set-up: `SO_REUSEPORT` listeners (one per thread per bind address) and small
//! per-connection helpers. Everything here runs at start-up or once per accept.

use std::io;
use std::net::{IpAddr, SocketAddr};

/// Opens one non-blocking listening socket per address in `bind` (space separated),
/// each with `SO_REUSEADDR` and `SO_REUSEPORT` so every thread can listen on the port.
pub fn listeners(bind: &str, port: u16) -> io::Result<Vec<i32>> {
    let mut fds = Vec::new();
    for a in bind.split_whitespace() {
        let a = a.trim_start_matches('-');
        let ip: IpAddr = if a == "*" {
            "0.0.0.0".parse().expect("literal address")
        } else {
            a.parse().map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("invalid bind address '{a}'")))?
        };
        fds.push(listen_one(SocketAddr::new(ip, port))?);
    }
    if fds.is_empty() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "no bind address"));
    }
    Ok(fds)
}

fn cvt(r: i32) -> io::Result<i32> {
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(r) }
}

fn listen_one(addr: SocketAddr) -> io::Result<i32> {
    let domain = if addr.is_ipv4() { libc::AF_INET } else { libc::AF_INET6 };
    // SAFETY: plain socket syscalls on a descriptor we create and own; every pointer
    // passed points at a live local of the stated size.
    unsafe {
        let fd = cvt(libc::socket(domain, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0))?;
        let one: libc::c_int = 1;
        let p = &one as *const libc::c_int as *const libc::c_void;
        let len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        let guard = |r: i32| -> io::Result<i32> {
            cvt(r).inspect_err(|_| {
                libc::close(fd);
            })
        };
        guard(libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, p, len))?;
        guard(libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_REUSEPORT, p, len))?;
        let (storage, slen) = sockaddr(addr);
        guard(libc::bind(fd, &storage as *const libc::sockaddr_storage as *const libc::sockaddr, slen))?;
        guard(libc::listen(fd, 1024))?;
        Ok(fd)
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
