//! `ranklet serve`: a small static file server for the demo, the benches and the browser tests.
//!
//! What it serves is an allow-list: files below its root (and any `--mount`) whose every path
//! part is visible (no `.git/`, `.env`, `.cache/`), whose real path after resolving links stays
//! inside that root, and whose extension is one a shop page needs (pages, scripts, styles,
//! modules, bundles, index shards, catalogues, images). Everything else is "not found", so a
//! dataset, the sources or a key lying beside the pages is never sent. GET and HEAD only, a
//! bounded request head, validated extra headers, and by default the security headers a shop
//! should copy to its own host (`DEFAULT_HEADERS`, README "Serving"). Files carry an `ETag`, so a
//! later visit revalidates with `304 Not Modified` instead of downloading the bundle again.

use std::path::PathBuf;

use clap::Args;
use ranklet::{Error, Result};

mod site;
use site::{Site, mime_type};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Folder to serve (the repository root: pages under /www/, bundles under /models/).
    #[arg(long, default_value = ".")]
    pub root: PathBuf,
    /// Port on 127.0.0.1; 0 picks a free one. The address is printed on stdout.
    #[arg(long, env = "PORT", default_value_t = 8080)]
    pub port: u16,
    /// Where "/" redirects.
    #[arg(long, default_value = "/www/index.html")]
    pub index: String,
    /// Extra response header "Name: value" (repeatable); one named like a default header
    /// (e.g. Content-Security-Policy) replaces it.
    #[arg(long = "header")]
    pub headers: Vec<String>,
    /// Serve another folder under a URL prefix, "/prefix/=FOLDER" (repeatable), under the same
    /// rules as the root (the bench page's transformers.js peer: "/peer/=.cache/peer").
    #[arg(long = "mount")]
    pub mounts: Vec<String>,
}

/// Sent with every answer unless `--header` names them: what a shop's host should send too.
/// The policy is the one the widget is tested under: scripts, workers, fetches and styles from
/// the page's own origin only, WebAssembly compiled without `unsafe-eval`.
pub const DEFAULT_HEADERS: [(&str, &str); 4] = [
    (
        "Content-Security-Policy",
        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
];

/// A validator that changes whenever the file does (its length and modification time).
fn etag(meta: &std::fs::Metadata) -> String {
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    format!("\"{:x}-{modified:x}\"", meta.len())
}

/// Whether a request head's `If-None-Match` lists `tag` (or `*`).
fn not_modified(head: &str, tag: &str) -> bool {
    head.lines().skip(1).any(|line| {
        line.split_once(':').is_some_and(|(name, value)| {
            name.trim().eq_ignore_ascii_case("if-none-match")
                && value
                    .split(',')
                    .map(str::trim)
                    .any(|v| v == tag || v == "*" || v.strip_prefix("W/") == Some(tag))
        })
    })
}

/// Longest request head (request line and headers) read; a longer one is answered 431.
const MAX_HEAD_BYTES: usize = 16 * 1024;

/// One header line `Name: value`, refused when it could split the response (CR or LF) or has
/// no name.
fn parse_header(h: &str) -> Result<(String, String)> {
    let (name, value) = h
        .split_once(':')
        .filter(|(n, _)| !n.trim().is_empty())
        .ok_or_else(|| Error::bad_input("--header", format!("{h:?} is not \"Name: value\"")))?;
    if h.contains(['\r', '\n'])
        || !name
            .trim()
            .chars()
            .all(|c| c.is_ascii_graphic() && c != ':')
    {
        return Err(Error::bad_input(
            "--header",
            format!("{h:?}: a header name is printable ASCII and no part holds CR or LF"),
        ));
    }
    Ok((name.trim().to_string(), value.trim().to_string()))
}

/// The default headers with each `--header` added, replacing a default of the same name.
fn response_headers(extra: &[String]) -> Result<Vec<(String, String)>> {
    let extra: Vec<(String, String)> = extra
        .iter()
        .map(|h| parse_header(h))
        .collect::<Result<_>>()?;
    let mut all: Vec<(String, String)> = DEFAULT_HEADERS
        .iter()
        .filter(|(name, _)| !extra.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)))
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    all.extend(extra);
    Ok(all)
}

pub fn run(args: ServeArgs) -> Result<()> {
    let headers = response_headers(&args.headers)?;
    let site = Site::new(&args.root, &args.mounts)?;
    let listener = std::net::TcpListener::bind(("127.0.0.1", args.port)).map_err(|e| {
        Error::bad_input(
            format!("127.0.0.1:{}", args.port),
            format!("cannot listen there ({e}); choose another --port, or 0 for a free one"),
        )
    })?;
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(args.port);
    println!(
        "serving {} on http://127.0.0.1:{port}/",
        args.root.display()
    );
    let shared = std::sync::Arc::new((site, args.index.clone(), headers));
    // One thread and one request per connection, answered with `Connection: close`: no
    // keep-alive state to stall on (tiny_http's, under Chromium's six parallel connections, left
    // a module request unanswered now and then).
    for stream in listener.incoming().flatten() {
        let shared = shared.clone();
        std::thread::spawn(move || {
            let (site, index, headers) = &*shared;
            let _ = serve_connection(stream, site, index, headers);
        });
    }
    Ok(())
}

const TEXT: &str = "text/plain; charset=utf-8";

