//! A partitioned index of clustered synthetic item vectors, for the catalogue benchmark at sizes
//! where no text catalogue exists (100 000 and 1 000 000 items), with the recall of the default
//! probing against the exact full ranking.
//!
//! The vectors: `items / 2000` topics (at least 50), unit Gaussian directions in the model's
//! hidden width; each item its topic's direction plus Gaussian noise (cosine to it about 0.75),
//! quantised as `ranklet index` quantises. A query is a visitor who looked at three items of
//! one topic: the unit mean of their vectors plus noise. Validation queries (one seed) sweep
//! `nprobe`; test queries (another seed) give the figure at the index's default setting.
//!
//!     cargo run --release --example synthetic_index -- --model models/shop --items 1000000 \
//!         --out target/bench-catalog/synthetic-1m/shop/index --report recall.json

use std::path::PathBuf;

use ranklet::index::format::{Rows, text_hash};
use ranklet::index::partition::{PartitionConfig, probe, recall_at, unit_rows};
use ranklet::index::quantise::{dequantise_rows, quantise_rows};
use ranklet::index::shard::{DEFAULT_DECOYS, DEFAULT_NPROBE, DEFAULT_POPULAR};
use ranklet::index::{CellLayout, IndexContent, bundle_ref, read_index_dir, write_index};
use ranklet::rec::rank::top_k;
use ranklet::rng::SplitMix;

