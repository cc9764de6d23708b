//! A catalogue ready to rank ([`RankingState`]): its item vectors through the tower, computed
//! once, and what nearness is measured in (avoided items, search relevance, the events a long
//! history reads). The one recommend path ([`crate::rec::request`]) ranks requests over it.

use burn::prelude::*;

use crate::contracts::EventKind;
use crate::error::{Error, Result};
use crate::rec::history_select::{
    HistorySelect, SELECTION_DIM, select_positions, selection_rows, unit_rows_flat, unit_rows_of,
};
use crate::rec::model::l2_rows;
use crate::rec::readback::ReadBack;
use crate::rec::{ItemVectors, Recommender};

/// The device `model`'s weights live on.
fn model_device(model: &Recommender) -> Device {
    model.encoder.positions.weight.device()
}

/// A catalogue ready to rank: its item vectors (through the tower) and, where the model reads
/// texts, its unit text vectors (for avoided items and queries) and the rows long-history
/// selection compares.
pub struct RankingState {
    pub catalog: ItemVectors,
    /// The unit vectors nearness is measured in (avoided items, query relevance): the items'
    /// text vectors `[items, text_dim]`, or, for a catalogue given as item vectors (a
    /// precomputed index), the unit item vectors (`None`: an ID model ranked without texts).
    pub(super) text: Option<Tensor<2>>,
    /// Whether `text` and the selection rows are item vectors rather than text vectors.
    pub(super) item_space: bool,
    /// Selection rows, flat, `width` per row (see [`selection_rows`]).
    selection: Vec<f32>,
    pub(super) width: usize,
    /// Which events of a history longer than the model's window the encoder reads.
    pub history_select: HistorySelect,
    pub recent: usize,
    pub(super) temperature: f64,
    max_len: usize,
    pub(super) text_dim: usize,
    /// Each catalogue row's score lift `[1, items]` for the items the model never trained on,
    /// from the catalogue's popularity figures ([`RankingState::lift_new_items`]); none: no lift.
    pub(super) new_item_lift: Option<Tensor<2>>,
}

impl RankingState {
    /// The state for `model` over the catalogue whose text vectors are `text` `[items,
    /// text_dim]`; `with_text` says whether those are real texts (an ID model ranked without
    /// texts passes zeros and `false`). Reads the vectors back at once: native backends only
    /// (the browser has them on the CPU already: [`RankingState::from_rows`]).
    pub fn new(model: &Recommender, text: Tensor<2>, with_text: bool) -> Result<Self> {
        Self::new_with_new(model, text, with_text, &[])
    }

    /// [`RankingState::new`] where `is_new` marks the rows training never saw
    /// ([`RankingState::from_rows_with_new`]).
    pub fn new_with_new(
        model: &Recommender,
        text: Tensor<2>,
        with_text: bool,
        is_new: &[bool],
    ) -> Result<Self> {
        let [n, dim] = text.dims();
        if !with_text {
            return Ok(Self::without_text(model, n, dim, &text.device()));
        }
        let flat: Vec<f32> = text
            .into_data()
            .try_to_vec::<f32>()
            .map_err(|e| Error::Backend(format!("text vectors: {e:?}")))?;
        Ok(Self::from_rows_with_new(
            model,
            flat,
            dim,
            &model_device(model),
            is_new,
        ))
    }

    /// The state over text vectors given as rows (row-major `items × dim`, finite).
    pub fn from_rows(model: &Recommender, flat: Vec<f32>, dim: usize, device: &Device) -> Self {
        Self::from_rows_with_new(model, flat, dim, device, &[])
    }

    /// [`RankingState::from_rows`] where `is_new` marks the rows training never saw (empty:
    /// none): their item vectors are mixed with their trained text neighbours' by the model's
    /// [`crate::rec::NeighbourMix`] (`config.new_items.mix`).
    pub fn from_rows_with_new(
        model: &Recommender,
        flat: Vec<f32>,
        dim: usize,
        device: &Device,
        is_new: &[bool],
    ) -> Self {
        let n = flat.len() / dim.max(1);
        let unit_text = unit_rows_flat(&flat, dim);
        let selection = selection_rows(
            &unit_text
                .chunks(dim.max(1))
                .map(<[f32]>::to_vec)
                .collect::<Vec<_>>(),
        );
        let width = selection.first().map_or(0, Vec::len);
        let mix = model.config.new_items.mix;
        let text = Tensor::<2>::from_data(TensorData::new(flat, [n, dim]), device);
        let mut catalog = model.item_vectors(text.clone());
        if is_new.len() == n && is_new.contains(&true) && !mix.is_none() {
            catalog = mix.apply(catalog, &unit_text, dim, is_new);
        }
        let selection = selection.concat();
        Self::assemble(
            model,
            catalog,
            Some(l2_rows(text)),
            false,
            (selection, width),
            dim,
        )
    }

    /// The state over item vectors computed already — rows of the item tower's output (`raw`,
    /// row-major `items × hidden`), as a precomputed index holds them — for a model whose text
    /// vectors are `text_dim` wide. No tower runs. Nearness (avoided items, search relevance,
    /// long-history selection) is then measured between item vectors; a search query is
    /// compared through the tower, and older than the recent window it is never chosen by
    /// long-history selection (it has no row to compare in the item space on the CPU).
    pub fn from_item_rows(
        model: &Recommender,
        raw: Vec<f32>,
        hidden: usize,
        text_dim: usize,
        device: &Device,
    ) -> Self {
        let n = raw.len() / hidden.max(1);
        // One pass over the rows, no per-row allocation: a partitioned index installs ~10 000
        // candidate rows per recommendation. The unit rows are the scoring vectors and, no wider
        // than the selection projection, the selection rows as well.
        let unit_flat = unit_rows_flat(&raw, hidden);
        let selection = if hidden <= SELECTION_DIM {
            (unit_flat.clone(), hidden)
        } else {
            (
                selection_rows(&unit_rows_of(&raw, hidden)).concat(),
                SELECTION_DIM,
            )
        };
        let raw = Tensor::<2>::from_data(TensorData::new(raw, [n, hidden]), device);
        let unit = Tensor::<2>::from_data(TensorData::new(unit_flat, [n, hidden]), device);
        let catalog = ItemVectors {
            raw,
            unit: unit.clone(),
            items: n,
        };
        Self::assemble(model, catalog, Some(unit), true, selection, text_dim)
    }

