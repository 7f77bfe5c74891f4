//! Security headers on every response. Pages (`text/html`) get a Content
//! Security Policy that allows only the server's own scripts and styles plus
//! the inline ones of the pages it serves, by hash (the build inlines the
//! customer page's script and stylesheet, and `index.html` starts its first
//! API calls from a small inline script): an injected `<script>` or event
//! handler does not run, and no other site may frame the page. Every response
//! gets `nosniff` and `Referrer-Policy: no-referrer` (a `?token=` link must not
//! leak through the Referer header); API answers get a CSP that allows nothing.

use std::path::Path;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use base64::Engine as _;
use sha2::{Digest, Sha256};

/// The CSP of JSON and other non-page answers: nothing runs, nothing frames.
const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

/// The headers the server adds, computed once when the router is built.
#[derive(Clone)]
pub struct SecurityHeaders {
    page_csp: HeaderValue,
}

impl SecurityHeaders {
    /// The policy for the pages under `ui_dir` (every `*.html` there, at
    /// most two folders deep): their inline scripts and styles by hash.
    pub fn for_pages(ui_dir: Option<&Path>) -> Self {
        let mut pages = Vec::new();
        if let Some(dir) = ui_dir {
            collect_html(dir, 2, &mut pages);
        }
        let policy = page_policy(pages.iter().map(String::as_str));
        Self {
            // Hashes are base64 and the rest is ASCII: always a valid value.
            page_csp: HeaderValue::from_str(&policy).expect("CSP is ASCII"),
        }
    }
}

fn collect_html(dir: &Path, depth: u32, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if depth > 0 {
                collect_html(&path, depth - 1, out);
            }
        } else if path.extension().is_some_and(|e| e == "html") {
            if let Ok(text) = std::fs::read_to_string(&path) {
                out.push(text);
            }
        }
    }
}

/// `'sha256-…'` of each inline `<tag>…</tag>` element of `html` (a
/// `<script src=…>` is not inline and is covered by `'self'`).
fn inline_hashes(html: &str, tag: &str, out: &mut Vec<String>) {
    let lower = html.to_ascii_lowercase();
    let open = format!("<{tag}");
    let close = format!("</{tag}");
    let mut at = 0;
    while let Some(start) = lower[at..].find(&open).map(|i| i + at) {
        let after_name = start + open.len();
        // `<scripts>` or `<style-x>` are other elements.
        if !lower[after_name..].starts_with(|c: char| c == '>' || c.is_ascii_whitespace()) {
            at = after_name;
            continue;
        }
        let Some(tag_end) = lower[after_name..].find('>').map(|i| i + after_name) else {
            return;
        };
        let attrs = &lower[after_name..tag_end];
        let body_start = tag_end + 1;
        let Some(end) = lower[body_start..].find(&close).map(|i| i + body_start) else {
            return;
        };
        let has_src = attrs
            .split(|c: char| c.is_ascii_whitespace())
            .any(|a| a == "src" || a.starts_with("src="));
        if !has_src {
            let digest = Sha256::digest(&html.as_bytes()[body_start..end]);
            out.push(format!(
                "'sha256-{}'",
                base64::engine::general_purpose::STANDARD.encode(digest)
            ));
        }
        at = end + close.len();
    }
}

/// The page CSP for these HTML documents.
fn page_policy<'a>(pages: impl Iterator<Item = &'a str>) -> String {
    let (mut scripts, mut styles) = (Vec::new(), Vec::new());
    for html in pages {
        inline_hashes(html, "script", &mut scripts);
        inline_hashes(html, "style", &mut styles);
    }
    for list in [&mut scripts, &mut styles] {
        list.sort();
        list.dedup();
    }
    let with = |hashes: &[String]| {
        std::iter::once("'self'".to_string())
            .chain(hashes.iter().cloned())
            .collect::<Vec<_>>()
            .join(" ")
    };
    format!(
        "default-src 'self'; script-src {}; style-src {}; img-src 'self' data:; \
         connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
         frame-ancestors 'none'",
        with(&scripts),
        with(&styles)
    )
}

/// Adds the headers to one response (a `map_response_with_state` function).
pub async fn apply(State(h): State<SecurityHeaders>, mut res: Response) -> Response {
    let is_page = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    // A 304 has no content type, and the browser merges its headers into the
    // cached page's: the page keeps the policy it was stored with.
    let not_modified = res.status() == StatusCode::NOT_MODIFIED;
    let headers = res.headers_mut();
    if !not_modified {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            if is_page {
                h.page_csp
            } else {
                HeaderValue::from_static(API_CSP)
            },
        );
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(s: &str) -> String {
        format!(
            "'sha256-{}'",
            base64::engine::general_purpose::STANDARD.encode(Sha256::digest(s.as_bytes()))
        )
    }

    #[test]
    fn inline_scripts_and_styles_are_hashed_external_ones_are_not() {
        let html = "<html><head><SCRIPT>early()</SCRIPT>\
            <script type=\"module\">main()</script>\
            <script type=\"module\" crossorigin src=\"./assets/x.js\"></script>\
            <scripts>not a script</scripts>\
            <style>body{}</style><link rel=stylesheet href=a.css></head></html>";
        let cases: [(&str, Vec<String>); 2] = [
            ("script", vec![sha("early()"), sha("main()")]),
            ("style", vec![sha("body{}")]),
        ];
        for (tag, want) in cases {
            let mut got = Vec::new();
            inline_hashes(html, tag, &mut got);
            assert_eq!(got, want, "{tag}");
        }
    }

    #[test]
    fn unterminated_elements_hash_nothing() {
        for html in ["<script>x", "<script", "<style>a{}"] {
            let mut got = Vec::new();
            inline_hashes(html, "script", &mut got);
            inline_hashes(html, "style", &mut got);
            assert!(got.is_empty(), "{html}");
        }
    }

    #[test]
    fn the_page_policy_lists_the_hashes_and_forbids_framing() {
        let policy = page_policy(
            [
                "<script>a()</script>",
                "<script>a()</script><style>p{}</style>",
            ]
            .into_iter(),
        );
        assert_eq!(
            policy,
            format!(
                "default-src 'self'; script-src 'self' {}; style-src 'self' {}; img-src 'self' data:; \
                 connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
                 frame-ancestors 'none'",
                sha("a()"),
                sha("p{}")
            )
        );
        assert!(!policy.contains("unsafe-inline"));
    }
}
