//! The rows of an index's items that the model never trained on, placed among its trained ones
//! by the bundle's [`NeighbourMix`] — as the recommend path places them when it installs a
//! catalogue from its texts ([`crate::rec::RankingState::from_rows_with_new`]), so that an item
//! ranks the same whether the shop serves its catalogue's texts or an index of them.
//!
//! A new item's row depends on the catalogue's trained items (its neighbours are found among
//! them), so the index records which ones ([`NewItemRows`]) and `--update` embeds the new items
//! again when they changed.

use burn::prelude::*;
use burn::tensor::IndexingUpdateOp;

use crate::contracts::sha256_hex;
use crate::data::ItemText;
use crate::error::{Error, Result};
use crate::index::format::NewItemRows;
use crate::rec::history_select::unit_rows_flat;
use crate::rec::model::l2_rows;
use crate::rec::{ItemVectors, NeighbourMix, Recommender};

/// How a run places the catalogue's new items: which rows are new, and the trained rows they
/// are mixed with (their unit text vectors and item vectors, embedded only when a new row is).
pub struct NewItemPlacement {
    mix: NeighbourMix,
    /// Each catalogue row: whether the model never trained on it.
    pub is_new: Vec<bool>,
    /// The catalogue's trained rows, in catalogue order.
    warm: Vec<usize>,
    /// Their unit text vectors (row-major, `text_dim` wide) and item vectors `[warm, hidden]`,
    /// once [`NewItemPlacement::embed_trained`] ran.
    embedded: Option<(Vec<f32>, Tensor<2>)>,
    text_dim: usize,
    /// What the index records of the placement.
    pub record: NewItemRows,
}

impl NewItemPlacement {
    /// The placement of `items`' new rows (`is_new`, [`crate::rec::RecommenderConfig::new_item_rows`])
    /// by the model's mix. `None` when nothing is mixed: no new row, no trained row, or a mix of
    /// none — the rows are then the tower's, as the recommend path leaves them.
    pub fn plan(
        model: &Recommender,
        items: &[ItemText],
        hashes: &[u64],
        is_new: Vec<bool>,
    ) -> Option<Self> {
        let mix = model.config.new_items.mix;
        let warm: Vec<usize> = (0..is_new.len()).filter(|&r| !is_new[r]).collect();
        let new_rows = is_new.iter().filter(|&&n| n).count();
        if mix.is_none() || new_rows == 0 || warm.is_empty() || is_new.len() != items.len() {
            return None;
        }
        let named: String = warm
            .iter()
            .map(|&r| format!("{}\t{:016x}\n", items[r].id, hashes[r]))
            .collect();
        Some(Self {
            mix,
            is_new,
            warm,
            embedded: None,
            text_dim: model.config.items.text_dim,
            record: NewItemRows {
                rows: new_rows,
                mix,
                trained_sha256: sha256_hex(named.as_bytes()),
            },
        })
    }

    /// Embeds the trained rows the new ones are mixed with: `embed(rows)` gives those rows' text
    /// vectors (row-major), the model's tower their item vectors. Needed before
    /// [`NewItemPlacement::place`] meets a new row; a run that embeds no new row skips it.
    pub fn embed_trained(
        &mut self,
        model: &Recommender,
        embed: impl FnOnce(&[usize]) -> Result<Vec<f32>>,
        device: &Device,
    ) -> Result<()> {
        let text = embed(&self.warm)?;
        let items = model
            .item_vectors(Tensor::from_data(
                TensorData::new(text.clone(), [self.warm.len(), self.text_dim]),
                device,
            ))
            .raw;
        self.embedded = Some((unit_rows_flat(&text, self.text_dim), items));
        Ok(())
    }

    /// `raw` (the tower's rows `[n, hidden]` for catalogue rows `rows`, their text vectors
    /// `text`, row-major) with each new row replaced by its mix with its nearest trained rows:
    /// exactly [`NeighbourMix::apply`] over the new rows and the catalogue's trained ones. An
    /// error (not a panic) if a new row comes before [`NewItemPlacement::embed_trained`] ran.
    pub fn place(&self, raw: Tensor<2>, rows: &[usize], text: &[f32]) -> Result<Tensor<2>> {
        let dim = self.text_dim;
        let new: Vec<usize> = (0..rows.len()).filter(|&k| self.is_new[rows[k]]).collect();
        if new.is_empty() {
            return Ok(raw);
        }
        let Some((warm_text, warm_items)) = self.embedded.as_ref() else {
            return Err(Error::Backend(
                "new items met before the trained rows were embedded (embed_trained)".into(),
            ));
        };
        let device = raw.device();
        let select = Tensor::<1, Int>::from_data(
            TensorData::new(
                new.iter().map(|&k| k as i64).collect::<Vec<_>>(),
                [new.len()],
            ),
            &device,
        );
        let own = raw.clone().select(0, select.clone());
        // The new rows first, then every trained row: the mix's neighbours are found among the
        // trained rows only, in catalogue order (its tie rule: the lower row).
        let both = Tensor::cat(vec![own.clone(), warm_items.clone()], 0);
        let warm = self.warm.len();
        let mut both_text = Vec::with_capacity((new.len() + warm) * dim);
        for &k in &new {
            both_text.extend(unit_rows_flat(&text[k * dim..(k + 1) * dim], dim));
        }
        both_text.extend_from_slice(warm_text);
        let mut is_new = vec![true; new.len()];
        is_new.resize(new.len() + warm, false);
        let items = ItemVectors {
            unit: l2_rows(both.clone()),
            raw: both,
            items: new.len() + warm,
        };
        let placed = self.mix.apply(items, &both_text, dim, &is_new).raw;
        let hidden = raw.dims()[1];
        let placed = placed.slice([0..new.len(), 0..hidden]);
        Ok(raw.select_assign(0, select, placed - own, IndexingUpdateOp::Add))
    }
}
