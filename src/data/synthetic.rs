//! Synthetic shoppers for fast tests: items belong to topics and their text uses the topic's
//! words; each user has a taste (two favourite topics) and moves between them, so both the
//! text and the order carry signal that a recommender can learn.

use crate::contracts::EventKind;
use crate::data::dataset::{Dataset, ItemText};
use crate::rng::SplitMix;

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

/// `n` synthetic product titles of 10–20 words, the same for every `seed` on every target
/// (the native and browser benchmarks embed identical texts).
pub fn product_titles(n: usize, seed: u64) -> Vec<String> {
    const BRANDS: &[&str] = &[
        "Acme", "Nordic", "Zenith", "Bodum", "Anker", "Philips", "Logi", "Kettler",
    ];
    const ADJECTIVES: &[&str] = &[
        "wireless",
        "stainless",
        "ergonomic",
        "compact",
        "portable",
        "rechargeable",
        "waterproof",
        "lightweight",
        "premium",
        "adjustable",
        "foldable",
        "vintage",
        "organic",
        "heavy-duty",
    ];
    const NOUNS: &[&str] = &[
        "headphones",
        "coffee grinder",
        "office chair",
        "desk lamp",
        "backpack",
        "water bottle",
        "running shoes",
        "phone case",
        "bluetooth speaker",
        "yoga mat",
        "kettle",
        "monitor stand",
    ];
    const DETAILS: &[&str] = &[
        "with USB-C charging",
        "for home and office",
        "in matte black",
        "2-pack",
        "30h battery",
        "BPA free",
        "size M",
        "1.5 L",
        "with carrying case",
        "for men and women",
        "gift set",
        "dishwasher safe",
        "noise cancelling",
        "extra large",
        "eco friendly",
        "quick release",
    ];
    let mut rng = SplitMix(seed);
    let mut pick =
        |list: &[&'static str]| list[(rng.next_f32() * list.len() as f32) as usize % list.len()];
    (0..n)
        .map(|_| {
            let mut words: Vec<String> = vec![
                pick(BRANDS).into(),
                pick(ADJECTIVES).into(),
                pick(NOUNS).into(),
            ];
            let target = 10
                + (pick(&["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10"])
                    .parse::<usize>()
                    .unwrap_or(0));
            while words
                .iter()
                .map(|w| w.split_whitespace().count())
                .sum::<usize>()
                < target
            {
                words.push(pick(DETAILS).into());
            }
            let mut title = words.join(" ");
            while title.split_whitespace().count() > 20 {
                title = title
                    .rsplit_once(' ')
                    .map(|(a, _)| a.to_string())
                    .unwrap_or(title);
            }
            title
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Split;
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

    #[test]
    fn product_titles_have_10_to_20_words_and_are_reproducible() {
        let a = product_titles(200, 1);
        assert_eq!(a, product_titles(200, 1));
        assert_ne!(a, product_titles(200, 2));
        for t in &a {
            let n = t.split_whitespace().count();
            assert!((10..=20).contains(&n), "{n} words: {t}");
        }
    }
}
