//! A dataset in memory — items with text, per-user interaction sequences in time order — read
//! from a RecBole atomic folder ([`crate::data::recbole`]) or from the catalog + events
//! contracts. The protocol's split is [`crate::data::split`].

use std::collections::HashMap;
#[cfg(not(target_arch = "wasm32"))]
use std::path::Path;

use serde_json::Value;

use crate::contracts::EventKind;
use crate::data::atomic::parse_timestamp;
use crate::data::catalog::{jsonl_values, read_catalog};
use crate::error::{Error, Result};

/// An item: its id in the data and the text the encoder sees.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemText {
    pub id: String,
    pub text: String,
    /// What the visitor's persona is made of: genres or categories (the catalog's `genres`,
    /// else its `category` entries; RecBole's genre/category column, split into its tokens).
    pub facets: Vec<String>,
    /// The item's title and description as two separate texts, where it has both (the
    /// catalog's `title` and `text`; RecBole's title and description columns): the two views of
    /// `ranklet train --two-view`.
    pub views: Option<[String; 2]>,
}

impl From<crate::data::CatalogItem> for ItemText {
    fn from(c: crate::data::CatalogItem) -> Self {
        let description = c.text.as_deref().map(str::trim).unwrap_or("");
        Self {
            text: c.encoder_text(),
            facets: c.facets(),
            views: (!description.is_empty())
                .then(|| [c.title.trim().to_string(), description.to_string()]),
            id: c.id,
        }
    }
}

/// Items plus per-user sequences of item indices, each sorted by timestamp with ties in file
/// order.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub name: String,
    pub items: Vec<ItemText>,
    pub users: Vec<String>,
    pub sequences: Vec<Vec<usize>>,
    /// The behaviour type of each event of `sequences` (same shape). RecBole rows with a
    /// rating carry it as feedback ([`EventKind::from_rating`]); rows without one are clicks.
    pub kinds: Vec<Vec<EventKind>>,
    /// The time (unix seconds) of each event of `sequences` (same shape; may be empty for a
    /// catalog-only dataset).
    pub times: Vec<Vec<f64>>,
}

impl Dataset {
    /// A catalogue's `items` in the order of `ids` (a model's item rows): what a model with ID
    /// embeddings ranks (the item sets must be equal; `origin` and `model` name them in errors).
    pub fn catalogue_in_item_order(
        origin: &str,
        items: Vec<ItemText>,
        ids: &[String],
        model: &str,
    ) -> Result<Vec<ItemText>> {
        let catalogue = Dataset {
            name: origin.to_string(),
            items,
            users: Vec::new(),
            sequences: Vec::new(),
            kinds: Vec::new(),
            times: Vec::new(),
        };
        Ok(catalogue.in_item_order(ids, model)?.items)
    }

    /// The same dataset with its items in the order of `ids` (a model's item rows). The item
    /// sets must be equal: a model with ID embeddings ranks the catalog it was trained on.
    pub fn in_item_order(&self, ids: &[String], model: &str) -> Result<Dataset> {
        let row: std::collections::HashMap<&str, usize> = ids
            .iter()
            .enumerate()
            .map(|(r, id)| (id.as_str(), r))
            .collect();
        let unknown: Vec<&str> = self
            .items
            .iter()
            .map(|i| i.id.as_str())
            .filter(|id| !row.contains_key(id))
            .collect();
        if !unknown.is_empty() || ids.len() != self.items.len() {
            let shown: Vec<&str> = unknown.iter().take(3).copied().collect();
            return Err(Error::bad_input(
                self.name.clone(),
                format!(
                    "{} items, {} of them unknown to the model {model} (e.g. {shown:?}), which has \
                     ID embeddings for {} items; ID-based modes rank the catalog they were \
                     trained on (the inductive mode ranks any catalog)",
                    self.items.len(),
                    unknown.len(),
                    ids.len()
                ),
            ));
        }
        let new_of_old: Vec<usize> = self.items.iter().map(|i| row[i.id.as_str()]).collect();
        let mut items = self.items.clone();
        for (old, item) in self.items.iter().enumerate() {
            items[new_of_old[old]] = item.clone();
        }
        Ok(Dataset {
            name: self.name.clone(),
            items,
            users: self.users.clone(),
            sequences: self
                .sequences
                .iter()
                .map(|s| s.iter().map(|&i| new_of_old[i]).collect())
                .collect(),
            kinds: self.kinds.clone(),
            times: self.times.clone(),
        })
    }
}

