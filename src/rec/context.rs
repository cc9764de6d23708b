//! Scene context (LARR): the hour of day, the page type and the device class of a request are
//! encoded separately (one embedding each) and combined with the user state by a small
//! aggregation layer — attention of the state over the three encodings, projected back and
//! added. The projection starts at zero (the encodings small and random, so it can learn), so
//! an untrained or absent context leaves the user state unchanged; row 0 of each encoder is
//! "unknown" and gets no attention.

use burn::nn::{Embedding, EmbeddingConfig, Initializer, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::softmax;

/// Page types a request can come from (row 0: unknown).
pub const PAGE_TYPES: [&str; 6] = ["unknown", "home", "product", "search", "category", "cart"];
/// Device classes (row 0: unknown).
pub const DEVICE_CLASSES: [&str; 4] = ["unknown", "desktop", "mobile", "tablet"];
/// Hour rows: 0 unknown, 1 + h for hour h of 0..24.
pub const HOUR_ROWS: usize = 25;

/// The scene inputs as the bundle manifest documents them.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ContextVocabulary {
    /// How the hour is read.
    pub hour: String,
    /// Page types, in row order (row 0: unknown).
    pub page: Vec<String>,
    /// Device classes, in row order (row 0: unknown).
    pub device: Vec<String>,
}

