//! Scan benchmark: generate a deterministic corpus of degraded camera frames,
//! decode it with our pipeline, with plain rqrr (baseline) and with zxing-cpp
//! (reference, via `zxing_reference.py`) on the SAME files, and print rates,
//! misreads, false positives and per-resolution median/p95 decode times.
//!
//! Run: `cargo bench -p entrada-desktop --bench decode -- [--frames N]
//!       [--world N] [--seed S] [--out DIR] [--no-zxing] [--budget-ms MS]
//!       [--no-probe] [--no-predict] [--only PAT[,PAT…]] [--reuse] [--reps N] [--no-plain]
//!       [--list]`
//!
//! `--reuse`: decode the corpus already in `--out` (its `manifest.jsonl`)
//! instead of generating it again; with `--reps 1 --no-plain --no-zxing
//! --budget-ms 100000` this is the run to count instructions on under
//! `valgrind --tool=callgrind` (generation under valgrind takes hours, and
//! an unlimited budget makes every frame run to its own end: the count does
//! not depend on how fast the machine is).
//!
//! `--only`: the whole corpus is generated (it is seeded), then only the
//! frames whose file name contains one of the patterns are decoded (e.g.
//! `--only _noise_,_inverted_`): quick iteration on one class.
//!
//! The corpus has two parts: `--frames` frames of the degradation classes
//! (640×480 and 1280×720), then `--world` frames of each class of what
//! people show at a gate (inverted, tight, 12 MP, 4K, versions 10–40,
//! 9-character payloads) plus 8 empty or noise frames of those sizes.
//! (build in release: the numbers are meaningless in debug).

#[path = "../tests/support/mod.rs"]
mod support;

const USAGE: &str = "scan benchmark: our decoder, plain rqrr and zxing-cpp on one generated corpus
usage: cargo bench -p entrada-desktop --bench decode -- [--frames N] [--world N] [--seed S]
       [--out DIR] [--reuse] [--only PAT[,PAT…]] [--reps N] [--budget-ms MS] [--list]
       [--no-zxing] [--no-plain] [--no-probe] [--no-predict]
(the module doc of src-tauri/benches/decode.rs says what each does)";

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use entrada_desktop::scan::{Decoder, DecoderConfig, Frame};
use serde::{Deserialize, Serialize};
use support::{Class, Rng, WorldClass};

#[derive(Serialize, Deserialize, Clone)]
struct Entry {
    file: String,
    class: String,
    severity: usize,
    width: u32,
    height: u32,
    expected: Vec<String>,
    /// "base": the degradation classes; "world": what people show at a
    /// gate (inverted, tight, big frames, big versions, short payloads).
    #[serde(default)]
    corpus: String,
}

#[derive(Deserialize, Clone)]
struct Reading {
    file: String,
    payloads: Vec<String>,
    ms: f64,
    /// Our decoder's diagnostics for this frame (empty for the others).
    #[serde(default)]
    note: String,
}

struct Opts {
    frames: usize,
    seed: u64,
    out: PathBuf,
    zxing: bool,
    budget_ms: Option<u64>,
    /// Frames per world class (severities cycle 0, 1, 2).
    world: usize,
    /// `--no-probe`: the decoder without its polarity probe (A/B of its cost).
    probe: bool,
    /// `--no-predict`: the decoder without stage 1e (A/B of its cost).
    predict: bool,
    /// `--only`: decode only the frames whose file name contains one of
    /// these (empty: all).
    only: Vec<String>,
    /// `--reuse`: read the corpus in `out` instead of generating it.
    reuse: bool,
    /// `--reps`: timings per frame (the median-time run counts).
    reps: usize,
    /// `--no-plain`: skip plain rqrr (a profile of our decoder alone).
    plain: bool,
    /// `--list`: one line per frame (reads, time, our stats), to compare
    /// two builds frame by frame.
    list: bool,
}

