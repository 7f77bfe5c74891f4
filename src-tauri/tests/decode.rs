//! End-to-end tests of the scanning pipeline on rendered, degraded QR codes.

mod support;

use std::process::Command;

use entrada_desktop::scan::{DecodeStats, Decoder, DecoderConfig, Frame, RepeatSuppressor};
use entrada_desktop::source::{FolderSource, FrameSource};
use rand::RngExt;
use support::{Class, Rng, WorldClass};

/// Tests assert what the pipeline *can* read, so they must not depend on how
/// fast this machine (or a debug build) is: the time budget is made generous.
/// The benchmark measures the default budget.
fn decoder() -> Decoder {
    Decoder::new(DecoderConfig {
        time_budget: std::time::Duration::from_secs(60),
        ..DecoderConfig::default()
    })
}

fn decode_payloads(frame: &Frame) -> Vec<String> {
    decoder()
        .decode(frame)
        .into_iter()
        .map(|d| d.payload)
        .collect()
}

/// The payloads a fresh decoder reads, and what it did to read them.
fn decode_with_stats(frame: &Frame) -> (Vec<String>, DecodeStats) {
    let mut dec = decoder();
    let got = dec.decode(frame).into_iter().map(|d| d.payload).collect();
    (got, dec.last_stats().clone())
}

/// Alternate plain and signed-looking payloads so both code sizes are covered.
fn payload_for(i: usize, rng: &mut Rng) -> String {
    if i.is_multiple_of(2) {
        support::tkt_payload(rng)
    } else {
        support::ent1_payload(rng)
    }
}

fn assert_every_class_decodes(w: u32, h: u32, severity: usize, seed: u64) {
    let mut rng = support::rng(seed);
    let mut failures = Vec::new();
    for (i, class) in Class::ALL.iter().enumerate() {
        let payload = payload_for(i, &mut rng);
        let scene = support::scene(w, h, &payload, *class, severity, &mut rng);
        let got = decode_payloads(&support::to_frame(&scene.image));
        if got != vec![payload.clone()] {
            failures.push(format!("{}: got {got:?}", class.name()));
        }
    }
    assert!(
        failures.is_empty(),
        "{w}x{h} severity {severity} failures: {failures:#?}"
    );
}

#[test]
fn every_degradation_class_decodes_exactly_at_640x480() {
    assert_every_class_decodes(640, 480, 0, 1);
}

#[test]
fn every_degradation_class_decodes_exactly_at_1280x720() {
    assert_every_class_decodes(1280, 720, 0, 2);
}

#[test]
fn every_degradation_class_decodes_at_medium_severity() {
    // Severity 1: 3-3.5 px modules, blur sigma 1.4, noise sigma 20,
    // contrast 110/160, glare 0.75, JPEG quality 22, 25% tilt...
    assert_every_class_decodes(640, 480, 1, 12);
    assert_every_class_decodes(1280, 720, 1, 13);
}

#[test]
fn close_up_codes_with_big_modules_decode() {
    // The other end of the scale: a phone held right at the camera. The
    // adaptive window must not hollow out finder patterns 100+ px wide.
    let mut rng = support::rng(14);
    for (w, h, module, payload) in [
        (640, 480, 12.0, support::tkt_payload(&mut rng)),
        (1280, 720, 11.0, support::ent1_payload(&mut rng)),
    ] {
        let pose = support::place(w, h, &payload, module, 4.0, (0.0, 0.0), &mut rng);
        let scene = support::render(w, h, &[(&payload, pose)], &Default::default(), &mut rng);
        assert_eq!(
            decode_payloads(&support::to_frame(&scene.image)),
            vec![payload],
            "{w}x{h} at {module} px/module"
        );
    }
}

#[test]
fn small_modules_of_three_pixels_decode_in_a_720p_frame() {
    let mut rng = support::rng(3);
    for i in 0..4 {
        let payload = payload_for(i, &mut rng);
        let pose = support::place(1280, 720, &payload, 3.0, 5.0, (0.0, 0.0), &mut rng);
        let scene = support::render(
            1280,
            720,
            &[(&payload, pose)],
            &Default::default(),
            &mut rng,
        );
        assert_eq!(
            decode_payloads(&support::to_frame(&scene.image)),
            vec![payload]
        );
    }
}

