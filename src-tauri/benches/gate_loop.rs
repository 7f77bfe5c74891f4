//! Gate app benchmark: (1) startup of the real app to "ready to scan" and
//! (2) memory over an hour-equivalent of scanning.
//!
//! Run: `cargo bench -p entrada-desktop --bench gate_loop -- [--quick]
//!       [--frames N] [--runs N] [--no-startup]` (unknown arguments such as
//! `--bench` are ignored).
//!
//! 1. Startup: launches the release `entrada-desktop` (standalone, on a gate
//!    database prepared beforehand, a folder camera) through tauri-driver +
//!    WebKitWebDriver, on `$DISPLAY` or on an `Xvfb` it starts, and measures
//!    from the WebDriver "new session" request (which starts the process) to
//!    the kiosk page's `body[data-ready="1"]` (app info and operators loaded,
//!    scanner shown), polled every 10 ms. The WebDriver layers are included,
//!    so this is an upper bound. Skipped (and said so) without tauri-driver.
//! 2. Memory: the scan loop's work without its 10 fps pacing — a looping
//!    FolderSource of rendered QR frames (640×480, 8 tickets of the demo set
//!    and empty frames) → Decoder → RepeatSuppressor (3 s, on a simulated
//!    10 fps clock) → GateService::scan (durable verdicts in SQLite), plus a
//!    preview JPEG every second frame, as `camera::run` does. 10,000 frames
//!    at 10 fps is 16.7 minutes of camera time; at 3 fps effective decoding
//!    (a typical webcam loop) it is about an hour. VmRSS is sampled every
//!    1,000 frames.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use entrada::domain::{Orq, TicketCode};
use entrada::store::Store;
use entrada_desktop::camera::{preview, CameraChoice};
use entrada_desktop::gate::views::ScanSource;
use entrada_desktop::gate::{GateService, GateSettings};
use entrada_desktop::scan::{Decoder, DecoderConfig, RepeatSuppressor};
use entrada_desktop::source::{FolderSource, FrameSource};

struct Opts {
    frames: usize,
    runs: usize,
    startup: bool,
}

fn parse_opts() -> Opts {
    let mut o = Opts {
        frames: 10_000,
        runs: 5,
        startup: true,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--quick" => {
                o.frames = 2_000;
                o.runs = 2;
            }
            "--frames" if i + 1 < args.len() => {
                i += 1;
                o.frames = args[i].parse().expect("--frames N");
            }
            "--runs" if i + 1 < args.len() => {
                i += 1;
                o.runs = args[i].parse().expect("--runs N");
            }
            "--no-startup" => o.startup = false,
            _ => {} // --bench and anything cargo passes
        }
        i += 1;
    }
    o
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// A demo gate database with operator 1 signed in (as `--operator 1`).
fn demo_gate(dir: &Path) -> (Arc<Store>, Arc<GateService>) {
    let store = Arc::new(Store::open(dir.join("gate.db")).unwrap());
    entrada::demo::populate(&store, chrono::Utc::now(), |_| {}).unwrap();
    let gate = GateService::new(
        store.clone(),
        GateSettings {
            auto_lock: Duration::from_secs(3600),
            kiosk: false,
            camera: CameraChoice::Auto,
            idle_dim_secs: 0,
            fixed: Vec::new(),
        },
    )
    .unwrap();
    gate.start_session(1).unwrap();
    (store, Arc::new(gate))
}

