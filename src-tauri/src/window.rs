//! How the gate's window meets the screen it runs on: fullscreen in kiosk
//! mode; otherwise the configured size (1280×800, `tauri.conf.json`) where
//! the screen holds it, and the whole screen where it does not (a tablet
//! upright, a handheld), never below [`MIN_SIZE`], the smallest handheld
//! the layouts are made for (`ui/kiosk/style.css`, `tests/desktop/sizes.mjs`).
//! Pure: `main.rs` applies the plan to the Tauri window.

/// The smallest window the kiosk page is laid out for, in logical pixels
/// (a 360-wide handheld; `tauri.conf.json` says the same).
pub const MIN_SIZE: (f64, f64) = (360.0, 560.0);

/// What to do with the window at start (and when kiosk mode is switched off).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum WindowPlan {
    /// Kiosk mode: fullscreen, no window chrome.
    Fullscreen,
    /// The screen is smaller than the configured window: fill it.
    Maximized,
    /// The configured size fits: keep it.
    Windowed { width: f64, height: f64 },
}

/// `wanted`: the configured window size; `screen`: the monitor's size in
/// logical pixels, if known (`None`: keep the configured size).
pub fn plan(kiosk: bool, wanted: (f64, f64), screen: Option<(f64, f64)>) -> WindowPlan {
    if kiosk {
        return WindowPlan::Fullscreen;
    }
    let (width, height) = (wanted.0.max(MIN_SIZE.0), wanted.1.max(MIN_SIZE.1));
    match screen {
        Some((sw, sh)) if sw < width || sh < height => WindowPlan::Maximized,
        _ => WindowPlan::Windowed { width, height },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_follows_the_screen() {
        use WindowPlan::*;
        let kiosk_size = (1280.0, 800.0);
        // (kiosk, wanted, screen) → plan
        let cases = [
            (true, kiosk_size, Some((1920.0, 1080.0)), Fullscreen),
            (true, kiosk_size, None, Fullscreen),
            // A desktop screen holds the kiosk layout's window.
            (
                false,
                kiosk_size,
                Some((1920.0, 1080.0)),
                Windowed {
                    width: 1280.0,
                    height: 800.0,
                },
            ),
            (
                false,
                kiosk_size,
                Some((1280.0, 800.0)),
                Windowed {
                    width: 1280.0,
                    height: 800.0,
                },
            ),
            // A tablet upright, a handheld, a small laptop: the whole screen.
            (false, kiosk_size, Some((800.0, 1280.0)), Maximized),
            (false, kiosk_size, Some((360.0, 740.0)), Maximized),
            (false, kiosk_size, Some((1366.0, 700.0)), Maximized),
            // Unknown screen: the configured size.
            (
                false,
                kiosk_size,
                None,
                Windowed {
                    width: 1280.0,
                    height: 800.0,
                },
            ),
            // Never smaller than the smallest layout.
            (
                false,
                (200.0, 300.0),
                Some((1920.0, 1080.0)),
                Windowed {
                    width: 360.0,
                    height: 560.0,
                },
            ),
        ];
        for (i, (kiosk, wanted, screen, expected)) in cases.into_iter().enumerate() {
            assert_eq!(plan(kiosk, wanted, screen), expected, "case {i}");
        }
    }
}
