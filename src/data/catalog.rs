//! The catalog contract (docs/design.md, Contracts) and the text inputs of `ranklet embed`.
//!
//! A catalog is a JSON array or JSONL of items
//! `{"id", "title", "text"?, "category"? (string or list), "brand"?, "price"?, "url"?, "image"?}`.
//! Unknown fields are ignored; a missing id or title is an error naming the line.

use serde::Deserialize;
use serde_json::Value;

use crate::error::{Error, Result};

/// One shop item.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CatalogItem {
    /// Unique id (strings; integers are accepted and kept as their decimal text).
    pub id: String,
    /// Display title; always part of the item text.
    pub title: String,
    /// Longer description.
    #[serde(default)]
    pub text: Option<String>,
    /// Category path or list of categories.
    #[serde(default)]
    pub category: Vec<String>,
    /// Genres (or other facets) a visitor's taste is described by — the persona's entries;
    /// without them, the categories are. Not part of the encoder text.
    #[serde(default)]
    pub genres: Vec<String>,
    /// Brand name.
    #[serde(default)]
    pub brand: Option<String>,
    /// Price in the shop's currency.
    #[serde(default)]
    pub price: Option<f64>,
    /// Product page.
    #[serde(default)]
    pub url: Option<String>,
    /// Image address.
    #[serde(default)]
    pub image: Option<String>,
    /// How often visitors choose the item, in any unit the shop counts in (views, sales, over
    /// any period); a number ≥ 0. Lifts the items the model never trained
    /// on ([`crate::rec::NewItemPopularity`]), and orders the shelf before any history.
    #[serde(default)]
    pub popularity: Option<f64>,
}

impl CatalogItem {
    /// The text the encoder sees: title, categories, brand, description — in this order,
    /// joined by ". ", empty parts left out. Fixed so cached vectors stay valid.
    pub fn encoder_text(&self) -> String {
        let mut parts: Vec<&str> = vec![self.title.trim()];
        let categories = self.category.join(", ");
        parts.push(categories.trim());
        parts.push(self.brand.as_deref().unwrap_or("").trim());
        parts.push(self.text.as_deref().unwrap_or("").trim());
        parts.retain(|p| !p.is_empty());
        parts.join(". ")
    }

    /// The persona's entries for this item: its genres, else its categories.
    pub fn facets(&self) -> Vec<String> {
        let list = if self.genres.is_empty() {
            &self.category
        } else {
            &self.genres
        };
        list.iter()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    }
}

/// An id-text pair to embed.
#[derive(Debug, Clone, PartialEq)]
pub struct TextRecord {
    pub id: String,
    pub text: String,
}

/// Where a record came from, for messages: `file line N` or `file item N`.
fn place(origin: &str, unit: &str, n: usize) -> String {
    format!("{origin} {unit} {n}")
}

fn parse_id(value: Option<&Value>, at: &str) -> Result<String> {
    match value {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(Value::String(_)) => Err(Error::bad_input(at, "\"id\" is empty")),
        Some(Value::Number(n)) if n.is_u64() || n.is_i64() => Ok(n.to_string()),
        Some(other) => Err(Error::bad_input(
            at,
            format!("\"id\" must be a string, not {other}"),
        )),
        None => Err(Error::bad_input(at, "missing \"id\"")),
    }
}

/// A catalog item from one JSON object.
fn parse_item(value: Value, at: &str) -> Result<CatalogItem> {
    let map = normalise_item(value, at)?;
    serde_json::from_value(Value::Object(map)).map_err(|e| Error::bad_input(at, e.to_string()))
}

/// One JSON object checked as a catalogue item and normalised: the id as a string, a single
/// category or genre as a list, null lists removed.
fn normalise_item(value: Value, at: &str) -> Result<serde_json::Map<String, Value>> {
    let Value::Object(mut map) = value else {
        return Err(Error::bad_input(at, "expected a JSON object"));
    };
    let id = parse_id(map.get("id"), at)?;
    map.insert("id".into(), Value::String(id));
    match map.get("title") {
        Some(Value::String(t)) if !t.trim().is_empty() => {}
        Some(Value::String(_)) => return Err(Error::bad_input(at, "\"title\" is empty")),
        Some(_) => return Err(Error::bad_input(at, "\"title\" must be a string")),
        None => return Err(Error::bad_input(at, "missing \"title\"")),
    }
    if let Some(Value::String(c)) = map.get("category").cloned() {
        map.insert("category".into(), Value::Array(vec![Value::String(c)]));
    }
    for key in ["category", "genres"] {
        if map.get(key).is_some_and(Value::is_null) {
            map.remove(key);
        }
    }
    if let Some(Value::String(g)) = map.get("genres").cloned() {
        map.insert("genres".into(), Value::Array(vec![Value::String(g)]));
    }
    match map.get("popularity") {
        Some(Value::Null) => {
            map.remove("popularity");
        }
        Some(Value::Number(n)) if n.as_f64().is_some_and(|p| p >= 0.0) => {}
        Some(_) => {
            return Err(Error::bad_input(
                at,
                "\"popularity\" must be a number, 0 or more",
            ));
        }
        None => {}
    }
    Ok(map)
}

