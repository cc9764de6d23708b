//! `ranklet serve`: a small static file server for the demo and the browser tests. Serves only
//! files below its root, with the right MIME types (`application/wasm` for streaming
//! compilation) and optional extra headers (e.g. a Content-Security-Policy for a test).

use std::path::{Component, Path, PathBuf};

use clap::Args;
use ranklet::{Error, Result};

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
    /// Extra response header "Name: value" (repeatable).
    #[arg(long = "header")]
    pub headers: Vec<String>,
}

pub fn mime_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "wasm" => "application/wasm",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "txt" | "md" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// The file under `root` that a URL path names, or `None` if it would leave `root`.
pub fn resolve(root: &Path, url: &str) -> Option<PathBuf> {
    let path = url.split(['?', '#']).next().unwrap_or("");
    let mut out = root.to_path_buf();
    for part in Path::new(path.trim_start_matches('/')).components() {
        match part {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(out)
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

pub fn run(args: ServeArgs) -> Result<()> {
    let headers: Vec<(String, String)> = args
        .headers
        .iter()
        .map(|h| parse_header(h))
        .collect::<Result<_>>()?;
    if !args.root.is_dir() {
        return Err(Error::bad_input(
            args.root.display().to_string(),
            "--root is not a folder",
        ));
    }
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
    let shared = std::sync::Arc::new((args.root.clone(), args.index.clone(), headers));
    // One thread and one request per connection, answered with `Connection: close`: no
    // keep-alive state to stall on (tiny_http's, under Chromium's six parallel connections, left
    // a module request unanswered now and then).
    for stream in listener.incoming().flatten() {
        let shared = shared.clone();
        std::thread::spawn(move || {
            let (root, index, headers) = &*shared;
            let _ = serve_connection(stream, root, index, headers);
        });
    }
    Ok(())
}

/// Reads one request head from `stream` and answers it.
fn serve_connection(
    mut stream: std::net::TcpStream,
    root: &Path,
    index: &str,
    extra: &[(String, String)],
) -> std::io::Result<()> {
    use std::io::{Read, Write};
    stream.set_read_timeout(Some(std::time::Duration::from_secs(30)))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        if head.len() > MAX_HEAD_BYTES {
            return respond(
                &mut stream,
                431,
                "text/plain; charset=utf-8",
                b"request head too large\n",
                false,
                extra,
            );
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
        return respond(
            &mut stream,
            400,
            "text/plain; charset=utf-8",
            b"bad request\n",
            false,
            extra,
        );
    }
    let head_only = method == "HEAD";
    if method != "GET" && !head_only {
        return respond(
            &mut stream,
            405,
            "text/plain; charset=utf-8",
            b"GET or HEAD only\n",
            false,
            extra,
        );
    }
    if target == "/" {
        let location = [("Location".to_string(), index.to_string())];
        let all: Vec<(String, String)> = extra.iter().cloned().chain(location).collect();
        return respond(
            &mut stream,
            302,
            "text/plain; charset=utf-8",
            b"",
            head_only,
            &all,
        );
    }
    let file = resolve(root, target)
        .filter(|p| p.is_file())
        .and_then(|p| std::fs::read(&p).ok().map(|bytes| (p, bytes)));
    match file {
        Some((path, bytes)) => {
            respond(&mut stream, 200, mime_type(&path), &bytes, head_only, extra)
        }
        None => respond(
            &mut stream,
            404,
            "text/plain; charset=utf-8",
            b"not found\n",
            head_only,
            extra,
        ),
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
    use std::io::Write;
    let reason = match status {
        200 => "OK",
        302 => "Found",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Request Header Fields Too Large",
    };
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nCache-Control: no-cache\r\nConnection: close\r\n",
        body.len()
    );
    if status == 405 {
        out.push_str("Allow: GET, HEAD\r\n");
    }
    for (name, value) in extra {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    stream.write_all(out.as_bytes())?;
    if !head_only {
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
    fn resolves_inside_root_only() {
        let root = Path::new("/srv");
        assert_eq!(
            resolve(root, "/www/a.js?x=1"),
            Some(PathBuf::from("/srv/www/a.js"))
        );
        assert_eq!(resolve(root, "/../etc/passwd"), None);
        assert_eq!(resolve(root, "/www/../../x"), None);
        assert_eq!(
            mime_type(Path::new("x/ranklet_bg.wasm")),
            "application/wasm"
        );
    }
}
