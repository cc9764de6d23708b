//! The recommender's weights as safetensors (`rec.safetensors` in a bundle), named by burn's
//! module paths (e.g. `encoder.transformer.layers.0.mha.query.weight`).

use burn::prelude::*;
use burn::store::{ModuleSnapshot, SafetensorsStore};

use crate::error::{Error, Result};
use crate::rec::{Recommender, RecommenderConfig};

/// How `rec.safetensors` stores its floats; computed in f32 either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecDtype {
    /// Exact: the bundle evaluates to the training run's figures.
    #[default]
    F32,
    /// Half the download; scores move by f16 rounding of the weights (~1e-3 relative).
    F16,
}

impl RecDtype {
    /// The names a command line or config uses.
    pub const NAMES: [&str; 2] = ["f32", "f16"];

    pub fn name(self) -> &'static str {
        match self {
            RecDtype::F32 => "f32",
            RecDtype::F16 => "f16",
        }
    }
}

impl std::str::FromStr for RecDtype {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "f32" => Ok(RecDtype::F32),
            "f16" => Ok(RecDtype::F16),
            other => Err(format!("unknown dtype {other:?} (one of f32, f16)")),
        }
    }
}

impl std::fmt::Display for RecDtype {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Refuses a safetensors file with a NaN or infinite F32 value, naming the tensor.
fn check_finite(bytes: &[u8]) -> Result<()> {
    use safetensors::{Dtype, SafeTensors};
    let file = SafeTensors::deserialize(bytes)
        .map_err(|e| Error::Backend(format!("the recommender's tensors: {e}")))?;
    for (name, view) in file.tensors() {
        let bad = view.dtype() == Dtype::F32
            && view
                .data()
                .chunks_exact(4)
                .any(|b| !f32::from_le_bytes([b[0], b[1], b[2], b[3]]).is_finite());
        if bad {
            return Err(Error::bad_input(
                "rec.safetensors",
                format!(
                    "tensor {name} holds NaN or infinite weights (a diverged run); no bundle is written"
                ),
            ));
        }
    }
    Ok(())
}

/// Rewrites every float tensor of a safetensors file as `to` (F32 or F16); others are kept.
fn convert_floats(bytes: &[u8], to: safetensors::Dtype, origin: &str) -> Result<Vec<u8>> {
    use safetensors::{Dtype, SafeTensors, tensor::TensorView};
    let file = SafeTensors::deserialize(bytes)
        .map_err(|e| Error::bad_file(origin, format!("not a safetensors file: {e}")))?;
    let mut converted: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    for (name, view) in file.tensors() {
        let data = view.data();
        let floats: Option<Vec<f32>> = match view.dtype() {
            Dtype::F32 => Some(
                data.chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect(),
            ),
            Dtype::F16 => Some(
                data.chunks_exact(2)
                    .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                    .collect(),
            ),
            _ => None,
        };
        let (dtype, raw) = match (floats, to) {
            (Some(v), Dtype::F16) => (
                Dtype::F16,
                v.iter()
                    .flat_map(|x| half::f16::from_f32(*x).to_le_bytes())
                    .collect(),
            ),
            (Some(v), _) => (Dtype::F32, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
            (None, _) => (view.dtype(), data.to_vec()),
        };
        converted.push((name, dtype, view.shape().to_vec(), raw));
    }
    let views: Vec<(String, TensorView<'_>)> = converted
        .iter()
        .map(|(n, d, s, r)| {
            TensorView::new(*d, s.clone(), r)
                .map(|v| (n.clone(), v))
                .map_err(|e| Error::bad_file(origin, format!("tensor {n}: {e}")))
        })
        .collect::<Result<_>>()?;
    safetensors::serialize(views, None)
        .map_err(|e| Error::Backend(format!("cannot write {origin}: {e}")))
}

impl Recommender {
    /// The model's tensors as a safetensors file with floats stored as `dtype`; a model with a
    /// non-finite weight (a diverged run) is refused, naming the tensor, so no bundle carries one.
    pub fn to_safetensors_as(&self, dtype: RecDtype) -> Result<Vec<u8>> {
        let bytes = self.to_safetensors()?;
        check_finite(&bytes)?;
        match dtype {
            RecDtype::F32 => Ok(bytes),
            RecDtype::F16 => convert_floats(&bytes, safetensors::Dtype::F16, "rec.safetensors"),
        }
    }

    /// The model's tensors as a safetensors file (f32).
    pub fn to_safetensors(&self) -> Result<Vec<u8>> {
        let mut store = SafetensorsStore::from_bytes(None);
        self.save_into(&mut store)
            .map_err(|e| Error::Backend(format!("cannot serialise the recommender: {e}")))?;
        store
            .get_bytes()
            .map_err(|e| Error::Backend(format!("cannot serialise the recommender: {e}")))
    }

    /// Builds a model of `config` on `device` and fills it from a safetensors file; every tensor
    /// must be present with its shape. `origin` names the file in errors.
    pub fn from_safetensors(
        config: &RecommenderConfig,
        bytes: Vec<u8>,
        device: &Device,
        origin: &str,
    ) -> Result<Self> {
        let mut model = Recommender::init(config, device);
        // f16 files (RecDtype::F16) are widened to f32 first: the model computes in f32.
        let has_f16 = safetensors::SafeTensors::deserialize(&bytes)
            .map_err(|e| Error::bad_file(origin, format!("not a safetensors file: {e}")))?
            .tensors()
            .iter()
            .any(|(_, v)| v.dtype() == safetensors::Dtype::F16);
        let bytes = if has_f16 {
            convert_floats(&bytes, safetensors::Dtype::F32, origin)?
        } else {
            bytes
        };
        let mut store = SafetensorsStore::from_bytes(Some(bytes));
        let result = model
            .load_from(&mut store)
            .map_err(|e| Error::bad_file(origin, format!("not a recommender file: {e}")))?;
        if !result.errors.is_empty() || !result.missing.is_empty() {
            let mut why: Vec<String> = result.errors.iter().map(|e| format!("{e:?}")).collect();
            why.extend(result.missing.iter().map(|(p, _)| format!("missing {p}")));
            why.truncate(4);
            return Err(Error::bad_file(
                origin,
                format!(
                    "does not fit the recommender config in manifest.json: {}",
                    why.join("; ")
                ),
            ));
        }
        Ok(model)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rec::{ItemMode, ItemTowerConfig, SequenceBatch, SequenceEncoderConfig};

    fn config(hidden: usize) -> RecommenderConfig {
        RecommenderConfig {
            items: ItemTowerConfig {
                text_dim: 6,
                hidden,
                experts: 2,
                dropout: 0.0,
                mode: ItemMode::Transductive,
                num_items: 9,
                id_dropout: 0.0,
            },
            sequence: SequenceEncoderConfig {
                hidden,
                layers: 1,
                heads: 2,
                inner: 8,
                dropout: 0.0,
                max_len: 5,
            },
            temperature: 0.1,
            signals: Default::default(),
            new_items: Default::default(),
        }
    }

    #[test]
    fn round_trip_gives_the_same_scores_and_a_wrong_shape_is_refused() {
        let (_seeded, device) = crate::fixtures::seeded_cpu(3);
        let model = Recommender::init(&config(4), &device);
        let text = Tensor::<2>::random(
            [9, 6],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            &device,
        );
        let batch = SequenceBatch::new(&[(&[1, 2, 3][..], &[][..]), (&[4][..], &[][..])]);
        let before = model.scores(&batch, text.clone());
        let bytes = model.to_safetensors().unwrap();
        let back =
            Recommender::from_safetensors(&config(4), bytes.clone(), &device, "rec").unwrap();
        let after = back.scores(&batch, text);
        before
            .into_data()
            .assert_approx_eq::<f32>(&after.into_data(), burn::tensor::Tolerance::absolute(1e-6));
        let err = Recommender::from_safetensors(&config(6), bytes, &device, "rec.safetensors")
            .expect_err("a wider model does not load")
            .to_string();
        assert!(err.contains("rec.safetensors"), "{err}");
        // f16: half the bytes, scores within f16 rounding of the weights.
        let f32_bytes = model.to_safetensors_as(RecDtype::F32).unwrap();
        let f16_bytes = model.to_safetensors_as(RecDtype::F16).unwrap();
        let payload = |bytes: &[u8], want: safetensors::Dtype| -> usize {
            let file = safetensors::SafeTensors::deserialize(bytes).unwrap();
            file.tensors()
                .iter()
                .map(|(_, v)| {
                    assert_eq!(v.dtype(), want);
                    v.data().len()
                })
                .sum()
        };
        assert_eq!(
            2 * payload(&f16_bytes, safetensors::Dtype::F16),
            payload(&f32_bytes, safetensors::Dtype::F32)
        );
        let half = Recommender::from_safetensors(&config(4), f16_bytes, &device, "rec").unwrap();
        let scores = half.scores(&batch, text_again(&device)).into_data();
        let exact = model.scores(&batch, text_again(&device)).into_data();
        scores.assert_approx_eq::<f32>(&exact, burn::tensor::Tolerance::absolute(2e-2));
        assert!(
            Recommender::from_safetensors(
                &config(4),
                b"not safetensors".to_vec(),
                &device,
                "rec.safetensors"
            )
            .expect_err("garbage is refused")
            .to_string()
            .contains("rec.safetensors")
        );
    }

    fn text_again(device: &Device) -> Tensor<2> {
        Tensor::<2>::from_data(
            TensorData::new(
                (0..54)
                    .map(|i| ((i * 7 % 11) as f32 - 5.0) / 5.0)
                    .collect::<Vec<f32>>(),
                [9, 6],
            ),
            device,
        )
    }
}
