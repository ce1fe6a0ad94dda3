//! `framerr-backup health`: the container's healthcheck, with no shell and
//! no curl in the image. It asks the running server for `/metrics` (which
//! needs no sign-in) on the loopback address and judges what it says.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::time::Duration;

/// How long the probe waits for each step; a healthcheck must not hang.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// The most of the answer read.
const MAX_ANSWER: u64 = 4 << 20;

/// Why the server is not healthy.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Unhealthy {
    #[error("the server does not answer on {0}: {1}")]
    NoAnswer(SocketAddr, String),
    #[error("the server answered {0}")]
    Status(String),
    #[error("the backup schedule has missed its run")]
    Overdue,
    #[error("the newest backup in {0} failed verification")]
    VerificationFailed(String),
}

/// Where a server listening on `listen` is reached from this machine: a
/// wildcard address is reached on loopback.
pub fn probe_address(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

/// Healthy when the server answers and no backup is overdue or failed its
/// verification.
pub fn probe(addr: SocketAddr) -> Result<(), Unhealthy> {
    let no_answer = |e: std::io::Error| Unhealthy::NoAnswer(addr, e.to_string());
    let mut stream = TcpStream::connect_timeout(&addr, PROBE_TIMEOUT).map_err(no_answer)?;
    stream.set_read_timeout(Some(PROBE_TIMEOUT)).map_err(no_answer)?;
    stream.set_write_timeout(Some(PROBE_TIMEOUT)).map_err(no_answer)?;
    // The server checks that the Host is its own address.
    let request = format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).map_err(no_answer)?;
    let mut answer = Vec::new();
    stream.take(MAX_ANSWER).read_to_end(&mut answer).map_err(no_answer)?;
    judge(&String::from_utf8_lossy(&answer))
}

/// The verdict on an HTTP answer carrying Prometheus text.
pub fn judge(answer: &str) -> Result<(), Unhealthy> {
    let status = answer.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) != Some("200") {
        return Err(Unhealthy::Status(status.trim().to_owned()));
    }
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    for line in body.lines().filter(|l| !l.starts_with('#')) {
        let Some((name, value)) = line.rsplit_once(' ') else { continue };
        let value: f64 = value.trim().parse().unwrap_or(0.0);
        if name == "framerr_backup_schedule_overdue" && value != 0.0 {
            return Err(Unhealthy::Overdue);
        }
        if let Some(labels) = name.strip_prefix("framerr_backup_verification_ok")
            && value == 0.0
        {
            let destination = labels.split('"').nth(1).unwrap_or("a destination");
            return Err(Unhealthy::VerificationFailed(destination.to_owned()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(body: &str) -> String {
        format!("HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\n{body}")
    }

    #[test]
    fn healthy_unless_overdue_or_failed_or_not_answering_200() {
        let fine =
            "# HELP x\nframerr_backup_schedule_overdue 0\nframerr_backup_verification_ok{destination=\"local\"} 1\n";
        assert_eq!(judge(&answer(fine)), Ok(()));
        assert_eq!(judge(&answer("framerr_backup_schedule_overdue 1\n")), Err(Unhealthy::Overdue));
        assert_eq!(
            judge(&answer("framerr_backup_verification_ok{destination=\"s3://b/p\"} 0\n")),
            Err(Unhealthy::VerificationFailed("s3://b/p".into()))
        );
        assert!(matches!(judge("HTTP/1.1 503 Service Unavailable\r\n\r\n"), Err(Unhealthy::Status(_))));
        assert!(matches!(judge(""), Err(Unhealthy::Status(_))));
    }

    #[test]
    fn a_wildcard_listen_address_is_probed_on_loopback() {
        let any: SocketAddr = "0.0.0.0:3002".parse().unwrap_or_else(|_| unreachable!());
        assert_eq!(probe_address(any).to_string(), "127.0.0.1:3002");
        let own: SocketAddr = "192.0.2.1:80".parse().unwrap_or_else(|_| unreachable!());
        assert_eq!(probe_address(own), own);
    }
}
