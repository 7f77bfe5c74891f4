//! The real-process harness shared by the end-to-end tests (lan_e2e,
//! no_show_e2e, venue_ops_e2e): a real `entrada serve` on a free port, a
//! minimal HTTP/1.1 client, and `entrada` CLI runs (`sync --once`,
//! `gate verify`) that answer JSON on stdout.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{Timelike, Utc};
use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_entrada");

/// A real `entrada serve`, killed when dropped.
pub struct Server {
    pub child: Child,
    pub url: String,
}

impl Server {
    /// `entrada serve` on 127.0.0.1:`port`, once /api/health answers.
    pub fn start_on(db: &Path, port: u16) -> Self {
        Self::start_with(db, port, &[])
    }

    /// Same, with extra `serve` arguments.
    pub fn start_with(db: &Path, port: u16, extra: &[&str]) -> Self {
        let child = Command::new(BIN)
            .args(["serve", "--db", db.to_str().unwrap(), "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .args(extra)
            .env("ENTRADA_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while http(port, "GET", "/api/health", None, None).0 != 200 {
            assert!(Instant::now() < deadline, "server did not become healthy");
            std::thread::sleep(Duration::from_millis(50));
        }
        Server {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    /// SIGTERM, then wait for it to exit.
    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One HTTP/1.1 request: (status, JSON body or Null); status 0 when the
/// port does not answer.
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return (0, Value::Null);
    };
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let _ = write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let status = out.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let json = out
        .split_once("\r\n\r\n")
        .and_then(|(_, b)| serde_json::from_str(b.trim()).ok())
        .unwrap_or(Value::Null);
    (status, json)
}

/// `entrada <args>`: (exit code, stdout as JSON or Null).
pub fn run(args: &[&str]) -> (i32, Value) {
    let out = Command::new(BIN)
        .args(args)
        .env("ENTRADA_LOG", "warn")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap_or(Value::Null),
    )
}

/// `entrada sync --once` of a gate's file, against `(url, device token)`.
pub fn sync(db: &Path, server: Option<(&str, &str)>) -> (i32, Value) {
    let mut args = vec!["sync", "--db", db.to_str().unwrap(), "--once"];
    if let Some((url, token)) = server {
        args.extend(["--server", url, "--token", token]);
    }
    run(&args)
}

/// `entrada gate verify --direction …` by operator 1: (exit code, verdict).
pub fn pass(db: &Path, direction: &str, code: &str) -> (i32, Value) {
    run(&[
        "gate",
        "verify",
        "--db",
        db.to_str().unwrap(),
        "--operator",
        "1",
        "--direction",
        direction,
        code,
    ])
}

pub fn verdict(r: &(i32, Value)) -> (i32, &str) {
    (r.0, r.1["verdict"].as_str().unwrap_or(""))
}

/// A fixed-offset zone whose clock reads between 12:00 and 12:59 now.
pub fn noon_zone() -> String {
    let offset = 12 - Utc::now().hour() as i32; // -11 ..= 12
    match offset {
        0 => "UTC".into(),
        // POSIX sign: Etc/GMT-3 is UTC+3.
        o if o > 0 => format!("Etc/GMT-{o}"),
        o => format!("Etc/GMT+{}", -o),
    }
}
