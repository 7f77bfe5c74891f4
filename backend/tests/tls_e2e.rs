//! HTTPS end to end (issue 11, item 6): a real `entrada serve` with a
//! certificate from a throwaway CA (made here with rcgen), and a real gate
//! (`entrada sync`, `entrada gate verify`) that trusts that CA only when
//! told to with `--ca-cert`, and refuses a plain http:// server that is not
//! on loopback unless `--allow-http`.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{NaiveTime, Utc};
use entrada::domain::{ActivationMode, Contact, NewSlot, NewTicket, Orq};
use entrada::store::{ReserveRequest, Store};

const BIN: &str = env!("CARGO_BIN_EXE_entrada");

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn serve(db: &Path, port: u16, tls: Option<(&Path, &Path)>) -> Server {
    serve_with(db, port, tls, &[])
}

fn serve_with(db: &Path, port: u16, tls: Option<(&Path, &Path)>, extra: &[&str]) -> Server {
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--db", db.to_str().unwrap()])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("ENTRADA_LOG", "warn")
        .stdout(Stdio::null());
    if let Some((cert, key)) = tls {
        cmd.arg("--tls-cert").arg(cert).arg("--tls-key").arg(key);
    }
    cmd.args(extra);
    let child = Server(cmd.spawn().unwrap());
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

/// Runs the CLI: (exit code, stdout, stderr).
fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .env("ENTRADA_LOG", "warn")
        .env_remove("ENTRADA_CA_CERT")
        .env_remove("ENTRADA_ALLOW_HTTP")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A throwaway CA and a certificate for 127.0.0.1 / localhost it signed:
/// (ca.pem, server.pem, server.key) in `dir`.
fn throwaway_ca(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
        KeyUsagePurpose,
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "Entrada test venue CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key).unwrap();

    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "127.0.0.1");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.signed_by(&key, &ca_cert, &ca_key).unwrap();

    let paths = (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    );
    std::fs::write(&paths.0, ca_cert.pem()).unwrap();
    std::fs::write(&paths.1, cert.pem()).unwrap();
    std::fs::write(&paths.2, key.serialize_pem()).unwrap();
    paths
}

/// Org 1, one UTC venue, today's all-day slot, `TLS-0..n` reserved on it,
/// operator 1 (the server judges uploads by operators it knows), and a
/// device token for the venue.
fn seed(db: &Path, n: usize) -> String {
    let store = Store::open(db).unwrap();
    let now = Utc::now();
    let venue = store.add_venue(Orq(1), "TLS venue", "UTC", now).unwrap();
    let slot = store
        .create_slot(
            Orq(1),
            &NewSlot {
                venue_id: venue.id,
                date: now.date_naive(),
                start_time: NaiveTime::MIN,
                end_time: NaiveTime::from_hms_opt(23, 59, 59).unwrap(),
                total_capacity: 100,
            },
            now,
        )
        .unwrap();
    let tickets: Vec<_> = (0..n)
        .map(|i| NewTicket::plain(&format!("TLS-{i}"), ActivationMode::Immediate).unwrap())
        .collect();
    store.insert_tickets(Orq(1), &tickets, now).unwrap();
    let contact = Contact::validate("tls@example.com", "+12025551234").unwrap();
    for t in &tickets {
        let req = ReserveRequest {
            ticket: t.ticket_code.clone(),
            slot_id: slot.id,
            contact: contact.clone(),
        };
        store.reserve_slot(Orq(1), &req, now).unwrap();
    }
    let operator = store
        .add_operator(
            Orq(1),
            entrada::domain::Role::Operator,
            "Ana",
            Some("1234"),
            now,
        )
        .unwrap();
    assert_eq!(operator.id.0, 1);
    store
        .add_device(Orq(1), venue.id, "TLS gate", now)
        .unwrap()
        .0
}

fn count(db: &Path, sql: &str) -> i64 {
    rusqlite::Connection::open(db)
        .unwrap()
        .query_row(sql, [], |r| r.get(0))
        .unwrap()
}

