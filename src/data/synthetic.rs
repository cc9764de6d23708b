//! Synthetic shoppers for fast tests: items belong to topics and their text uses the topic's
//! words; each user has a taste (two favourite topics) and moves between them, so both the
//! text and the order carry signal that a recommender can learn.

use crate::data::dataset::{Dataset, ItemText};
use crate::data::events::EventKind;
use crate::fixtures::SplitMix;

const TOPICS: &[(&str, &[&str])] = &[
    (
        "coffee",
        &[
            "espresso",
            "grinder",
            "beans",
            "mug",
            "french press",
            "barista",
        ],
    ),
    (
        "running",
        &[
            "running shoes",
            "socks",
            "water bottle",
            "armband",
            "cap",
            "jacket",
        ],
    ),
    (
        "office",
        &[
            "desk lamp",
            "chair",
            "monitor stand",
            "keyboard",
            "notebook",
            "pen",
        ],
    ),
    (
        "garden",
        &[
            "hose",
            "gloves",
            "seeds",
            "planter",
            "shears",
            "watering can",
        ],
    ),
    (
        "kitchen",
        &["knife", "pan", "cutting board", "kettle", "whisk", "apron"],
    ),
    (
        "audio",
        &[
            "headphones",
            "speaker",
            "earbuds",
            "cable",
            "microphone",
            "amplifier",
        ],
    ),
];
const ADJECTIVES: &[&str] = &[
    "red", "black", "premium", "compact", "classic", "wireless", "steel", "organic",
];

/// `n_users` users over `n_items` items, each user with `min_len..=max_len` interactions.
pub fn synthetic_dataset(
    n_users: usize,
    n_items: usize,
    min_len: usize,
    max_len: usize,
    seed: u64,
) -> Dataset {
    let mut rng = SplitMix(seed);
    let mut pick = |n: usize| ((rng.next_f32() * n as f32) as usize).min(n - 1);
    let items: Vec<ItemText> = (0..n_items)
        .map(|i| {
            let (topic, words) = TOPICS[i % TOPICS.len()];
            let text = format!(
                "{} {} {} for {topic} lovers",
                ADJECTIVES[pick(ADJECTIVES.len())],
                words[pick(words.len())],
                i / TOPICS.len()
            );
            ItemText {
                id: format!("item-{i}"),
                text,
                facets: vec![topic.to_string()],
                views: None,
            }
        })
        .collect();
    let by_topic: Vec<Vec<usize>> = (0..TOPICS.len())
        .map(|t| (0..n_items).filter(|i| i % TOPICS.len() == t).collect())
        .collect();
    let mut sequences = Vec::with_capacity(n_users);
    for _ in 0..n_users {
        let favourites = [pick(TOPICS.len()), pick(TOPICS.len())];
        let len = min_len + pick(max_len - min_len + 1);
        let mut topic = favourites[0];
        let seq: Vec<usize> = (0..len)
            .map(|_| {
                if pick(4) == 0 {
                    topic = favourites[pick(2)];
                }
                let pool = &by_topic[topic];
                pool[pick(pool.len())]
            })
            .collect();
        sequences.push(seq);
    }
    Dataset {
        name: format!("synthetic-{seed}"),
        items,
        users: (0..n_users).map(|u| format!("user-{u}")).collect(),
        kinds: sequences
            .iter()
            .map(|s| vec![EventKind::Click; s.len()])
            .collect(),
        // One event per second from 1_700_000_000 (as `write_contracts` writes them).
        times: sequences
            .iter()
            .map(|s| (0..s.len()).map(|t| 1_700_000_000.0 + t as f64).collect())
            .collect(),
        sequences,
    }
}

/// `ds` with explicit feedback on some events, deterministically: per user u and event t,
/// `(u + t) % 6` = 0 is a like, 1 a dislike, the rest stay clicks. It gives the behaviour-type
/// embedding and DUMN's purification something to read in tests.
pub fn with_typed_feedback(mut ds: Dataset) -> Dataset {
    ds.kinds = ds
        .sequences
        .iter()
        .enumerate()
        .map(|(u, seq)| {
            (0..seq.len())
                .map(|t| match (u + t) % 6 {
                    0 => EventKind::Like,
                    1 => EventKind::Dislike,
                    _ => EventKind::Click,
                })
                .collect()
        })
        .collect();
    ds
}

/// Writes a dataset in the catalog + events contracts (`catalog.jsonl`, `events.jsonl`, one
/// event per item with its type, one second apart) into `dir`, atomically per file.
#[cfg(not(target_arch = "wasm32"))]
pub fn write_contracts(ds: &Dataset, dir: &std::path::Path) -> crate::Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| crate::Error::io(dir.display(), e))?;
    let catalog: String = ds
        .items
        .iter()
        .map(|it| {
            format!(
                "{}\n",
                serde_json::json!({"id": it.id, "title": it.text, "genres": it.facets})
            )
        })
        .collect();
    let mut events = String::new();
    for (u, seq) in ds.sequences.iter().enumerate() {
        for (t, &i) in seq.iter().enumerate() {
            let kind = ds
                .kinds
                .get(u)
                .and_then(|k| k.get(t))
                .copied()
                .unwrap_or_default();
            let event = serde_json::json!({"user": ds.users[u], "item": ds.items[i].id, "ts": 1_700_000_000 + t, "event": kind.name()});
            events.push_str(&format!("{event}\n"));
        }
    }
    crate::fsio::write_atomic(&dir.join("catalog.jsonl"), catalog.as_bytes())?;
    crate::fsio::write_atomic(&dir.join("events.jsonl"), events.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::dataset::Split;
    use crate::eval::popularity::evaluate_popularity;

    #[test]
    fn reproducible_and_learnable() {
        let a = synthetic_dataset(50, 60, 5, 12, 3);
        let b = synthetic_dataset(50, 60, 5, 12, 3);
        assert_eq!(a.sequences, b.sequences);
        assert!(a.sequences.iter().all(|s| (5..=12).contains(&s.len())));
        // Topic signal: the next item shares the previous item's topic far more than 1/6 of the time.
        let (same, total) =
            a.sequences
                .iter()
                .flat_map(|s| s.windows(2))
                .fold((0, 0), |(s, t), w| {
                    (
                        s + usize::from(w[0] % TOPICS.len() == w[1] % TOPICS.len()),
                        t + 1,
                    )
                });
        assert!(same as f64 / total as f64 > 0.5, "{same}/{total}");
        let split = Split::leave_one_out(&a, 50);
        let (plain, _) = evaluate_popularity(&split, a.items.len(), &split.test);
        assert_eq!(plain.users(), 50);
    }
}
