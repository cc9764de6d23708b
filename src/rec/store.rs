//! The recommender's weights as safetensors (`rec.safetensors` in a bundle), named by burn's
//! module paths (e.g. `encoder.transformer.layers.0.mha.query.weight`).

use burn::prelude::*;
use burn::store::{ModuleSnapshot, SafetensorsStore};

use crate::error::{Error, Result};
use crate::rec::{Recommender, RecommenderConfig};

impl Recommender {
    /// The model's tensors as a safetensors file.
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
        }
    }

    #[test]
    fn round_trip_gives_the_same_scores_and_a_wrong_shape_is_refused() {
        // Random initialisation draws from the shared CPU generator.
        #[cfg(feature = "native")]
        let _seeded = crate::train::tests::SEEDED
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let device = Device::flex();
        device.seed(3);
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
    }
}
