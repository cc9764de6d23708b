//! RecBole atomic files: tab-separated, a typed header (`item_id:token`, `rating:float`,
//! `movie_title:token_seq`, …), one record per line. `.inter` holds interactions, `.item` item
//! attributes. MovieLens as RecBole ships it reads unchanged.

use crate::error::{Error, Result};

/// One column of an atomic file header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    /// `token`, `token_seq`, `float`, `float_seq`.
    pub kind: String,
}

/// A parsed atomic file: header plus rows of raw strings.
#[derive(Debug, Clone)]
pub struct AtomicFile {
    pub fields: Vec<Field>,
    pub rows: Vec<Vec<String>>,
    /// Line number (1-based) of each row, for messages.
    pub lines: Vec<usize>,
}

impl AtomicFile {
    /// Parses the text of an atomic file; `origin` names it in errors.
    pub fn parse(bytes: &[u8], origin: &str) -> Result<Self> {
        let text = crate::data::utf8_text(bytes, origin)?;
        let mut lines = text.lines().enumerate();
        let (_, header) = lines
            .next()
            .ok_or_else(|| Error::bad_input(origin, "empty file (no header)"))?;
        let fields = header
            .split('\t')
            .map(|h| {
                let (name, kind) = h.trim().split_once(':').ok_or_else(|| {
                    Error::bad_input(
                        format!("{origin} line 1"),
                        format!("header field {h:?} is not name:type"),
                    )
                })?;
                Ok(Field {
                    name: name.to_string(),
                    kind: kind.to_string(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let mut rows = Vec::new();
        let mut numbers = Vec::new();
        for (i, line) in lines {
            if line.trim().is_empty() {
                continue;
            }
            let row: Vec<String> = line.split('\t').map(|c| c.trim().to_string()).collect();
            if row.len() != fields.len() {
                return Err(Error::bad_input(
                    format!("{origin} line {}", i + 1),
                    format!("{} columns, the header has {}", row.len(), fields.len()),
                ));
            }
            rows.push(row);
            numbers.push(i + 1);
        }
        Ok(Self {
            fields,
            rows,
            lines: numbers,
        })
    }

    /// Index of the column called `name`.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.name == name)
    }
}

/// Parses a timestamp exactly. Unix seconds need 31+ bits: as f32 they collapse into 64-second
/// buckets and change which item is a user's last, so integers stay integers (i64) and other
/// numbers go through f64, which holds every integer below 2^53 exactly.
pub fn parse_timestamp(text: &str) -> Option<f64> {
    if let Ok(i) = text.parse::<i64>() {
        return Some(i as f64);
    }
    text.parse::<f64>().ok().filter(|v| v.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_typed_header_and_rows() {
        let f = AtomicFile::parse(
            b"user_id:token\titem_id:token\trating:float\ttimestamp:float\n196\t242\t3\t881250949\n\n186\t302\t3\t891717742\n",
            "x.inter",
        )
        .unwrap();
        assert_eq!(
            f.fields[3],
            Field {
                name: "timestamp".into(),
                kind: "float".into()
            }
        );
        assert_eq!(f.rows.len(), 2);
        assert_eq!(f.lines, vec![2, 4]);
        assert_eq!(f.column("item_id"), Some(1));
    }

    #[test]
    fn errors_name_file_and_line() {
        let err =
            AtomicFile::parse(b"user_id:token\titem_id:token\n1\t2\t3\n", "x.inter").unwrap_err();
        assert_eq!(
            err.to_string(),
            "x.inter line 2: 3 columns, the header has 2"
        );
        let err = AtomicFile::parse(b"user_id\titem_id:token\n", "x.inter").unwrap_err();
        assert!(err.to_string().contains("not name:type"));
    }

    #[test]
    fn timestamps_stay_exact() {
        // 881250949 and 881250950 collide as f32; they must not here.
        assert_ne!(parse_timestamp("881250949"), parse_timestamp("881250950"));
        assert_eq!(parse_timestamp("881250949.0"), Some(881250949.0));
        assert_eq!(parse_timestamp("nan"), None);
        assert_eq!(parse_timestamp("x"), None);
    }
}
