//! The frozen text inputs a training job reads: the items' text vectors and, for the two-view
//! term, the vectors of each item's title and description, all through the vector cache.

use burn::prelude::*;

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::jobs::JobObserver;
use crate::text::EncoderFiles;
use crate::train::job::TrainJob;
use crate::train::{EpochLog, TwoViews};
use crate::vectors::item_text_vectors;

/// The item text vectors through the cache, reporting progress and what was reused.
pub(crate) fn text_vectors(
    files: &EncoderFiles,
    texts: &[String],
    base: &Device,
    device: &Device,
    job: &TrainJob,
    observer: &mut dyn JobObserver<EpochLog>,
) -> Result<Tensor<2>> {
    let total = texts.len();
    let (vectors, stats) = item_text_vectors(files, texts, base, device, &job.cache, |n| {
        observer.progress("item texts", n, total)
    })?;
    observer.note(&format!(
        "item texts: {} with {}",
        stats.summary(),
        files.name
    ));
    Ok(vectors)
}

/// The two views (title, description) of the items that have both, for the two-view term.
pub(crate) fn two_views(
    ds: &Dataset,
    files: &EncoderFiles,
    base: &Device,
    device: &Device,
    job: &TrainJob,
    observer: &mut dyn JobObserver<EpochLog>,
) -> Result<TwoViews> {
    let with_views: Vec<(usize, &[String; 2])> = ds
        .items
        .iter()
        .enumerate()
        .filter_map(|(r, i)| i.views.as_ref().map(|v| (r, v)))
        .collect();
    if with_views.len() < 2 {
        return Err(Error::bad_input(
            "--two-view",
            format!(
                "{} has {} items with both a title and a description (the two views); at \
                 least 2 are needed",
                job.data.display(),
                with_views.len()
            ),
        ));
    }
    let mut view = |k: usize| -> Result<Tensor<2>> {
        let texts: Vec<String> = with_views.iter().map(|(_, v)| v[k].clone()).collect();
        text_vectors(files, &texts, base, device, job, observer)
    };
    let (titles, descriptions) = (view(0)?, view(1)?);
    let mut row_of = vec![None; ds.items.len()];
    for (j, (r, _)) in with_views.iter().enumerate() {
        row_of[*r] = Some(j);
    }
    Ok(TwoViews {
        titles,
        descriptions,
        row_of,
    })
}
