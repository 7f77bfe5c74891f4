//! The scan loop: frames from a camera or a folder → decoder → repeat
//! suppression → the gate's verdict, with a small live preview. It runs on
//! its own thread, survives a camera that disappears (it reopens it), and
//! knows nothing of Tauri: it reports through a callback. It idles lightly
//! ([`crate::pacing`]): an empty, still view is decoded about once a second,
//! and preview frames go out only while the window shows them.

use std::io::Cursor;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;

use crate::gate::views::{
    CameraStatus, CommandError, PairingScan, PreviewFrame, ScanOutcome, ScanSource,
};
use crate::gate::GateService;
use crate::pacing::{PaceConfig, Pacer, Thumb};
use crate::scan::{Decoder, DecoderConfig, Frame, RepeatSuppressor};
use crate::source::{CameraSource, Facing, FolderSource, FrameSource, SourceError};
use entrada::domain::pairing::looks_like_pairing;

/// `--camera`: `auto`, `front`/`rear`, a camera index or name, or `folder:PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CameraChoice {
    Auto,
    /// The first camera whose name says it looks this way.
    Facing(Facing),
    Index(u32),
    Name(String),
    Folder(PathBuf),
}

impl FromStr for CameraChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        Ok(match s {
            "" => {
                return Err("empty camera source: use auto, an index, a name or folder:PATH".into())
            }
            "auto" => Self::Auto,
            "front" => Self::Facing(Facing::Front),
            "rear" => Self::Facing(Facing::Rear),
            _ if s.starts_with("folder:") => Self::Folder(PathBuf::from(&s["folder:".len()..])),
            _ => match s.parse::<u32>() {
                Ok(i) => Self::Index(i),
                Err(_) => Self::Name(s.to_string()),
            },
        })
    }
}

impl std::fmt::Display for CameraChoice {
    /// The `--camera` spelling, so a saved choice parses back to itself.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::Facing(facing) => f.write_str(facing.as_str()),
            Self::Index(i) => write!(f, "{i}"),
            Self::Name(name) => f.write_str(name),
            Self::Folder(dir) => write!(f, "folder:{}", dir.display()),
        }
    }
}

/// Frames per second a folder is replayed at (a camera runs at its own rate).
pub const FOLDER_FPS: f64 = 10.0;

pub fn open_source(choice: &CameraChoice) -> Result<Box<dyn FrameSource>, SourceError> {
    match choice {
        CameraChoice::Folder(dir) => {
            Ok(Box::new(FolderSource::new(dir.clone(), FOLDER_FPS, true)?))
        }
        CameraChoice::Auto => Ok(Box::new(CameraSource::open_first()?)),
        CameraChoice::Facing(facing) => Ok(Box::new(CameraSource::open_facing(*facing)?)),
        CameraChoice::Index(i) => Ok(Box::new(CameraSource::open_index(*i)?)),
        CameraChoice::Name(name) => Ok(Box::new(CameraSource::open_named(name)?)),
    }
}

/// What the loop tells the window.
#[derive(Debug, Clone)]
pub enum LoopEvent {
    Camera(CameraStatus),
    Preview(PreviewFrame),
    Scan(Box<ScanOutcome>),
    ScanError(CommandError),
    /// A pairing code read in pairing mode.
    Pairing(Box<PairingScan>),
}

/// Width and JPEG quality of preview frames: a thumbnail beside the verdict,
/// a few kB per frame to encode, send and decode.
pub const PREVIEW_WIDTH: usize = 256;
const PREVIEW_QUALITY: u8 = 60;

/// A grayscale frame as a small JPEG data URL for the preview.
pub fn preview(frame: &Frame, width: usize) -> Option<PreviewFrame> {
    let factor = (width as f32 / frame.width().max(1) as f32).min(1.0);
    let small = frame.scaled(factor);
    let img = image::GrayImage::from_raw(
        small.width() as u32,
        small.height() as u32,
        small.luma().to_vec(),
    )?;
    let mut jpeg = Cursor::new(Vec::new());
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, PREVIEW_QUALITY)
        .encode_image(&img)
        .ok()?;
    let b64 = base64::engine::general_purpose::STANDARD.encode(jpeg.into_inner());
    Some(PreviewFrame {
        data_url: format!("data:image/jpeg;base64,{b64}"),
    })
}