/// One raw interaction before indexing.
#[derive(Debug, Clone)]
pub(crate) struct RawEvent {
    pub(crate) user: String,
    pub(crate) item: String,
    pub(crate) ts: f64,
    pub(crate) kind: EventKind,
    /// Where it came from, for messages.
    pub(crate) at: String,
}

impl Dataset {
    /// Builds a dataset from items and events. Events naming unknown items are an error.
    pub(crate) fn build(name: &str, items: Vec<ItemText>, events: Vec<RawEvent>) -> Result<Self> {
        let index: HashMap<&str, usize> = items
            .iter()
            .enumerate()
            .map(|(i, it)| (it.id.as_str(), i))
            .collect();
        let mut users: Vec<String> = Vec::new();
        let mut user_index: HashMap<String, usize> = HashMap::new();
        let mut per_user: Vec<Vec<(f64, usize, EventKind)>> = Vec::new();
        for e in &events {
            let item = *index.get(e.item.as_str()).ok_or_else(|| {
                Error::bad_input(&e.at, format!("item {:?} is not in the catalog", e.item))
            })?;
            let u = *user_index.entry(e.user.clone()).or_insert_with(|| {
                users.push(e.user.clone());
                per_user.push(Vec::new());
                users.len() - 1
            });
            per_user[u].push((e.ts, item, e.kind));
        }
        let mut sequences = Vec::with_capacity(per_user.len());
        let mut kinds = Vec::with_capacity(per_user.len());
        let mut times = Vec::with_capacity(per_user.len());
        for mut seq in per_user {
            // Stable: equal timestamps keep file order (this decides many test targets). Events
            // out of time order in the file are put in time order here.
            seq.sort_by(|a, b| a.0.total_cmp(&b.0));
            sequences.push(seq.iter().map(|e| e.1).collect());
            kinds.push(seq.iter().map(|e| e.2).collect());
            times.push(seq.iter().map(|e| e.0).collect());
        }
        Ok(Self {
            name: name.to_string(),
            items,
            users,
            sequences,
            kinds,
            times,
        })
    }

    /// Number of interactions.
    pub fn num_interactions(&self) -> usize {
        self.sequences.iter().map(Vec::len).sum()
    }

    /// The robustness protocol's noisy copy: into each user's training part (all but the last
    /// two events, which stay the clean validation and test targets) go
    /// `round(fraction × training events)` clicks on items drawn uniformly from the catalog, at
    /// uniformly drawn places (seeded). The noise is plain clicks: no explicit feedback.
    pub fn with_noise_clicks(&self, fraction: f64, seed: u64) -> Dataset {
        let mut rng = crate::rng::SplitMix(seed);
        let mut out = self.clone();
        let n_items = self.items.len();
        for (u, seq) in out.sequences.iter_mut().enumerate() {
            let n = seq.len();
            if n < 3 || n_items == 0 {
                continue;
            }
            let kinds = &mut out.kinds[u];
            if kinds.len() != n {
                *kinds = vec![EventKind::Click; n];
            }
            let times = &mut out.times[u];
            if times.len() != n {
                *times = (0..n).map(|t| t as f64).collect();
            }
            let add = (fraction.max(0.0) * (n - 2) as f64).round() as usize;
            for _ in 0..add {
                let train_len = seq.len() - 2;
                let at = ((rng.next_f32() * (train_len + 1) as f32) as usize).min(train_len);
                let item = ((rng.next_f32() * n_items as f32) as usize).min(n_items - 1);
                seq.insert(at, item);
                kinds.insert(at, EventKind::Click);
                // At the time of the event it precedes (times stay in order).
                let ts = times[at];
                times.insert(at, ts);
            }
        }
        out
    }

