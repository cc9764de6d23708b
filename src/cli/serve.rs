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

pub fn run(args: ServeArgs) -> Result<()> {
    let mut headers = Vec::new();
    for h in &args.headers {
        let header: tiny_http::Header = h
            .parse()
            .map_err(|_| Error::bad_input("--header", format!("{h:?} is not \"Name: value\"")))?;
        headers.push(header);
    }
    let server = tiny_http::Server::http(("127.0.0.1", args.port))
        .map_err(|e| Error::Backend(format!("cannot listen on 127.0.0.1:{}: {e}", args.port)))?;
    let port = server
        .server_addr()
        .to_ip()
        .map(|a| a.port())
        .unwrap_or(args.port);
    println!(
        "serving {} on http://127.0.0.1:{port}/",
        args.root.display()
    );
    let root = args.root.clone();
    let index = args.index.clone();
    for request in server.incoming_requests() {
        let root = root.clone();
        let headers = headers.clone();
        let index = index.clone();
        std::thread::spawn(move || respond(request, &root, &index, &headers));
    }
    Ok(())
}

fn header(name: &str, value: &str) -> tiny_http::Header {
    tiny_http::Header::from_bytes(name, value).expect("valid header")
}

fn respond(request: tiny_http::Request, root: &Path, index: &str, extra: &[tiny_http::Header]) {
    fn with_extra<R: std::io::Read>(
        mut r: tiny_http::Response<R>,
        extra: &[tiny_http::Header],
    ) -> tiny_http::Response<R> {
        for h in extra {
            r.add_header(h.clone());
        }
        r.add_header(header("Cache-Control", "no-cache"));
        r
    }
    if request.url() == "/" {
        let r = tiny_http::Response::empty(302).with_header(header("Location", index));
        let _ = request.respond(with_extra(r, extra));
        return;
    }
    let file = resolve(root, request.url())
        .filter(|p| p.is_file())
        .and_then(|p| std::fs::File::open(&p).ok().map(|f| (p, f)));
    match file {
        Some((path, f)) => {
            let r = tiny_http::Response::from_file(f)
                .with_header(header("Content-Type", mime_type(&path)));
            let _ = request.respond(with_extra(r, extra));
        }
        None => {
            let r = tiny_http::Response::from_string("not found\n")
                .with_status_code(404)
                .with_header(header("Content-Type", "text/plain; charset=utf-8"));
            let _ = request.respond(with_extra(r, extra));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
