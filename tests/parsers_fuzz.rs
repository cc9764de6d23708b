//! Property tests over every parser that takes bytes from outside (issue 24): for thousands of
//! seeded mutations of valid inputs — truncations, flipped bytes, spliced lines, inserted
//! delimiters, quotes, non-finite numbers and invalid UTF-8 — each parser returns `Ok` or an
//! `Err` whose message names the input, and never panics. The cases are generated here (a
//! seeded mutator over real samples, no extra dependency); a failure prints the seed and the
//! input that broke it.

use std::panic::{AssertUnwindSafe, catch_unwind};

use ranklet::bundle::manifest::Manifest;
use ranklet::data::atomic::AtomicFile;
use ranklet::data::{Dataset, read_catalog};
use ranklet::fixtures::{bert_tokenizer_json, random_bert_tensors, tiny_config, tiny_vocab};
use ranklet::index::IndexManifest;
use ranklet::index::shard::Shard;
use ranklet::rng::SplitMix;
use ranklet::text::{BertConfig, TextTokenizer};

/// Cases per parser; the whole file runs in seconds.
const CASES: u64 = 2000;

/// Fragments that parsers find hard: delimiters, quotes, escapes, numbers out of range,
/// non-finite values, huge counts, invalid UTF-8.
const FRAGMENTS: &[&[u8]] = &[
    b"\"",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b"\n",
    b"\r\n",
    b"\t",
    b"\\",
    b"\\u0000",
    b"null",
    b"NaN",
    b"-1e999",
    b"1e999",
    b"-1",
    b"18446744073709551616",
    b"0",
    b"\xff\xfe",
    b"\xc3",
    b"\"id\"",
    b"\"title\"",
    b"\"\"",
    b"item_id:token",
    b":float",
    b"\x00",
];

/// One mutation of `sample`, chosen by `rng`.
fn mutate(sample: &[u8], rng: &mut SplitMix) -> Vec<u8> {
    let mut out = sample.to_vec();
    let steps = 1 + (rng.next_f32() * 4.0) as usize;
    for _ in 0..steps {
        let at = |rng: &mut SplitMix, len: usize| (rng.next_f32() * (len + 1) as f32) as usize;
        match (rng.next_f32() * 6.0) as u32 {
            0 => {
                let cut = at(rng, out.len()).min(out.len());
                out.truncate(cut);
            }
            1 if !out.is_empty() => {
                let i = at(rng, out.len() - 1).min(out.len() - 1);
                out[i] ^= 1 << ((rng.next_f32() * 8.0) as u32 % 8);
            }
            2 => {
                let f =
                    FRAGMENTS[(rng.next_f32() * FRAGMENTS.len() as f32) as usize % FRAGMENTS.len()];
                let i = at(rng, out.len()).min(out.len());
                out.splice(i..i, f.iter().copied());
            }
            3 if !out.is_empty() => {
                // Delete a span.
                let i = at(rng, out.len() - 1).min(out.len() - 1);
                let j = (i + 1 + at(rng, 16)).min(out.len());
                out.drain(i..j);
            }
            4 => {
                // Duplicate a line (duplicate ids, repeated headers).
                let lines: Vec<&[u8]> = sample.split(|&b| b == b'\n').collect();
                let line = lines[(rng.next_f32() * lines.len() as f32) as usize % lines.len()];
                let i = at(rng, out.len()).min(out.len());
                let mut piece = line.to_vec();
                piece.push(b'\n');
                out.splice(i..i, piece);
            }
            _ => {
                let i = at(rng, out.len()).min(out.len());
                out.insert(i, (rng.next_f32() * 256.0) as u8);
            }
        }
    }
    out
}

/// Runs `parse` on `CASES` mutations of `samples`: no panic, and every error names `origin`
/// (one of `|`-separated names, for parsers that read several files).
fn property<T>(
    what: &str,
    samples: &[Vec<u8>],
    origin: &str,
    parse: impl Fn(&[u8]) -> ranklet::Result<T>,
) -> usize {
    let mut rng = SplitMix(0xF0_22 ^ what.len() as u64);
    let mut errors = 0;
    for case in 0..CASES {
        let sample = &samples[case as usize % samples.len()];
        let input = mutate(sample, &mut rng);
        let result = catch_unwind(AssertUnwindSafe(|| parse(&input)));
        let shown = || String::from_utf8_lossy(&input[..input.len().min(400)]).into_owned();
        match result {
            Err(_) => panic!("{what}: case {case} panicked on {:?}", shown()),
            Ok(Err(e)) => {
                errors += 1;
                let message = e.to_string();
                assert!(
                    origin.split('|').any(|o| message.contains(o)),
                    "{what}: case {case}: the error does not name {origin}: {message}\ninput: {:?}",
                    shown()
                );
            }
            Ok(Ok(_)) => {}
        }
    }
    assert!(
        errors > 0,
        "{what}: no mutation was refused (the test would prove nothing)"
    );
    // Counted by scripts/report-hardening.sh into reports/hardening.json's property_cases.
    println!("property {what}: {CASES} cases, {errors} refused, no panic");
    errors
}

fn catalogue_jsonl() -> Vec<u8> {
    br#"{"id": "a1", "title": "Toy Story", "categories": ["Animation", "Comedy"], "popularity": 4.5}
{"id": "a2", "title": "Heat", "description": "A heist.", "price": 9.99, "genres": ["Crime"]}
{"id": "a3", "title": "Alien", "year": 1979}
"#
    .to_vec()
}

#[test]
fn catalogues_never_panic_and_errors_name_the_file() {
    let jsonl = catalogue_jsonl();
    let array = br#"[{"id": "a1", "title": "Toy Story"}, {"id": "a2", "title": "Heat", "categories": ["Crime"]}]"#.to_vec();
    let n = property("catalogue", &[jsonl, array], "shop-catalog.jsonl", |b| {
        read_catalog(b, "shop-catalog.jsonl")
    });
    println!("catalogue: {CASES} cases, {n} refused");
}