/// Runs until `stop` is set. Reads the camera the gate names
/// ([`GateService::camera_choice`]); switches at once when the settings
/// screen changes it, and reopens a failed source two seconds later.
pub fn run(gate: Arc<GateService>, stop: Arc<AtomicBool>, mut emit: impl FnMut(LoopEvent)) {
    let mut decoder = Decoder::new(DecoderConfig::default());
    // The same code in front of the camera gives one verdict, not thirty;
    // after 3 s out of view it may be scanned again.
    let mut repeats = RepeatSuppressor::new(3000);
    let started = Instant::now();
    // The status last told: a camera that stays missing is reported once,
    // not at every retry (each report is a repaint of the window).
    let mut reported: Option<CameraStatus> = None;
    while !stop.load(Ordering::Relaxed) {
        let (choice, generation) = gate.camera_choice();
        let changed = || gate.camera_generation() != generation;
        let mut source = match open_source(&choice) {
            Ok(s) => s,
            Err(e) => {
                report(&mut emit, &mut reported, CameraStatus::off(e.to_string()));
                sleep_unless(&stop, &changed, Duration::from_secs(2));
                continue;
            }
        };
        // The operator's torch/focus/exposure choice, applied now and again
        // whenever the settings screen changes it.
        let mut adjusted = None;
        let mut last_preview = Instant::now() - Duration::from_secs(1);
        let mut bad_frames = 0u32;
        // A new source: the first frame counts as a change.
        let mut pacer = Pacer::new(PaceConfig::default());
        let mut looked_at: Option<Thumb> = None;
        let mut last_frame = Instant::now();
        while !stop.load(Ordering::Relaxed) && !changed() {
            let (adjust, adjust_generation) = gate.camera_adjust();
            if adjusted != Some(adjust_generation) {
                adjusted = Some(adjust_generation);
                let mut status = CameraStatus::on(source.description(), source.controls());
                if let Err(e) = source.adjust(&adjust) {
                    status.description =
                        format!("{}; camera settings not applied: {e}", status.description);
                }
                report(&mut emit, &mut reported, status);
            }
            let frame = match source.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(SourceError::Device(e)) => {
                    let lost = format!("camera lost: {e}; reconnecting");
                    report(&mut emit, &mut reported, CameraStatus::off(lost));
                    break;
                }
                // One bad frame is skipped; a run of them (files gone from
                // a replayed folder, a wedged driver) reopens the source.
                Err(e) => {
                    bad_frames += 1;
                    if bad_frames >= 10 {
                        let bad = format!("{e}; reopening");
                        report(&mut emit, &mut reported, CameraStatus::off(bad));
                        break;
                    }
                    continue;
                }
            };
            bad_frames = 0;
            let now_ms = started.elapsed().as_millis() as u64;
            let power_save = gate.power_save();
            // The cheap look: did the view change since the frame last decoded?
            let thumb = Thumb::of(&frame);
            let moved = looked_at.as_ref().is_none_or(|t| thumb.changed_from(t));
            let decode = pacer.decide(now_ms, moved, power_save);
            if gate.preview_wanted()
                && last_preview.elapsed() >= Duration::from_millis(pacer.preview_every_ms(now_ms))
            {
                if let Some(p) = preview(&frame, PREVIEW_WIDTH) {
                    emit(LoopEvent::Preview(p));
                }
                last_preview = Instant::now();
            }
            if decode {
                looked_at = Some(thumb);
                let decoded = decoder.decode(&frame);
                // Unsure counts as a code in view: a grid that did not read,
                // or a decode cut short by its time budget (a loaded machine),
                // is looked at again on the next frame, as before pacing.
                let stats = decoder.last_stats();
                pacer.decoded(
                    !decoded.is_empty()
                        || stats.grids > 0
                        || stats.upscaled > 0
                        || stats.out_of_time,
                );
                let payloads: Vec<&str> = decoded.iter().map(|d| d.payload.as_str()).collect();
                // A frame cut short by its budget is no proof that a code left.
                let fresh = if stats.out_of_time || stats.incomplete {
                    repeats.observe_partial(now_ms, payloads.iter().copied())
                } else {
                    repeats.observe(now_ms, payloads.iter().copied())
                };
                // Pairing mode takes a usable pairing code in view at once,
                // even one the repeat suppressor holds back (shown, and
                // refused, just before a supervisor turned pairing mode on).
                // It is only shown: the settings screen pairs when the
                // supervisor confirms the server it names (so a code already
                // in front of this public camera cannot re-pair the gate).
                let mut taken = None;
                if gate.pairing_scan_armed() {
                    for p in payloads.iter().filter(|p| looks_like_pairing(p)) {
                        let scan = gate.take_pairing_code(p).filter(|s| s.error.is_none());
                        if let Some(scan) = scan {
                            taken = Some(p.to_string());
                            emit(LoopEvent::Pairing(Box::new(scan)));
                            break;
                        }
                    }
                }
                for payload in fresh {
                    if taken.as_ref() == Some(&payload) {
                        continue;
                    }
                    // A scan wakes a dimmed gate at once (the window follows).
                    gate.set_power_save(false);
                    // Pairing mode (a supervisor's, from the settings
                    // screen): a pairing code goes there; no ticket is judged.
                    if gate.pairing_scan_armed() {
                        if let Some(scan) = gate.take_pairing_code(&payload) {
                            emit(LoopEvent::Pairing(Box::new(scan)));
                        }
                        continue;
                    }
                    match gate.scan(&payload, ScanSource::Camera) {
                        Ok(outcome) => emit(LoopEvent::Scan(Box::new(outcome))),
                        Err(e) => emit(LoopEvent::ScanError(e)),
                    }
                }
            }
            // Power save: fewer frames read at all.
            let gap = Duration::from_millis(pacer.frame_gap_ms(gate.power_save()));
            if let Some(rest) = gap.checked_sub(last_frame.elapsed()) {
                let woken = || changed() || !gate.power_save();
                sleep_unless(&stop, &woken, rest);
            }
            last_frame = Instant::now();
        }
        // The camera is released here, before the next one opens.
        drop(source);
        sleep_unless(&stop, &changed, Duration::from_secs(2));
    }
}