/// Reads one request head from `stream` and answers it.
fn serve_connection(
    mut stream: std::net::TcpStream,
    site: &Site,
    index: &str,
    extra: &[(String, String)],
) -> std::io::Result<()> {
    use std::io::{Read, Write};
    stream.set_read_timeout(Some(std::time::Duration::from_secs(30)))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        if head.len() > MAX_HEAD_BYTES {
            respond(
                &mut stream,
                431,
                TEXT,
                b"request head too large\n",
                false,
                extra,
            )?;
            // Read (and drop) what the client is still sending for a moment before closing:
            // closing with unread input would reset the connection, and the client would see a
            // reset instead of the 431.
            stream.shutdown(std::net::Shutdown::Write)?;
            stream.set_read_timeout(Some(std::time::Duration::from_millis(500)))?;
            let mut drained = 0;
            while drained < 1 << 20 {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => drained += n,
                }
            }
            return Ok(());
        }
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    let mut parts = text.lines().next().unwrap_or("").split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if !parts.next().is_some_and(|v| v.starts_with("HTTP/1.")) || !target.starts_with('/') {
        return respond(&mut stream, 400, TEXT, b"bad request\n", false, extra);
    }
    let head_only = method == "HEAD";
    if method != "GET" && !head_only {
        return respond(&mut stream, 405, TEXT, b"GET or HEAD only\n", false, extra);
    }
    if target == "/" {
        let location = [("Location".to_string(), index.to_string())];
        let all: Vec<(String, String)> = extra.iter().cloned().chain(location).collect();
        return respond(&mut stream, 302, TEXT, b"", head_only, &all);
    }
    let path = match site.resolve(target) {
        Err(()) => return respond(&mut stream, 400, TEXT, b"bad request path\n", false, extra),
        Ok(path) => path,
    };
    let file = path.and_then(|p| {
        let meta = std::fs::metadata(&p).ok()?;
        Some((p, meta))
    });
    match file {
        Some((path, meta)) => {
            let tag = etag(&meta);
            let mut all = extra.to_vec();
            all.push(("ETag".to_string(), tag.clone()));
            if not_modified(&text, &tag) {
                respond(&mut stream, 304, mime_type(&path), b"", true, &all)
            } else if head_only {
                // HEAD answers the length without reading the file.
                respond_sized(&mut stream, 200, mime_type(&path), meta.len(), None, &all)
            } else {
                match std::fs::read(&path) {
                    Ok(bytes) => respond(&mut stream, 200, mime_type(&path), &bytes, false, &all),
                    Err(_) => respond(&mut stream, 404, TEXT, b"not found\n", false, extra),
                }
            }
        }
        None => respond(&mut stream, 404, TEXT, b"not found\n", head_only, extra),
    }?;
    stream.flush()
}

fn respond(
    stream: &mut std::net::TcpStream,
    status: u16,
    content_type: &str,
    body: &[u8],
    head_only: bool,
    extra: &[(String, String)],
) -> std::io::Result<()> {
    let len = if status == 304 { 0 } else { body.len() as u64 };
    respond_sized(
        stream,
        status,
        content_type,
        len,
        (!head_only).then_some(body),
        extra,
    )
}

/// Writes the status line, the headers (with `Content-Length: len`) and the body if any.
fn respond_sized(
    stream: &mut std::net::TcpStream,
    status: u16,
    content_type: &str,
    len: u64,
    body: Option<&[u8]>,
    extra: &[(String, String)],
) -> std::io::Result<()> {
    use std::io::Write;
    let reason = match status {
        200 => "OK",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Request Header Fields Too Large",
    };
    // no-cache: the browser may keep every file but revalidates it (ETag, 304) on each use, so
    // a rebuilt bundle or index is never served stale during development.
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {len}\r\nCache-Control: no-cache\r\nConnection: close\r\n"
    );
    if status == 405 {
        out.push_str("Allow: GET, HEAD\r\n");
    }
    for (name, value) in extra {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    stream.write_all(out.as_bytes())?;
    if let Some(body) = body {
        stream.write_all(body)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_flags_cannot_split_a_response() {
        assert_eq!(
            parse_header("X-Test: a b").unwrap(),
            ("X-Test".to_string(), "a b".to_string())
        );
        assert!(parse_header("X-A: 1\r\nX-B: 2").is_err());
        assert!(parse_header("no colon").is_err());
        assert!(parse_header(": value").is_err());
    }

    #[test]
    fn a_header_flag_replaces_the_default_of_its_name() {
        let all = response_headers(&["content-security-policy: default-src *".into()]).unwrap();
        let csp: Vec<_> = all
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("content-security-policy"))
            .collect();
        assert_eq!(csp.len(), 1);
        assert_eq!(csp[0].1, "default-src *");
        assert!(
            all.iter()
                .any(|(n, v)| n == "X-Content-Type-Options" && v == "nosniff")
        );
    }

    #[test]
    fn if_none_match_revalidates() {
        let head = "GET /a.js HTTP/1.1\r\nIf-None-Match: \"1-2\", W/\"3-4\"\r\n\r\n";
        assert!(not_modified(head, "\"1-2\""));
        assert!(not_modified(head, "\"3-4\""));
        assert!(!not_modified(head, "\"5-6\""));
    }
}