/// Splits a file's bytes into JSON values with their place: a JSON array (one value per
/// element) or JSONL (one per non-blank line). Invalid UTF-8 and JSON errors name the line.
fn json_values(bytes: &[u8], origin: &str) -> Result<Vec<(Value, String)>> {
    let text = crate::data::utf8_text(bytes, origin)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim_start().starts_with('[') {
        let values: Vec<Value> = serde_json::from_str(text).map_err(|e| {
            Error::bad_input(
                format!("{origin} line {}", e.line()),
                format!("invalid JSON: {e}"),
            )
        })?;
        return Ok(values
            .into_iter()
            .enumerate()
            .map(|(i, v)| (v, place(origin, "item", i + 1)))
            .collect());
    }
    jsonl_values(text, origin)
}

/// One JSON value per non-blank line, each with its place (`file line N`); a JSON error names
/// the line.
pub(crate) fn jsonl_values(text: &str, origin: &str) -> Result<Vec<(Value, String)>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = place(origin, "line", i + 1);
        let value = serde_json::from_str(line)
            .map_err(|e| Error::bad_input(&at, format!("invalid JSON: {e}")))?;
        out.push((value, at));
    }
    Ok(out)
}

/// Reads a catalog (JSON array or JSONL). Duplicate ids are an error.
pub fn read_catalog(bytes: &[u8], origin: &str) -> Result<Vec<CatalogItem>> {
    Ok(read_catalog_objects(bytes, origin)?
        .into_iter()
        .map(|(item, _)| item)
        .collect())
}

/// Reads a catalog as [`read_catalog`] does, each item with its normalised JSON object (what
/// a partitioned index's shards carry for the shelf to show).
pub fn read_catalog_objects(
    bytes: &[u8],
    origin: &str,
) -> Result<Vec<(CatalogItem, serde_json::Map<String, Value>)>> {
    let items = json_values(bytes, origin)?
        .into_iter()
        .map(|(v, at)| {
            let map = normalise_item(v, &at)?;
            let item: CatalogItem = serde_json::from_value(Value::Object(map.clone()))
                .map_err(|e| Error::bad_input(&at, e.to_string()))?;
            Ok((item, map))
        })
        .collect::<Result<Vec<_>>>()?;
    check_unique(items.iter().map(|(i, _)| i.id.as_str()), origin)?;
    if items.is_empty() {
        return Err(Error::bad_input(origin, "the catalog has no items"));
    }
    Ok(items)
}

/// Refuses a repeated id, naming it (the catalogue contract; `.item` files follow it too).
pub(crate) fn check_unique<'a>(ids: impl Iterator<Item = &'a str>, origin: &str) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    for id in ids {
        if !seen.insert(id) {
            return Err(Error::bad_input(origin, format!("id {id:?} appears twice")));
        }
    }
    Ok(())
}

