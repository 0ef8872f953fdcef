//! HTTP/1.1 messages as the test proxies read and write them: enough of the protocol
//! for the clients under test (content length, chunked bodies, `100 Continue`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Mutex;

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// An HTTP/1.1 message: start line, headers, body.
pub(crate) struct Message {
    pub(crate) start: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Message {
    /// A request's method (`GET`), from its start line.
    pub(crate) fn method(&self) -> &str {
        self.start.split_whitespace().next().unwrap_or("GET")
    }

    /// A request's target (`/index/_bulk?refresh=true`), from its start line.
    pub(crate) fn path(&self) -> &str {
        self.start.split_whitespace().nth(1).unwrap_or("/")
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn write(
        &self,
        out: &mut impl Write,
        extra: &[(&str, String)],
    ) -> std::io::Result<()> {
        let mut head = format!("{}\r\n", self.start);
        for (k, v) in &self.headers {
            let skip = [
                "content-length",
                "transfer-encoding",
                "connection",
                "expect",
            ];
            if !skip.iter().any(|s| k.eq_ignore_ascii_case(s)) {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
        }
        for (k, v) in extra {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str(&format!("Content-Length: {}\r\n\r\n", self.body.len()));
        out.write_all(head.as_bytes())?;
        out.write_all(&self.body)?;
        out.flush()
    }
}

/// Reads one message; `None` at a clean end of the connection. `on_continue` is called
/// when the sender waits for `100 Continue`.
pub(crate) fn read_message(
    r: &mut BufReader<TcpStream>,
    mut on_continue: impl FnMut() -> std::io::Result<()>,
) -> std::io::Result<Option<Message>> {
    let mut start = String::new();
    if r.read_line(&mut start)? == 0 {
        return Ok(None);
    }
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Err(std::io::Error::other("connection closed in the headers"));
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    let mut msg = Message {
        start: start.trim_end().to_owned(),
        headers,
        body: Vec::new(),
    };
    if msg
        .header("expect")
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
    {
        on_continue()?;
    }
    if msg
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    {
        loop {
            let mut size = String::new();
            r.read_line(&mut size)?;
            let n = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16)
                .map_err(|e| std::io::Error::other(format!("bad chunk size: {e}")))?;
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk)?;
            if n == 0 {
                break;
            }
            msg.body.extend_from_slice(&chunk[..n]);
        }
    } else if let Some(n) = msg.header("content-length") {
        let n: usize = n
            .parse()
            .map_err(|e| std::io::Error::other(format!("bad content-length: {e}")))?;
        msg.body = vec![0; n];
        r.read_exact(&mut msg.body)?;
    } else if msg.start.starts_with("HTTP/") {
        r.read_to_end(&mut msg.body)?;
    }
    Ok(Some(msg))
}