impl Default for ContextVocabulary {
    fn default() -> Self {
        Self {
            hour: "0-23: the request's local hour in the browser; the event's UTC hour in \
                   training data"
                .into(),
            page: PAGE_TYPES.iter().map(|s| s.to_string()).collect(),
            device: DEVICE_CLASSES.iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// The scene of one request; `None` parts are unknown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SceneContext {
    /// Hour of day 0..24 (local time in the browser; UTC for dataset timestamps).
    pub hour: Option<u8>,
    /// Index into [`PAGE_TYPES`].
    pub page: Option<u8>,
    /// Index into [`DEVICE_CLASSES`].
    pub device: Option<u8>,
}

impl SceneContext {
    /// The context of a request at unix time `ts` (seconds): its UTC hour.
    pub fn at_unix_time(ts: f64) -> Self {
        let hour = (ts.is_finite() && ts >= 0.0)
            .then(|| ((ts / 3600.0).floor() as i64).rem_euclid(24) as u8);
        Self {
            hour,
            ..Self::default()
        }
    }

    /// A page type by name (case-insensitive); an unknown name is an error naming it.
    pub fn page_named(name: &str) -> crate::Result<u8> {
        index_of(&PAGE_TYPES, name, "page type")
    }

    /// A device class by name (case-insensitive); an unknown name is an error naming it.
    pub fn device_named(name: &str) -> crate::Result<u8> {
        index_of(&DEVICE_CLASSES, name, "device class")
    }

    /// Rows of the three embeddings: (hour, page, device).
    pub fn rows(&self) -> [i64; 3] {
        [
            self.hour
                .filter(|h| *h < 24)
                .map_or(0, |h| 1 + i64::from(h)),
            self.page
                .filter(|p| usize::from(*p) < PAGE_TYPES.len())
                .map_or(0, i64::from),
            self.device
                .filter(|d| usize::from(*d) < DEVICE_CLASSES.len())
                .map_or(0, i64::from),
        ]
    }
}

fn index_of(names: &[&str], name: &str, what: &str) -> crate::Result<u8> {
    names
        .iter()
        .position(|n| n.eq_ignore_ascii_case(name.trim()))
        .map(|i| i as u8)
        .ok_or_else(|| {
            crate::Error::bad_input(
                "context",
                format!("unknown {what} {name:?} (one of {})", names.join(", ")),
            )
        })
}

/// The context encoders and their aggregation layer.
#[derive(Module, Debug)]
pub struct ContextAggregator {
    pub hour: Embedding,
    pub page: Embedding,
    /// (Not `device`: the name would clash with the module derive's own.)
    pub device_class: Embedding,
    /// Query projection of the user state for the attention over the context encodings.
    pub query: Linear,
    /// Projection of the attended context back into the state (zero at start).
    pub out: Linear,
}

impl ContextAggregator {
    pub fn init(hidden: usize, device: &Device) -> Self {
        let small = |rows: usize| {
            EmbeddingConfig::new(rows, hidden)
                .with_initializer(Initializer::Normal {
                    mean: 0.0,
                    std: 0.02,
                })
                .init(device)
        };
        Self {
            hour: small(HOUR_ROWS),
            page: small(PAGE_TYPES.len()),
            device_class: small(DEVICE_CLASSES.len()),
            query: LinearConfig::new(hidden, hidden).init(device),
            // No bias: a request with no known context must leave the state as it is.
            out: LinearConfig::new(hidden, hidden)
                .with_bias(false)
                .with_initializer(Initializer::Zeros)
                .init(device),
        }
    }

    /// `states` `[b, l, h]` and the context rows of each position `[b·l]` ×3 (hour, page,
    /// device) → states with the aggregated context added. Row 0 (unknown) of every encoder is
    /// masked out of the attention; a position with no known part is left unchanged.
    pub fn forward(&self, states: Tensor<3>, rows: &[[i64; 3]]) -> Tensor<3> {
        let [b, l, h] = states.dims();
        let device = states.device();
        let column = |k: usize| -> Tensor<2, Int> {
            let v: Vec<i64> = rows.iter().map(|r| r[k]).collect();
            Tensor::from_data(TensorData::new(v, [b, l]), &device)
        };
        let encodings = Tensor::cat(
            vec![
                self.hour.forward(column(0)).reshape([b, l, 1, h]),
                self.page.forward(column(1)).reshape([b, l, 1, h]),
                self.device_class.forward(column(2)).reshape([b, l, 1, h]),
            ],
            2,
        ); // [b, l, 3, h]
        let known: Vec<f32> = rows
            .iter()
            .flat_map(|r| r.iter().map(|&x| if x > 0 { 1.0 } else { 0.0 }))
            .collect();
        let known = Tensor::<3>::from_data(TensorData::new(known, [b, l, 3]), &device);
        let q = self.query.forward(states.clone()).reshape([b, l, 1, h]);
        let logits = (encodings.clone() * q)
            .sum_dim(3)
            .reshape([b, l, 3])
            .div_scalar((h as f64).sqrt());
        // Unknown parts get no weight; all-unknown positions get none at all.
        let weights = softmax(logits + (known.clone() - 1.0) * 1e4, 2) * known.clone();
        let attended = (encodings * weights.reshape([b, l, 3, 1]))
            .sum_dim(2)
            .reshape([b, l, h]);
        states + self.out.forward(attended)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_rows_and_names() {
        assert_eq!(SceneContext::default().rows(), [0, 0, 0]);
        let c = SceneContext::at_unix_time(3.0 * 3600.0 + 59.0);
        assert_eq!(c.hour, Some(3));
        assert_eq!(c.rows(), [4, 0, 0]);
        assert_eq!(SceneContext::at_unix_time(f64::NAN).hour, None);
        assert_eq!(SceneContext::page_named("Product").unwrap(), 2);
        assert_eq!(SceneContext::device_named("mobile").unwrap(), 2);
        let err = SceneContext::page_named("checkout")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("\"checkout\"") && err.contains("product"),
            "{err}"
        );
        // Out-of-range parts read as unknown.
        let odd = SceneContext {
            hour: Some(30),
            page: Some(99),
            device: Some(1),
        };
        assert_eq!(odd.rows(), [0, 0, 1]);
    }

    #[test]
    fn unknown_context_leaves_states_unchanged_and_known_context_moves_them() {
        let (_seeded, device) = crate::fixtures::seeded_cpu(5);
        let (b, l, h) = (2, 3, 8);
        let mut agg = ContextAggregator::init(h, &device);
        // A trained projection (non-zero), so that a known context has an effect.
        agg.out = LinearConfig::new(h, h).with_bias(false).init(&device);
        let states = Tensor::<3>::random([b, l, h], burn::tensor::Distribution::Default, &device);
        let unknown = vec![[0i64, 0, 0]; b * l];
        let same = agg.forward(states.clone(), &unknown);
        let d = (same - states.clone()).abs().max().into_scalar::<f32>();
        assert!(d < 1e-6, "{d}");
        let mut rows = unknown.clone();
        rows[4] = [10, 2, 0];
        let moved = agg.forward(states.clone(), &rows);
        let diff: Vec<f32> = (moved - states)
            .abs()
            .sum_dim(2)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        for (k, v) in diff.iter().enumerate() {
            assert_eq!(*v > 1e-6, k == 4, "position {k}: {v}");
        }
    }
}
