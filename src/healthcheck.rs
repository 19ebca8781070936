//! `gatehouse health`: asks a running server whether it is ready, for
//! container health checks in images that carry no curl. It speaks just
//! enough HTTP/1.1 to read one status line.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A health check that takes longer than this has failed.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// `Ok` when `GET /health/ready` on the server at `bind_addr` answers 200.
pub async fn probe(bind_addr: SocketAddr) -> Result<(), String> {
    let addr = reachable(bind_addr);
    tokio::time::timeout(PROBE_TIMEOUT, ask(addr))
        .await
        .map_err(|_| format!("no answer from {addr} within {PROBE_TIMEOUT:?}"))?
}

/// A server bound to every interface is asked on loopback.
fn reachable(bind_addr: SocketAddr) -> SocketAddr {
    let ip = match bind_addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, bind_addr.port())
}

async fn ask(addr: SocketAddr) -> Result<(), String> {
    let mut stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    let request =
        format!("GET /health/ready HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("cannot send to {addr}: {e}"))?;
    // The answer is a few hundred bytes, and the server closes after it.
    let mut answer = Vec::new();
    stream
        .take(MAX_ANSWER)
        .read_to_end(&mut answer)
        .await
        .map_err(|e| format!("cannot read from {addr}: {e}"))?;
    let answer = String::from_utf8_lossy(&answer);
    let status_line = answer.lines().next().unwrap_or_default();
    let ready =
        status_line.split(' ').nth(1) == Some("200") && answer.ends_with(r#"{"status":"ok"}"#);
    if ready {
        Ok(())
    } else {
        Err(format!("{addr} is not ready: {status_line}"))
    }
}

/// More than any answer of /health/ready.
const MAX_ANSWER: u64 = 4096;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_on_every_interface_is_asked_on_loopback() {
        let any: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        assert_eq!(reachable(any), "127.0.0.1:8080".parse().unwrap());
        let any6: SocketAddr = "[::]:8080".parse().unwrap();
        assert_eq!(reachable(any6), "[::1]:8080".parse().unwrap());
        let one: SocketAddr = "10.1.2.3:9000".parse().unwrap();
        assert_eq!(reachable(one), one);
    }
}