#[test]
fn a_gate_syncs_over_https_with_the_venue_ca_and_only_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = throwaway_ca(dir.path());
    let server_db = dir.path().join("server.db");
    let token = seed(&server_db, 5);
    let port = free_port();
    let _server = serve(&server_db, port, Some((&cert, &key)));
    let url = format!("https://127.0.0.1:{port}");
    let gate = dir.path().join("gate.db");
    let gate_s = gate.to_str().unwrap();

    // Without the venue's CA the certificate is refused: unknown issuer.
    let (code, _, err) = run(&[
        "sync", "--db", gate_s, "--server", &url, "--token", &token, "--once",
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("UnknownIssuer"), "{err}");
    assert!(err.contains("--ca-cert"), "{err}");
    assert_eq!(count(&gate, "SELECT count(*) FROM device_identity"), 0);

    // With it: paired, the venue's tickets arrive over TLS.
    let ca_s = ca.to_str().unwrap();
    let (code, out, err) = run(&[
        "sync",
        "--db",
        gate_s,
        "--server",
        &url,
        "--token",
        &token,
        "--once",
        "--ca-cert",
        ca_s,
    ]);
    assert_eq!(code, 0, "{out}\n{err}");
    let report: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(report["status"]["paired"], true);
    assert_eq!(report["status"]["server_url"], url.as_str());
    assert_eq!(count(&gate, "SELECT count(*) FROM tickets"), 5);

    // An admission at the gate travels back over TLS.
    let (code, out, _) = run(&["gate", "verify", "--db", gate_s, "--operator", "1", "TLS-3"]);
    assert_eq!(code, 0, "{out}");
    let (code, out, err) = run(&["sync", "--db", gate_s, "--once", "--ca-cert", ca_s]);
    assert_eq!(code, 0, "{out}\n{err}");
    let report: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(report["round"]["applied"], 1, "{report}");
    assert_eq!(
        count(
            &server_db,
            "SELECT count(*) FROM tickets WHERE ticket_code = 'TLS-3' AND verified_at IS NOT NULL"
        ),
        1
    );

    // The same paired gate, without the CA the next time: refused, and says why.
    let (code, _, err) = run(&["sync", "--db", gate_s, "--once"]);
    assert_ne!(code, 0);
    assert!(err.contains("UnknownIssuer"), "{err}");

    // A client that does not speak TLS gets nothing from the HTTPS port.
    let (code, _, _) = run(&[
        "sync",
        "--db",
        dir.path().join("plain.db").to_str().unwrap(),
        "--server",
        &format!("http://127.0.0.1:{port}"),
        "--token",
        &token,
        "--once",
    ]);
    assert_ne!(code, 0);
}

#[test]
fn a_gate_refuses_a_plain_http_server_off_loopback_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let server_db = dir.path().join("server.db");
    let token = seed(&server_db, 2);
    let port = free_port();
    let _server = serve(&server_db, port, None);
    let gate = dir.path().join("gate.db");
    let gate_s = gate.to_str().unwrap();

    // 0.0.0.0 reaches this machine's server but is not a loopback address:
    // checked first, so a gate without the policy fails here and never
    // sends anything towards 10.1.2.3.
    let unspecified = format!("http://0.0.0.0:{port}");
    for url in [unspecified.as_str(), "http://10.1.2.3:8080"] {
        let (code, _, err) = run(&[
            "sync", "--db", gate_s, "--server", url, "--token", &token, "--once",
        ]);
        assert_ne!(code, 0, "{url} must be refused");
        assert!(err.contains("plain http://"), "{url}: {err}");
        assert!(err.contains("--allow-http"), "{url}: {err}");
        assert_eq!(count(&gate, "SELECT count(*) FROM device_identity"), 0);
    }

    // Loopback stays allowed (a server on the same computer), and
    // --allow-http accepts the risk for another address.
    let loopback = format!("http://127.0.0.1:{port}");
    let (code, out, err) = run(&[
        "sync",
        "--db",
        dir.path().join("local.db").to_str().unwrap(),
        "--server",
        &loopback,
        "--token",
        &token,
        "--once",
    ]);
    assert_eq!(code, 0, "{out}\n{err}");
    let (code, out, err) = run(&[
        "sync",
        "--db",
        gate_s,
        "--server",
        &unspecified,
        "--token",
        &token,
        "--once",
        "--allow-http",
    ]);
    assert_eq!(code, 0, "{out}\n{err}");
    // A gate paired over plain http with --allow-http refuses it again
    // without the flag: the policy is checked at every round.
    let (code, _, err) = run(&["sync", "--db", gate_s, "--once"]);
    assert_ne!(code, 0);
    assert!(err.contains("--allow-http"), "{err}");
}