/// `--only`'s patterns. An empty one would match every file name, so
/// `--only ""` (or `--only a,,b`, or a missing value) would quietly decode
/// the whole corpus: an error instead.
fn parse_only(val: Option<&str>) -> Result<Vec<String>, String> {
    let usage = "--only PAT[,PAT…]: a non-empty part of a frame's file name, e.g. _noise_s2_";
    let val = val
        .filter(|v| !v.starts_with("--"))
        .ok_or_else(|| format!("--only needs a value ({usage})"))?;
    let pats: Vec<String> = val.split(',').map(str::to_string).collect();
    if pats.iter().any(String::is_empty) {
        return Err(format!("--only {val:?}: an empty pattern ({usage})"));
    }
    Ok(pats)
}

fn parse_opts() -> Opts {
    let mut o = Opts {
        frames: 200,
        seed: 20251125,
        out: std::env::temp_dir().join("entrada-scan-corpus"),
        zxing: true,
        budget_ms: None,
        world: 12,
        probe: true,
        predict: true,
        only: Vec::new(),
        reuse: false,
        reps: REPS,
        plain: true,
        list: false,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let val = args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--frames" => {
                o.frames = val.parse().expect("--frames N");
                i += 1;
            }
            "--seed" => {
                o.seed = val.parse().expect("--seed S");
                i += 1;
            }
            "--out" => {
                o.out = PathBuf::from(val);
                i += 1;
            }
            "--no-zxing" => o.zxing = false,
            "--no-probe" => o.probe = false,
            "--no-predict" => o.predict = false,
            "--reuse" => o.reuse = true,
            "--no-plain" => o.plain = false,
            "--list" => o.list = true,
            "--reps" => {
                o.reps = val
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .expect("--reps N (N ≥ 1)");
                i += 1;
            }
            "--world" => {
                o.world = val.parse().expect("--world N");
                i += 1;
            }
            "--only" => {
                o.only = parse_only(args.get(i + 1).map(String::as_str)).unwrap_or_else(|e| {
                    eprintln!("{e}");
                    std::process::exit(2)
                });
                i += 1;
            }
            "--budget-ms" => {
                o.budget_ms = Some(val.parse().expect("--budget-ms MS"));
                i += 1;
            }
            "--help" | "-h" => {
                // Other flags are ignored (cargo passes its own), so without
                // this a `--help` ran the whole default benchmark.
                println!("{USAGE}");
                std::process::exit(0);
            }
            // `cargo bench` passes --bench; ignore harness flags.
            _ => {}
        }
        i += 1;
    }
    o
}

fn payload(rng: &mut Rng) -> String {
    use rand::RngExt;
    if rng.random_bool(0.5) {
        support::tkt_payload(rng)
    } else {
        support::ent1_payload(rng)
    }
}

/// Frame i: resolution alternates; every 25th frame has no code (false
/// positives), every 20th has two codes; the rest cycle through the
/// degradation classes and three severities.
fn generate(opts: &Opts) -> Vec<Entry> {
    let _ = std::fs::remove_dir_all(&opts.out);
    std::fs::create_dir_all(&opts.out).expect("create corpus folder");
    let mut rng = support::rng(opts.seed);
    let mut manifest = Vec::new();
    for i in 0..opts.frames {
        let (w, h) = if i % 2 == 0 { (640, 480) } else { (1280, 720) };
        let (class, severity, expected, rendered) = if i % 25 == 24 {
            let jpeg = i % 50 == 49;
            (
                "empty".to_string(),
                0,
                vec![],
                support::empty_scene(w, h, jpeg, &mut rng),
            )
        } else if i % 20 == 9 {
            let (a, b) = (support::tkt_payload(&mut rng), payload(&mut rng));
            let r = support::two_code_scene(w, h, &a, &b, 3.5, &mut rng);
            ("two-codes".to_string(), 0, vec![a, b], r)
        } else {
            let class = Class::ALL[(i / 2) % Class::ALL.len()];
            let severity = (i / 22) % 3;
            let p = payload(&mut rng);
            let r = support::scene(w, h, &p, class, severity, &mut rng);
            (class.name().to_string(), severity, vec![p], r)
        };
        let stem = format!("{i:04}_{class}_s{severity}_{w}x{h}");
        let file = save(&opts.out, &stem, &rendered);
        manifest.push(Entry {
            file,
            class,
            severity,
            width: w,
            height: h,
            expected,
            corpus: "base".into(),
        });
    }
    generate_world(opts, &mut rng, &mut manifest);
    let lines: Vec<String> = manifest
        .iter()
        .map(|e| serde_json::to_string(e).expect("serialise"))
        .collect();
    std::fs::write(opts.out.join("manifest.jsonl"), lines.join("\n") + "\n")
        .expect("write manifest");
    manifest
}

