//! `ranklet index` end to end on the tiny encoder: rows, updates, refusals, resumption, and the
//! partitioned layout.

use std::path::{Path, PathBuf};

use burn::prelude::*;

use crate::bundle::{
    RecommenderEntry, RecommenderFiles, read_model_dir, read_recommender_dir, write_bundle,
};
use crate::fixtures::{seeded_cpu, small_config, tiny_bert_files};
use crate::index::build::{CHUNK_ITEMS, PARTIAL_DIR};
use crate::index::format::{IDS_FILE, INDEX_MANIFEST, VECTORS_FILE};
use crate::index::partition::PartitionConfig;
use crate::index::shard::Shard;
use crate::index::{
    CatalogSource, CellLayout, IndexJob, IndexProgress, build_index, read_index_dir,
};
use crate::rec::RecDtype;
use crate::rec::{ItemMode, RankingState, Recommender};
use crate::text::TextEmbedder;

/// A bundle of the tiny encoder and an untrained inductive recommender (seeded) over it.
fn bundle(dir: &Path, seed: u64, device: &Device) {
    bundle_trained_on(dir, seed, device, vec!["unused".into()]);
}

/// [`bundle`] whose recommender lists `trained` as the items it trained on.
fn bundle_trained_on(dir: &Path, seed: u64, device: &Device, trained: Vec<String>) {
    let files = tiny_bert_files(3);
    // The tiny encoder's vectors are 16 wide.
    let mut config = small_config(ItemMode::Inductive, trained.len(), 8, 16, (0.0, 0.0), 8);
    config.items.text_dim = 16;
    device.seed(seed);
    let model = Recommender::init(&config, device);
    let rec = RecommenderFiles {
        entry: RecommenderEntry {
            weights: "rec.safetensors".into(),
            items: "items.json".into(),
            config,
        },
        weights: model.to_safetensors_as(RecDtype::F32).unwrap(),
        items: trained,
    };
    write_bundle(dir, &files, Some(&rec), serde_json::Value::Null).unwrap();
}

fn catalog(dir: &Path, items: &[(String, String)]) -> PathBuf {
    let lines: Vec<String> = items
        .iter()
        .map(|(id, title)| serde_json::json!({"id": id, "title": title}).to_string())
        .collect();
    let path = dir.join("catalog.jsonl");
    std::fs::write(&path, lines.join("\n")).unwrap();
    path
}