/// 640×480 frames: each demo ticket's signed QR pasted at a varying spot,
/// with empty frames between (a code leaves view, so it may be re-scanned).
fn render_frames(store: &Store, dir: &Path) -> usize {
    let codes = [
        "DEMO-ADMIT-2",
        "DEMO-ADMIT-3",
        "DEMO-VERIFIED",
        "DEMO-TOMORROW",
        "DEMO-INACTIVE",
        "DEMO-ACTIVE",
        "DEMO-CANCELLED",
        "DEMO-EXPIRED",
    ];
    std::fs::create_dir_all(dir).unwrap();
    let mut n = 0;
    for (i, code) in codes.iter().enumerate() {
        let signed = store
            .signed_code(
                Orq(1),
                &TicketCode::parse(code).unwrap(),
                chrono::Utc::now(),
            )
            .unwrap();
        let qr = image::load_from_memory(&entrada::qr::png(&signed).unwrap())
            .unwrap()
            .to_luma8();
        let qr = image::imageops::resize(&qr, 300, 300, image::imageops::FilterType::Nearest);
        for k in 0..4 {
            let mut canvas = image::GrayImage::from_pixel(640, 480, image::Luma([96]));
            let (x, y) = (60 + 70 * ((i + k) % 4) as i64, 40 + 30 * (k % 3) as i64);
            image::imageops::overlay(&mut canvas, &qr, x, y);
            canvas.save(dir.join(format!("{n:03}-{code}.png"))).unwrap();
            n += 1;
        }
        // ~4 s without a code at 10 fps: the suppressor re-arms.
        for _ in 0..40 {
            let blank = image::GrayImage::from_pixel(640, 480, image::Luma([96 + (n % 7) as u8]));
            blank.save(dir.join(format!("{n:03}-empty.png"))).unwrap();
            n += 1;
        }
    }
    n
}

