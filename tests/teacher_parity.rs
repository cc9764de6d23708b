//! The teacher (all-MiniLM-L6-v2, fetched by `./build.sh setup` into `models/teacher`) against
//! the PyTorch reference in `tests/fixtures/all-minilm-l6-v2/reference.json`: identical word-piece
//! ids and cosine ≥ 0.9999 for every item, on the `flex` CPU backend, and on WGPU where an
//! adapter exists (otherwise skipped with a printed reason).
//!
//! Needs the teacher files: this test fails (it does not skip) when they are absent.

use std::path::Path;

use burn::prelude::Device;
use ranklet::bundle::read_model_dir;
use ranklet::text::TextEmbedder;
use serde_json::Value;

struct Item {
    text: String,
    ids: Vec<i64>,
    embedding: Vec<f32>,
    norm: f32,
}

fn reference() -> (Vec<Item>, Vec<i64>) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/all-minilm-l6-v2/reference.json");
    let v: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let ints = |v: &Value| {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_i64().unwrap())
            .collect::<Vec<_>>()
    };
    let items = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|it| Item {
            text: it["text"].as_str().unwrap().to_string(),
            ids: ints(&it["input_ids"]),
            embedding: it["embedding"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect(),
            norm: it["unnormalized_norm"].as_f64().unwrap() as f32,
        })
        .collect();
    (items, ints(&v["empty_string"]["input_ids"]))
}

fn teacher(device: &Device) -> TextEmbedder {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/teacher");
    let files = read_model_dir(&dir).unwrap_or_else(|e| {
        panic!(
            "the teacher is needed for this test and could not be read ({e}); run ./build.sh setup"
        )
    });
    TextEmbedder::from_files(&files, device).unwrap()
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}

/// Checks ids, cosine (one at a time and in one padded batch) and the unnormalised norm.
fn check(device: &Device, label: &str) {
    let (items, empty_ids) = reference();
    let mut embedder = teacher(device);
    assert_eq!(embedder.tokenizer.encode("").unwrap(), empty_ids);
    for item in &items {
        assert_eq!(
            embedder.tokenizer.encode(&item.text).unwrap(),
            item.ids,
            "ids of {:?}",
            item.text
        );
    }
    let texts: Vec<&str> = items.iter().map(|i| i.text.as_str()).collect();
    let batched = embedder.embed(&texts).unwrap();
    let mut min_cos = f32::MAX;
    for (item, got) in items.iter().zip(&batched) {
        let single = embedder.embed(&[&item.text]).unwrap().remove(0);
        for v in [&single, got] {
            let c = cosine(v, &item.embedding);
            min_cos = min_cos.min(c);
            assert!(c >= 0.9999, "{label}: cosine {c} for {:?}", item.text);
        }
    }
    // The norm before normalisation checks the encoder's scale, which cosine cannot see.
    embedder.normalize = false;
    let raw = embedder.embed(&texts).unwrap();
    for (item, v) in items.iter().zip(&raw) {
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!(
            (norm - item.norm).abs() / item.norm < 1e-3,
            "{label}: norm {norm} vs {} for {:?}",
            item.norm,
            item.text
        );
    }
    println!(
        "{label}: {} items, identical ids, min cosine {min_cos:.7}",
        items.len()
    );
}

#[test]
fn teacher_matches_reference_on_flex() {
    check(&Device::flex(), "flex");
}

/// On a hardware adapter only: a CPU-emulated one (llvmpipe, which Debian's chromium pulls in,
/// or SwiftShader) takes many minutes for the full teacher. `tests/wgpu_backend.rs` runs the same
/// code on any adapter with the tiny model.
#[test]
fn teacher_matches_reference_on_wgpu_where_an_adapter_exists() {
    match ranklet::device::init_gpu() {
        Ok(gpu) if gpu.software && std::env::var_os("RANKLET_WGPU_SOFTWARE").is_none() => println!(
            "SKIPPED wgpu teacher parity: the only adapter, {}, is CPU-emulated (set RANKLET_WGPU_SOFTWARE=1 to run it anyway; tests/wgpu_backend.rs covers WGPU with the tiny model)",
            gpu.adapter
        ),
        Ok(gpu) => {
            println!("wgpu adapter: {}", gpu.adapter);
            check(&gpu.device, "wgpu")
        }
        Err(e) => println!("SKIPPED wgpu teacher parity: {e}"),
    }
}