fn titles(n: usize) -> Vec<(String, String)> {
    let words = [
        "red", "blue", "green", "shoe", "lamp", "tea", "mug", "desk", "chair", "cable",
    ];
    (0..n)
        .map(|i| {
            let title = format!(
                "{} {} {}",
                words[i % 10],
                words[(i / 10) % 10],
                words[(i / 100) % 10]
            );
            (format!("sku-{i}"), title)
        })
        .collect()
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ranklet-index-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The bundle's recommender at `model_dir`, the ids it lists as trained on, and the encoder's
/// vectors of `items`' texts (row-major): what an index's rows are checked against.
fn model_and_text(
    model_dir: &Path,
    items: &[(String, String)],
    device: &Device,
) -> (Recommender, Vec<String>, Vec<f32>) {
    let files = read_model_dir(model_dir).unwrap();
    let rec = read_recommender_dir(model_dir).unwrap();
    let model = Recommender::from_safetensors(&rec.entry.config, rec.weights, device, "t").unwrap();
    let embedder = TextEmbedder::from_files(&files, device).unwrap();
    let texts: Vec<&str> = items.iter().map(|(_, t)| t.as_str()).collect();
    let text: Vec<f32> = embedder.embed(&texts).unwrap().concat();
    (model, rec.items, text)
}

/// The cosine of two rows.
fn cos(a: &[f32], b: &[f32]) -> f32 {
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>() / (norm(a) * norm(b))
}

/// The index holds the item tower's output of each item's text (up to int8 rounding), in
/// catalogue order, and reads back checked; an update embeds only what changed.
#[test]
fn index_rows_are_the_towers_output_and_updates_embed_only_changes() {
    let (_seeded, device) = seeded_cpu(1);
    let dir = temp("rows");
    bundle(&dir.join("model"), 4, &device);
    let mut items = titles(40);
    let job = IndexJob {
        model: dir.join("model"),
        catalog: CatalogSource::File(catalog(&dir, &items)),
        out: dir.join("index"),
        update: false,
        batch: 7,
        cells: None,
    };
    let first = build_index(&job, &device, |_| {}).unwrap();
    assert_eq!((first.items, first.embedded, first.reused), (40, 40, 0));
    let index = read_index_dir(&job.out).unwrap();
    assert_eq!(index.ids[3], "sku-3");
    // The same rows as the tower over the encoder's vectors, in f32.
    let (model, _, text) = model_and_text(&job.model, &items, &device);
    let exact: Vec<f32> = model
        .item_vectors(Tensor::from_data(TensorData::new(text, [40, 16]), &device))
        .raw
        .into_data()
        .try_to_vec()
        .unwrap();
    let rows = index.rows();
    for (a, b) in rows.chunks(8).zip(exact.chunks(8)) {
        assert!(cos(a, b) > 0.999, "{a:?} vs {b:?}");
    }
    // One text changed, one item new, one removed: two rows embedded, the rest kept.
    items[5].1 = "green tea mug".into();
    items.remove(9);
    items.push(("sku-new".into(), "blue desk lamp".into()));
    let update = IndexJob {
        update: true,
        catalog: CatalogSource::File(catalog(&dir, &items)),
        ..job.clone()
    };
    let second = build_index(&update, &device, |_| {}).unwrap();
    assert_eq!(
        (second.items, second.embedded, second.reused, second.dropped),
        (40, 2, 38, 1)
    );
    let updated = read_index_dir(&job.out).unwrap();
    assert_eq!(updated.ids.last().unwrap(), "sku-new");
    let r = updated.ids.iter().position(|i| i == "sku-12").unwrap();
    assert_eq!(
        updated.vectors[r * 8..(r + 1) * 8],
        index.vectors[12 * 8..13 * 8]
    );
    // A stale index names what is missing.
    let err = index.rows_for(&["sku-new".into()]).unwrap_err().to_string();
    assert!(
        err.contains("\"sku-new\"") && err.contains("--update"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Items the model never trained on get the rows the recommend path gives them (mixed with
/// their trained text neighbours' by the bundle's mix; trained rows as the tower gives them),
/// and an update whose trained items changed embeds the new items again.
#[test]
fn new_items_rows_are_placed_as_the_recommend_path_places_them() {
    let (_seeded, device) = seeded_cpu(5);
    let dir = temp("new");
    let mut items = titles(40);
    let trained: Vec<String> = items[..30].iter().map(|(id, _)| id.clone()).collect();
    bundle_trained_on(&dir.join("model"), 4, &device, trained);
    let job = IndexJob {
        model: dir.join("model"),
        catalog: CatalogSource::File(catalog(&dir, &items)),
        out: dir.join("index"),
        update: false,
        batch: 16,
        cells: None,
    };
    let first = build_index(&job, &device, |_| {}).unwrap();
    assert_eq!(first.embedded, 40);
    let index = read_index_dir(&job.out).unwrap();
    let record = index.manifest.new_items.clone().expect("new rows mixed");
    assert_eq!(record.rows, 10);
    // The recommend path over the same texts.
    let (model, trained, text) = model_and_text(&job.model, &items, &device);
    let ids: Vec<&str> = items.iter().map(|(id, _)| id.as_str()).collect();
    let is_new = model.config.new_item_rows(&ids, &trained);
    assert_eq!(is_new.iter().filter(|&&n| n).count(), 10);
    let rows_of = |t: Tensor<2>| t.into_data().try_to_vec::<f32>().unwrap();
    let placed = rows_of(
        RankingState::from_rows_with_new(&model, text.clone(), 16, &device, &is_new)
            .catalog
            .raw,
    );
    let unmixed = rows_of(
        model
            .item_vectors(Tensor::from_data(TensorData::new(text, [40, 16]), &device))
            .raw,
    );
    let got = index.rows();
    let mut moved = 0.0;
    for r in 0..40 {
        let row = |v: &[f32]| v[r * 8..(r + 1) * 8].to_vec();
        assert!(cos(&row(&got), &row(&placed)) > 0.999, "row {r}");
        if is_new[r] {
            moved += 1.0 - cos(&row(&placed), &row(&unmixed));
        } else {
            assert!(cos(&row(&got), &row(&unmixed)) > 0.999, "trained row {r}");
        }
    }
    // The mix moved the new rows (else the comparison above proves nothing).
    assert!(moved / 10.0 > 1e-3, "mean 1 - cos {}", moved / 10.0);

    // A trained item leaves the catalogue: the new items' neighbours may change, so their ten
    // rows are embedded again; the trained rows are kept.
    items.remove(0);
    let update = IndexJob {
        update: true,
        catalog: CatalogSource::File(catalog(&dir, &items)),
        ..job.clone()
    };
    let second = build_index(&update, &device, |_| {}).unwrap();
    assert_eq!(
        (second.embedded, second.reused, second.dropped),
        (10, 29, 1)
    );
    let updated = read_index_dir(&job.out).unwrap();
    assert_ne!(updated.manifest.new_items, Some(record));
    // Nothing changed: nothing embedded.
    let third = build_index(&update, &device, |_| {}).unwrap();
    assert_eq!((third.embedded, third.reused), (0, 39));
    let _ = std::fs::remove_dir_all(&dir);
}

/// An index of another model is refused by name; a damaged file is refused naming it.
#[test]
fn another_models_index_and_damaged_files_are_refused_by_name() {
    let (_seeded, device) = seeded_cpu(2);
    let dir = temp("refuse");
    bundle(&dir.join("a"), 4, &device);
    bundle(&dir.join("b"), 5, &device);
    let job = IndexJob {
        model: dir.join("a"),
        catalog: CatalogSource::File(catalog(&dir, &titles(12))),
        out: dir.join("index"),
        update: false,
        batch: 64,
        cells: None,
    };
    build_index(&job, &device, |_| {}).unwrap();
    let other = IndexJob {
        model: dir.join("b"),
        update: true,
        ..job.clone()
    };
    let err = build_index(&other, &device, |_| {})
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("manifest.json") && err.contains("built with model"),
        "{err}"
    );
    // One byte of the vectors changed, same length: only the checksum can tell.
    let path = job.out.join(VECTORS_FILE);
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let err = read_index_dir(&job.out).unwrap_err().to_string();
    assert!(
        err.contains("vectors.safetensors") && err.contains("sha256"),
        "{err}"
    );
    std::fs::write(&path, &bytes[..100]).unwrap();
    let err = read_index_dir(&job.out).unwrap_err().to_string();
    assert!(
        err.contains("vectors.safetensors") && err.contains("truncated"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A run killed after its first chunk was committed, started again, embeds only the rest and
/// writes the same files as a run never interrupted.
#[test]
fn a_killed_run_resumes_from_its_committed_chunks_to_the_same_files() {
    let (_seeded, device) = seeded_cpu(3);
    let dir = temp("resume");
    bundle(&dir.join("model"), 4, &device);
    let n = CHUNK_ITEMS + 300;
    let job = IndexJob {
        model: dir.join("model"),
        catalog: CatalogSource::File(catalog(&dir, &titles(n))),
        out: dir.join("killed"),
        update: false,
        batch: 256,
        cells: None,
    };
    let killed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        build_index(&job, &device, |p| {
            if matches!(p, IndexProgress::Embedding { done, .. } if done >= CHUNK_ITEMS) {
                panic!("killed after the first chunk");
            }
        })
    }));
    assert!(killed.is_err());
    assert!(
        !job.out.join(INDEX_MANIFEST).exists(),
        "no manifest before the end"
    );
    let resumed = build_index(&job, &device, |_| {}).unwrap();
    assert_eq!((resumed.resumed, resumed.embedded), (CHUNK_ITEMS, 300));
    assert!(!job.out.join(PARTIAL_DIR).exists());
    let whole = IndexJob {
        out: dir.join("whole"),
        ..job.clone()
    };
    build_index(&whole, &device, |_| {}).unwrap();
    for name in [INDEX_MANIFEST, VECTORS_FILE, IDS_FILE] {
        assert_eq!(
            std::fs::read(job.out.join(name)).unwrap(),
            std::fs::read(whole.out.join(name)).unwrap(),
            "{name}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A partitioned index: shards of at least the minimum cover every item once, carry the
/// catalogue's shelf data, read back whole; a damaged shard is refused naming it; the
/// unpartitioned files of an earlier layout are removed.
#[test]
fn a_partitioned_index_covers_every_item_once_in_shards_of_the_minimum() {
    let (_seeded, device) = seeded_cpu(4);
    let dir = temp("cells");
    bundle(&dir.join("model"), 4, &device);
    let job = IndexJob {
        model: dir.join("model"),
        catalog: CatalogSource::File(catalog(&dir, &titles(600))),
        out: dir.join("index"),
        update: false,
        batch: 64,
        cells: None,
    };
    build_index(&job, &device, |_| {}).unwrap();
    assert!(job.out.join(VECTORS_FILE).exists());
    let cells = IndexJob {
        cells: Some(CellLayout {
            partition: PartitionConfig {
                partitions: Some(8),
                min_shard: 50,
                ..PartitionConfig::default()
            },
            nprobe: 2,
            decoys: 2,
            popular: 20,
        }),
        update: true,
        ..job.clone()
    };
    let out = build_index(&cells, &device, |_| {}).unwrap();
    assert_eq!((out.embedded, out.reused), (0, 600));
    assert!(!job.out.join(VECTORS_FILE).exists() && !job.out.join(IDS_FILE).exists());
    let index = read_index_dir(&job.out).unwrap();
    let p = index.manifest.partitions.clone().unwrap();
    assert!(p.shards.iter().all(|s| s.items >= 50), "{:?}", p.shards);
    let mut ids = index.ids.clone();
    ids.sort();
    let mut want: Vec<String> = titles(600).into_iter().map(|(id, _)| id).collect();
    want.sort();
    assert_eq!(ids, want);
    // The first shard's items carry their catalogue objects; the popular shard is the
    // catalogue's first 20 items (no popularity field: catalogue order).
    let first = &p.shards[0];
    let shard = Shard::from_bytes(
        &std::fs::read(job.out.join(&first.file)).unwrap(),
        first.items,
        8,
        &first.file,
    )
    .unwrap();
    assert_eq!(shard.items[0]["id"], serde_json::json!(shard.ids[0]));
    assert!(shard.items[0]["title"].is_string());
    let popular = Shard::from_bytes(
        &std::fs::read(job.out.join(&p.popular.file)).unwrap(),
        20,
        8,
        "popular",
    )
    .unwrap();
    assert_eq!(popular.ids[..3], ["sku-0", "sku-1", "sku-2"]);
    // Nothing for the popularity lift to scale by without figures.
    assert_eq!(p.max_popularity, None);
    let cells = index.cells.as_ref().unwrap();
    assert_eq!(cells.shard_rows.len(), p.shards.len());
    // A damaged shard is refused by name.
    let path = job.out.join(&p.shards[1].file);
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let err = read_index_dir(&job.out).unwrap_err().to_string();
    assert!(
        err.contains(&p.shards[1].file) && err.contains("sha256"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