fn gaussian(rng: &mut SplitMix) -> f32 {
    let u = rng.next_f32().max(1e-7);
    let v = rng.next_f32();
    (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos()
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() -> ranklet::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let model = PathBuf::from(arg(&args, "--model").expect("--model BUNDLE"));
    let n: usize = arg(&args, "--items")
        .expect("--items N")
        .parse()
        .expect("a count");
    let out = PathBuf::from(arg(&args, "--out").expect("--out DIR"));
    let seed: u64 = arg(&args, "--seed").map_or(42, |s| s.parse().expect("a seed"));
    let queries: usize = arg(&args, "--queries").map_or(200, |s| s.parse().expect("a count"));
    let model_ref = bundle_ref(&model)?;
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(model.join("manifest.json"))
            .map_err(|e| ranklet::Error::io("manifest", e))?,
    )
    .expect("bundle manifest");
    let dim = manifest["recommender"]["config"]["sequence"]["hidden"]
        .as_u64()
        .expect("hidden width") as usize;
    let topics = (n / 2000).max(50);
    let mut rng = SplitMix(seed);
    let centres: Vec<f32> = unit_rows(
        &(0..topics * dim)
            .map(|_| gaussian(&mut rng))
            .collect::<Vec<_>>(),
        dim,
    );
    let noise = 0.9 / (dim as f32).sqrt();
    let topic_of: Vec<usize> = (0..n).map(|_| rng.below(topics)).collect();
    let mut flat = Vec::with_capacity(n * dim);
    for &t in &topic_of {
        let c = &centres[t * dim..(t + 1) * dim];
        flat.extend(c.iter().map(|x| x + noise * gaussian(&mut rng)));
    }
    let (vectors, scales) = quantise_rows(&flat, dim);
    drop(flat);
    let ids: Vec<String> = (0..n).map(|i| format!("syn-{i:07}")).collect();
    let hashes = ids.iter().map(|id| text_hash(id)).collect();
    let rows = Rows {
        vectors,
        scales,
        hashes,
    };
    let display: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            serde_json::json!({"id": ids[i], "title": format!("Synthetic item {i} (topic {})", topic_of[i]),
                "price": 5 + (i * 37) % 200})
        })
        .collect();
    let popularity: Vec<f64> = (0..n).map(|_| f64::from(rng.next_f32()).powi(4)).collect();
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let start = std::time::Instant::now();
    let bytes = write_index(
        &out,
        IndexContent {
            model: model_ref,
            ids: &id_refs,
            rows: &rows,
            dim,
            display: &display,
            popularity: &popularity,
            // Synthetic rows: no item is new to a model.
            new_items: None,
        },
        Some(&CellLayout {
            partition: PartitionConfig::default(),
            nprobe: DEFAULT_NPROBE,
            decoys: DEFAULT_DECOYS,
            popular: DEFAULT_POPULAR,
        }),
    )?;
    let build_s = start.elapsed().as_secs_f64();
    eprintln!(
        "{n} synthetic items → {} ({bytes} bytes) in {build_s:.1} s",
        out.display()
    );

    // Recall of probing against the exact ranking over the int8 rows the browser ranks.
    let index = read_index_dir(&out)?;
    let cells = index.cells.clone().expect("partitioned");
    let unit = unit_rows(&dequantise_rows(&index.vectors, &index.scales, dim), dim);
    let row_of = index.row_of();
    let by_topic = {
        let mut t: Vec<Vec<usize>> = vec![Vec::new(); topics];
        for (i, &k) in topic_of.iter().enumerate() {
            t[k].push(row_of[ids[i].as_str()]);
        }
        t
    };
    let mut cell_of = vec![0usize; n];
    for (c, r) in cells.shard_rows.iter().enumerate() {
        for i in r.clone() {
            cell_of[i] = c;
        }
    }
    let sets = |seed: u64| -> Vec<(Vec<f32>, Vec<usize>)> {
        let mut rng = SplitMix(seed);
        (0..queries)
            .map(|_| {
                let members = loop {
                    let t = rng.below(topics);
                    if by_topic[t].len() >= 3 {
                        break &by_topic[t];
                    }
                };
                let seen: Vec<usize> = (0..3).map(|_| members[rng.below(members.len())]).collect();
                let mut q = vec![0f32; dim];
                for &s in &seen {
                    q.iter_mut()
                        .zip(&unit[s * dim..(s + 1) * dim])
                        .for_each(|(a, b)| *a += b);
                }
                q.iter_mut()
                    .for_each(|x| *x += 0.5 * noise * gaussian(&mut rng));
                (unit_rows(&q, dim), seen)
            })
            .collect()
    };
    let recall = |set: &[(Vec<f32>, Vec<usize>)], nprobe: usize| -> (f64, f64) {
        let (mut r10, mut r100) = (0.0, 0.0);
        for (q, seen) in set {
            let scores: Vec<f32> = unit
                .chunks_exact(dim)
                .map(|r| r.iter().zip(q).map(|(a, b)| a * b).sum())
                .collect();
            let probed = probe(&cells.centroids, dim, q, nprobe);
            let mut approx = vec![f32::NEG_INFINITY; n];
            for (i, s) in scores.iter().enumerate() {
                if probed.contains(&cell_of[i]) {
                    approx[i] = *s;
                }
            }
            for &i in cells.popular.iter().chain(seen) {
                approx[i] = scores[i];
            }
            r10 += recall_at(&top_k(&approx, 10, seen), &top_k(&scores, 10, seen));
            r100 += recall_at(&top_k(&approx, 100, seen), &top_k(&scores, 100, seen));
        }
        (r10 / set.len() as f64, r100 / set.len() as f64)
    };
    let valid = sets(seed + 1);
    let test = sets(seed + 2);
    let sweep: Vec<serde_json::Value> = [1, 2, 4, 8, 16, 32]
        .iter()
        .map(|&p| {
            let (r10, r100) = recall(&valid, p);
            eprintln!("validation nprobe {p}: recall@10 {r10:.4}, recall@100 {r100:.4}");
            serde_json::json!({"nprobe": p, "recall@10": r10, "recall@100": r100})
        })
        .collect();
    let (t10, t100) = recall(&test, cells.nprobe);
    eprintln!(
        "test nprobe {}: recall@10 {t10:.4}, recall@100 {t100:.4}",
        cells.nprobe
    );
    let report = serde_json::json!({
        "items": n,
        "topics": topics,
        "dim": dim,
        "cells": cells.shard_rows.len(),
        "nprobe": cells.nprobe,
        "decoys": cells.decoys,
        "build_seconds": build_s,
        "index_bytes": bytes,
        "queries_per_set": queries,
        "validation_sweep": sweep,
        "recall@10": t10,
        "recall@100": t100,
    });
    if let Some(path) = arg(&args, "--report") {
        std::fs::write(&path, serde_json::to_vec_pretty(&report).expect("json"))
            .map_err(|e| ranklet::Error::io(&path, e))?;
    }
    println!("{report}");
    Ok(())
}
