//! `ranklet embed` end to end through the binary: output format, inputs, and every error path
//! with its exit code (2 = bad input or model files).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ranklet::bundle::write_encoder_dir;
use ranklet::fixtures::tiny_bert_files;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ranklet-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn tiny_model(dir: &Path) -> PathBuf {
    let model = dir.join("tiny");
    write_encoder_dir(&model, &tiny_bert_files(5)).unwrap();
    model
}

fn ranklet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ranklet"))
        .args(args)
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn rows(jsonl: &[u8]) -> Vec<(String, Vec<f64>)> {
    String::from_utf8(jsonl.to_vec())
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let e = v["embedding"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect();
            (v["id"].as_str().unwrap().to_string(), e)
        })
        .collect()
}

#[test]
fn embeds_texts_to_stdout() {
    let dir = scratch("stdout");
    let model = tiny_model(&dir);
    let out = ranklet(&[
        "embed",
        "--model",
        model.to_str().unwrap(),
        "--text",
        "red shoes",
        "--text",
        "blue lamp",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rows = rows(&out.stdout);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].0, "0");
    assert_eq!(rows[0].1.len(), 16);
    let norm: f64 = rows[0].1.iter().map(|x| x * x).sum::<f64>().sqrt();
    assert!((norm - 1.0).abs() < 1e-5);
    assert_ne!(rows[0].1, rows[1].1);
}