    /// Reads a dataset folder: RecBole atomic files (`NAME.inter`, `NAME.item`) or the contracts
    /// (`catalog.json`/`catalog.jsonl` + `events.jsonl`).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn read_dir(dir: &Path) -> Result<Self> {
        let shown = dir.display().to_string();
        let entries: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| Error::bad_input(&shown, format!("cannot read dataset folder: {e}")))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        let read = |p: &Path| std::fs::read(p).map_err(|e| Error::io(p.display(), e));
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| shown.clone());
        // The atomic file of a kind: the only one, or the one named after the folder
        // (RecBole's `ml-100k/ml-100k.inter`); several others are refused, naming them, rather
        // than one picked in the order the directory happens to list them.
        let with_ext = |ext: &str| -> Result<Option<std::path::PathBuf>> {
            let mut found: Vec<&std::path::PathBuf> = entries
                .iter()
                .filter(|p| p.extension().is_some_and(|e| e == ext))
                .collect();
            found.sort();
            match found.len() {
                0 => Ok(None),
                1 => Ok(Some(found[0].clone())),
                _ => match found
                    .iter()
                    .find(|p| p.file_stem().is_some_and(|s| *s == *name))
                {
                    Some(p) => Ok(Some((*p).clone())),
                    None => Err(Error::bad_input(
                        &shown,
                        format!(
                            "{} .{ext} files ({}) and none named {name}.{ext}: keep one, or name the one to use after the folder",
                            found.len(),
                            found
                                .iter()
                                .map(|p| p.file_name().unwrap_or_default().to_string_lossy())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    )),
                },
            }
        };
        if let Some(inter) = with_ext("inter")? {
            let item = with_ext("item")?.ok_or_else(|| {
                Error::bad_input(
                    &shown,
                    "an .inter file but no .item file (item texts are needed)",
                )
            })?;
            return Self::from_recbole(
                &name,
                &read(&inter)?,
                &inter.display().to_string(),
                &read(&item)?,
                &item.display().to_string(),
            );
        }
        let catalog = ["catalog.jsonl", "catalog.json"]
            .iter()
            .map(|n| dir.join(n))
            .find(|p| p.exists())
            .ok_or_else(|| {
                Error::bad_input(
                    &shown,
                    "no .inter/.item files and no catalog.json(l) + events.jsonl/events.csv",
                )
            })?;
        let events = ["events.jsonl", "events.csv"]
            .iter()
            .map(|n| dir.join(n))
            .find(|p| p.exists())
            .ok_or_else(|| {
                Error::bad_input(&shown, "catalog found but no events.jsonl or events.csv")
            })?;
        Self::from_contracts(
            &name,
            &read(&catalog)?,
            &catalog.display().to_string(),
            &read(&events)?,
            &events.display().to_string(),
        )
    }

    /// The contracts: a catalog (JSON/JSONL) and events JSONL
    /// `{"user","item","ts","event",…}`. Events without an item (searches) are not part of the
    /// item sequences.
    pub fn from_contracts(
        name: &str,
        catalog: &[u8],
        catalog_origin: &str,
        events: &[u8],
        events_origin: &str,
    ) -> Result<Self> {
        let items = read_catalog(catalog, catalog_origin)?
            .into_iter()
            .map(ItemText::from)
            .collect();
        let text = crate::data::utf8_text(events, events_origin)?;
        let rows = if events_origin.ends_with(".csv") {
            csv_values(text, events_origin)?
        } else {
            jsonl_values(text, events_origin)?
        };
        let mut raw = Vec::new();
        for (v, at) in rows {
            let field = |k: &str| match v.get(k) {
                Some(Value::String(s)) => Some(s.clone()),
                Some(Value::Number(n)) => Some(n.to_string()),
                _ => None,
            };
            let user = field("user").ok_or_else(|| Error::bad_input(&at, "missing \"user\""))?;
            let value = field("value").and_then(|s| s.parse::<f64>().ok());
            let kind = EventKind::parse(v.get("event").and_then(Value::as_str), value, &at)?;
            let Some(item) = field("item") else {
                if kind == EventKind::Search {
                    continue;
                }
                return Err(Error::bad_input(&at, "missing \"item\""));
            };
            let ts = field("ts")
                .and_then(|s| parse_timestamp(&s))
                .ok_or_else(|| Error::bad_input(&at, "missing or non-numeric \"ts\""))?;
            raw.push(RawEvent {
                user,
                item,
                ts,
                kind,
                at,
            });
        }
        if raw.is_empty() {
            return Err(Error::bad_input(events_origin, "no events"));
        }
        Self::build(name, items, raw)
    }
}