/// Reads the input of `ranklet embed`: JSONL/JSON of `{"id","text"}` records, or catalog items
/// (records with a `title` use [`CatalogItem::encoder_text`]).
pub fn read_text_records(bytes: &[u8], origin: &str) -> Result<Vec<TextRecord>> {
    let mut records = Vec::new();
    for (value, at) in json_values(bytes, origin)? {
        let has_title = value.get("title").is_some();
        let record = if has_title {
            let item = parse_item(value, &at)?;
            TextRecord {
                text: item.encoder_text(),
                id: item.id,
            }
        } else {
            let id = parse_id(value.get("id"), &at)?;
            match value.get("text") {
                Some(Value::String(t)) => TextRecord {
                    id,
                    text: t.clone(),
                },
                Some(_) => return Err(Error::bad_input(&at, "\"text\" must be a string")),
                None => return Err(Error::bad_input(&at, "missing \"text\" (or \"title\")")),
            }
        };
        records.push(record);
    }
    if records.is_empty() {
        return Err(Error::bad_input(
            origin,
            "no texts to embed (the input is empty)",
        ));
    }
    check_unique(records.iter().map(|r| r.id.as_str()), origin)?;
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The catalogue contract's shared cases: the page's parser is tested on the same table
    /// (tests/browser/contract.test.mjs), so the two accept and refuse the same catalogues.
    #[test]
    fn shared_catalogue_cases_parse_or_fail_as_recorded() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/catalog-cases.json");
        let table: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        let cases = table["cases"].as_array().unwrap();
        assert!(cases.len() > 10);
        for case in cases {
            let name = case["name"].as_str().unwrap();
            let got = read_catalog(case["text"].as_str().unwrap().as_bytes(), "catalog");
            match case.get("error_at").and_then(Value::as_str) {
                Some(at) => {
                    let err = got.expect_err(name).to_string();
                    assert!(err.starts_with(&format!("{at}:")), "{name}: {err}");
                }
                None => {
                    let items = got.unwrap_or_else(|e| panic!("{name}: {e}"));
                    let ids: Vec<&str> = items.iter().map(|i| i.id.as_str()).collect();
                    assert_eq!(serde_json::json!(ids), case["ids"], "{name}");
                    let facets: Vec<Vec<String>> = items.iter().map(|i| i.facets()).collect();
                    assert_eq!(serde_json::json!(facets), case["facets"], "{name}");
                }
            }
        }
    }

    #[test]
    fn reads_jsonl_and_array_catalogs() {
        let jsonl = br#"{"id":"a","title":"Red shoe","category":["Shoes","Women"],"brand":"Acme","price":12.5,"extra":1}

{"id":7,"title":"Lamp","category":"Home"}"#;
        let items = read_catalog(jsonl, "c.jsonl").unwrap();
        assert_eq!(items[0].encoder_text(), "Red shoe. Shoes, Women. Acme");
        assert_eq!(items[1].id, "7");
        assert_eq!(items[1].encoder_text(), "Lamp. Home");
        // Persona facets: the categories, unless genres are given (not part of the text).
        assert_eq!(items[0].facets(), ["Shoes", "Women"]);
        let array = br#"[{"id":"a","title":"Red shoe","text":"Soft.","genres":["Sport"," "]}]"#;
        let item = &read_catalog(array, "c.json").unwrap()[0];
        assert_eq!(item.encoder_text(), "Red shoe. Soft.");
        assert_eq!(item.facets(), ["Sport"]);
    }

    #[test]
    fn errors_name_the_line_and_problem() {
        let err = read_catalog(
            b"{\"id\":\"a\",\"title\":\"x\"}\n{\"id\":\"b\"}\n",
            "c.jsonl",
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "c.jsonl line 2: missing \"title\"");
        let err = read_catalog(b"{\"title\":\"x\"}", "c.jsonl").unwrap_err();
        assert!(err.to_string().contains("line 1: missing \"id\""), "{err}");
        let err = read_text_records(b"{\"id\":\"a\",\"text\":\"x\"}\n{\"id\": \n", "t.jsonl")
            .unwrap_err();
        assert!(
            err.to_string().starts_with("t.jsonl line 2: invalid JSON"),
            "{err}"
        );
        let err = read_text_records(
            b"{\"id\":\"a\",\"text\":\"x\"}\n{\"id\":\"b\",\"text\":\"\xff\"}",
            "t.jsonl",
        )
        .unwrap_err();
        assert!(
            err.to_string().starts_with("t.jsonl line 2: invalid UTF-8"),
            "{err}"
        );
        let err = read_text_records(b"\n  \n", "t.jsonl").unwrap_err();
        assert!(err.to_string().contains("empty"), "{err}");
        let err = read_text_records(
            b"{\"id\":\"a\",\"text\":\"x\"}\n{\"id\":\"a\",\"text\":\"y\"}",
            "t.jsonl",
        )
        .unwrap_err();
        assert!(err.to_string().contains("twice"), "{err}");
        let err = read_catalog(b"[{\"id\":\"a\",\n\"title\":}]", "c.json").unwrap_err();
        assert!(err.to_string().starts_with("c.json line 2"), "{err}");
        assert!(err.is_user_error());
    }

    #[test]
    fn text_records_accept_texts_and_catalog_items() {
        let recs = read_text_records(
            b"{\"id\":\"q\",\"text\":\"usb charger\"}\n{\"id\":\"i\",\"title\":\"Mug\",\"brand\":\"B\"}",
            "t",
        )
        .unwrap();
        assert_eq!(recs[0].text, "usb charger");
        assert_eq!(recs[1].text, "Mug. B");
    }
}