fn save(dir: &Path, stem: &str, rendered: &support::Rendered) -> String {
    match &rendered.jpeg {
        Some(bytes) => {
            let f = format!("{stem}.jpg");
            std::fs::write(dir.join(&f), bytes).expect("write jpeg");
            f
        }
        None => {
            let f = format!("{stem}.png");
            rendered.image.save(dir.join(&f)).expect("write png");
            f
        }
    }
}

/// The world classes, `opts.world` frames each, then 8 frames with no code.
fn generate_world(opts: &Opts, rng: &mut Rng, manifest: &mut Vec<Entry>) {
    let mut push = |class: &str, severity: usize, expected: Vec<String>, r: support::Rendered| {
        let (w, h) = (r.image.width(), r.image.height());
        let i = manifest.len();
        let stem = format!("{i:04}_{class}_s{severity}_{w}x{h}");
        let file = save(&opts.out, &stem, &r);
        manifest.push(Entry {
            file,
            class: class.to_string(),
            severity,
            width: w,
            height: h,
            expected,
            corpus: "world".into(),
        });
    };
    if opts.world == 0 {
        return;
    }
    for class in WorldClass::ALL {
        for j in 0..opts.world {
            let severity = j % 3;
            let (p, r) = support::world_scene(class, severity, rng);
            push(class.name(), severity, vec![p], r);
        }
    }
    for kind in 0..8 {
        let (name, r) = support::world_empty(kind, rng);
        push(&name, 0, vec![], r);
    }
}

/// The manifest of a corpus generated before (`--reuse`).
fn read_manifest(dir: &Path) -> Vec<Entry> {
    let text = std::fs::read_to_string(dir.join("manifest.jsonl")).unwrap_or_else(|e| {
        eprintln!("--reuse: no corpus in {} ({e})", dir.display());
        std::process::exit(2)
    });
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_str(l).expect("manifest line"))
        .collect()
}

fn load(dir: &Path, e: &Entry) -> Frame {
    let img = image::open(dir.join(&e.file)).expect("corpus image");
    Frame::from_dynamic(&img)
}

/// Timing repetitions per frame. The machine is shared (2 cores, other
/// builds running), so each frame is decoded `REPS` times and the run with
/// the median time is reported, payloads included: with a time budget, a run
/// the OS descheduled for 20 ms reads less, and that says nothing about the
/// decoder. The zxing script also reports the median of 3 runs.
const REPS: usize = 3;