/// The rows of a CSV file with a header line, as JSON objects keyed by the header (values stay
/// strings; empty cells are absent), each with its place (`FILE line N`) for messages.
fn csv_values(text: &str, origin: &str) -> Result<Vec<(Value, String)>> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| {
            Error::bad_input(
                format!("{origin} line 1"),
                format!("invalid CSV header: {e}"),
            )
        })?
        .iter()
        .map(str::to_string)
        .collect();
    let mut out = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map(|p| p.line()).unwrap_or(0);
            Error::bad_input(format!("{origin} line {line}"), format!("invalid CSV: {e}"))
        })?;
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        let object: serde_json::Map<String, Value> = header
            .iter()
            .zip(record.iter())
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k.clone(), Value::String(v.to_string())))
            .collect();
        out.push((Value::Object(object), format!("{origin} line {line}")));
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const ITEM: &[u8] = b"item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n1\tToy Story\t1995\tAnimation Children's Comedy\n2\tGoldenEye\t1995\tAction\n3\tHeat\t1995\tCrime\n4\tBabe\t1995\tFamily\n";

    /// Several `.inter` files: the one named after the folder is read; with none of that name,
    /// the folder is refused naming the candidates.
    #[test]
    fn several_atomic_files_pick_the_folders_name_or_are_refused() {
        let root = std::env::temp_dir().join(format!("ranklet-atomic-{}", std::process::id()));
        let dir = root.join("shop");
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&dir).unwrap();
        let inter = "user_id:token\titem_id:token\ttimestamp:float\n1\t1\t1\n1\t2\t2\n1\t3\t3\n";
        std::fs::write(dir.join("shop.inter"), inter).unwrap();
        std::fs::write(
            dir.join("aaa-old.inter"),
            "user_id:token\titem_id:token\ttimestamp:float\n9\t4\t1\n",
        )
        .unwrap();
        std::fs::write(dir.join("shop.item"), ITEM).unwrap();
        let ds = Dataset::read_dir(&dir).unwrap();
        assert_eq!(ds.users.len(), 1);
        assert_eq!(ds.sequences[0].len(), 3);
        std::fs::rename(dir.join("shop.inter"), dir.join("zzz-new.inter")).unwrap();
        let err = Dataset::read_dir(&dir).unwrap_err().to_string();
        assert!(
            err.contains("aaa-old.inter")
                && err.contains("zzz-new.inter")
                && err.contains("shop.inter"),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn contracts_read_with_searches_skipped() {
        let catalog = b"{\"id\":\"a\",\"title\":\"Red shoe\"}\n{\"id\":\"b\",\"title\":\"Lamp\"}";
        let events = b"{\"user\":\"u\",\"item\":\"a\",\"ts\":1,\"event\":\"view\"}\n{\"user\":\"u\",\"event\":\"search\",\"query\":\"lamp\",\"ts\":2}\n{\"user\":\"u\",\"item\":\"b\",\"ts\":3,\"event\":\"click\"}\n";
        let ds =
            Dataset::from_contracts("c", catalog, "catalog.jsonl", events, "events.jsonl").unwrap();
        assert_eq!(ds.sequences, vec![vec![0, 1]]);
        let err = Dataset::from_contracts(
            "c",
            catalog,
            "catalog.jsonl",
            b"{\"user\":\"u\",\"item\":\"zz\",\"ts\":1}",
            "events.jsonl",
        )
        .unwrap_err();
        assert!(err.to_string().contains("events.jsonl line 1") && err.to_string().contains("zz"));
    }

    #[test]
    fn typed_events_in_time_order_and_unknown_types_refused() {
        let catalog = b"{\"id\":\"a\",\"title\":\"A\"}\n{\"id\":\"b\",\"title\":\"B\"}\n{\"id\":\"c\",\"title\":\"C\"}\n";
        // Out of time order in the file; a rating with a value; not_interested is a dislike.
        let events = b"{\"user\":\"u\",\"item\":\"c\",\"ts\":30,\"event\":\"not_interested\"}\n\
{\"user\":\"u\",\"item\":\"a\",\"ts\":10,\"event\":\"cart\"}\n\
{\"user\":\"u\",\"item\":\"b\",\"ts\":20,\"event\":\"rating\",\"value\":5}\n";
        let ds =
            Dataset::from_contracts("c", catalog, "catalog.jsonl", events, "events.jsonl").unwrap();
        assert_eq!(ds.sequences, vec![vec![0, 1, 2]]);
        assert_eq!(
            ds.kinds,
            vec![vec![EventKind::Cart, EventKind::Like, EventKind::Dislike]]
        );
        let bad = b"{\"user\":\"u\",\"item\":\"a\",\"ts\":1}\n{\"user\":\"u\",\"item\":\"b\",\"ts\":2,\"event\":\"wishlist\"}\n";
        let err = Dataset::from_contracts("c", catalog, "catalog.jsonl", bad, "events.jsonl")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("events.jsonl line 2") && err.contains("\"wishlist\""),
            "{err}"
        );
        let inter =
            b"user_id:token\titem_id:token\trating:float\ttimestamp:float\n9\t2\tgreat\t100\n";
        let err = Dataset::from_recbole("t", inter, "t.inter", ITEM, "t.item")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("t.inter line 2: rating"), "{err}");
    }

    #[test]
    fn noise_clicks_go_into_training_events_only() {
        let ds = crate::data::synthetic::synthetic_dataset(30, 40, 6, 14, 2);
        let noisy = ds.with_noise_clicks(0.4, 7);
        assert_eq!(noisy.sequences.len(), ds.sequences.len());
        for (clean, dirty) in ds.sequences.iter().zip(&noisy.sequences) {
            let n = clean.len();
            let added = (0.4 * (n - 2) as f64).round() as usize;
            assert_eq!(dirty.len(), n + added);
            // The validation and test targets are untouched, and the clean events keep their
            // order (the noisy sequence contains the clean one as a subsequence).
            assert_eq!(dirty[dirty.len() - 2..], clean[n - 2..]);
            let mut it = dirty.iter();
            assert!(clean.iter().all(|c| it.any(|d| d == c)));
        }
        assert_eq!(
            noisy.kinds.iter().map(Vec::len).collect::<Vec<_>>(),
            noisy.sequences.iter().map(Vec::len).collect::<Vec<_>>()
        );
        // Seeded.
        assert_eq!(ds.with_noise_clicks(0.4, 7).sequences, noisy.sequences);
        assert_ne!(ds.with_noise_clicks(0.4, 8).sequences, noisy.sequences);
    }

    #[test]
    fn csv_events_read_like_jsonl_and_errors_name_the_line() {
        let catalog = b"{\"id\":\"a\",\"title\":\"A\"}\n{\"id\":\"b\",\"title\":\"B\"}\n";
        let csv = b"user,item,ts,event\nu,b,20,click\nu,a,10,view\nv,,30,search\n";
        let ds = Dataset::from_contracts("c", catalog, "catalog.jsonl", csv, "events.csv").unwrap();
        assert_eq!(ds.sequences, vec![vec![0, 1]], "time order, search skipped");
        let bad = b"user,item,ts\nu,a,10\nu,zz,11\n";
        let err = Dataset::from_contracts("c", catalog, "catalog.jsonl", bad, "events.csv")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("events.csv line 3") && err.contains("zz"),
            "{err}"
        );
        let ragged = b"user,item,ts\nu,a\n";
        let err = Dataset::from_contracts("c", catalog, "catalog.jsonl", ragged, "events.csv")
            .unwrap_err()
            .to_string();
        assert!(err.contains("events.csv line 2"), "{err}");
    }
}
