//! RecBole atomic files (`.inter` + `.item`) as a [`Dataset`]: what MovieLens as RecBole ships
//! it reads as.

use crate::contracts::EventKind;
use crate::data::atomic::{AtomicFile, parse_timestamp};
use crate::data::dataset::{Dataset, ItemText, RawEvent};
use crate::error::{Error, Result};

impl Dataset {
    /// RecBole `.inter` + `.item`. Item text = title, then categories/genres, then the other
    /// attributes (e.g. year), joined by ". " (ml-100k: "Toy Story. Animation Children's Comedy.
    /// 1995").
    pub fn from_recbole(
        name: &str,
        inter: &[u8],
        inter_origin: &str,
        item: &[u8],
        item_origin: &str,
    ) -> Result<Self> {
        let items_file = AtomicFile::parse(item, item_origin)?;
        let id_col = items_file
            .column("item_id")
            .ok_or_else(|| Error::bad_input(item_origin, "no item_id column"))?;
        // Column roles: 0 title, 1 categories, 2 other attributes, 3 description (last in the
        // text, as in the catalog's encoder text).
        let rank = |n: &str| -> u8 {
            if n.contains("title") || n == "name" {
                0
            } else if ["class", "genre", "genres", "categories", "category"].contains(&n) {
                1
            } else if ["description", "desc", "summary", "text"].contains(&n) {
                3
            } else {
                2
            }
        };
        let mut text_cols: Vec<usize> = (0..items_file.fields.len())
            .filter(|&c| c != id_col)
            .collect();
        text_cols.sort_by_key(|&c| rank(&items_file.fields[c].name));
        let mut items = Vec::with_capacity(items_file.rows.len());
        for (row, line) in items_file.rows.iter().zip(&items_file.lines) {
            let text = text_cols
                .iter()
                .map(|&c| row[c].as_str())
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(". ");
            // The catalogue contract's rules (src/data/catalog.rs): an id, and a title where
            // the file has a title column; duplicate ids are refused below.
            let at = format!("{item_origin} line {line}");
            if row[id_col].trim().is_empty() {
                return Err(Error::bad_input(&at, "\"item_id\" is empty"));
            }
            let has_title = text_cols
                .iter()
                .any(|&c| rank(&items_file.fields[c].name) == 0);
            let title_empty = text_cols
                .iter()
                .filter(|&&c| rank(&items_file.fields[c].name) == 0)
                .all(|&c| row[c].trim().is_empty());
            if text.is_empty() || (has_title && title_empty) {
                return Err(Error::bad_input(
                    &at,
                    format!(
                        "item {:?} has no {}",
                        row[id_col],
                        if has_title { "title" } else { "text" }
                    ),
                ));
            }
            // A RecBole token_seq column is space-separated tokens (ml-100k: "Animation
            // Children's Comedy").
            let facets = text_cols
                .iter()
                .filter(|&&c| rank(&items_file.fields[c].name) == 1)
                .flat_map(|&c| row[c].split_whitespace().map(str::to_string))
                .collect();
            let column = |rank_of: u8| {
                text_cols
                    .iter()
                    .filter(|&&c| rank(&items_file.fields[c].name) == rank_of)
                    .map(|&c| row[c].trim())
                    .filter(|s| !s.is_empty())
                    .collect::<Vec<_>>()
                    .join(". ")
            };
            let (title, description) = (column(0), column(3));
            items.push(ItemText {
                id: row[id_col].clone(),
                text,
                facets,
                views: (!title.is_empty() && !description.is_empty())
                    .then_some([title, description]),
            });
        }

        crate::data::catalog::check_unique(items.iter().map(|i| i.id.as_str()), item_origin)?;
        let inter_file = AtomicFile::parse(inter, inter_origin)?;
        let col = |n: &str| {
            inter_file
                .column(n)
                .ok_or_else(|| Error::bad_input(inter_origin, format!("no {n} column")))
        };
        let (u, i, t) = (col("user_id")?, col("item_id")?, col("timestamp")?);
        let rating = inter_file.column("rating");
        let events = inter_file
            .rows
            .iter()
            .zip(&inter_file.lines)
            .map(|(row, line)| {
                let at = format!("{inter_origin} line {line}");
                let ts = parse_timestamp(&row[t]).ok_or_else(|| {
                    Error::bad_input(&at, format!("timestamp {:?} is not a number", row[t]))
                })?;
                let kind = match rating.map(|r| row[r].trim()) {
                    None | Some("") => EventKind::Click,
                    Some(v) => v
                        .parse::<f64>()
                        .ok()
                        .and_then(EventKind::from_rating)
                        .ok_or_else(|| {
                            Error::bad_input(&at, format!("rating {v:?} is not a number in 0..=5"))
                        })?,
                };
                Ok(RawEvent {
                    user: row[u].clone(),
                    item: row[i].clone(),
                    ts,
                    kind,
                    at,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Self::build(name, items, events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Split;
    use crate::data::dataset::tests::ITEM;

    /// The `.item` file follows the catalogue contract: a repeated id or an empty title is
    /// refused naming the file (and the line).
    #[test]
    fn item_files_refuse_duplicate_ids_and_empty_titles() {
        let inter = b"user_id:token\titem_id:token\ttimestamp:float\n1\t1\t1\n";
        let dup = b"item_id:token\tmovie_title:token_seq\tclass:token_seq\n1\tToy Story\tAnimation\n1\tHeat\tCrime\n";
        let err = Dataset::from_recbole("t", inter, "t.inter", dup, "t.item")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("t.item") && err.contains("appears twice"),
            "{err}"
        );
        let untitled = b"item_id:token\tmovie_title:token_seq\tclass:token_seq\n1\tToy Story\tAnimation\n2\t\tCrime\n";
        let err = Dataset::from_recbole("t", inter, "t.inter", untitled, "t.item")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("t.item line 3") && err.contains("no title"),
            "{err}"
        );
    }

    #[test]
    fn recbole_item_text_and_stable_time_order() {
        // User 9 has items 3 and 1 on the same timestamp: file order decides (3 before 1).
        let inter = b"user_id:token\titem_id:token\trating:float\ttimestamp:float\n9\t2\t5\t100\n9\t3\t4\t300\n9\t1\t4\t300\n9\t4\t3\t200\n";
        let ds = Dataset::from_recbole("t", inter, "t.inter", ITEM, "t.item").unwrap();
        assert_eq!(
            ds.items[0].text,
            "Toy Story. Animation Children's Comedy. 1995"
        );
        // The genre column's tokens are the persona facets.
        assert_eq!(ds.items[0].facets, ["Animation", "Children's", "Comedy"]);
        let ids: Vec<&str> = ds.sequences[0]
            .iter()
            .map(|&i| ds.items[i].id.as_str())
            .collect();
        assert_eq!(ids, ["2", "4", "3", "1"]);
        // Ratings are feedback on top of the click: 5 and 4 like, 3 click.
        use EventKind::{Click, Like};
        assert_eq!(ds.kinds[0], [Like, Click, Like, Like]);
        let split = Split::leave_one_out(&ds, 50);
        assert_eq!(split.train_kinds[0], [Like, Click]);
        assert_eq!(split.test[0].kinds, [Like, Click, Like]);
        assert_eq!(split.test[0].target, 0); // item "1"
        assert_eq!(split.valid[0].target, 2); // item "3"
        assert_eq!(split.test[0].history, vec![1, 3, 2]);
        assert_eq!(split.train_prefixes().count(), 1);
    }

    #[test]
    fn unknown_items_and_bad_timestamps_name_the_line() {
        let inter = b"user_id:token\titem_id:token\ttimestamp:float\n9\t2\t100\n9\t77\t100\n";
        let err = Dataset::from_recbole("t", inter, "t.inter", ITEM, "t.item").unwrap_err();
        assert_eq!(
            err.to_string(),
            "t.inter line 3: item \"77\" is not in the catalog"
        );
        let inter = b"user_id:token\titem_id:token\ttimestamp:float\n9\t2\tyesterday\n";
        let err = Dataset::from_recbole("t", inter, "t.inter", ITEM, "t.item").unwrap_err();
        assert!(err.to_string().starts_with("t.inter line 2: timestamp"));
    }
}
