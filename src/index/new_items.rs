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
use crate::error::Result;
use crate::index::format::NewItemRows;
use crate::rec::history_select::unit_rows_flat;
use crate::rec::model::l2_rows;
use crate::rec::{ItemVectors, NeighbourMix, Recommender};

/// How a run places the catalogue's new items: which rows are new, and the trained rows they
/// are mixed with (their unit text vectors and item vectors).
pub struct NewItemPlacement {
    mix: NeighbourMix,
    /// Each catalogue row: whether the model never trained on it.
    pub is_new: Vec<bool>,
    /// The trained rows' unit text vectors, row-major, `text_dim` wide, in catalogue order.
    warm_text: Vec<f32>,
    /// Their item vectors (the tower's output) `[warm rows, hidden]`.
    warm_items: Tensor<2>,
    text_dim: usize,
    /// What the index records of the placement.
    pub record: NewItemRows,
}

impl NewItemPlacement {
    /// The placement of `items`' new rows (`is_new`, [`crate::rec::RecommenderConfig::new_item_rows`])
    /// by the model's mix; `embed(rows)` gives those rows' text vectors (row-major). `None` when
    /// nothing is mixed: no new row, no trained row, or a mix of none — the rows are then the
    /// tower's, as the recommend path leaves them.
    pub fn plan(
        model: &Recommender,
        items: &[ItemText],
        hashes: &[u64],
        is_new: Vec<bool>,
        embed: impl FnOnce(&[usize]) -> Result<Vec<f32>>,
        device: &Device,
    ) -> Result<Option<Self>> {
        let mix = model.config.new_items.mix;
        let warm: Vec<usize> = (0..is_new.len()).filter(|&r| !is_new[r]).collect();
        let new_rows = is_new.iter().filter(|&&n| n).count();
        if mix.is_none() || new_rows == 0 || warm.is_empty() || is_new.len() != items.len() {
            return Ok(None);
        }
        let text_dim = model.config.items.text_dim;
        let text = embed(&warm)?;
        let warm_items = model
            .item_vectors(Tensor::from_data(
                TensorData::new(text.clone(), [warm.len(), text_dim]),
                device,
            ))
            .raw;
        let named: String = warm
            .iter()
            .map(|&r| format!("{}\t{:016x}\n", items[r].id, hashes[r]))
            .collect();
        Ok(Some(Self {
            mix,
            is_new,
            warm_text: unit_rows_flat(&text, text_dim),
            warm_items,
            text_dim,
            record: NewItemRows {
                rows: new_rows,
                mix,
                trained_sha256: sha256_hex(named.as_bytes()),
            },
        }))
    }

    /// `raw` (the tower's rows `[n, hidden]` for catalogue rows `rows`, their text vectors
    /// `text`, row-major) with each new row replaced by its mix with its nearest trained rows:
    /// exactly [`NeighbourMix::apply`] over the new rows and the catalogue's trained ones.
    pub fn place(&self, raw: Tensor<2>, rows: &[usize], text: &[f32]) -> Tensor<2> {
        let dim = self.text_dim;
        let new: Vec<usize> = (0..rows.len()).filter(|&k| self.is_new[rows[k]]).collect();
        if new.is_empty() {
            return raw;
        }
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
        let both = Tensor::cat(vec![own.clone(), self.warm_items.clone()], 0);
        let warm = self.warm_text.len() / dim.max(1);
        let mut both_text = Vec::with_capacity((new.len() + warm) * dim);
        for &k in &new {
            both_text.extend(unit_rows_flat(&text[k * dim..(k + 1) * dim], dim));
        }
        both_text.extend_from_slice(&self.warm_text);
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
        raw.select_assign(0, select, placed - own, IndexingUpdateOp::Add)
    }
}
