//! `entrada-decode FOLDER`: run the gate's QR pipeline over image files.
//!
//! One JSON line per file (sorted by name):
//! `{"file": NAME, "payloads": [...], "ms": DECODE_MILLISECONDS}`.
//! `ms` covers decoding only, not reading the file. Each file gets a fresh
//! decoder so the region-of-interest memory of one file cannot help the next.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use entrada_desktop::scan::{Decoder, DecoderConfig, Frame};
use entrada_desktop::source::image_files_in;
use serde::Serialize;

#[derive(Parser)]
#[command(
    name = "entrada-decode",
    version,
    about = "Decode the QR codes in every image file (png, jpg, jpeg, bmp) of a folder",
    long_about = "Decode the QR codes in every image file (png, jpg, jpeg, bmp) of a folder, \
                  in name order, with the same pipeline as the gate app. Prints one JSON line \
                  per file: {\"file\": NAME, \"payloads\": [...], \"ms\": DECODE_MS}."
)]
struct Args {
    /// Folder holding the images.
    folder: PathBuf,
    /// Per-frame time budget for the fallback stages, in milliseconds.
    #[arg(long, default_value_t = 25)]
    budget_ms: u64,
}

#[derive(Serialize)]
struct Line<'a> {
    file: &'a str,
    payloads: Vec<String>,
    ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let files = match image_files_in(&args.folder) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("entrada-decode: {e}");
            return ExitCode::from(2);
        }
    };
    let config = DecoderConfig {
        time_budget: std::time::Duration::from_millis(args.budget_ms),
        ..DecoderConfig::default()
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut failures = 0;
    for path in files {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let line = match image::open(&path) {
            Ok(img) => {
                let frame = Frame::from_dynamic(&img);
                let mut decoder = Decoder::new(config.clone());
                let start = Instant::now();
                let codes = decoder.decode(&frame);
                let ms = start.elapsed().as_secs_f64() * 1000.0;
                Line {
                    file: &name,
                    payloads: codes.into_iter().map(|c| c.payload).collect(),
                    ms,
                    error: None,
                }
            }
            Err(e) => {
                failures += 1;
                Line {
                    file: &name,
                    payloads: Vec::new(),
                    ms: 0.0,
                    error: Some(e.to_string()),
                }
            }
        };
        let json = serde_json::to_string(&line).expect("plain struct serialises");
        if writeln!(out, "{json}").is_err() {
            // Downstream closed the pipe (e.g. `| head`): stop quietly.
            return ExitCode::SUCCESS;
        }
    }
    if failures > 0 {
        eprintln!("entrada-decode: {failures} file(s) could not be read");
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