#[test]
fn empty_and_uniform_frames_decode_nothing() {
    for (w, h) in [
        (0, 0),
        (0, 480),
        (640, 0),
        (1, 1),
        (20, 20),
        (640, 480),
        (1280, 720),
    ] {
        for v in [0u8, 128, 255] {
            let f = Frame::from_luma(w, h, vec![v; w * h]).unwrap();
            assert!(decode_payloads(&f).is_empty(), "{w}x{h} filled with {v}");
        }
    }
    let mut rng = support::rng(4);
    for jpeg in [false, true] {
        let scene = support::empty_scene(1280, 720, jpeg, &mut rng);
        assert!(decode_payloads(&support::to_frame(&scene.image)).is_empty());
    }
}

#[test]
fn random_noise_frames_decode_nothing_and_never_panic() {
    let mut rng = support::rng(5);
    for i in 0..6 {
        let (w, h) = if i % 2 == 0 { (640, 480) } else { (1280, 720) };
        let luma: Vec<u8> = (0..w * h).map(|_| rng.random::<u8>()).collect();
        let f = Frame::from_luma(w, h, luma).unwrap();
        assert!(decode_payloads(&f).is_empty(), "noise frame {i}");
    }
    // Garbage of odd shapes, including binary salt-and-pepper and stripes
    // that look like finder-pattern runs.
    for i in 0..200usize {
        let w = rng.random_range(0..90usize);
        let h = rng.random_range(0..90usize);
        let luma: Vec<u8> = (0..w * h)
            .map(|p| match i % 3 {
                0 => rng.random::<u8>(),
                1 => {
                    if rng.random_bool(0.5) {
                        0
                    } else {
                        255
                    }
                }
                _ => {
                    if (p % w.max(1)) % 7 < 3 {
                        0
                    } else {
                        255
                    }
                }
            })
            .collect();
        let f = Frame::from_luma(w, h, luma).unwrap();
        assert!(decode_payloads(&f).is_empty(), "garbage {w}x{h}");
    }
}

#[test]
fn fake_finder_patterns_without_a_code_decode_nothing() {
    // Many finder-pattern look-alikes at random sizes and places, plus real
    // QR data modules nowhere: exercises grouping, grid fitting and the
    // Reed-Solomon rejection on nothing but decoys.
    let mut rng = support::rng(15);
    for round in 0..4 {
        let (w, h) = (640usize, 480usize);
        let mut luma = vec![200u8; w * h];
        for _ in 0..12 {
            let m = rng.random_range(2..8usize);
            let x0 = rng.random_range(0..w - 7 * m);
            let y0 = rng.random_range(0..h - 7 * m);
            for my in 0..7 {
                for mx in 0..7 {
                    let ring = (mx as i32 - 3).abs().max((my as i32 - 3).abs());
                    let dark = ring == 3 || ring <= 1;
                    for py in 0..m {
                        for px in 0..m {
                            luma[(y0 + my * m + py) * w + x0 + mx * m + px] =
                                if dark { 30 } else { 200 };
                        }
                    }
                }
            }
        }
        // Random module noise between them.
        for _ in 0..3000 {
            let (x, y) = (rng.random_range(0..w - 4), rng.random_range(0..h - 4));
            for d in 0..4 {
                luma[(y + d) * w + x] = 30;
            }
        }
        let f = Frame::from_luma(w, h, luma).unwrap();
        assert!(decode_payloads(&f).is_empty(), "round {round}");
    }
}

#[test]
fn two_codes_in_one_frame_both_decode() {
    let mut rng = support::rng(6);
    for (w, h) in [(640, 480), (1280, 720)] {
        let a = support::tkt_payload(&mut rng);
        let b = support::ent1_payload(&mut rng);
        let scene = support::two_code_scene(w, h, &a, &b, 3.5, &mut rng);
        let mut got = decode_payloads(&support::to_frame(&scene.image));
        got.sort();
        let mut want = vec![a, b];
        want.sort();
        assert_eq!(got, want, "{w}x{h}");
    }
}