/// An admin adds a gate to venue 1 over HTTPS (trusting `ca_pem`): the
/// answer, with its token and pairing code (201 expected).
async fn add_gate(url: &str, admin: &str, ca_pem: &[u8], name: &str) -> serde_json::Value {
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem).unwrap())
        .build()
        .unwrap();
    let res = http
        .post(format!("{url}/api/admin/devices"))
        .bearer_auth(admin)
        .json(&serde_json::json!({"name": name, "venue_id": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    res.json().await.unwrap()
}

/// Issue 16: the pairing code a server started with `--tls-ca` gives a new
/// gate names that CA by its SHA-256; the gate takes the certificate of that
/// hash from the server's TLS chain and trusts it (besides the public roots). A server that does
/// not present it (no `--tls-ca`, or another server) is refused.
#[test]
fn a_pairing_code_pins_the_venue_ca_by_its_fingerprint() {
    use entrada::domain::pairing::PairingCode;
    use entrada::sync::client::{PairChange, SyncEngine, Transport};
    use entrada::sync::pin::fetch_pinned_ca;

    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = throwaway_ca(dir.path());
    let ca_pem = std::fs::read(&ca).unwrap();
    let server_db = dir.path().join("server.db");
    seed(&server_db, 3);
    let db_s = server_db.to_str().unwrap();
    let (code, admin, err) = run(&[
        "token", "create", "--db", db_s, "--orq", "1", "--role", "admin",
    ]);
    assert_eq!(code, 0, "{err}");
    let port = free_port();
    let _server = serve_with(
        &server_db,
        port,
        Some((&cert, &key)),
        &["--tls-ca", ca.to_str().unwrap()],
    );
    let url = format!("https://127.0.0.1:{port}");

    let rt = tokio::runtime::Runtime::new().unwrap();
    // An admin adds a gate: the answer carries its pairing code and QR code.
    let created = rt.block_on(add_gate(&url, admin.trim(), &ca_pem, "QR gate"));
    let pairing = PairingCode::parse(created["pairing"]["uri"].as_str().unwrap()).unwrap();
    assert!(created["pairing"]["svg"].as_str().unwrap().contains("<svg"));
    assert_eq!(pairing.server_url(), url);
    assert_eq!(pairing.token(), created["token"].as_str().unwrap());
    let fp = entrada::api::pairing::ca_fingerprint(&ca_pem).unwrap();
    assert_eq!(
        pairing.ca_sha256(),
        Some(fp.as_str()),
        "the code names the venue CA"
    );

    // The gate takes exactly that certificate from the server's chain...
    let pinned = rt
        .block_on(fetch_pinned_ca(pairing.server_url(), &fp))
        .unwrap();
    assert_eq!(entrada::api::pairing::ca_fingerprint(&pinned).unwrap(), fp);
    // ...and nothing when the code names another CA.
    let other = "0".repeat(64);
    let e = rt.block_on(fetch_pinned_ca(&url, &other)).unwrap_err();
    assert_eq!(e.code(), "CA_FINGERPRINT_MISMATCH", "{e}");

    // Trusting the pinned CA, it pairs and downloads the venue's data.
    let gate_db = dir.path().join("gate.db");
    let store = std::sync::Arc::new(Store::open(&gate_db).unwrap());
    let transport = Transport {
        ca_cert_pem: Some(pinned),
        allow_http: false,
    };
    let engine = SyncEngine::with_transport(store.clone(), transport).unwrap();
    let change = rt
        .block_on(engine.repair(pairing.server_url(), pairing.token()))
        .unwrap();
    assert!(matches!(change, PairChange::Paired { .. }), "{change:?}");
    rt.block_on(engine.round(|_, _| {})).unwrap();
    assert_eq!(count(&gate_db, "SELECT count(*) FROM tickets"), 3);

    // A server without --tls-ca does not send the CA: nothing to pin, refused.
    let port2 = free_port();
    let _plain_chain = serve(&server_db, port2, Some((&cert, &key)));
    let e = rt
        .block_on(fetch_pinned_ca(&format!("https://127.0.0.1:{port2}"), &fp))
        .unwrap_err();
    assert_eq!(e.code(), "CA_FINGERPRINT_MISMATCH", "{e}");
}

/// `entrada serve` with `args` must stop at start: its stderr (panics if it
/// is still running after 30 s, i.e. it started).
fn refused_at_start(args: &[&str]) -> String {
    let mut child = Command::new(BIN)
        .args(args)
        .env("ENTRADA_LOG", "warn")
        .env_remove("ENTRADA_CONFIG")
        .env_remove("ENTRADA_PUBLIC_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{args:?}: the server started");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success(), "{args:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Issue 16: a `--tls-ca` that did not sign `--tls-cert` stops the server
/// at start (every gate paired by its QR code would pin the wrong CA), and
/// `--public-url` is the address pairing codes name (behind a proxy), checked
/// at start like a pairing code's.
#[test]
fn serve_checks_its_ca_and_public_url_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = throwaway_ca(dir.path());
    let other_dir = dir.path().join("other");
    std::fs::create_dir(&other_dir).unwrap();
    let (other_ca, _, _) = throwaway_ca(&other_dir);
    let server_db = dir.path().join("server.db");
    seed(&server_db, 1);
    let db = server_db.to_str().unwrap();
    let tls = [
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ];
    let listen = format!("127.0.0.1:{}", free_port());
    let base = ["serve", "--db", db, "--listen", &listen];

    let err = refused_at_start(
        &[
            &base[..],
            &tls[..],
            &["--tls-ca", other_ca.to_str().unwrap()],
        ]
        .concat(),
    );
    assert!(err.contains("does not lead to this CA"), "{err}");
    assert!(err.contains("--tls-ca"), "names the flags: {err}");
    for (url, says) in [
        ("ftp://entrada.example", "https:// or http://"),
        ("https://user@entrada.example", "user name"),
        // With a CA to pin, the address must be https.
        ("http://entrada.example", "https://"),
    ] {
        let err = refused_at_start(
            &[
                &base[..],
                &tls[..],
                &["--tls-ca", ca.to_str().unwrap(), "--public-url", url],
            ]
            .concat(),
        );
        assert!(
            err.contains("public_url") && err.contains(says),
            "{url}: {err}"
        );
    }

    // The right CA and a public address: the pairing code names that
    // address (not the 127.0.0.1 the request came to) and the CA.
    let (code, admin, err) = run(&[
        "token", "create", "--db", db, "--orq", "1", "--role", "admin",
    ]);
    assert_eq!(code, 0, "{err}");
    let port = free_port();
    let _server = serve_with(
        &server_db,
        port,
        Some((&cert, &key)),
        &[
            "--tls-ca",
            ca.to_str().unwrap(),
            "--public-url",
            "https://Entrada.Example:8443/",
        ],
    );
    let ca_pem = std::fs::read(&ca).unwrap();
    let created = tokio::runtime::Runtime::new().unwrap().block_on(add_gate(
        &format!("https://127.0.0.1:{port}"),
        admin.trim(),
        &ca_pem,
        "Proxy gate",
    ));
    let pairing =
        entrada::domain::pairing::PairingCode::parse(created["pairing"]["uri"].as_str().unwrap())
            .unwrap();
    assert_eq!(pairing.server_url(), "https://Entrada.Example:8443");
    assert_eq!(
        created["pairing"]["server_url"],
        "https://Entrada.Example:8443"
    );
    assert_eq!(created["pairing"]["loopback"], false);
    assert_eq!(
        pairing.ca_sha256(),
        Some(
            entrada::api::pairing::ca_fingerprint(&ca_pem)
                .unwrap()
                .as_str()
        )
    );
}

/// The start check (`check_chain_leads_to_ca`) with certificates out of
/// their dates: the verifier reports dates before signatures, so an expired
/// (or not yet valid) certificate is checked again inside its validity: one
/// that the CA signed starts the server (with a warning), one another CA
/// signed does not.
#[test]
fn the_ca_check_sees_past_the_dates_but_not_past_another_ca() {
    use entrada::api::pairing::check_chain_leads_to_ca;
    use rcgen::{
        date_time_ymd, BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
        KeyPair, KeyUsagePurpose,
    };
    let ca = |name: &str| {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, name);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = p.self_signed(&key).unwrap();
        (cert, key)
    };
    let (venue_ca, venue_key) = ca("Venue CA");
    let (other_ca, _) = ca("Another CA");
    let leaf = |from: (i32, u8, u8), to: (i32, u8, u8)| {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        p.not_before = date_time_ymd(from.0, from.1, from.2);
        p.not_after = date_time_ymd(to.0, to.1, to.2);
        p.signed_by(&key, &venue_ca, &venue_key).unwrap().pem()
    };
    let expired = leaf((2020, 1, 1), (2021, 1, 1));
    let not_yet = leaf((2090, 1, 1), (2091, 1, 1));
    let valid = leaf((2020, 1, 1), (2090, 1, 1));
    let (venue, other) = (venue_ca.pem(), other_ca.pem());
    for (name, chain) in [
        ("valid", &valid),
        ("expired", &expired),
        ("not yet valid", &not_yet),
    ] {
        assert!(
            check_chain_leads_to_ca(chain.as_bytes(), venue.as_bytes()).is_ok(),
            "{name}, signed by the venue CA"
        );
        let refused = check_chain_leads_to_ca(chain.as_bytes(), other.as_bytes());
        assert!(
            refused
                .as_ref()
                .is_err_and(|e| e.to_string().contains("does not lead to this CA")),
            "{name}, checked against another CA: {refused:?}"
        );
    }
}
