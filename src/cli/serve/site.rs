//! What `ranklet serve` answers with a file: the allow-list. Files below the root (and any
//! `--mount`) whose every path part is visible (no `.git/`, `.env`, `.cache/`), whose real path
//! after resolving links stays inside that root, and whose extension is one a shop page needs.

use std::path::{Component, Path, PathBuf};

use ranklet::{Error, Result};

/// The file extensions served: pages, scripts, styles, modules, bundles and index shards
/// (`.safetensors`, `.json`), catalogues (`.json`, `.jsonl`), images, the peer's ONNX models.
const SERVED_EXTENSIONS: [&str; 17] = [
    "html",
    "js",
    "mjs",
    "css",
    "json",
    "jsonl",
    "wasm",
    "safetensors",
    "onnx",
    "txt",
    "svg",
    "png",
    "jpg",
    "jpeg",
    "webp",
    "gif",
    "ico",
];

pub fn mime_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "jsonl" => "application/jsonl; charset=utf-8",
        "wasm" => "application/wasm",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "gif" => "image/gif",
        "ico" => "image/x-icon",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// A URL path percent-decoded to UTF-8, or `None` for a bad escape, invalid UTF-8 or a NUL.
pub fn decode_path(path: &str) -> Option<String> {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok().filter(|s| !s.contains('\0'))
}

/// The folders served: URL prefix (starting and ending with '/') → canonical folder, longest
/// prefix first.
#[derive(Debug, Clone)]
pub struct Site {
    mounts: Vec<(String, PathBuf)>,
}

impl Site {
    /// The root at "/" plus each "/prefix/=FOLDER" mount; every folder must exist.
    pub fn new(root: &Path, mounts: &[String]) -> Result<Self> {
        let folder = |path: &Path, what: &str| {
            path.canonicalize()
                .ok()
                .filter(|p| p.is_dir())
                .ok_or_else(|| {
                    Error::bad_input(
                        path.display().to_string(),
                        format!("{what} is not a folder"),
                    )
                })
        };
        let mut all = vec![("/".to_string(), folder(root, "--root")?)];
        for m in mounts {
            let (prefix, dir) = m
                .split_once('=')
                .filter(|(p, d)| p.starts_with('/') && !d.is_empty())
                .ok_or_else(|| {
                    Error::bad_input("--mount", format!("{m:?} is not \"/prefix/=FOLDER\""))
                })?;
            let prefix = format!("/{}/", prefix.trim_matches('/'));
            if prefix == "//" || prefix.split('/').any(|p| p.starts_with('.')) {
                return Err(Error::bad_input(
                    "--mount",
                    format!("{m:?}: the prefix must be a visible path below \"/\""),
                ));
            }
            all.push((prefix, folder(Path::new(dir), "--mount")?));
        }
        all.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
        Ok(Self { mounts: all })
    }

    /// The served file a request target names, or `None` (answered 404) when it is missing, or
    /// any part is hidden or `..`, or its real path leaves its folder, or its extension is not
    /// served. `Err(())` for a target that does not decode (400).
    pub fn resolve(&self, target: &str) -> std::result::Result<Option<PathBuf>, ()> {
        let path = decode_path(target.split(['?', '#']).next().unwrap_or("")).ok_or(())?;
        let Some((prefix, dir)) = self
            .mounts
            .iter()
            .find(|(p, _)| path.starts_with(p.as_str()))
        else {
            return Ok(None);
        };
        let Some(wanted) = join_visible(dir, &path[prefix.len()..]) else {
            return Ok(None);
        };
        let Ok(real) = wanted.canonicalize() else {
            return Ok(None);
        };
        let inside = real.strip_prefix(dir).is_ok_and(|rel| {
            rel.components()
                .all(|c| matches!(c, Component::Normal(p) if !p.to_string_lossy().starts_with('.')))
        });
        Ok(
            (inside && real.is_file() && served_extension(&wanted) && served_extension(&real))
                .then_some(real),
        )
    }
}

/// `dir` joined with the '/'-separated `rest`, or `None` when a part is `..` or hidden.
fn join_visible(dir: &Path, rest: &str) -> Option<PathBuf> {
    let mut out = dir.to_path_buf();
    for part in rest.split('/').filter(|p| !p.is_empty() && *p != ".") {
        if part.starts_with('.') {
            return None;
        }
        out.push(part);
    }
    Some(out)
}

