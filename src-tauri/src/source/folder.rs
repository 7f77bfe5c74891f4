//! Replay a folder of images as a camera.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{FrameSource, SourceError};
use crate::scan::Frame;

const EXTENSIONS: [&str; 4] = ["png", "jpg", "jpeg", "bmp"];

/// The image files (png/jpg/jpeg/bmp, any letter case) directly in `dir`,
/// sorted by file name so replays are deterministic.
pub fn image_files_in(dir: &Path) -> Result<Vec<PathBuf>, SourceError> {
    if !dir.exists() {
        return Err(SourceError::FolderNotFound(dir.to_path_buf()));
    }
    if !dir.is_dir() {
        return Err(SourceError::NotAFolder(dir.to_path_buf()));
    }
    let io = |source| SourceError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        let is_image = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)));
        if is_image && path.is_file() {
            files.push(path);
        }
    }
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    Ok(files)
}

/// Load one image file as a grayscale frame.
pub(crate) fn load_frame(path: &Path) -> Result<Frame, SourceError> {
    let bytes = std::fs::read(path).map_err(|source| SourceError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let img = image::load_from_memory(&bytes).map_err(|source| SourceError::Image {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(Frame::from_dynamic(&img))
}

/// Replays the images of a folder, in name order, at a fixed frame rate.
#[derive(Debug)]
pub struct FolderSource {
    dir: PathBuf,
    files: Vec<PathBuf>,
    next: usize,
    looping: bool,
    /// `None` = as fast as the caller asks (tests, benchmarks).
    interval: Option<Duration>,
    next_due: Option<Instant>,
}

impl FolderSource {
    /// `fps <= 0` (or not finite) disables pacing.
    pub fn new(dir: impl Into<PathBuf>, fps: f64, looping: bool) -> Result<Self, SourceError> {
        let dir = dir.into();
        let files = image_files_in(&dir)?;
        if files.is_empty() {
            return Err(SourceError::EmptyFolder(dir));
        }
        let interval = (fps.is_finite() && fps > 0.0).then(|| Duration::from_secs_f64(1.0 / fps));
        Ok(FolderSource {
            dir,
            files,
            next: 0,
            looping,
            interval,
            next_due: None,
        })
    }

    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// Wait until the next frame is due; keeps a steady rate without drift
    /// by scheduling from the previous due time, not from "now".
    fn pace(&mut self) {
        let Some(interval) = self.interval else {
            return;
        };
        let now = Instant::now();
        let due = self.next_due.unwrap_or(now);
        if due > now {
            std::thread::sleep(due - now);
        }
        // If the consumer fell far behind, don't burst to catch up.
        let next = due + interval;
        self.next_due = Some(if next < now { now + interval } else { next });
    }
}

impl FrameSource for FolderSource {
    fn next_frame(&mut self) -> Result<Option<Frame>, SourceError> {
        if self.next >= self.files.len() {
            if !self.looping {
                return Ok(None);
            }
            // Each pass re-reads the folder, as a camera shows what is in
            // front of it now: images dropped in or taken out take effect.
            self.files = image_files_in(&self.dir)?;
            if self.files.is_empty() {
                return Err(SourceError::EmptyFolder(self.dir.clone()));
            }
            self.next = 0;
        }
        self.pace();
        let path = self.files[self.next].clone();
        // Advance before loading so one corrupt file is reported once and
        // the replay moves on.
        self.next += 1;
        load_frame(&path).map(Some)
    }

    fn description(&self) -> String {
        let rate = match self.interval {
            Some(i) => format!("{:.0} fps", 1.0 / i.as_secs_f64()),
            None => "unpaced".to_string(),
        };
        format!(
            "folder {} ({} images, {}{})",
            self.dir.display(),
            self.files.len(),
            rate,
            if self.looping { ", looping" } else { "" }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_png(path: &Path, w: u32, h: u32, v: u8) {
        image::GrayImage::from_pixel(w, h, image::Luma([v]))
            .save(path)
            .unwrap();
    }

    #[test]
    fn missing_not_a_folder_and_empty_folder_are_distinct_errors() {
        let tmp = tempfile::tempdir().unwrap();
        let missing = tmp.path().join("nope");
        assert!(matches!(
            FolderSource::new(&missing, 0.0, false),
            Err(SourceError::FolderNotFound(p)) if p == missing
        ));
        let file = tmp.path().join("file.txt");
        std::fs::write(&file, "x").unwrap();
        assert!(matches!(
            FolderSource::new(&file, 0.0, false),
            Err(SourceError::NotAFolder(_))
        ));
        // A folder with only non-image files counts as empty.
        let err = FolderSource::new(tmp.path(), 0.0, false).unwrap_err();
        assert!(matches!(err, SourceError::EmptyFolder(_)));
        assert!(err.to_string().contains("no image files"), "{err}");
    }

    #[test]
    fn replays_sorted_then_ends_or_loops() {
        let tmp = tempfile::tempdir().unwrap();
        write_png(&tmp.path().join("b.png"), 4, 3, 20);
        write_png(&tmp.path().join("a.PNG"), 4, 3, 10);
        write_png(&tmp.path().join("c.bmp"), 4, 3, 30);
        std::fs::write(tmp.path().join("notes.txt"), "ignored").unwrap();

        let mut once = FolderSource::new(tmp.path(), 0.0, false).unwrap();
        let seen: Vec<u8> = std::iter::from_fn(|| once.next_frame().unwrap())
            .map(|f| f.luma()[0])
            .collect();
        assert_eq!(seen, vec![10, 20, 30]);
        assert!(once.next_frame().unwrap().is_none(), "stays ended");

        let mut looped = FolderSource::new(tmp.path(), 0.0, true).unwrap();
        let seen: Vec<u8> = (0..7)
            .map(|_| looped.next_frame().unwrap().unwrap().luma()[0])
            .collect();
        assert_eq!(seen, vec![10, 20, 30, 10, 20, 30, 10]);
        assert!(looped.description().contains("3 images"));
        assert!(looped.description().contains("looping"));
    }

    #[test]
    fn a_looping_replay_follows_the_folder_from_one_pass_to_the_next() {
        let dir = tempfile::tempdir().unwrap();
        write_png(&dir.path().join("a.png"), 8, 8, 10);
        let mut src = FolderSource::new(dir.path(), 0.0, true).unwrap();
        assert_eq!(src.next_frame().unwrap().unwrap().luma()[0], 10);
        write_png(&dir.path().join("b.png"), 8, 8, 200);
        std::fs::remove_file(dir.path().join("a.png")).unwrap();
        assert_eq!(src.next_frame().unwrap().unwrap().luma()[0], 200);
        assert_eq!(src.files().len(), 1);
        std::fs::remove_file(dir.path().join("b.png")).unwrap();
        assert!(matches!(src.next_frame(), Err(SourceError::EmptyFolder(_))));
    }

    #[test]
    fn corrupt_file_is_one_error_then_the_replay_continues() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("a.jpg"), b"not a jpeg at all").unwrap();
        write_png(&tmp.path().join("b.png"), 2, 2, 99);
        let mut src = FolderSource::new(tmp.path(), 0.0, false).unwrap();
        assert!(matches!(src.next_frame(), Err(SourceError::Image { .. })));
        assert_eq!(src.next_frame().unwrap().unwrap().luma()[0], 99);
        assert!(src.next_frame().unwrap().is_none());
    }

    /// A folder is no camera: no torch, focus or exposure to offer, and any
    /// choice leaves it as it is (the settings screen then shows none).
    #[test]
    fn a_folder_offers_no_camera_controls() {
        let tmp = tempfile::tempdir().unwrap();
        write_png(&tmp.path().join("a.png"), 2, 2, 7);
        let mut src = FolderSource::new(tmp.path(), 0.0, true).unwrap();
        assert!(!src.controls().any());
        let all = crate::source::CameraAdjust {
            torch: true,
            fixed_focus: true,
            fixed_exposure: true,
        };
        src.adjust(&all).unwrap();
        assert_eq!(src.next_frame().unwrap().unwrap().luma()[0], 7);
    }

    #[test]
    fn paces_at_the_requested_frame_rate() {
        let tmp = tempfile::tempdir().unwrap();
        write_png(&tmp.path().join("a.png"), 2, 2, 1);
        let mut src = FolderSource::new(tmp.path(), 50.0, true).unwrap();
        let start = Instant::now();
        for _ in 0..6 {
            src.next_frame().unwrap().unwrap();
        }
        // 6 frames at 50 fps: the first is immediate, then 5 intervals of 20 ms.
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_millis(95), "{elapsed:?}");
        assert!(src.description().contains("50 fps"));
    }
}
