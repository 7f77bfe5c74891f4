//! A stopping server is not held up by open dashboards (issue 16): the
//! console's live dashboard is a server-sent event stream that lives up to
//! 10 minutes, and axum's graceful shutdown waits for every connection. A
//! real `entrada serve` with two dashboards open gets SIGTERM: the streams
//! end, and the process exits 0 within seconds (systemd's TimeoutStopSec is
//! 30 s; without the fix it waits out the streams' 10 minutes).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use chrono::Utc;
use entrada::domain::{Orq, Role};
use entrada::store::Store;

use common::procs::{free_port, Server};

/// Opens the dashboard stream and reads until its first event.
fn open_dashboard(port: u16, token: &str) -> BufReader<TcpStream> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET /api/admin/dashboard/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"
    )
    .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert!(line.starts_with("HTTP/1.1 200"), "{line}");
    loop {
        line.clear();
        assert!(
            r.read_line(&mut line).unwrap() > 0,
            "the stream ended early"
        );
        if line.starts_with("event: dashboard") {
            return r;
        }
    }
}

#[test]
fn sigterm_ends_open_dashboards_and_the_server_exits_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("server.db");
    let now = Utc::now();
    let token = {
        let store = Store::open(&db).unwrap();
        store
            .add_venue(Orq(1), "Prado", "Europe/Madrid", now)
            .unwrap();
        store
            .create_token(Orq(1), Role::Supervisor, None, None, now)
            .unwrap()
            .0
    };
    let port = free_port();
    let mut server = Server::start_on(&db, port);
    let mut tabs = [open_dashboard(port, &token), open_dashboard(port, &token)];

    let stopped = Instant::now();
    Command::new("kill")
        .arg(server.child.id().to_string())
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    // Each stream ends (EOF), not after its 10 minutes (keep-alive
    // comments would go on every 15 s).
    for tab in &mut tabs {
        let mut rest = String::new();
        while tab.read_line(&mut rest).unwrap_or(0) > 0 {
            assert!(
                Instant::now() < deadline,
                "a dashboard stream still open 20 s after SIGTERM"
            );
            rest.clear();
        }
    }
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the server still runs 20 s after SIGTERM with dashboards open"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status}");
    eprintln!("stopped in {:?} with 2 dashboards open", stopped.elapsed());
}