#[test]
fn embeds_a_catalog_file_atomically_to_output() {
    let dir = scratch("file");
    let model = tiny_model(&dir);
    let input = dir.join("catalog.jsonl");
    std::fs::write(&input, "{\"id\":\"a\",\"title\":\"Red shoe\",\"category\":\"Shoes\"}\n{\"id\":\"b\",\"text\":\"usb charger\"}\n\n{\"id\":3,\"text\":\"tea mug\"}\n").unwrap();
    let output = dir.join("vectors.jsonl");
    let out = ranklet(&[
        "embed",
        "--model",
        model.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
        "--batch-size",
        "2",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    let rows = rows(&std::fs::read(&output).unwrap());
    let ids: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(ids, ["a", "b", "3"]);
    // Same text, same vector, whatever the batch it was in.
    let single = ranklet(&[
        "embed",
        "--model",
        model.to_str().unwrap(),
        "--text",
        "usb charger",
    ]);
    let single = self::rows(&single.stdout);
    let diff = single[0]
        .1
        .iter()
        .zip(&rows[1].1)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(diff < 1e-5, "{diff}");
}

fn assert_bad_input(out: &Output, needles: &[&str]) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    for n in needles {
        assert!(err.contains(n), "stderr lacks {n:?}: {err}");
    }
}

#[test]
fn model_folder_errors_name_the_file() {
    let dir = scratch("model-errors");
    let model = tiny_model(&dir);
    let m = model.to_str().unwrap();

    let out = ranklet(&[
        "embed",
        "--model",
        dir.join("nope").to_str().unwrap(),
        "--text",
        "x",
    ]);
    assert_bad_input(&out, &["nope", "missing"]);

    // A corrupt weights file (one byte flipped): caught by the manifest's sha256.
    let weights = model.join("model.safetensors");
    let mut bytes = std::fs::read(&weights).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x55;
    std::fs::write(&weights, &bytes).unwrap();
    let out = ranklet(&["embed", "--model", m, "--text", "x"]);
    assert_bad_input(&out, &["model.safetensors", "sha256"]);

    // A missing tokenizer.
    std::fs::remove_file(model.join("tokenizer.json")).unwrap();
    let out = ranklet(&["embed", "--model", m, "--text", "x"]);
    assert_bad_input(&out, &["tokenizer.json", "missing"]);

    // A mismatched file in a folder without manifest: config says another width.
    std::fs::remove_file(model.join("manifest.json")).unwrap();
    let files = tiny_bert_files(5);
    std::fs::write(model.join("tokenizer.json"), &files.tokenizer.1).unwrap();
    std::fs::write(&weights, &files.weights.1).unwrap();
    let mut config: serde_json::Value = serde_json::from_slice(&files.config.1).unwrap();
    config["hidden_size"] = 32.into();
    std::fs::write(model.join("config.json"), config.to_string()).unwrap();
    std::fs::write(
        model.join("sentence_bert_config.json"),
        r#"{"max_seq_length": 32}"#,
    )
    .unwrap();
    let out = ranklet(&["embed", "--model", m, "--text", "x"]);
    assert_bad_input(&out, &["model.safetensors", "shape"]);
}

#[test]
fn input_errors_name_the_problem() {
    let dir = scratch("input-errors");
    let model = tiny_model(&dir);
    let m = model.to_str().unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p.to_str().unwrap().to_string()
    };

    let out = ranklet(&[
        "embed",
        "--model",
        m,
        "--input",
        &write("empty.jsonl", b"\n\n"),
    ]);
    assert_bad_input(&out, &["empty"]);
    let out = ranklet(&[
        "embed",
        "--model",
        m,
        "--input",
        &write(
            "bad.jsonl",
            b"{\"id\":\"a\",\"text\":\"x\"}\n{\"id\":\"b\",\"text\":\n",
        ),
    ]);
    assert_bad_input(&out, &["bad.jsonl line 2", "invalid JSON"]);
    let out = ranklet(&[
        "embed",
        "--model",
        m,
        "--input",
        &write("latin1.jsonl", b"{\"id\":\"a\",\"text\":\"caf\xe9\"}\n"),
    ]);
    assert_bad_input(&out, &["latin1.jsonl line 1", "UTF-8"]);
    let out = ranklet(&[
        "embed",
        "--model",
        m,
        "--input",
        dir.join("absent.jsonl").to_str().unwrap(),
    ]);
    assert_bad_input(&out, &["absent.jsonl", "no such input file"]);
    let out = ranklet(&["embed", "--model", m]);
    assert_bad_input(&out, &["--text"]);
    let huge = format!("{{\"id\":\"big\",\"text\":\"{}\"}}\n", "a ".repeat(600_000));
    let out = ranklet(&[
        "embed",
        "--model",
        m,
        "--input",
        &write("huge.jsonl", huge.as_bytes()),
    ]);
    assert_bad_input(&out, &["\"big\"", "bytes"]);
    // A failed run leaves no output file behind.
    let target = dir.join("never.jsonl");
    let out = ranklet(&[
        "embed",
        "--model",
        m,
        "--input",
        &write("bad2.jsonl", b"[1,"),
        "--output",
        target.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!target.exists());
}

/// Needs the teacher (`./build.sh setup`); fails, not skips, without it.
#[test]
fn teacher_embeds_one_384_dim_unit_vector() {
    let teacher = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/teacher");
    let out = ranklet(&[
        "embed",
        "--model",
        teacher.to_str().unwrap(),
        "--text",
        "USB-C charger 65W",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rows = rows(&out.stdout);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].1.len(), 384);
    let norm: f64 = rows[0].1.iter().map(|x| x * x).sum::<f64>().sqrt();
    assert!((norm - 1.0).abs() < 1e-4, "{norm}");
}

/// A folder as --input, or an --output whose folder does not exist (or that is a folder), is
/// refused before any work, naming the path (exit 2); nothing is written.
#[test]
fn input_and_output_paths_are_checked_before_the_work() {
    let dir = scratch("paths");
    let model = tiny_model(&dir);
    let m = model.to_str().unwrap();
    let input = dir.join("texts.jsonl");
    std::fs::write(&input, "{\"id\":\"a\",\"text\":\"red shoe\"}\n").unwrap();
    let i = input.to_str().unwrap();
    let d = dir.to_str().unwrap();
    assert_bad_input(
        &ranklet(&["embed", "--model", m, "--input", d]),
        &[d, "folder"],
    );
    let missing = dir.join("no-such-folder/out.jsonl");
    let o = missing.to_str().unwrap();
    assert_bad_input(
        &ranklet(&["embed", "--model", m, "--input", i, "--output", o]),
        &["no-such-folder", "does not exist"],
    );
    assert_bad_input(
        &ranklet(&["embed", "--model", m, "--input", i, "--output", d]),
        &["is a folder"],
    );
    assert!(!missing.exists());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Empty texts, texts longer than the model reads and a batch size that takes gigabytes are each
/// said once on stderr (with the count), and the vectors are still written.
#[test]
fn warns_once_about_empty_and_truncated_texts_and_huge_batches() {
    let dir = scratch("warnings");
    let model = tiny_model(&dir);
    let long = "coffee ".repeat(400);
    let out = ranklet(&[
        "embed",
        "--model",
        model.to_str().unwrap(),
        "--text",
        "",
        "--text",
        &long,
        "--text",
        &long,
        "--text",
        "a film",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("1 empty text(s) (first: id \"0\")"), "{err}");
    assert!(err.contains("2 of 4 texts are longer than"), "{err}");
    assert_eq!(err.matches("warning:").count(), 2, "{err}");
    assert_eq!(rows(&out.stdout).len(), 4);
    let quiet = ranklet(&[
        "embed",
        "--model",
        model.to_str().unwrap(),
        "--text",
        "a film",
    ]);
    assert!(!stderr(&quiet).contains("warning"), "{}", stderr(&quiet));
    let _ = std::fs::remove_dir_all(&dir);
}