#[test]
fn events_jsonl_and_csv_never_panic_and_errors_name_the_file() {
    let catalog = catalogue_jsonl();
    let jsonl = br#"{"user": "u1", "item": "a1", "ts": 1, "event": "click"}
{"user": "u1", "item": "a2", "ts": 2, "event": "cart", "value": 1}
{"user": "u2", "item": "a3", "ts": "2026-01-02T03:04:05Z"}
{"user": "u2", "query": "space films", "ts": 4, "event": "search"}
"#
    .to_vec();
    let csv = b"user,item,ts,event\nu1,a1,1,click\nu1,a2,2,like\nu2,a3,3,view\n".to_vec();
    let n = property("events.jsonl", &[jsonl], "events.jsonl", |b| {
        Dataset::from_contracts("fuzz", &catalog, "catalog.jsonl", b, "events.jsonl")
    });
    let m = property("events.csv", &[csv], "events.csv", |b| {
        Dataset::from_contracts("fuzz", &catalog, "catalog.jsonl", b, "events.csv")
    });
    println!("events: {CASES} JSONL cases ({n} refused), {CASES} CSV cases ({m} refused)");
}

#[test]
fn recbole_atomic_files_never_panic_and_errors_name_the_file() {
    let inter = b"user_id:token\titem_id:token\trating:float\ttimestamp:float\n1\t10\t5\t881250949\n1\t11\t3\t881250950\n2\t10\t4\t881250951\n".to_vec();
    let item = b"item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n10\tToy Story\t1995\tAnimation Comedy\n11\tHeat\t1995\tCrime\n".to_vec();
    let a = property("atomic", &[inter.clone(), item.clone()], "ml.inter", |b| {
        AtomicFile::parse(b, "ml.inter")
    });
    let i = property(
        "recbole .inter",
        std::slice::from_ref(&inter),
        "ml.inter",
        |b| Dataset::from_recbole("ml", b, "ml.inter", &item, "ml.item"),
    );
    // A damaged .item can leave an item of the .inter unknown: that error names the .inter.
    let j = property(
        "recbole .item",
        std::slice::from_ref(&item),
        "ml.item|ml.inter",
        |b| Dataset::from_recbole("ml", &inter, "ml.inter", b, "ml.item"),
    );
    println!("RecBole: {} cases, {a}/{i}/{j} refused", 3 * CASES);
}

#[test]
fn manifests_never_panic_and_errors_name_the_file() {
    let bundle = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/models/student/manifest.json"
    ))
    .unwrap();
    let shop = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/models/shop/manifest.json"
    ))
    .unwrap();
    property("bundle manifest", &[bundle, shop], "manifest.json", |b| {
        Manifest::from_json(b, "manifest.json")
    });
    let index = br#"{"format": "ranklet-index", "format_version": 1, "model": {"name": "shop", "manifest_sha256": "00"},
"items": 2, "dim": 4, "dtype": "int8", "files": {"vectors.safetensors": {"bytes": 10, "sha256": "00"}, "items.json": {"bytes": 2, "sha256": "00"}},
"vectors": "vectors.safetensors", "ids": "items.json"}"#
        .to_vec();
    property("index manifest", &[index], "index manifest.json", |b| {
        IndexManifest::from_json(b, "index manifest.json")
    });
}

#[test]
fn safetensors_headers_never_panic_and_errors_name_the_file() {
    // A shard as `ranklet index` writes it, and an encoder's weights.
    let shard = Shard {
        ids: vec!["a1".into(), "a2".into(), "a3".into()],
        items: vec![
            serde_json::json!({"id": "a1", "title": "Toy Story"}),
            serde_json::json!({"id": "a2", "title": "Heat", "price": 9.99}),
            serde_json::json!({"id": "a3", "title": "Alien"}),
        ],
        rows: ranklet::index::format::Rows {
            vectors: vec![1, -2, 3, 4, 5, 6, -7, 8, 9, 10, 11, -12],
            scales: vec![0.1, 0.2, 0.3],
            hashes: vec![1, 2, 3],
        },
    }
    .to_bytes(4);
    property("shard", &[shard], "shards/00001.safetensors", |b| {
        Shard::from_bytes(b, 3, 4, "shards/00001.safetensors")
    });
    let weights = ranklet::fixtures::to_safetensors(&random_bert_tensors(&tiny_config(), 3));
    let config = tiny_config();
    let device = burn::prelude::Device::flex();
    // Mutations of the header region only (the tensor data is large and any bytes are values).
    let header_len = 8 + u64::from_le_bytes(weights[..8].try_into().unwrap()) as usize;
    let head = weights[..header_len.min(weights.len())].to_vec();
    let body = weights[header_len..].to_vec();
    property("encoder weights", &[head], "model.safetensors", |h| {
        let mut bytes = h.to_vec();
        bytes.extend_from_slice(&body);
        ranklet::text::weights::load_encoder(&bytes, &config, &device, "model.safetensors")
    });
}

#[test]
fn tokenizer_and_config_json_never_panic_and_errors_name_the_file() {
    let tokenizer = bert_tokenizer_json(&tiny_vocab()).into_bytes();
    property("tokenizer.json", &[tokenizer], "tokenizer.json", |b| {
        TextTokenizer::from_bytes(b, 32, "tokenizer.json")
    });
    let config = serde_json::to_vec(&tiny_config()).unwrap();
    property("config.json", &[config], "config.json", |b| {
        BertConfig::from_json(&String::from_utf8_lossy(b), "config.json")
    });
}
