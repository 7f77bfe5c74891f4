//! Issue 13: several `entrada serve` instances on one PostgreSQL database.
//! Two real server processes on 127.0.0.1 share a fresh database on the test
//! cluster (`ENTRADA_TEST_PG`, as `entrada-store-pg`'s tests; skipped
//! without it, failed under CI), and 200 clients spread over both race for
//! the last 50 places of a slot: exactly 50 are booked, every other client
//! is told SLOT_FULL, and the slot ends full, never over.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_entrada");
#[path = "common/pg.rs"]
mod pg;
use pg::{pg_url, FreshDb};

/// A server process, killed (by its pid) and reaped on drop.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The CLI on `db` (given by `ENTRADA_DB`: the cluster's password stays out
/// of the process list).
fn cli(db: &str, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(args)
        .env("ENTRADA_DB", db)
        .env("ENTRADA_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn serve(db: &str) -> (Server, String) {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = Server(
        Command::new(BIN)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--lookups-per-minute", "0", "--pool-size", "8"])
            .env("ENTRADA_DB", db)
            .env("ENTRADA_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = server.0.try_wait().unwrap() {
            panic!("entrada serve exited at start: {status}");
        }
        assert!(Instant::now() < deadline, "entrada serve did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    (server, url)
}

async fn post(http: &reqwest::Client, token: &str, url: String, body: Value) -> (u16, Value) {
    let res = http
        .post(url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json::<Value>().await.unwrap_or(Value::Null))
}

#[test]
fn two_instances_book_exactly_the_last_places() {
    let Some(cluster) = pg_url() else { return };
    let db = FreshDb::new(&cluster, "instances");
    cli(&db.url, &["migrate"]);
    let venue = cli(
        &db.url,
        &[
            "venue",
            "add",
            "--orq",
            "1",
            "--name",
            "Race",
            "--timezone",
            "UTC",
        ],
    );
    let admin = cli(
        &db.url,
        &["token", "create", "--orq", "1", "--role", "admin"],
    );
    let (_a, url_a) = serve(&db.url);
    let (_b, url_b) = serve(&db.url);

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        // A slot of 60 places three days ahead, 10 already booked: 50 left.
        let date = (chrono::Utc::now() + chrono::Duration::days(3))
            .date_naive()
            .to_string();
        let (status, slot) = post(
            &http,
            &admin,
            format!("{url_a}/api/operator/slots/create"),
            json!({"venue_id": venue.parse::<i64>().unwrap(), "date": date,
                   "start_time": "10:00", "end_time": "11:00", "total_capacity": 60}),
        )
        .await;
        assert_eq!(status, 201, "{slot}");
        let slot_id = slot["id"].as_str().unwrap().to_owned();
        let tickets: Vec<Value> = (0..210)
            .map(|i| json!({"ticket_code": format!("RACE-{i}"), "activation_mode": "immediate"}))
            .collect();
        let (status, body) = post(
            &http,
            &admin,
            format!("{url_b}/api/admin/tickets"),
            Value::Array(tickets),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        let reserve = |i: usize| {
            let (http, admin) = (http.clone(), admin.clone());
            let base = if i.is_multiple_of(2) { &url_a } else { &url_b };
            let url = format!("{base}/api/reservations/create");
            let body = json!({"ticket_id": format!("RACE-{i}"), "slot_id": slot_id,
                              "customer_email": "race@example.com", "customer_phone": "+34600000001"});
            async move {
                // 503 (no database connection free in time) means "try
                // again", as a client would.
                let give_up = Instant::now() + Duration::from_secs(60);
                loop {
                    let (status, answer) = post(&http, &admin, url.clone(), body.clone()).await;
                    if status != 503 {
                        return (status, answer);
                    }
                    assert!(Instant::now() < give_up, "503 for a minute: {answer}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        };
        for i in 200..210 {
            assert_eq!(reserve(i).await.0, 201);
        }

        // 200 clients, half on each instance, released together.
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(200));
        let racers: Vec<_> = (0..200)
            .map(|i| {
                let barrier = barrier.clone();
                let attempt = reserve(i);
                tokio::spawn(async move {
                    barrier.wait().await;
                    attempt.await
                })
            })
            .collect();
        let (mut booked, mut full) = (0, 0);
        for racer in racers {
            let (status, body) = racer.await.unwrap();
            match (status, body["error"]["code"].as_str()) {
                (201, _) => booked += 1,
                (409, Some("SLOT_FULL")) => full += 1,
                other => panic!("unexpected answer {other:?}: {body}"),
            }
        }
        assert_eq!((booked, full), (50, 150), "exactly the last 50 places are booked");
        let res = http
            .get(format!("{url_b}/api/operator/slots/{slot_id}"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        let slot: Value = res.json().await.unwrap();
        assert_eq!(
            (slot["booked_count"].as_i64(), slot["status"].as_str()),
            (Some(60), Some("FULL")),
            "{slot}"
        );
    });
}

/// Verify-ticket through both instances at once (on PostgreSQL the server
/// hands each verification to its group-commit queue and awaits the
/// answer): each ticket asked twice on each instance, all at once, is
/// admitted exactly once (200) and ALREADY_VERIFIED (409) three times, and
/// each admission is written once.
#[test]
fn two_instances_admit_each_ticket_once() {
    let Some(cluster) = pg_url() else { return };
    let db = FreshDb::new(&cluster, "instances_verify");
    cli(&db.url, &["migrate"]);
    let venue = cli(
        &db.url,
        &[
            "venue",
            "add",
            "--orq",
            "1",
            "--name",
            "Door",
            "--timezone",
            "UTC",
        ],
    );
    let operator = cli(
        &db.url,
        &["operator", "add", "--orq", "1", "--name", "Gate 1"],
    );
    let admin = cli(
        &db.url,
        &["token", "create", "--orq", "1", "--role", "admin"],
    );
    let (_a, url_a) = serve(&db.url);
    let (_b, url_b) = serve(&db.url);
    const TICKETS: usize = 24;

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        // An all-day slot today: now is inside it.
        let today = chrono::Utc::now().date_naive().to_string();
        let (status, slot) = post(
            &http,
            &admin,
            format!("{url_a}/api/operator/slots/create"),
            json!({"venue_id": venue.parse::<i64>().unwrap(), "date": today,
                   "start_time": "00:00", "end_time": "23:59", "total_capacity": 100}),
        )
        .await;
        assert_eq!(status, 201, "{slot}");
        let slot_id = slot["id"].as_str().unwrap().to_owned();
        let tickets: Vec<Value> = (0..TICKETS)
            .map(|i| json!({"ticket_code": format!("DOOR-{i}"), "activation_mode": "immediate"}))
            .collect();
        let (status, body) = post(
            &http,
            &admin,
            format!("{url_b}/api/admin/tickets"),
            Value::Array(tickets),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        for i in 0..TICKETS {
            let (status, body) = post(
                &http,
                &admin,
                format!("{url_a}/api/reservations/create"),
                json!({"ticket_id": format!("DOOR-{i}"), "slot_id": slot_id,
                       "customer_email": "door@example.com", "customer_phone": "+34600000001"}),
            )
            .await;
            assert_eq!(status, 201, "{body}");
        }

        let op: i64 = operator.parse().unwrap();
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(4 * TICKETS));
        let askers: Vec<_> = (0..4 * TICKETS)
            .map(|n| {
                let (http, admin, barrier) = (http.clone(), admin.clone(), barrier.clone());
                let base = if n % 2 == 0 { &url_a } else { &url_b };
                let url = format!("{base}/api/operator/verify-ticket");
                let ticket = format!("DOOR-{}", n % TICKETS);
                tokio::spawn(async move {
                    barrier.wait().await;
                    let body = json!({"ticket_id": ticket, "operator_id": op});
                    (ticket, post(&http, &admin, url, body).await)
                })
            })
            .collect();
        let mut admitted = std::collections::HashMap::<String, usize>::new();
        for asker in askers {
            let (ticket, (status, body)) = asker.await.unwrap();
            match (status, body["error"]["code"].as_str()) {
                (200, _) => {
                    assert_eq!(body["admit"], json!(true), "{body}");
                    *admitted.entry(ticket).or_default() += 1;
                }
                (409, Some("ALREADY_VERIFIED")) => {}
                other => panic!("unexpected answer {other:?}: {body}"),
            }
        }
        for i in 0..TICKETS {
            assert_eq!(admitted.get(&format!("DOOR-{i}")), Some(&1), "DOOR-{i}");
        }
    });
    let mut client = postgres::Client::connect(&db.url, postgres::NoTls).unwrap();
    let written: i64 = client
        .query_one("SELECT count(*) FROM passages", &[])
        .unwrap()
        .get(0);
    assert_eq!(written, TICKETS as i64, "one entry per ticket");
}