    /// The state of an ID model ranking its own `items` rows, without texts.
    pub fn without_text(model: &Recommender, items: usize, dim: usize, device: &Device) -> Self {
        let catalog = model.item_vectors(Tensor::zeros([items, dim], device));
        Self::assemble(model, catalog, None, false, (Vec::new(), 0), dim)
    }

    fn assemble(
        model: &Recommender,
        catalog: ItemVectors,
        text: Option<Tensor<2>>,
        item_space: bool,
        (selection, width): (Vec<f32>, usize),
        text_dim: usize,
    ) -> Self {
        Self {
            catalog,
            text,
            item_space,
            width,
            selection,
            history_select: HistorySelect::Last,
            recent: 20,
            temperature: model.temperature,
            // The encoder's window: its position table's rows.
            max_len: model.encoder.positions.weight.dims()[0],
            text_dim,
            new_item_lift: None,
        }
    }

    /// Lifts the rows `is_new` marks (the items the model never trained on) by the catalogue's
    /// `popularity` figures, one per row (NaN or negative: none), as `lift` says
    /// ([`crate::rec::NewItemPopularity`]; the bundle's `new_items.popularity`). A new item's
    /// text cannot say how often it is chosen; the shop's counts can. Replaces an earlier lift;
    /// no new row, no figure or no lift clears it. Refused when the lengths differ from the
    /// catalogue's. `p_max`: where the rows are candidates of a larger catalogue, its largest
    /// figure (a partitioned index's manifest records it), so that a candidate is lifted as it
    /// would be in the whole catalogue; `None`: the largest of `popularity`.
    pub fn lift_new_items(
        &mut self,
        lift: crate::rec::NewItemPopularity,
        is_new: &[bool],
        popularity: &[f32],
        p_max: Option<f32>,
    ) -> Result<()> {
        let n = self.items();
        for (what, len) in [
            ("new-item flags", is_new.len()),
            ("popularity figures", popularity.len()),
        ] {
            if len != n && len != 0 {
                return Err(Error::bad_input(
                    "catalogue popularity",
                    format!("{len} {what} for a catalogue of {n} items"),
                ));
            }
        }
        let counted = popularity.iter().any(|p| p.is_finite() && *p > 0.0);
        self.new_item_lift = (!lift.is_none() && is_new.contains(&true) && counted).then(|| {
            let row = lift.score_lifts(popularity, is_new, self.temperature, p_max);
            Tensor::<2>::from_data(TensorData::new(row, [1, n]), &self.catalog.unit.device())
        });
        Ok(())
    }

    /// Catalogue items.
    pub fn items(&self) -> usize {
        self.catalog.items
    }

    /// The events the sequence encoder reads out of `history` (rows; rows ≥ the catalogue's
    /// size are queries, compared by their `query_rows`), with their behaviour types.
    pub fn read_events(
        &self,
        history: &[usize],
        kinds: &[EventKind],
        query_rows: &[Vec<f32>],
    ) -> (Vec<usize>, Vec<EventKind>) {
        let w = self.width;
        let n = self.items();
        let row = |i: usize| -> &[f32] {
            if i < n {
                &self.selection[i * w..(i + 1) * w]
            } else {
                &query_rows[i - n]
            }
        };
        let positions = if w > 0 {
            select_positions(history, self.max_len, self.history_select, self.recent, row)
        } else {
            // No texts (ID mode): the newest events.
            (history.len().saturating_sub(self.max_len)..history.len()).collect()
        };
        let reads = positions.iter().map(|&p| history[p]).collect();
        let read_kinds = if kinds.is_empty() {
            Vec::new()
        } else {
            positions.iter().map(|&p| kinds[p]).collect()
        };
        (reads, read_kinds)
    }

    /// The persona the model reads after `history` (catalogue rows, oldest first): the weight of
    /// each facet of the model's vocabulary at the newest read event. Empty for a model without
    /// persona input or an empty history.
    pub async fn persona_with<R: ReadBack>(
        &self,
        model: &Recommender,
        history: &[usize],
        kinds: &[EventKind],
        read: &R,
    ) -> Result<Vec<f32>> {
        if model.persona.is_none() || history.is_empty() {
            return Ok(Vec::new());
        }
        if let Some(bad) = history.iter().find(|&&h| h >= self.items()) {
            return Err(Error::bad_input(
                "history",
                format!(
                    "row {bad} is outside the catalogue of {} items",
                    self.items()
                ),
            ));
        }
        let (reads, read_kinds) = self.read_events(history, kinds, &[]);
        let batch =
            crate::rec::SequenceBatch::new(&[(&reads[..], &[][..])]).with_kinds(&[&read_kinds[..]]);
        let batch = model
            .with_confidence_read(batch, &self.catalog, &[history.len()], read)
            .await?;
        let p = model.persona_of(&batch).unwrap_or_default();
        let f = p.len() / reads.len().max(1);
        let last = reads.len() - 1;
        Ok(p[last * f..(last + 1) * f].to_vec())
    }
}