fn served_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| SERVED_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh folder for one test.
    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ranklet-serve-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn decodes_percent_escapes_to_utf8_only() {
        assert_eq!(
            decode_path("/a%20b/%C3%A9.js").as_deref(),
            Some("/a b/é.js")
        );
        assert_eq!(decode_path("/a%2"), None);
        assert_eq!(decode_path("/a%zz"), None);
        assert_eq!(decode_path("/%FF"), None);
        assert_eq!(decode_path("/a%00.js"), None);
    }

    #[test]
    fn serves_visible_allowed_files_inside_the_root_only() {
        let tmp = scratch("visible");
        let root = tmp.join("site");
        std::fs::create_dir_all(root.join("www/sub dir")).unwrap();
        std::fs::create_dir_all(root.join(".git")).unwrap();
        std::fs::write(root.join("www/a.js"), "1").unwrap();
        std::fs::write(root.join("www/sub dir/b.json"), "{}").unwrap();
        std::fs::write(root.join("www/data.inter"), "x").unwrap();
        std::fs::write(root.join(".git/config"), "secret").unwrap();
        std::fs::write(root.join(".env.js"), "secret").unwrap();
        std::fs::write(tmp.join("outside.js"), "secret").unwrap();
        std::os::unix::fs::symlink(tmp.join("outside.js"), root.join("www/link.js")).unwrap();
        std::os::unix::fs::symlink(root.join(".git"), root.join("www/git")).unwrap();
        let site = Site::new(&root, &[]).unwrap();
        let ok = |t: &str| site.resolve(t).unwrap().is_some();
        assert!(ok("/www/a.js?v=1"));
        assert!(ok("/www/sub%20dir/b.json"));
        for refused in [
            "/.git/config",
            "/.env.js",
            "/www/data.inter",
            "/www/link.js",
            "/www/git/config",
            "/../outside.js",
            "/www/../../outside.js",
            "/www/%2e%2e/%2e%2e/outside.js",
            "/www/missing.js",
        ] {
            assert!(!ok(refused), "{refused} was served");
        }
        assert!(site.resolve("/www/%ZZ").is_err());
        assert_eq!(
            mime_type(Path::new("x/ranklet_bg.wasm")),
            "application/wasm"
        );
    }

    #[test]
    fn mounts_serve_another_folder_under_a_prefix() {
        let tmp = scratch("mounts");
        std::fs::create_dir_all(tmp.join("root")).unwrap();
        std::fs::create_dir_all(tmp.join("peer/npm")).unwrap();
        std::fs::write(tmp.join("peer/npm/x.mjs"), "1").unwrap();
        let mount = format!("/peer/={}", tmp.join("peer").display());
        let site = Site::new(&tmp.join("root"), &[mount]).unwrap();
        assert!(site.resolve("/peer/npm/x.mjs").unwrap().is_some());
        assert!(site.resolve("/npm/x.mjs").unwrap().is_none());
        assert!(Site::new(&tmp.join("root"), &["/.hidden/=/tmp".into()]).is_err());
        assert!(Site::new(&tmp.join("missing"), &[]).is_err());
    }

    /// Property: for thousands of random request targets built from path pieces, escapes and
    /// raw bytes, `resolve` never panics and never returns a file outside the root, hidden, or
    /// of an extension not served.
    #[test]
    fn no_request_path_escapes_the_allow_list() {
        let tmp = scratch("property");
        let root = tmp.join("site");
        std::fs::create_dir_all(root.join("www")).unwrap();
        std::fs::create_dir_all(root.join(".git")).unwrap();
        std::fs::write(root.join("www/a.js"), "1").unwrap();
        std::fs::write(root.join(".git/config"), "secret").unwrap();
        std::fs::write(tmp.join("outside.js"), "secret").unwrap();
        let site = Site::new(&root, &[]).unwrap();
        let real_root = root.canonicalize().unwrap();
        let pieces = [
            "/",
            "..",
            ".",
            "www",
            "a.js",
            ".git",
            "config",
            "%2e",
            "%2E%2E",
            "%2f",
            "%00",
            "%ff",
            "%",
            "%c3%a9",
            "outside.js",
            "?",
            "#",
            "//",
            "\\",
            "~",
            " ",
        ];
        let mut rng = ranklet::rng::SplitMix(24);
        let mut served = 0;
        for _ in 0..5000 {
            // Half of them start inside the served folder, so that some are served.
            let mut target = String::from(if rng.next_f32() < 0.5 { "/www/" } else { "/" });
            for _ in 0..(1 + (rng.next_f32() * 8.0) as usize) {
                target.push_str(
                    pieces[(rng.next_f32() * pieces.len() as f32) as usize % pieces.len()],
                );
            }
            if let Ok(Some(path)) = site.resolve(&target) {
                served += 1;
                assert!(
                    path.starts_with(&real_root),
                    "{target} → {}",
                    path.display()
                );
                let rel = path.strip_prefix(&real_root).unwrap();
                assert!(
                    !rel.to_string_lossy().split('/').any(|p| p.starts_with('.')),
                    "{target}"
                );
                assert!(served_extension(&path), "{target}");
            }
        }
        assert!(served > 0, "no target reached the one served file");
        println!("property request path: 5000 cases, {served} served, none outside the allow-list");
    }
}