#[test]
fn decoded_bounds_enclose_the_code() {
    let mut rng = support::rng(7);
    let payload = support::tkt_payload(&mut rng);
    let pose = support::place(640, 480, &payload, 5.0, 0.0, (0.0, 0.0), &mut rng);
    let scene = support::render(640, 480, &[(&payload, pose)], &Default::default(), &mut rng);
    let decoded = decoder().decode(&support::to_frame(&scene.image));
    assert_eq!(decoded.len(), 1);
    // The code without its 4-module quiet zone, from the renderer's own geometry.
    let (x0, y0, x1, y1) = support::code_extent(&payload, &pose);
    let q = 4.0 * 5.0;
    let tl = (x0 + q, y0 + q);
    let br = (x1 - q, y1 - q);
    let b = decoded[0].bounds;
    let near = |p: (i32, i32), q: (f64, f64)| {
        (p.0 as f64 - q.0).abs() <= 3.0 && (p.1 as f64 - q.1).abs() <= 3.0
    };
    assert!(near(b[0], tl), "top-left {:?} vs {tl:?}", b[0]);
    assert!(near(b[2], br), "bottom-right {:?} vs {br:?}", b[2]);
}

#[test]
fn decoder_looks_first_where_the_last_code_was() {
    let mut rng = support::rng(8);
    let payload = support::ent1_payload(&mut rng);
    let pose = support::place(1280, 720, &payload, 4.0, 3.0, (0.0, 0.0), &mut rng);
    let mut decoder = decoder();
    for frame_no in 0..3 {
        // Same position, fresh noise every frame, as from a camera.
        let scene = support::render(
            1280,
            720,
            &[(&payload, pose)],
            &Default::default(),
            &mut rng,
        );
        let got: Vec<String> = decoder
            .decode(&support::to_frame(&scene.image))
            .into_iter()
            .map(|d| d.payload)
            .collect();
        assert_eq!(got, vec![payload.clone()], "frame {frame_no}");
        assert_eq!(
            decoder.last_stats().roi_hit,
            frame_no > 0,
            "frame {frame_no}"
        );
    }
    // The code moves far away: the region misses, the full frame finds it.
    let mut moved = pose;
    moved.centre = (1280.0 - pose.centre.0, 720.0 - pose.centre.1);
    let scene = support::render(
        1280,
        720,
        &[(&payload, moved)],
        &Default::default(),
        &mut rng,
    );
    let got = decoder.decode(&support::to_frame(&scene.image));
    assert_eq!(got.len(), 1);
    assert!(!decoder.last_stats().roi_hit);
}

#[test]
fn repeated_frames_give_one_verdict() {
    let mut rng = support::rng(9);
    let payload = support::tkt_payload(&mut rng);
    let pose = support::place(640, 480, &payload, 4.0, 0.0, (0.0, 0.0), &mut rng);
    let mut decoder = decoder();
    let mut suppressor = RepeatSuppressor::new(2000);
    let mut verdicts = Vec::new();
    for i in 0..30u64 {
        let scene = support::render(640, 480, &[(&payload, pose)], &Default::default(), &mut rng);
        let codes = decoder.decode(&support::to_frame(&scene.image));
        verdicts.extend(suppressor.observe(i * 33, codes.iter().map(|c| c.payload.as_str())));
    }
    assert_eq!(verdicts, vec![payload]);
}

#[test]
fn rgb_rgba_and_yuyv_frames_decode_the_same() {
    let mut rng = support::rng(10);
    let payload = support::tkt_payload(&mut rng);
    let scene = support::scene(640, 480, &payload, Class::Clean, 0, &mut rng);
    let gray = scene.image.as_raw();
    let rgb: Vec<u8> = gray.iter().flat_map(|&v| [v, v, v]).collect();
    let rgba: Vec<u8> = gray.iter().flat_map(|&v| [v, v, v, 255]).collect();
    let yuyv: Vec<u8> = gray.iter().flat_map(|&v| [v, 128]).collect();
    for f in [
        Frame::from_rgb(640, 480, &rgb).unwrap(),
        Frame::from_rgba(640, 480, &rgba).unwrap(),
        Frame::from_yuyv(640, 480, &yuyv).unwrap(),
        Frame::from_dynamic(&image::DynamicImage::ImageLuma8(scene.image.clone())),
    ] {
        assert_eq!(decode_payloads(&f), vec![payload.clone()]);
    }
}

