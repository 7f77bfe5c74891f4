//! The scan loop: frames from a camera or a folder → decoder → repeat
//! suppression → the gate's verdict, with a small live preview. It runs on
//! its own thread, survives a camera that disappears (it reopens it), and
//! knows nothing of Tauri: it reports through a callback.

use std::io::Cursor;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;

use crate::gate::views::{CameraStatus, CommandError, PreviewFrame, ScanOutcome, ScanSource};
use crate::gate::GateService;
use crate::scan::{Decoder, DecoderConfig, Frame, RepeatSuppressor};
use crate::source::{CameraSource, FolderSource, FrameSource, SourceError};

/// `--camera`: `auto`, a camera index or name, or `folder:PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CameraChoice {
    Auto,
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
            _ if s.starts_with("folder:") => Self::Folder(PathBuf::from(&s["folder:".len()..])),
            _ => match s.parse::<u32>() {
                Ok(i) => Self::Index(i),
                Err(_) => Self::Name(s.to_string()),
            },
        })
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
}

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
    image::DynamicImage::ImageLuma8(img)
        .write_to(&mut jpeg, image::ImageFormat::Jpeg)
        .ok()?;
    let b64 = base64::engine::general_purpose::STANDARD.encode(jpeg.into_inner());
    Some(PreviewFrame {
        data_url: format!("data:image/jpeg;base64,{b64}"),
    })
}

/// Runs until `stop` is set. Reopens the source two seconds after it fails.
pub fn run(
    gate: Arc<GateService>,
    choice: CameraChoice,
    stop: Arc<AtomicBool>,
    mut emit: impl FnMut(LoopEvent),
) {
    let mut decoder = Decoder::new(DecoderConfig::default());
    // The same code in front of the camera gives one verdict, not thirty;
    // after 3 s out of view it may be scanned again.
    let mut repeats = RepeatSuppressor::new(3000);
    let started = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let mut source = match open_source(&choice) {
            Ok(s) => {
                emit(LoopEvent::Camera(CameraStatus {
                    ok: true,
                    description: s.description(),
                }));
                s
            }
            Err(e) => {
                emit(LoopEvent::Camera(CameraStatus {
                    ok: false,
                    description: e.to_string(),
                }));
                sleep_unless_stopped(&stop, Duration::from_secs(2));
                continue;
            }
        };
        let mut last_preview = Instant::now() - Duration::from_secs(1);
        let mut bad_frames = 0u32;
        while !stop.load(Ordering::Relaxed) {
            let frame = match source.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(SourceError::Device(e)) => {
                    emit(LoopEvent::Camera(CameraStatus {
                        ok: false,
                        description: format!("camera lost: {e}; reconnecting"),
                    }));
                    break;
                }
                // One bad frame is skipped; a run of them (files gone from
                // a replayed folder, a wedged driver) reopens the source.
                Err(e) => {
                    bad_frames += 1;
                    if bad_frames >= 10 {
                        emit(LoopEvent::Camera(CameraStatus {
                            ok: false,
                            description: format!("{e}; reopening"),
                        }));
                        break;
                    }
                    continue;
                }
            };
            bad_frames = 0;
            if last_preview.elapsed() >= Duration::from_millis(200) {
                if let Some(p) = preview(&frame, 320) {
                    emit(LoopEvent::Preview(p));
                }
                last_preview = Instant::now();
            }
            let decoded = decoder.decode(&frame);
            let now_ms = started.elapsed().as_millis() as u64;
            for payload in repeats.observe(now_ms, decoded.iter().map(|d| d.payload.as_str())) {
                match gate.scan(&payload, ScanSource::Camera) {
                    Ok(outcome) => emit(LoopEvent::Scan(Box::new(outcome))),
                    Err(e) => emit(LoopEvent::ScanError(e)),
                }
            }
        }
        sleep_unless_stopped(&stop, Duration::from_secs(2));
    }
}

fn sleep_unless_stopped(stop: &AtomicBool, total: Duration) {
    let until = Instant::now() + total;
    while Instant::now() < until && !stop.load(Ordering::Relaxed) {
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
            ("0", CameraChoice::Index(0)),
            (
                "folder:/tmp/frames",
                CameraChoice::Folder("/tmp/frames".into()),
            ),
            ("Logitech C920", CameraChoice::Name("Logitech C920".into())),
        ] {
            assert_eq!(raw.parse::<CameraChoice>().unwrap(), expected, "{raw}");
        }
        assert!("".parse::<CameraChoice>().is_err());
    }
}

#[cfg(test)]
mod loop_tests {
    use super::*;
    use crate::gate::{GateService, GateSettings};
    use entrada::domain::{Orq, TicketCode};
    use entrada::store::Store;

    /// A real rendered QR code in a folder, replayed as camera frames, ends
    /// as one durable verification — and one verdict, not one per frame.
    #[test]
    fn folder_frames_become_one_recorded_verdict() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path().join("gate.db")).unwrap());
        entrada::demo::populate(&store, chrono::Utc::now(), |_| {}).unwrap();
        let code = TicketCode::parse("DEMO-ADMIT-2").unwrap();
        let signed = store
            .signed_code(Orq(1), &code, chrono::Utc::now())
            .unwrap();
        let frames = dir.path().join("frames");
        std::fs::create_dir(&frames).unwrap();
        std::fs::write(
            frames.join("ticket.png"),
            entrada::qr::png(&signed).unwrap(),
        )
        .unwrap();
        let settings = GateSettings {
            auto_lock: Duration::from_secs(60),
            kiosk: false,
            operator: Some(1),
        };
        let gate = Arc::new(GateService::new(store.clone(), settings).unwrap());

        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let (g, s) = (gate.clone(), stop.clone());
        let worker = std::thread::spawn(move || {
            run(g, CameraChoice::Folder(frames), s, |e| {
                let _ = tx.send(e);
            })
        });
        let mut scans = Vec::new();
        let mut camera_ok = false;
        let deadline = Instant::now() + Duration::from_secs(20);
        // Let the (looping) folder replay for a while after the first scan.
        while Instant::now() < deadline
            && (scans.is_empty() || Instant::now() < deadline - Duration::from_secs(17))
        {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(LoopEvent::Scan(outcome)) => scans.push(outcome),
                Ok(LoopEvent::Camera(status)) => camera_ok |= status.ok,
                Ok(LoopEvent::ScanError(e)) => panic!("scan error: {e:?}"),
                _ => {}
            }
        }
        stop.store(true, Ordering::Relaxed);
        worker.join().unwrap();
        assert!(camera_ok);
        assert_eq!(scans.len(), 1, "repeats suppressed: {scans:?}");
        assert_eq!(scans[0].verdict.verdict, "ADMIT");
        assert_eq!(
            store
                .get_ticket(Orq(1), &code)
                .unwrap()
                .verified_by
                .map(|o| o.0),
            Some(1)
        );
    }
}
