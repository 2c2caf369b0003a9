//! The vSphere client against tiny local HTTP servers instead of vcsim: recorded
//! real-vCenter answers for what vcsim cannot show, and a server that misbehaves on
//! purpose for the retries.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "local_server/recorded_vcenter.rs"]
mod recorded_vcenter;
#[path = "local_server/retry.rs"]
mod retry;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads one request: its head and its `Content-Length` body (empty strings when the
/// client goes away first).
async fn read_request(socket: &mut TcpStream) -> (String, String) {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = socket.read(&mut chunk).await.unwrap_or(0);
        if n == 0 {
            break;
        }
        buffer.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buffer).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                })
                .unwrap_or(0);
            if buffer.len() >= end + 4 + length {
                return (text[..end].to_owned(), text[end + 4..].to_owned());
            }
        }
    }
    (String::new(), String::new())
}

/// Answers with `status`, the extra header lines `headers` (each ending in CRLF) and an
/// XML `body`, then closes the connection.
async fn respond(socket: &mut TcpStream, status: u16, headers: &str, body: &str) {
    let response = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: text/xml\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = socket.write_all(response.as_bytes()).await;
    let _ = socket.shutdown().await;
}
