//! `healthcheck` and `denied`: minimal blocking HTTP/1.1 GETs against the management
//! listener, for a scratch image with no shell or curl.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::cli::AdminArgs;
use crate::exit::Exit;

/// `GET path` on `admin`; returns the status code and the body.
pub fn get(admin: SocketAddr, path: &str, timeout: Duration) -> io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&admin, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {admin}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let response = String::from_utf8_lossy(&response);
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "malformed response"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "malformed status line"))?;
    Ok((status, body.to_owned()))
}

/// `healthcheck`: success when `/readyz` answers 200.
pub fn healthcheck(args: &AdminArgs) -> Exit {
    match get(args.admin, "/readyz", args.timeout) {
        Ok((200, _)) => Exit::Success,
        Ok((status, _)) => report_failure(&format!("/readyz answered {status}")),
        Err(err) => report_failure(&format!("cannot reach {}: {err}", args.admin)),
    }
}

/// `denied`: prints the denied-destination list (JSON) on stdout.
pub fn print_denied(args: &AdminArgs) -> Exit {
    match get(args.admin, "/denied", args.timeout) {
        Ok((200, body)) => {
            let mut stdout = std::io::stdout().lock();
            let _ = writeln!(stdout, "{}", body.trim_end());
            Exit::Success
        }
        Ok((status, _)) => report_failure(&format!("/denied answered {status}")),
        Err(err) => report_failure(&format!("cannot reach {}: {err}", args.admin)),
    }
}

fn report_failure(message: &str) -> Exit {
    let _ = writeln!(std::io::stderr(), "sandbox-proxy: {message}");
    Exit::Denied
}