/// Write a few real PNG frames (two with codes, one without) to a temp folder.
fn frames_folder() -> (tempfile::TempDir, Vec<Vec<String>>) {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = support::rng(11);
    let a = support::tkt_payload(&mut rng);
    let b = support::ent1_payload(&mut rng);
    let s1 = support::scene(640, 480, &a, Class::Rotation, 0, &mut rng);
    let s2 = support::empty_scene(640, 480, false, &mut rng);
    let s3 = support::scene(1280, 720, &b, Class::Perspective, 0, &mut rng);
    s1.image.save(dir.path().join("frame_001.png")).unwrap();
    s2.image.save(dir.path().join("frame_002.png")).unwrap();
    s3.image.save(dir.path().join("frame_003.png")).unwrap();
    (dir, vec![vec![a], vec![], vec![b]])
}

#[test]
fn folder_source_replays_pngs_and_the_decoder_reads_them() {
    let (dir, expected) = frames_folder();
    let mut source = FolderSource::new(dir.path(), 0.0, false).unwrap();
    assert!(source.description().contains("3 images"));
    let mut decoder = decoder();
    let mut got = Vec::new();
    while let Some(frame) = source.next_frame().unwrap() {
        got.push(
            decoder
                .decode(&frame)
                .into_iter()
                .map(|d| d.payload)
                .collect::<Vec<_>>(),
        );
    }
    assert_eq!(got, expected);
}

