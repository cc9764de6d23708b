//! The crate's layers import downwards only (docs/design.md draws them): a module may use its
//! own layer and those below it, never one above. Test-only code (`#[cfg(test)]` modules and
//! the fixtures) is exempt, and production code never imports the fixtures.

use std::path::{Path, PathBuf};

/// Each top-level module of `src/` and its layer, lowest first.
const LAYERS: &[(&str, usize)] = &[
    ("error", 0),
    ("fsio", 0),
    ("rng", 0),
    ("device", 0),
    ("contracts", 0),
    ("data", 1),
    ("text", 2),
    ("vectors", 3),
    ("rec", 4),
    ("bundle", 5),
    ("eval", 6),
    ("index", 6),
    ("jobs", 6),
    ("train", 7),
    ("distill", 7),
    ("web", 9),
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().find(|(m, _)| *m == module).map(|(_, l)| *l)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The production lines of a file: comments dropped, and everything from a `#[cfg(test)]`
/// module on (tests sit at the end of a file, as everywhere in this crate).
fn production_lines(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut lines = text.lines().enumerate().peekable();
    while let Some((n, line)) = lines.next() {
        let t = line.trim_start();
        if t.starts_with("#[cfg(test)]") || t.starts_with("#[cfg(all(test") {
            if lines
                .peek()
                .is_some_and(|(_, next)| next.trim_start().contains("mod "))
            {
                break;
            }
            // A single test-only item: skip it.
            lines.next();
            continue;
        }
        if t.starts_with("//") {
            continue;
        }
        out.push((n + 1, line));
    }
    out
}

/// The crate modules a line names: `crate::m` paths.
fn crate_paths(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("crate::") {
        let tail = &rest[at + "crate::".len()..];
        let name: String = tail
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            out.push(name);
        }
        rest = tail;
    }
    out
}

#[test]
fn modules_import_only_their_own_layer_and_below() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    files.sort();
    let mut violations = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(&root).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if ["lib", "main", "cli", "fixtures"].contains(&top.as_str()) {
            continue; // the roots, the CLI (an adapter over the library) and the test fixtures
        }
        let stem = rel.file_stem().unwrap().to_string_lossy();
        if stem == "tests" || stem == "test_support" {
            continue; // test-only files (declared under #[cfg(test)])
        }
        let own = layer_of(&top).unwrap_or_else(|| panic!("src/{top} has no layer in LAYERS"));
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in production_lines(&text) {
            for used in crate_paths(line) {
                if used == "fixtures" {
                    violations.push(format!(
                        "src/{}:{n}: production code uses the test fixtures",
                        rel.display()
                    ));
                    continue;
                }
                // `crate::Result` and `crate::Error` are the error layer's re-exports.
                let Some(theirs) = layer_of(&used)
                    .or_else(|| ["Result", "Error"].contains(&used.as_str()).then_some(0))
                else {
                    continue;
                };
                if theirs > own {
                    violations.push(format!(
                        "src/{}:{n}: {top} (layer {own}) imports {used} (layer {theirs})",
                        rel.display()
                    ));
                }
            }
        }
    }
    assert!(
        violations.is_empty(),
        "imports that run upwards:\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_checker_reads_paths_and_skips_tests() {
    assert_eq!(
        crate_paths("use crate::rec::{a, b}; let x = crate::bundle::f();"),
        ["rec", "bundle"]
    );
    let lines = production_lines(
        "use crate::a;\n// crate::b\n#[cfg(test)]\nmod tests {\n use crate::c;\n}\n",
    );
    assert_eq!(lines, [(1, "use crate::a;")]);
}