fn median_of(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// zxing-cpp in a child process that decodes one named frame per request
/// (`zxing_reference.py DIR --stdin`), so each frame is decoded by both
/// decoders back to back, under the same machine load.
struct ZxingPeer {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    stdout: std::io::BufReader<std::process::ChildStdout>,
}

impl ZxingPeer {
    fn start(dir: &Path) -> Result<ZxingPeer, String> {
        use std::process::Stdio;
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/zxing_reference.py");
        let mut child = Command::new("python3")
            .arg(&script)
            .arg(dir)
            .arg("--stdin")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run python3: {e}"))?;
        let stdin = child.stdin.take().ok_or("no stdin")?;
        let stdout = std::io::BufReader::new(child.stdout.take().ok_or("no stdout")?);
        Ok(ZxingPeer {
            child,
            stdin,
            stdout,
        })
    }

    fn read(&mut self, file: &str) -> Result<Reading, String> {
        use std::io::{BufRead, Write};
        writeln!(self.stdin, "{file}")
            .and_then(|_| self.stdin.flush())
            .map_err(|e| format!("zxing-cpp script gone: {e}"))?;
        let mut line = String::new();
        self.stdout
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        if line.is_empty() {
            return Err("zxing-cpp script ended (is zxing-cpp installed?)".into());
        }
        serde_json::from_str(&line).map_err(|e| format!("bad line {line}: {e}"))
    }
}

impl Drop for ZxingPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Our decoder on every frame and, right after each, zxing-cpp on the same
/// frame (when `peer` is given): one run, interleaved.
fn run_ours(
    dir: &Path,
    manifest: &[Entry],
    config: &DecoderConfig,
    reps: usize,
    mut peer: Option<ZxingPeer>,
) -> (Vec<Reading>, Option<Result<Vec<Reading>, String>>) {
    let mut theirs: Option<Result<Vec<Reading>, String>> = peer.as_ref().map(|_| Ok(Vec::new()));
    let ours = manifest
        .iter()
        .map(|e| {
            let reading = run_ours_one(dir, e, config, reps);
            if let (Some(p), Some(Ok(v))) = (peer.as_mut(), theirs.as_mut()) {
                match p.read(&e.file) {
                    Ok(r) => v.push(r),
                    Err(err) => theirs = Some(Err(err)),
                }
            }
            reading
        })
        .collect();
    (ours, theirs)
}

fn run_ours_one(dir: &Path, e: &Entry, config: &DecoderConfig, reps: usize) -> Reading {
    let frame = load(dir, e);
    let mut runs: Vec<Reading> = (0..reps)
        .map(|_| {
            // Fresh decoder per run: no region-of-interest carry-over.
            let mut dec = Decoder::new(config.clone());
            let start = Instant::now();
            let codes = dec.decode(&frame);
            let ms = start.elapsed().as_secs_f64() * 1000.0;
            Reading {
                file: e.file.clone(),
                payloads: codes.into_iter().map(|c| c.payload).collect(),
                ms,
                note: format!("{:?}", dec.last_stats()),
            }
        })
        .collect();
    runs.sort_by(|a, b| a.ms.total_cmp(&b.ms));
    runs.swap_remove(reps / 2)
}

/// Plain rqrr as the issue describes it: prepare, detect grids, decode.
fn run_plain_rqrr(dir: &Path, manifest: &[Entry], reps: usize) -> Vec<Reading> {
    manifest
        .iter()
        .map(|e| {
            let frame = load(dir, e);
            let (w, h, luma) = (frame.width(), frame.height(), frame.luma());
            let mut payloads = Vec::new();
            let mut times = Vec::new();
            for _ in 0..reps {
                let start = Instant::now();
                payloads = std::panic::catch_unwind(|| {
                    let mut img =
                        rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| luma[y * w + x]);
                    img.detect_grids()
                        .iter()
                        .filter_map(|g| g.decode().ok().map(|(_, s)| s))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default();
                times.push(start.elapsed().as_secs_f64() * 1000.0);
            }
            let ms = median_of(times);
            Reading {
                file: e.file.clone(),
                payloads,
                ms,
                note: String::new(),
            }
        })
        .collect()
}

fn run_zxing(dir: &Path) -> Result<Vec<Reading>, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/zxing_reference.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(dir)
        .output()
        .map_err(|e| format!("cannot run python3: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).map_err(|e| format!("bad line {l}: {e}")))
        .collect()
}

#[derive(Default, Clone)]
struct Score {
    expected: usize,
    correct: usize,
    misread: usize,
    false_pos: usize,
}

fn score(manifest: &[Entry], readings: &[Reading], filter: &dyn Fn(&Entry) -> bool) -> Score {
    let by_file: BTreeMap<&str, &Reading> = readings.iter().map(|r| (r.file.as_str(), r)).collect();
    let mut s = Score::default();
    for e in manifest.iter().filter(|e| filter(e)) {
        s.expected += e.expected.len();
        let Some(r) = by_file.get(e.file.as_str()) else {
            continue;
        };
        for p in &r.payloads {
            if e.expected.contains(p) {
                s.correct += 1;
            } else if e.expected.is_empty() {
                s.false_pos += 1;
            } else {
                s.misread += 1;
            }
        }
    }
    s
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[idx]
}

/// Median and p95 decode time over the frames `filter` selects.
fn times(manifest: &[Entry], readings: &[Reading], filter: &dyn Fn(&Entry) -> bool) -> (f64, f64) {
    let files: std::collections::BTreeSet<&str> = manifest
        .iter()
        .filter(|e| filter(e))
        .map(|e| e.file.as_str())
        .collect();
    let mut ms: Vec<f64> = readings
        .iter()
        .filter(|r| files.contains(r.file.as_str()))
        .map(|r| r.ms)
        .collect();
    ms.sort_by(|a, b| a.total_cmp(b));
    (percentile(&ms, 0.5), percentile(&ms, 0.95))
}

fn pct(a: usize, b: usize) -> f64 {
    if b == 0 {
        f64::NAN
    } else {
        100.0 * a as f64 / b as f64
    }
}

/// A code held in front of the camera: the same pose over several frames,
/// fresh sensor noise each time, decoded by ONE decoder, as at the gate.
/// Compares the first frame (full search) with the following ones (region
/// of interest first). Not part of the rate table: it is a latency number.
fn tracking(opts: &Opts) {
    let mut rng = support::rng(opts.seed ^ 0x5eed);
    let (mut first, mut later) = (Vec::new(), Vec::new());
    let (mut reads, mut frames, mut roi_hits) = (0, 0, 0);
    for i in 0..20 {
        let class = [
            Class::Clean,
            Class::SmallModules,
            Class::Rotation,
            Class::Blur,
        ][i % 4];
        let p = payload(&mut rng);
        let (module, rot, tilt, d) = class.params(1, &mut rng);
        let pose = support::place(1280, 720, &p, module, rot, tilt, &mut rng);
        let mut dec = Decoder::default();
        for f in 0..6 {
            let r = support::render(1280, 720, &[(&p, pose)], &d, &mut rng);
            let frame = support::to_frame(&r.image);
            let start = Instant::now();
            let codes = dec.decode(&frame);
            let ms = start.elapsed().as_secs_f64() * 1000.0;
            frames += 1;
            reads += codes.iter().filter(|c| c.payload == p).count();
            if f == 0 {
                first.push(ms);
            } else {
                later.push(ms);
                roi_hits += dec.last_stats().roi_hit as usize;
            }
        }
    }
    println!(
        "\ntracking (1280x720, 20 codes x 6 frames, one decoder each): read {reads}/{frames}; \
         first frame median {:.2} ms, following frames median {:.2} ms (region of interest \
         answered {roi_hits}/{} of them)",
        median_of(first),
        median_of(later.clone()),
        later.len()
    );
}

fn main() {
    let opts = parse_opts();
    if cfg!(debug_assertions) {
        eprintln!("warning: debug build; timings are not representative (use cargo bench)");
    }
    let t = Instant::now();
    let mut manifest = if opts.reuse {
        read_manifest(&opts.out)
    } else {
        generate(&opts)
    };
    if !opts.only.is_empty() {
        manifest.retain(|e| opts.only.iter().any(|p| e.file.contains(p.as_str())));
        if manifest.is_empty() {
            eprintln!("--only {}: no frame's name matches", opts.only.join(","));
            std::process::exit(2);
        }
    }
    eprintln!(
        "corpus: {} frames in {} ({:.1}s)",
        manifest.len(),
        opts.out.display(),
        t.elapsed().as_secs_f64()
    );

    let mut config = DecoderConfig::default();
    if let Some(ms) = opts.budget_ms {
        config.time_budget = std::time::Duration::from_millis(ms);
    }
    config.polarity_probe = opts.probe;
    config.predict_third = opts.predict;
    let peer = if opts.zxing {
        ZxingPeer::start(&opts.out)
            .map_err(|e| eprintln!("zxing-cpp reference not run: {e}"))
            .ok()
    } else {
        None
    };
    let (ours, zxing) = run_ours(&opts.out, &manifest, &config, opts.reps, peer);
    let plain = if opts.plain {
        run_plain_rqrr(&opts.out, &manifest, opts.reps)
    } else {
        Vec::new()
    };
    let zxing = if opts.zxing {
        match zxing.unwrap_or_else(|| run_zxing(&opts.out)) {
            Ok(r) => Some(r),
            Err(e) => {
                eprintln!("zxing-cpp reference not run: {e}");
                eprintln!("install it with: pip install zxing-cpp pillow");
                None
            }
        }
    } else {
        None
    };

    let mut decoders: Vec<(&str, &[Reading])> = vec![("entrada", &ours)];
    if opts.plain {
        decoders.push(("plain rqrr", &plain));
    }
    if let Some(z) = &zxing {
        decoders.push(("zxing-cpp", z));
    }

    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    // A reused corpus keeps the seed it was generated with, which its
    // manifest does not record: `--seed` is then not what was decoded.
    let corpus = if opts.reuse {
        format!("reused corpus {}", opts.out.display())
    } else {
        format!("seed {}", opts.seed)
    };
    let on = |b: bool| if b { "on" } else { "off" };
    println!(
        "\n## Scan benchmark ({} frames, {corpus}, median of {} timings per frame, polarity probe {}, stage 1e {}, load average {})\n",
        manifest.len(),
        opts.reps,
        on(opts.probe),
        on(opts.predict),
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    );
    let base = |e: &Entry| e.corpus != "world";
    println!("Degradation classes (640x480 and 1280x720):\n");
    println!("| decoder | read | rate | misreads | false pos | 640x480 median / p95 ms | 1280x720 median / p95 ms |");
    println!("|---|---|---|---|---|---|---|");
    for (name, r) in &decoders {
        let s = score(&manifest, r, &base);
        let (m6, p6) = times(&manifest, r, &|e| base(e) && e.width == 640);
        let (m12, p12) = times(&manifest, r, &|e| base(e) && e.width == 1280);
        println!(
            "| {name} | {}/{} | {:.1}% | {} | {} | {m6:.2} / {p6:.2} | {m12:.2} / {p12:.2} |",
            s.correct,
            s.expected,
            pct(s.correct, s.expected),
            s.misread,
            s.false_pos
        );
    }
    if let Some(z) = &zxing {
        let so = score(&manifest, &ours, &base);
        let sz = score(&manifest, z, &base);
        let (om6, _) = times(&manifest, &ours, &|e| base(e) && e.width == 640);
        let (zm6, _) = times(&manifest, z, &|e| base(e) && e.width == 640);
        let (om, _) = times(&manifest, &ours, &|e| base(e) && e.width == 1280);
        let (zm, _) = times(&manifest, z, &|e| base(e) && e.width == 1280);
        println!(
            "\nratios: entrada rate / zxing rate = {:.3}; median ms entrada / zxing = {:.2} (640x480), {:.2} (1280x720)",
            so.correct as f64 / sz.correct.max(1) as f64,
            om6 / zm6,
            om / zm
        );
    }

    // Per class, both corpora, then the totals: reads, misreads and false
    // positives, and decode times on the same frames.
    let mut classes: Vec<(String, String)> = Vec::new();
    for e in &manifest {
        let key = (e.corpus.clone(), e.class.clone());
        if !classes.contains(&key) {
            classes.push(key);
        }
    }
    classes.sort();
    let zx: &[Reading] = zxing.as_deref().unwrap_or(&[]);
    println!("\n| class | frames | entrada | zxing-cpp | plain rqrr | entrada / zxing misreads | entrada / zxing false pos | entrada median / p95 ms | zxing median / p95 ms | median ratio |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let row = |label: &str, f: &dyn Fn(&Entry) -> bool| {
        let n = manifest.iter().filter(|e| f(e)).count();
        let cell = |r: &[Reading]| {
            if r.is_empty() {
                return "-".to_string();
            }
            let s = score(&manifest, r, f);
            format!("{}/{}", s.correct, s.expected)
        };
        let (so, sz) = (score(&manifest, &ours, f), score(&manifest, zx, f));
        let (om, op) = times(&manifest, &ours, f);
        let (zm, zp) = times(&manifest, zx, f);
        println!(
            "| {label} | {n} | {} | {} | {} | {} / {} | {} / {} | {om:.2} / {op:.2} | {zm:.2} / {zp:.2} | {:.2} |",
            cell(&ours),
            cell(zx),
            cell(&plain),
            so.misread,
            sz.misread,
            so.false_pos,
            sz.false_pos,
            om / zm
        );
    };
    for (corpus, class) in &classes {
        row(&format!("{corpus}: {class}"), &|e: &Entry| {
            &e.corpus == corpus && &e.class == class
        });
    }
    row("**base corpus**", &base);
    row("**world corpus**", &|e: &Entry| !base(e));
    row("**overall**", &|_: &Entry| true);

    println!("\n| severity | entrada | plain rqrr | zxing-cpp |");
    println!("|---|---|---|---|");
    for sev in 0..3 {
        let f = |e: &Entry| e.severity == sev && !e.expected.is_empty();
        let cell = |r: &[Reading]| {
            if r.is_empty() {
                return "-".to_string();
            }
            let s = score(&manifest, r, &f);
            format!("{}/{}", s.correct, s.expected)
        };
        println!(
            "| {sev} | {} | {} | {} |",
            cell(&ours),
            cell(&plain),
            zxing.as_deref().map(cell).unwrap_or_else(|| "-".into())
        );
    }

    if opts.list {
        println!();
        for (e, r) in manifest.iter().zip(&ours) {
            let good = r.payloads.iter().filter(|p| e.expected.contains(p)).count();
            let bad = r.payloads.len() - good;
            println!(
                "frame {} read {good}/{} wrong {bad} {:.2} ms {}",
                e.file,
                e.expected.len(),
                r.ms,
                r.note
            );
        }
    }
    // Not with `--reuse` (a callgrind run): it renders its own frames.
    if opts.only.is_empty() && !opts.reuse {
        tracking(&opts);
    }

    // Frames zxing reads and we don't: the list to work on.
    if let Some(z) = &zxing {
        let ours_by: BTreeMap<&str, &Reading> = ours.iter().map(|r| (r.file.as_str(), r)).collect();
        let mut missed = Vec::new();
        for zr in z {
            if let Some(o) = ours_by.get(zr.file.as_str()) {
                let lost = zr
                    .payloads
                    .iter()
                    .filter(|p| !o.payloads.contains(p))
                    .count();
                if lost > 0 {
                    missed.push(format!("{} ({lost}) {:.1} ms {}", zr.file, o.ms, o.note));
                }
            }
        }
        println!("\nread by zxing-cpp but not by entrada: {}", missed.len());
        for m in missed {
            println!("  {m}");
        }
    }
}
