//! `ranklet serve` against hostile requests, over real TCP on loopback (issue 24 item 8): the
//! allow-list (dotfiles, datasets, a symlink out of the root, traversals), GET/HEAD only, a
//! bounded head, the default security headers, and revalidation with ETag.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(root: &std::path::Path, extra: &[&str]) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ranklet"))
        .args(["serve", "--port", "0", "--root"])
        .arg(root)
        .args(extra)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .trim()
        .rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"));
    Server { child, port }
}

/// Sends `request` as is; returns the status code, the head and the body.
fn send(server: &Server, request: &[u8]) -> (u16, String, Vec<u8>) {
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    stream.write_all(request).unwrap();
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head, raw[split + 4..].to_vec())
}

fn get(server: &Server, path: &str) -> (u16, String, Vec<u8>) {
    send(
        server,
        format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
    )
}

fn site(name: &str) -> (PathBuf, PathBuf) {
    let tmp = std::env::temp_dir().join(format!("ranklet-cli-serve-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let root = tmp.join("site");
    for dir in ["www/sub dir", ".git", "data/ml-100k"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    std::fs::write(root.join("www/index.html"), "<p>shop</p>").unwrap();
    std::fs::write(root.join("www/sub dir/é.json"), "{}").unwrap();
    std::fs::write(root.join(".git/config"), "[remote] secret").unwrap();
    std::fs::write(root.join(".env"), "KEY=secret").unwrap();
    std::fs::write(root.join("data/ml-100k/ml-100k.inter"), "secret").unwrap();
    std::fs::write(tmp.join("outside.json"), "secret").unwrap();
    std::os::unix::fs::symlink(tmp.join("outside.json"), root.join("www/out.json")).unwrap();
    (tmp, root)
}

#[test]
fn serves_the_allow_list_and_nothing_else() {
    let (tmp, root) = site("allow");
    let server = start(&root, &[]);
    let (status, head, body) = get(&server, "/www/index.html");
    assert_eq!(status, 200);
    assert_eq!(body, b"<p>shop</p>");
    for header in [
        "Content-Security-Policy: default-src 'self'",
        "X-Content-Type-Options: nosniff",
        "Referrer-Policy: no-referrer",
        "Cross-Origin-Resource-Policy: same-origin",
    ] {
        assert!(head.contains(header), "{header} missing from {head}");
    }
    assert_eq!(get(&server, "/www/sub%20dir/%C3%A9.json").0, 200);
    for path in [
        "/.git/config",
        "/.env",
        "/data/ml-100k/ml-100k.inter",
        "/www/out.json",
        "/www/%2e%2e/%2e%2e/outside.json",
    ] {
        let (status, _, body) = get(&server, path);
        assert_eq!(status, 404, "{path}");
        assert!(!String::from_utf8_lossy(&body).contains("secret"), "{path}");
    }
    // A traversal the client did not normalise.
    let (status, _, body) = get(&server, "/../outside.json");
    assert!(status == 404 || status == 400, "{status}");
    assert!(!String::from_utf8_lossy(&body).contains("secret"));
    drop(server);
    let _ = std::fs::remove_dir_all(tmp);
}

#[test]
fn refuses_other_methods_oversized_heads_and_bad_paths() {
    let (tmp, root) = site("methods");
    let server = start(&root, &[]);
    let (status, head, _) = send(
        &server,
        b"POST /www/index.html HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi",
    );
    assert_eq!(status, 405);
    assert!(head.contains("Allow: GET, HEAD"));
    let big = format!(
        "GET /www/index.html HTTP/1.1\r\nX-Big: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    assert_eq!(send(&server, big.as_bytes()).0, 431);
    assert_eq!(get(&server, "/www/%FF.json").0, 400);
    let (status, head, body) = send(&server, b"HEAD /www/index.html HTTP/1.1\r\n\r\n");
    assert_eq!(status, 200);
    assert!(head.contains("Content-Length: 11"));
    assert!(body.is_empty());
    drop(server);
    let _ = std::fs::remove_dir_all(tmp);
}

#[test]
fn a_later_visit_revalidates_with_304() {
    let (tmp, root) = site("etag");
    let server = start(&root, &[]);
    let (_, head, _) = get(&server, "/www/index.html");
    let tag = head
        .lines()
        .find_map(|l| l.strip_prefix("ETag: "))
        .expect("an ETag")
        .to_string();
    let again = format!("GET /www/index.html HTTP/1.1\r\nIf-None-Match: {tag}\r\n\r\n");
    let (status, _, body) = send(&server, again.as_bytes());
    assert_eq!(status, 304);
    assert!(body.is_empty());
    std::fs::write(root.join("www/index.html"), "<p>changed shop</p>").unwrap();
    assert_eq!(send(&server, again.as_bytes()).0, 200);
    drop(server);
    let _ = std::fs::remove_dir_all(tmp);
}

#[test]
fn start_up_errors_are_clear() {
    let out = Command::new(env!("CARGO_BIN_EXE_ranklet"))
        .args(["serve", "--port", "0", "--root", "/no/such/folder"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/no/such/folder"));
    let out = Command::new(env!("CARGO_BIN_EXE_ranklet"))
        .args(["serve", "--port", "0", "--header", "X-A: 1\r\nX-B: 2"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