#[test]
fn entrada_decode_prints_one_json_line_per_file() {
    let (dir, expected) = frames_folder();
    std::fs::write(dir.path().join("readme.txt"), "not an image").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_entrada-decode"))
        .arg(dir.path())
        .args(["--budget-ms", "5000"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    for (i, (line, want)) in lines.iter().zip(&expected).enumerate() {
        assert_eq!(line["file"], format!("frame_00{}.png", i + 1));
        let payloads: Vec<String> = serde_json::from_value(line["payloads"].clone()).unwrap();
        assert_eq!(&payloads, want);
        let ms = line["ms"].as_f64().expect("ms is a number");
        assert!((0.0..10_000.0).contains(&ms), "ms {ms}");
    }
}

#[test]
fn entrada_decode_fails_clearly_on_a_missing_folder_and_has_help() {
    let out = Command::new(env!("CARGO_BIN_EXE_entrada-decode"))
        .arg("/definitely/not/here")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
    let help = Command::new(env!("CARGO_BIN_EXE_entrada-decode"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("FOLDER"));
}

/// Frames of a world class at severities 0 and 1 (the corpus has the
/// hard ones; the tests keep to what must always read).
fn assert_world_class_decodes(class: WorldClass, frames: usize, seed: u64) {
    let mut rng = support::rng(seed);
    let mut failures = Vec::new();
    for i in 0..frames {
        let (payload, scene) = support::world_scene(class, i % 2, &mut rng);
        let got = decode_payloads(&support::to_frame(&scene.image));
        if got != vec![payload.clone()] {
            failures.push(format!(
                "frame {i} ({}x{}): got {got:?}",
                scene.image.width(),
                scene.image.height()
            ));
        }
    }
    assert!(failures.is_empty(), "{}: {failures:#?}", class.name());
}

#[test]
fn inverted_codes_on_a_black_screen_decode() {
    // Light modules on OLED black, with the screen's glow.
    assert_world_class_decodes(WorldClass::Inverted, 4, 30);
    // And the negative was what read them.
    let mut rng = support::rng(31);
    let (payload, scene) = support::world_scene(WorldClass::Inverted, 0, &mut rng);
    let mut dec = decoder();
    let got = dec.decode(&support::to_frame(&scene.image));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].payload, payload);
    assert!(dec.last_stats().negative);
}

#[test]
fn inverted_codes_under_strong_glow_decode() {
    // Severity 2: the screen's glow at 55 % of the light, blur σ 1. In the
    // negative the finder rings turn mid-grey and the usual thresholds fill
    // them in; the negative's strict bitmap reads them (without it, 2 of
    // these 8 frames read nothing, in release with a 60 s budget).
    let mut rng = support::rng(51);
    let mut failures = Vec::new();
    for i in 0..8 {
        let (payload, scene) = support::world_scene(WorldClass::Inverted, 2, &mut rng);
        let got = decode_payloads(&support::to_frame(&scene.image));
        if got != vec![payload] {
            failures.push(format!("frame {i}: got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn inverted_codes_are_read_on_alternate_frames_when_the_budget_is_gone() {
    // A zero budget stands for a machine too slow to finish one polarity in
    // time (a debug build). Without the polarity probe the first frame
    // searches the frame itself, reads nothing and is given up incomplete;
    // the next one searches the negative first and reads the code there.
    let mut rng = support::rng(40);
    let (payload, scene) = support::world_scene(WorldClass::Inverted, 0, &mut rng);
    let frame = support::to_frame(&scene.image);
    let mut dec = Decoder::new(DecoderConfig {
        time_budget: std::time::Duration::ZERO,
        polarity_probe: false,
        ..DecoderConfig::default()
    });
    let first = dec.decode(&frame);
    assert!(first.is_empty(), "{first:?}");
    assert!(dec.last_stats().incomplete);
    assert!(!dec.last_stats().negative);
    assert!(!dec.last_stats().flipped);
    let second = dec.decode(&frame);
    assert_eq!(
        second.into_iter().map(|d| d.payload).collect::<Vec<_>>(),
        vec![payload]
    );
    assert!(dec.last_stats().negative);
    assert!(!dec.last_stats().flipped);
}

#[test]
fn the_polarity_probe_reads_an_inverted_code_on_the_first_frame_when_the_budget_is_gone() {
    // The same frame and budget with the probe on: the frame's first bitmap
    // shows the negative's finder patterns (its strict bitmap, and the best
    // triple is always tried), so the search flips to the negative on the
    // first frame and reads the code there.
    let mut rng = support::rng(40);
    let (payload, scene) = support::world_scene(WorldClass::Inverted, 0, &mut rng);
    let frame = support::to_frame(&scene.image);
    let mut dec = Decoder::new(DecoderConfig {
        time_budget: std::time::Duration::ZERO,
        ..DecoderConfig::default()
    });
    assert!(dec.config().polarity_probe);
    let got = dec.decode(&frame);
    assert_eq!(
        got.into_iter().map(|d| d.payload).collect::<Vec<_>>(),
        vec![payload]
    );
    assert!(dec.last_stats().flipped);
    assert!(dec.last_stats().negative);
}

#[test]
fn an_inverted_code_is_looked_for_first_where_it_was() {
    let mut rng = support::rng(32);
    let p = support::tkt_payload(&mut rng);
    let d = support::Degrade {
        inverted: true,
        dark: 10,
        light: 210,
        ..Default::default()
    };
    let pose = support::place_with(1280, 720, &p, 4.0, 2.0, 6.0, &mut rng);
    let mut dec = decoder();
    for frame_no in 0..3 {
        let scene = support::render(1280, 720, &[(&p, pose)], &d, &mut rng);
        let got = dec.decode(&support::to_frame(&scene.image));
        assert_eq!(got.len(), 1, "frame {frame_no}");
        assert_eq!(got[0].payload, p);
        // From the second frame on, the remembered region (searched as a
        // negative) answers: the full frame is not searched twice.
        assert_eq!(dec.last_stats().roi_hit, frame_no > 0, "frame {frame_no}");
    }
}

#[test]
fn codes_with_little_or_no_quiet_zone_decode() {
    // Tight crops, codes against a dark bezel, trimmed stickers: 1 and ½
    // module of quiet zone.
    assert_world_class_decodes(WorldClass::Tight, 6, 33);
}

#[test]
fn a_code_cropped_to_its_edge_decodes() {
    // No quiet zone at all: the frame ends where the code does, the finder
    // patterns touch three of its edges.
    let mut rng = support::rng(34);
    for (i, module) in [6.0, 4.0].into_iter().enumerate() {
        let p = payload_for(i, &mut rng);
        let d = support::Degrade {
            quiet: 0.0,
            ..Default::default()
        };
        let pose = support::place_with(640, 480, &p, module, 0.0, 0.0, &mut rng);
        let full = support::render(640, 480, &[(&p, pose)], &d, &mut rng);
        let (x0, y0, x1, y1) = support::code_extent_with(&p, &pose, 0.0);
        let (x0, y0) = (x0.round() as u32, y0.round() as u32);
        let (x1, y1) = (x1.round() as u32, y1.round() as u32);
        let crop = image::imageops::crop_imm(&full.image, x0, y0, x1 - x0, y1 - y0).to_image();
        assert_eq!(
            decode_payloads(&support::to_frame(&crop)),
            vec![p],
            "{module} px/module, cropped to {}x{}",
            crop.width(),
            crop.height()
        );
    }
}

#[test]
fn a_small_code_in_a_4k_frame_is_found_on_the_coarse_level() {
    let mut rng = support::rng(35);
    let (payload, scene) = support::world_scene(WorldClass::Frame4K, 0, &mut rng);
    let mut dec = decoder();
    let got = dec.decode(&support::to_frame(&scene.image));
    assert_eq!(
        got.into_iter().map(|d| d.payload).collect::<Vec<_>>(),
        vec![payload]
    );
    // Found at half resolution: the full 4K frame was never searched.
    assert_eq!(dec.last_stats().pyramid, 2);
}

#[test]
fn codes_in_12_megapixel_photos_decode() {
    assert_world_class_decodes(WorldClass::Photo12Mp, 2, 36);
}

#[test]
fn the_smallest_modules_of_a_12_megapixel_photo_are_read_at_full_resolution() {
    // Severity 2: 3.5 px modules, blur σ 1.2, JPEG 90; 1.75 px on the
    // half-size level. Seed 61: the coarse level finds the finder patterns
    // but its triple does not sample; the full-resolution crops around them
    // read it. Seed 62: the coarse level shows no finder-like pattern at all
    // in either polarity (the bench's 12 MP miss); stage 1 at full
    // resolution finds them. Both were read on the full-resolution image.
    for seed in [61, 62] {
        let mut rng = support::rng(seed);
        let (payload, scene) = support::world_scene(WorldClass::Photo12Mp, 2, &mut rng);
        assert_eq!((scene.image.width(), scene.image.height()), (4000, 3000));
        let mut dec = decoder();
        let got = dec.decode(&support::to_frame(&scene.image));
        assert_eq!(
            got.into_iter().map(|d| d.payload).collect::<Vec<_>>(),
            vec![payload],
            "seed {seed}: {:?}",
            dec.last_stats()
        );
        assert_eq!(dec.last_stats().pyramid, 1, "seed {seed}");
    }
}

#[test]
fn a_4k_frame_with_3_px_modules_decodes() {
    // Severity 2 of the 4K class: 3 px modules (1.5 px on the half-size
    // level), blur σ 1.2, JPEG 80.
    let mut rng = support::rng(60);
    let (payload, scene) = support::world_scene(WorldClass::Frame4K, 2, &mut rng);
    assert_eq!((scene.image.width(), scene.image.height()), (3840, 2160));
    let got = decode_payloads(&support::to_frame(&scene.image));
    assert_eq!(got, vec![payload]);
}

#[test]
fn an_oled_inverted_code_is_handed_to_the_negative_after_one_bitmap() {
    // Light modules on OLED black with the screen's glow (severities 1 and
    // 2: glow 40 and 55 %, blur σ 0.8 and 1). The frame's first bitmap
    // shows no code of its own, the negative's strict bitmap (taken from the
    // same local means) shows three finder patterns: the negative is read
    // before the frame's narrower windows are tried.
    for (severity, seed) in [(1, 60), (1, 61), (2, 60), (2, 62)] {
        let mut rng = support::rng(seed);
        let (payload, scene) = support::world_scene(WorldClass::Inverted, severity, &mut rng);
        let mut dec = decoder();
        let got = dec.decode(&support::to_frame(&scene.image));
        assert_eq!(
            got.into_iter().map(|d| d.payload).collect::<Vec<_>>(),
            vec![payload],
            "severity {severity}, seed {seed}"
        );
        let stats = dec.last_stats();
        assert!(stats.flipped && stats.negative, "{stats:?}");
    }
}

/// Issue 18, the bench's frame 0202 (inverted, severity 2, 1280×720): the
/// screen's glow breaks one finder pattern on every bitmap of the
/// negative, which keeps two solid ones, so no triple forms; rqrr's
/// detector then took the rest of the budget. The third pattern is
/// predicted from the two (stage 1e) and the code read in stage 1. Seeds of
/// a search over severity 2, seeds 0..700, where that is what reads; 672
/// and 193 were not read before even with a 1 s budget (rqrr locates no
/// grid), 164 only by rqrr's grid re-sampled in stage 2.
#[test]
fn an_inverted_code_with_a_finder_pattern_lost_to_the_glow_is_read_from_the_other_two() {
    for seed in [672, 193, 164] {
        let mut rng = support::rng(seed);
        let (payload, scene) = support::world_scene(WorldClass::Inverted, 2, &mut rng);
        let (got, stats) = decode_with_stats(&support::to_frame(&scene.image));
        assert_eq!(got, vec![payload], "seed {seed}");
        assert!(
            stats.negative && stats.from_predicted == 1 && stats.stages == 1 && stats.grids == 0,
            "seed {seed}: {stats:?}"
        );
    }
}

#[test]
fn big_versions_up_to_40_decode() {
    let mut rng = support::rng(37);
    for version in [14, 27, 40] {
        let p = support::payload_for_version(version, &mut rng);
        assert_eq!(support::qr_modules(&p).0, version * 4 + 17);
        let pose = support::place(1920, 1080, &p, 4.0, 1.0, (0.0, 0.0), &mut rng);
        let scene = support::render(1920, 1080, &[(&p, pose)], &Default::default(), &mut rng);
        assert_eq!(
            decode_payloads(&support::to_frame(&scene.image)),
            vec![p],
            "version {version}"
        );
    }
}

#[test]
fn short_noisy_nine_character_codes_decode() {
    assert_world_class_decodes(WorldClass::Short9, 6, 38);
}

#[test]
fn world_empty_frames_decode_nothing() {
    // Big cluttered JPEGs, a dark room (whose negative is bright clutter)
    // and pure noise.
    let mut rng = support::rng(39);
    for kind in 0..4 {
        let (name, r) = support::world_empty(kind, &mut rng);
        assert!(
            decode_payloads(&support::to_frame(&r.image)).is_empty(),
            "{name}"
        );
    }
}

/// Heavy noise (σ 30, the corpus's noise severity 2) breaks a different one
/// of a code's three finder patterns on each threshold bitmap: these frames
/// are read from the triple only the bitmaps' merged list makes (issue 18,
/// session 32). Fails if the pipeline stops merging (`from_merged` stays 0).
#[test]
fn noisy_codes_are_read_from_the_merged_finder_patterns_of_two_bitmaps() {
    // Seeds whose frame the merged list reads (found by a search over
    // seeds 0..120; the others read without it).
    for seed in [14, 23] {
        let mut rng = support::rng(seed);
        let payload = support::ent1_payload(&mut rng);
        let scene = support::scene(640, 480, &payload, Class::Noise, 2, &mut rng);
        let (got, stats) = decode_with_stats(&support::to_frame(&scene.image));
        assert_eq!(got, vec![payload], "seed {seed}");
        assert!(stats.from_merged >= 1, "seed {seed}: {stats:?}");
    }
}