fn memory(frames: usize) {
    let tmp = tempfile::tempdir().unwrap();
    let (store, gate) = demo_gate(tmp.path());
    let files = render_frames(&store, &tmp.path().join("frames"));
    let mut source = FolderSource::new(tmp.path().join("frames"), 0.0, true).unwrap();
    let mut decoder = Decoder::new(DecoderConfig::default());
    let mut repeats = RepeatSuppressor::new(3000);
    let (mut scans, mut admits, mut previews) = (0u64, 0u64, 0u64);
    let mut samples = Vec::new();
    let started = Instant::now();
    let mut rss0 = 0;
    for i in 0..frames {
        let frame = source.next_frame().unwrap().unwrap();
        if i % 2 == 0 && preview(&frame, 320).is_some() {
            previews += 1;
        }
        let decoded = decoder.decode(&frame);
        let now_ms = i as u64 * 100; // 10 fps camera time
        for payload in repeats.observe(now_ms, decoded.iter().map(|d| d.payload.as_str())) {
            let outcome = gate.scan(&payload, ScanSource::Camera).unwrap();
            scans += 1;
            admits += outcome.verdict.admit as u64;
        }
        if i == 999 {
            rss0 = rss_kib(); // after warm-up: caches, SQLite pages, allocator arenas
        }
        if (i + 1) % 1000 == 0 {
            samples.push((i + 1, rss_kib()));
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!("## memory: {frames} frames ({files} files looped), {scans} scans recorded ({admits} ADMIT), {previews} previews, {secs:.1} s ({:.1} ms/frame)", secs * 1000.0 / frames as f64);
    println!("| frames | VmRSS (MiB) |");
    println!("|---:|---:|");
    for (n, kib) in &samples {
        println!("| {n} | {:.1} |", *kib as f64 / 1024.0);
    }
    if let (Some(first), Some(last)) = (samples.first(), samples.last()) {
        let growth = last.1 as i64 - rss0 as i64;
        println!(
            "RSS after 1,000 frames {:.1} MiB, after {} frames {:.1} MiB: growth {:+.2} MiB ({:+.1} KiB per 1,000 frames) — target: no growth",
            first.1 as f64 / 1024.0,
            last.0,
            last.1 as f64 / 1024.0,
            growth as f64 / 1024.0,
            growth as f64 / ((samples.len().max(2) - 1) as f64),
        );
    }
}

// ---------------------------------------------------------------- startup

fn http(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&serde_json::Value>,
) -> serde_json::Value {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("webdriver connect");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw);
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let payload = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    serde_json::from_str(&payload).unwrap_or(serde_json::Value::Null)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((len, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(len.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Killer(Vec<Child>);
impl Drop for Killer {
    fn drop(&mut self) {
        for c in self.0.iter_mut().rev() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn tauri_driver() -> Option<PathBuf> {
    let home = std::env::var("HOME").unwrap_or_default();
    std::env::var("TAURI_DRIVER")
        .ok()
        .map(PathBuf::from)
        .into_iter()
        .chain([PathBuf::from(home).join(".cargo/bin/tauri-driver")])
        .find(|p| p.exists())
}

fn startup(runs: usize) {
    let app = PathBuf::from(env!("CARGO_BIN_EXE_entrada-desktop"));
    let Some(driver) = tauri_driver() else {
        println!("## startup: skipped (no tauri-driver: `cargo install tauri-driver --locked`)");
        return;
    };
    let mut procs = Killer(Vec::new());
    let mut envs: Vec<(String, String)> = vec![
        ("WEBKIT_DISABLE_COMPOSITING_MODE".into(), "1".into()),
        ("NO_AT_BRIDGE".into(), "1".into()),
        ("ENTRADA_LOG".into(), "warn".into()),
    ];
    if std::env::var("DISPLAY").is_err() {
        // Xvfb picks a free display and writes its number to stdout.
        let spawned = Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                "1280x800x24",
                "-nolisten",
                "tcp",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn();
        let mut x = match spawned {
            Ok(x) => x,
            Err(e) => {
                println!("## startup: skipped (no DISPLAY and no Xvfb: {e})");
                return;
            }
        };
        let mut out = x.stdout.take().unwrap();
        procs.0.push(x);
        let mut num = String::new();
        let mut byte = [0u8; 1];
        while out.read(&mut byte).map(|n| n == 1).unwrap_or(false) && byte[0] != b'\n' {
            num.push(byte[0] as char);
        }
        envs.push(("DISPLAY".into(), format!(":{}", num.trim())));
    }
    let tmp = tempfile::tempdir().unwrap();
    let (store, gate) = demo_gate(tmp.path());
    render_frames(&store, &tmp.path().join("frames"));
    drop((gate, store));

    let mut ready_ms = Vec::new();
    let mut session_ms = Vec::new();
    for run in 0..runs + 1 {
        let (port, native) = (free_port(), free_port());
        let mut cmd = Command::new(&driver);
        cmd.args([
            "--port",
            &port.to_string(),
            "--native-port",
            &native.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        for (k, v) in &envs {
            cmd.env(k, v);
        }
        let mut d = Killer(vec![cmd.spawn().expect("tauri-driver")]);
        let until = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
        let caps = serde_json::json!({"capabilities": {"alwaysMatch": {"tauri:options": {
            "application": app,
            "args": ["--db", tmp.path().join("gate.db"), "--camera", format!("folder:{}", tmp.path().join("frames").display()), "--operator", "1"],
        }}}});
        let t0 = Instant::now();
        let mut session = http(port, "POST", "/session", Some(&caps));
        if session["value"]["sessionId"].is_null() {
            std::thread::sleep(Duration::from_millis(500));
            session = http(port, "POST", "/session", Some(&caps));
        }
        let Some(id) = session["value"]["sessionId"].as_str().map(str::to_string) else {
            println!("## startup: skipped (WebDriver session failed: {session})");
            return;
        };
        let t_session = t0.elapsed();
        let script =
            serde_json::json!({"script": "return document.body.dataset.ready === '1'", "args": []});
        let mut ready = None;
        while t0.elapsed() < Duration::from_secs(30) {
            let v = http(
                port,
                "POST",
                &format!("/session/{id}/execute/sync"),
                Some(&script),
            );
            if v["value"] == serde_json::Value::Bool(true) {
                ready = Some(t0.elapsed());
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        http(port, "DELETE", &format!("/session/{id}"), None);
        d.0[0].kill().ok();
        drop(d);
        let ready = ready.expect("the kiosk never became ready");
        if run == 0 {
            println!(
                "startup warm-up run (page cache cold): ready after {:.0} ms",
                ready.as_secs_f64() * 1000.0
            );
            continue;
        }
        session_ms.push(t_session.as_secs_f64() * 1000.0);
        ready_ms.push(ready.as_secs_f64() * 1000.0);
    }
    let med = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let (max_ready, min_ready) = (
        ready_ms.iter().cloned().fold(0.0, f64::max),
        ready_ms.iter().cloned().fold(f64::MAX, f64::min),
    );
    println!(
        "## startup ({} runs, {}): WebDriver session up in median {:.0} ms; ready to scan in median {:.0} ms (min {:.0}, max {:.0}) — target < 2000 ms",
        ready_ms.len(),
        app.display(),
        med(&mut session_ms),
        med(&mut ready_ms),
        min_ready,
        max_ready,
    );
}

fn main() {
    let o = parse_opts();
    println!(
        "# gate_loop benchmark ({} cores)",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    if o.startup {
        startup(o.runs);
    }
    memory(o.frames);
}
