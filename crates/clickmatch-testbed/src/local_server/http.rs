//! Plain HTTP/1.0 over a TCP stream, just enough to ping a server and run a query while it
//! starts (no client library at the point where the server may not be up yet).

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Whether `GET <url>/ping` answers `Ok.` within a couple of seconds.
pub async fn ping(url: &str) -> bool {
    let Some((host, port)) = host_port(url) else {
        return false;
    };
    let attempt = async {
        let mut stream = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
        stream.write_all(ping_request(&host).as_bytes()).await?;
        let mut answer = Vec::new();
        stream.take(4096).read_to_end(&mut answer).await?;
        io::Result::Ok(is_ping_answer(&answer))
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(2), attempt).await,
        Ok(Ok(true))
    )
}

/// Blocking variant of [`ping`].
pub fn ping_blocking(url: &str, timeout: Duration) -> bool {
    get_blocking(url, "/ping", 4096, timeout).is_ok_and(|answer| is_ping_answer(&answer))
}

/// Runs `sql` through ClickHouse's HTTP interface at `url` (`GET /?query=…`, so read-only
/// statements only), blocking: the HTTP status and the body (at most 1 MiB).
pub fn query_blocking(url: &str, sql: &str, timeout: Duration) -> io::Result<(u16, String)> {
    let target = format!("/?query={}", percent_encode(sql));
    let answer = get_blocking(url, &target, 1 << 20, timeout)?;
    split_answer(&answer)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "not an HTTP answer"))
}

/// `GET target` from the host of `url` over HTTP/1.0: the raw answer, at most `limit` bytes.
fn get_blocking(url: &str, target: &str, limit: u64, timeout: Duration) -> io::Result<Vec<u8>> {
    let (host, port) = host_port(url).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not an http:// URL: {url}"),
        )
    })?;
    let mut last = io::Error::new(io::ErrorKind::NotFound, format!("{host} has no address"));
    for addr in (host.as_str(), port).to_socket_addrs()? {
        let mut stream = match TcpStream::connect_timeout(&addr, timeout) {
            Ok(stream) => stream,
            Err(e) => {
                last = e;
                continue;
            }
        };
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        stream.write_all(request(&host, target).as_bytes())?;
        let mut answer = Vec::new();
        stream.take(limit).read_to_end(&mut answer)?;
        return Ok(answer);
    }
    Err(last)
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}

pub(super) fn free_port_pair() -> io::Result<(u16, u16)> {
    // Hold both listeners at once so the two ports differ.
    let a = TcpListener::bind(("127.0.0.1", 0))?;
    let b = TcpListener::bind(("127.0.0.1", 0))?;
    Ok((a.local_addr()?.port(), b.local_addr()?.port()))
}

fn request(host: &str, target: &str) -> String {
    format!("GET {target} HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\n\r\n")
}

fn ping_request(host: &str) -> String {
    request(host, "/ping")
}

/// An HTTP answer's status code and body.
fn split_answer(answer: &[u8]) -> Option<(u16, String)> {
    let text = String::from_utf8_lossy(answer);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head
        .lines()
        .next()?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some((status, body.to_owned()))
}

fn is_ping_answer(answer: &[u8]) -> bool {
    split_answer(answer).is_some_and(|(status, body)| status == 200 && body.trim() == "Ok.")
}

/// Every byte but ASCII letters, digits and `-._~` as `%XX`.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `http://user@host:port/path` → (`host`, `port`); `None` for anything but plain http.
fn host_port(url: &str) -> Option<(String, u16)> {
    let rest = url.strip_prefix("http://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit('@').next()?;
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None => 80,
        };
        (host.to_owned(), port)
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host.to_owned(), port.parse().ok()?),
            None => (authority.to_owned(), 80),
        }
    };
    (!host.is_empty()).then_some((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_host_and_port() {
        assert_eq!(
            host_port("http://127.0.0.1:8123"),
            Some(("127.0.0.1".into(), 8123))
        );
        assert_eq!(
            host_port("http://u:p@ch.local:18123/?x=1"),
            Some(("ch.local".into(), 18123))
        );
        assert_eq!(host_port("http://[::1]:9"), Some(("::1".into(), 9)));
        assert_eq!(host_port("http://ch"), Some(("ch".into(), 80)));
        assert_eq!(host_port("https://ch:8443"), None);
        assert_eq!(host_port("http://:80"), None);
    }

    #[test]
    fn ping_answers_are_recognised() {
        let ok = b"HTTP/1.0 200 OK\r\nContent-Type: text/html; charset=UTF-8\r\n\r\nOk.\n";
        assert!(is_ping_answer(ok));
        assert!(!is_ping_answer(b"HTTP/1.0 404 Not Found\r\n\r\nOk.\n"));
        assert!(!is_ping_answer(b"HTTP/1.0 200 OK\r\n\r\nnginx"));
        assert!(!is_ping_answer(b""));
    }

    #[test]
    fn queries_are_percent_encoded_and_answers_split() {
        assert_eq!(
            percent_encode("SELECT 'a b'=1;é"),
            "SELECT%20%27a%20b%27%3D1%3B%C3%A9"
        );
        assert_eq!(
            split_answer(b"HTTP/1.0 500 Internal\r\nX: y\r\n\r\nCode: 999"),
            Some((500, "Code: 999".to_owned()))
        );
        assert_eq!(split_answer(b"garbage"), None);
    }

    #[test]
    fn nothing_listening_means_no_pong() {
        let port = free_port().unwrap();
        assert!(!ping_blocking(
            &format!("http://127.0.0.1:{port}"),
            Duration::from_millis(200)
        ));
    }
}
