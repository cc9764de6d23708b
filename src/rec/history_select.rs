//! Long histories at bounded cost: which events the sequence encoder reads.
//!
//! The encoder reads at most `max_len` events. The plain window takes the newest ones. The
//! relevant selection keeps the newest `recent` events and fills the rest with the older events
//! closest to what the visitor is doing now: the cosine between each older item's text vector
//! and the mean text vector of the recent window (the window's centroid is its one-prototype
//! summary), compared in [`selection_rows`]' 128-wide projection. Kept in time order. The cost is
//! one pass over the history with a dot product per distinct item.

use burn::prelude::*;

/// The rows of `[n, dim]` vectors scaled to unit length, on the CPU (what [`select_history`]
/// compares).
pub fn unit_rows(vectors: &Tensor<2>) -> crate::Result<Vec<Vec<f32>>> {
    let dim = vectors.dims()[1];
    let flat: Vec<f32> = vectors
        .clone()
        .into_data()
        .try_to_vec::<f32>()
        .map_err(|e| crate::Error::Backend(format!("vectors: {e:?}")))?;
    Ok(unit_rows_of(&flat, dim))
}

/// [`unit_rows`] of a flat row-major buffer.
pub fn unit_rows_of(flat: &[f32], dim: usize) -> Vec<Vec<f32>> {
    unit_rows_flat(flat, dim)
        .chunks(dim.max(1))
        .map(<[f32]>::to_vec)
        .collect()
}

/// The rows of a flat row-major buffer (`dim` wide) scaled to unit length, flat (as the model's
/// `l2_rows` does on a tensor).
pub fn unit_rows_flat(flat: &[f32], dim: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(flat.len());
    for row in flat.chunks(dim.max(1)) {
        let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
        out.extend(row.iter().map(|v| v / norm));
    }
    out
}

/// Width of the vectors long-history selection compares.
pub const SELECTION_DIM: usize = 128;

/// The unit `rows` as selection vectors: projected onto [`SELECTION_DIM`] fixed random ±1
/// directions (the same on every build and target, so native and browser select the same
/// events) and scaled to unit length again. Their cosines approximate the texts' (Johnson–
/// Lindenstrauss) at a third of the cost per event for 384-wide text vectors: over a 10 000-event
/// history, that dot product per distinct item was most of `recommend()`'s time. (64 directions
/// were cheaper still but selected worse than the last-50 window on ml-100k.) Rows no wider than
/// the projection are kept as they are.
pub fn selection_rows(rows: &[Vec<f32>]) -> Vec<Vec<f32>> {
    let dim = rows.first().map_or(0, Vec::len);
    if dim <= SELECTION_DIM {
        return rows.to_vec();
    }
    // Row k of the projection is signs[k * dim..(k + 1) * dim].
    let mut rng = crate::rng::SplitMix(0x005E_1EC7);
    let signs: Vec<f32> = (0..SELECTION_DIM * dim)
        .map(|_| if rng.next_f32() < 0.5 { -1.0 } else { 1.0 })
        .collect();
    let projected: Vec<f32> = rows
        .iter()
        .flat_map(|r| (0..SELECTION_DIM).map(|k| dot(r, &signs[k * dim..(k + 1) * dim])))
        .collect();
    unit_rows_of(&projected, SELECTION_DIM)
}

/// Which events of a long history the encoder reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HistorySelect {
    /// The newest `max_len` events.
    #[default]
    Last,
    /// The newest `recent` events plus the older events most similar to them.
    Relevant,
}

impl HistorySelect {
    /// The names a command line or page uses.
    pub const NAMES: [&str; 2] = ["last", "relevant"];

    pub fn name(self) -> &'static str {
        match self {
            HistorySelect::Last => "last",
            HistorySelect::Relevant => "relevant",
        }
    }
}

impl std::str::FromStr for HistorySelect {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "last" => Ok(HistorySelect::Last),
            "relevant" => Ok(HistorySelect::Relevant),
            other => Err(format!(
                "history selection {other:?} is not \"last\" or \"relevant\""
            )),
        }
    }
}

impl std::fmt::Display for HistorySelect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The events (item rows, oldest first) that the encoder reads out of `seen`. `text(i)` is
/// item `i`'s unit text vector.
pub fn select_history<'a>(
    seen: &[usize],
    max_len: usize,
    how: HistorySelect,
    recent: usize,
    text: impl Fn(usize) -> &'a [f32],
) -> Vec<usize> {
    select_positions(seen, max_len, how, recent, text)
        .into_iter()
        .map(|p| seen[p])
        .collect()
}