/// Tells the window the camera's status if it is not the one it was told last.
fn report(
    emit: &mut impl FnMut(LoopEvent),
    reported: &mut Option<CameraStatus>,
    status: CameraStatus,
) {
    if reported.as_ref() != Some(&status) {
        *reported = Some(status.clone());
        emit(LoopEvent::Camera(status));
    }
}

/// Waits `total`, or less if the app stops or the camera choice changes.
fn sleep_unless(stop: &AtomicBool, changed: &dyn Fn() -> bool, total: Duration) {
    let until = Instant::now() + total;
    while Instant::now() < until && !stop.load(Ordering::Relaxed) && !changed() {
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn camera_choices_parse() {
        for (raw, expected) in [
            ("auto", CameraChoice::Auto),
            ("front", CameraChoice::Facing(Facing::Front)),
            ("rear", CameraChoice::Facing(Facing::Rear)),
            ("0", CameraChoice::Index(0)),
            (
                "folder:/tmp/frames",
                CameraChoice::Folder("/tmp/frames".into()),
            ),
            ("Logitech C920", CameraChoice::Name("Logitech C920".into())),
        ] {
            assert_eq!(raw.parse::<CameraChoice>().unwrap(), expected, "{raw}");
            // What the settings screen saves parses back to the same choice.
            assert_eq!(expected.to_string(), raw);
        }
        assert!("".parse::<CameraChoice>().is_err());
    }
}

#[cfg(test)]
mod loop_tests {
    use super::*;
    use crate::gate::{GateService, GateSettings, StartOptions};
    use entrada::domain::{Orq, TicketCode};
    use entrada::store::Store;

    struct Rig {
        dir: tempfile::TempDir,
        store: Arc<Store>,
        gate: Arc<GateService>,
    }

    /// A standalone demo gate reading `camera`, Ana (operator) signed in.
    fn rig(camera: impl FnOnce(&std::path::Path) -> CameraChoice) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path().join("gate.db")).unwrap());
        entrada::demo::populate(&store, chrono::Utc::now(), |_| {}).unwrap();
        let flags = StartOptions {
            camera: Some(camera(dir.path())),
            ..StartOptions::default()
        };
        let settings = GateSettings::resolve(&flags, &Default::default());
        let gate = Arc::new(GateService::new(store.clone(), settings).unwrap());
        gate.start_session(1).unwrap();
        Rig { dir, store, gate }
    }

    /// A folder holding one rendered QR image of `code`'s signed payload.
    fn qr_folder(rig: &Rig, name: &str, code: &str) -> PathBuf {
        let signed = rig
            .store
            .signed_code(
                Orq(1),
                &TicketCode::parse(code).unwrap(),
                chrono::Utc::now(),
            )
            .unwrap();
        let frames = rig.dir.path().join(name);
        std::fs::create_dir(&frames).unwrap();
        std::fs::write(
            frames.join("ticket.png"),
            entrada::qr::png(&signed).unwrap(),
        )
        .unwrap();
        frames
    }

    /// Runs the loop until `on_event` says so (or 60 s), returns its events.
    /// `on_event` sees each event, and `None` every 100 ms without one, so a
    /// condition on elapsed time ("3 s after the first scan") ends the run
    /// when it holds, not at the next event: a loop that suppresses repeats
    /// may send none, and the run then lasted the whole 60 s.
    fn run_until(
        gate: &Arc<GateService>,
        mut on_event: impl FnMut(Option<&LoopEvent>) -> bool,
    ) -> Vec<LoopEvent> {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let (g, s) = (gate.clone(), stop.clone());
        let worker = std::thread::spawn(move || {
            run(g, s, |e| {
                let _ = tx.send(e);
            })
        });
        let mut events = Vec::new();
        // Generous: a debug build decoding on a loaded 2-core machine can take
        // many seconds for its first frame; the loop ends as soon as `on_event` says.
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let done = match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(e) => {
                    let done = on_event(Some(&e));
                    events.push(e);
                    done
                }
                Err(_) => on_event(None),
            };
            if done {
                break;
            }
        }
        stop.store(true, Ordering::Relaxed);
        worker.join().unwrap();
        events
    }

    /// Runs the loop for `time`, returns its events.
    fn run_for(gate: &Arc<GateService>, time: Duration) -> Vec<LoopEvent> {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let (g, s) = (gate.clone(), stop.clone());
        let worker = std::thread::spawn(move || {
            run(g, s, |e| {
                let _ = tx.send(e);
            })
        });
        std::thread::sleep(time);
        stop.store(true, Ordering::Relaxed);
        worker.join().unwrap();
        rx.try_iter().collect()
    }

    /// A pairing QR code in front of the camera (issue 16): refused as a
    /// ticket while scanning (nothing recorded); in a supervisor's pairing
    /// mode it goes to the settings screen, once.
    #[test]
    fn a_pairing_code_is_refused_unless_in_pairing_mode() {
        const CODE: &str = "entrada-pair:v1?server=https://10.0.0.5:8443&token=dev_0123abcd";
        let rig = rig(|d| CameraChoice::Folder(d.join("pairing")));
        let frames = rig.dir.path().join("pairing");
        std::fs::create_dir(&frames).unwrap();
        std::fs::write(frames.join("qr.png"), entrada::qr::png(CODE).unwrap()).unwrap();
        let outbox = |store: &Store| store.sync_status().unwrap().pending;
        let before = outbox(&rig.store);
        let events = run_until(&rig.gate, |e| matches!(e, Some(LoopEvent::ScanError(_))));
        let refused: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                LoopEvent::ScanError(e) => Some(e.code.clone()),
                LoopEvent::Scan(s) => Some(format!("a verdict: {s:?}")),
                _ => None,
            })
            .collect();
        assert_eq!(refused, ["PAIRING_CODE_NOT_A_TICKET"]);
        assert_eq!(outbox(&rig.store), before, "nothing recorded");

        rig.gate.sign_out();
        rig.gate.sign_in(2, entrada::demo::SUPERVISOR_PIN).unwrap();
        rig.gate.arm_pairing_scan().unwrap();
        let events = run_until(&rig.gate, |e| matches!(e, Some(LoopEvent::Pairing(_))));
        let read: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                LoopEvent::Pairing(p) => Some(p.server_url.clone()),
                LoopEvent::ScanError(e) => Some(Some(e.code.clone())),
                _ => None,
            })
            .collect();
        assert_eq!(read, [Some("https://10.0.0.5:8443".to_string())]);
        assert!(!rig.gate.pairing_scan_armed(), "taken once");
    }

    /// A camera that stays missing is reported once, not at each retry
    /// (every 2 s): each report repaints the window of an idle gate.
    #[test]
    fn a_missing_camera_is_reported_once() {
        let rig = rig(|d| CameraChoice::Folder(d.join("missing")));
        let events = run_for(&rig.gate, Duration::from_millis(4500));
        let statuses: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                LoopEvent::Camera(c) => Some((c.ok, c.description.clone())),
                _ => None,
            })
            .collect();
        assert_eq!(statuses.len(), 1, "{statuses:?}");
        assert!(!statuses[0].0 && statuses[0].1.contains("missing"));
    }

    /// A real rendered QR code in a folder, replayed as camera frames, ends
    /// as one durable verification — and one verdict, not one per frame.
    #[test]
    fn folder_frames_become_one_recorded_verdict() {
        let dir_name = "frames";
        let rig = rig(|d| CameraChoice::Folder(d.join(dir_name)));
        qr_folder(&rig, dir_name, "DEMO-ADMIT-2");
        let mut first_scan: Option<Instant> = None;
        // Let the (looping) folder replay for 3 s after the first scan.
        let events = run_until(&rig.gate, |e| {
            if matches!(e, Some(LoopEvent::Scan(_))) && first_scan.is_none() {
                first_scan = Some(Instant::now());
            }
            first_scan.is_some_and(|t| t.elapsed() > Duration::from_secs(3))
        });
        let scans: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                LoopEvent::Scan(s) => Some(s),
                _ => None,
            })
            .collect();
        assert!(events
            .iter()
            .any(|e| matches!(e, LoopEvent::Camera(c) if c.ok)));
        assert!(!events.iter().any(|e| matches!(e, LoopEvent::ScanError(_))));
        assert_eq!(scans.len(), 1, "repeats suppressed: {scans:?}");
        assert_eq!(scans[0].verdict.verdict, "ADMIT");
        let code = TicketCode::parse("DEMO-ADMIT-2").unwrap();
        assert_eq!(
            rig.store
                .get_ticket(Orq(1), &code)
                .unwrap()
                .verified_by
                .map(|o| o.0),
            Some(1)
        );
    }

    /// Preview frames go out only while the window asks for them (the
    /// scanner screen, visible, signed in); scanning goes on either way.
    #[test]
    fn preview_frames_only_while_wanted() {
        let rig = rig(|d| CameraChoice::Folder(d.join("frames")));
        qr_folder(&rig, "frames", "DEMO-ADMIT-2");
        let mut scanned: Option<Instant> = None;
        let hidden = run_until(&rig.gate, |e| {
            if matches!(e, Some(LoopEvent::Scan(_))) {
                scanned = Some(Instant::now());
            }
            scanned.is_some_and(|t| t.elapsed() > Duration::from_millis(1500))
        });
        assert!(hidden.iter().any(|e| matches!(e, LoopEvent::Scan(_))));
        assert!(
            !hidden.iter().any(|e| matches!(e, LoopEvent::Preview(_))),
            "no preview while nobody sees it"
        );
        rig.gate.set_preview_wanted(true);
        let shown = run_until(&rig.gate, |e| matches!(e, Some(LoopEvent::Preview(_))));
        match shown.last() {
            Some(LoopEvent::Preview(p)) => {
                assert!(p.data_url.starts_with("data:image/jpeg;base64,"))
            }
            other => panic!("no preview once wanted: {other:?}"),
        }
    }

    /// The settings screen switches the running loop to another source: from
    /// a folder that does not exist (the loop retries) to one with a ticket.
    #[test]
    fn a_camera_change_reaches_the_running_loop() {
        let rig = rig(|d| CameraChoice::Folder(d.join("missing")));
        let frames = qr_folder(&rig, "other", "DEMO-ADMIT-3");
        // Only a supervisor may change it.
        let source = format!("folder:{}", frames.display());
        assert_eq!(rig.gate.set_camera(&source).unwrap_err().code, "FORBIDDEN");
        rig.gate.sign_in(2, entrada::demo::SUPERVISOR_PIN).unwrap();
        let mut switched = false;
        let gate = rig.gate.clone();
        let events = run_until(&rig.gate, |e| {
            if let Some(LoopEvent::Camera(c)) = e {
                if !c.ok && !switched {
                    // The first source failed: change it while the loop waits.
                    assert_eq!(gate.set_camera(&source).unwrap(), source);
                    switched = true;
                }
            }
            matches!(e, Some(LoopEvent::Scan(_)))
        });
        let statuses: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                LoopEvent::Camera(c) => Some((c.ok, c.description.clone())),
                _ => None,
            })
            .collect();
        assert!(
            !statuses[0].0,
            "the missing folder is reported: {statuses:?}"
        );
        assert!(
            statuses.iter().any(|(ok, d)| *ok && d.contains("other")),
            "the new folder opened: {statuses:?}"
        );
        match events.last() {
            Some(LoopEvent::Scan(s)) => assert_eq!(
                (s.verdict.verdict.as_str(), s.verdict.ticket_code.as_deref()),
                ("ADMIT", Some("DEMO-ADMIT-3"))
            ),
            other => panic!("no scan from the new camera: {other:?}"),
        }
        // Saved for the next start.
        let saved = rig.store.device_settings().unwrap();
        assert_eq!(saved.get("camera"), Some(&source));
        let next = GateSettings::resolve(&StartOptions::default(), &saved);
        assert_eq!(next.camera, source.parse().unwrap());
    }
}