/// [`select_history`] as positions in `seen` (ascending), so per-event data (behaviour types)
/// can follow the chosen events.
pub fn select_positions<'a>(
    seen: &[usize],
    max_len: usize,
    how: HistorySelect,
    recent: usize,
    text: impl Fn(usize) -> &'a [f32],
) -> Vec<usize> {
    let tail = |n: usize| (seen.len().saturating_sub(n)..seen.len()).collect::<Vec<_>>();
    if seen.len() <= max_len || how == HistorySelect::Last || recent >= max_len {
        return tail(max_len);
    }
    let recent = recent.max(1);
    let (older, newest) = seen.split_at(seen.len() - recent);
    let dim = text(newest[0]).len();
    let mut centre = vec![0f32; dim];
    for &i in newest {
        for (c, v) in centre.iter_mut().zip(text(i)) {
            *c += v;
        }
    }
    // One similarity per distinct item (long histories repeat items), memoised in a table
    // indexed by item row (cheaper than hashing 10 000 events).
    let rows = seen.iter().max().map_or(0, |&m| m + 1);
    let mut memo = vec![f32::NAN; rows];
    let mut scored: Vec<(f32, usize)> = older
        .iter()
        .enumerate()
        .map(|(pos, &i)| {
            if memo[i].is_nan() {
                memo[i] = dot(text(i), &centre);
            }
            (memo[i], pos)
        })
        .collect();
    let keep = (max_len - recent).min(scored.len());
    // Highest similarity first; ties to the newer event. Only the best `keep` are needed:
    // a partial selection, not a sort of the whole history.
    let order = |a: &(f32, usize), b: &(f32, usize)| b.0.total_cmp(&a.0).then(b.1.cmp(&a.1));
    if keep > 0 && keep < scored.len() {
        scored.select_nth_unstable_by(keep - 1, order);
    }
    let mut picked: Vec<usize> = scored.into_iter().take(keep).map(|(_, pos)| pos).collect();
    picked.sort_unstable();
    picked.extend(older.len()..seen.len());
    picked
}

/// Dot product in eight independent lanes, which the compiler turns into SIMD (a plain
/// `zip().sum()` is a serial chain of float adds it may not reorder).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ar, br) = (ac.remainder(), bc.remainder());
    for (x, y) in ac.zip(bc) {
        for l in 0..8 {
            lanes[l] += x[l] * y[l];
        }
    }
    lanes.iter().sum::<f32>() + ar.iter().zip(br).map(|(x, y)| x * y).sum::<f32>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_rows_keep_the_order_of_similarities() {
        // 300-wide unit rows: a base, a near one, a far one.
        let mut rng = crate::rng::SplitMix(4);
        let base: Vec<f32> = (0..300).map(|_| rng.next_f32() - 0.5).collect();
        let near: Vec<f32> = base
            .iter()
            .map(|v| v + 0.3 * (rng.next_f32() - 0.5))
            .collect();
        let far: Vec<f32> = (0..300).map(|_| rng.next_f32() - 0.5).collect();
        let rows = unit_rows_of(&[base, near, far].concat(), 300);
        let sel = selection_rows(&rows);
        assert!(sel.iter().all(|r| r.len() == SELECTION_DIM));
        assert!(dot(&sel[0], &sel[1]) > 0.8, "{}", dot(&sel[0], &sel[1]));
        assert!(
            dot(&sel[0], &sel[2]).abs() < 0.4,
            "{}",
            dot(&sel[0], &sel[2])
        );
        // Deterministic; narrow rows pass through.
        assert_eq!(selection_rows(&rows), sel);
        let narrow = unit_rows_of(&[1.0, 2.0, 3.0], 3);
        assert_eq!(selection_rows(&narrow), narrow);
    }

    #[test]
    fn dot_matches_the_plain_sum() {
        let a: Vec<f32> = (0..19).map(|i| i as f32 * 0.5 - 3.0).collect();
        let b: Vec<f32> = (0..19).map(|i| (i * 7 % 5) as f32 - 2.0).collect();
        let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - plain).abs() < 1e-4);
    }

    #[test]
    fn keeps_the_recent_window_and_the_older_events_nearest_to_it_in_time_order() {
        // Items 0..4 point along x, 5..9 along y; the recent window is about x.
        let vectors: Vec<[f32; 2]> = (0..10)
            .map(|i| if i < 5 { [1.0, 0.0] } else { [0.0, 1.0] })
            .collect();
        let text = |i: usize| &vectors[i][..];
        let seen = [0, 5, 1, 6, 7, 2, 8, 9, 3, 4];
        let picked = select_history(&seen, 5, HistorySelect::Relevant, 2, text);
        // Newest two (3, 4), plus the three older x items (0, 1, 2), in time order.
        assert_eq!(picked, vec![0, 1, 2, 3, 4]);
        // The plain window, and short histories, are the tail.
        assert_eq!(
            select_history(&seen, 5, HistorySelect::Last, 2, text),
            vec![2, 8, 9, 3, 4]
        );
        assert_eq!(
            select_history(&seen[..4], 5, HistorySelect::Relevant, 2, text),
            vec![0, 5, 1, 6]
        );
    }
}
