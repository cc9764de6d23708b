//! `www/contract.js`, generated from this module's constants so the page, the widget and the
//! worker read the same event names, kinds, weights and scene vocabularies as the model was
//! trained with. A test compares the committed file with [`contract_module`]; after changing a
//! contract, regenerate it with `RANKLET_WRITE_CONTRACT=1 cargo test --features fixtures contract_js`.

use std::fmt::Write;

use super::events::{
    EVENT_NAMES, EventKind, PERSONA_DECAY, RATING_DISLIKE_AT, RATING_EVENT, RATING_LIKE_AT,
    RATING_MAX, persona_weight,
};
use super::scene::{DEVICE_CLASSES, PAGE_TYPES};

fn js_string(s: &str) -> String {
    serde_json::to_string(s).expect("a string serialises")
}

fn js_list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let items: Vec<String> = items.into_iter().map(js_string).collect();
    format!("[{}]", items.join(", "))
}

/// A number as JS writes it (`4`, `0.5`, `-2`): Rust's shortest round-trip decimal.
fn js_number(x: f64) -> String {
    format!("{x}")
}

/// The text of `www/contract.js`.
pub fn contract_module() -> String {
    let mut js = String::new();
    let w = &mut js;
    let _ = writeln!(
        w,
        "// GENERATED from src/contracts/ (contract_module) — do not edit by hand; a test keeps it\n\
         // equal to the Rust side. Regenerate: RANKLET_WRITE_CONTRACT=1 cargo test --features fixtures contract_js\n"
    );
    let _ = writeln!(
        w,
        "/** Behaviour types in the model's row order (the behaviour-type embedding's rows). */"
    );
    let _ = writeln!(
        w,
        "export const EVENT_KINDS = Object.freeze({});",
        js_list(EventKind::ALL.iter().map(|k| k.name()))
    );
    let _ = writeln!(
        w,
        "\n/** Every accepted `event` name (aliases included) → its behaviour-type row. */"
    );
    let names: Vec<String> = EVENT_NAMES
        .iter()
        .map(|(n, k)| format!("{n}: {}", *k as usize))
        .collect();
    let _ = writeln!(
        w,
        "export const EVENT_KIND = Object.freeze({{ {} }});",
        names.join(", ")
    );
    let _ = writeln!(
        w,
        "\n/** The names `record()` accepts: every name above and {RATING_EVENT:?} (with a `value`). */"
    );
    let _ = writeln!(
        w,
        "export const EVENT_TYPES = Object.freeze({});",
        js_list(
            EVENT_NAMES
                .iter()
                .map(|(n, _)| *n)
                .chain(std::iter::once(RATING_EVENT))
        )
    );
    let _ = writeln!(
        w,
        "\n/** A rating (0..max) as feedback: ≥ likeAt is a like, ≤ dislikeAt a dislike, else a click. */"
    );
    let _ = writeln!(
        w,
        "export const RATING = Object.freeze({{ event: {}, likeAt: {}, dislikeAt: {}, max: {} }});",
        js_string(RATING_EVENT),
        js_number(RATING_LIKE_AT),
        js_number(RATING_DISLIKE_AT),
        js_number(RATING_MAX)
    );
    let _ = writeln!(
        w,
        "\n/** How much an event of each behaviour type says about taste (the persona's weights). */"
    );
    let weights: Vec<String> = EventKind::ALL
        .iter()
        .map(|k| format!("{}: {}", k.name(), js_number(f64::from(persona_weight(*k)))))
        .collect();
    let _ = writeln!(
        w,
        "export const PERSONA_WEIGHT = Object.freeze({{ {} }});",
        weights.join(", ")
    );
    let _ = writeln!(
        w,
        "\n/** Decay of an event's persona weight per later event. */"
    );
    // PERSONA_DECAY is an f32: print the decimal it was written as, not its f64 widening.
    let _ = writeln!(w, "export const PERSONA_DECAY = {PERSONA_DECAY};");
    let _ = writeln!(
        w,
        "\n/** Scene vocabularies in row order (row 0: unknown). */"
    );
    let _ = writeln!(
        w,
        "export const PAGE_TYPES = Object.freeze({});",
        js_list(PAGE_TYPES)
    );
    let _ = writeln!(
        w,
        "export const DEVICE_CLASSES = Object.freeze({});",
        js_list(DEVICE_CLASSES)
    );
    js
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::contract_module;

    /// The committed `www/contract.js` is what the Rust side generates (set
    /// `RANKLET_WRITE_CONTRACT=1` to rewrite it after changing a contract).
    #[test]
    fn contract_js_matches_the_rust_contracts() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("www/contract.js");
        let want = contract_module();
        if std::env::var_os("RANKLET_WRITE_CONTRACT").is_some() {
            std::fs::write(&path, &want).unwrap();
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            have == want,
            "www/contract.js differs from the Rust contracts; regenerate it with \
             RANKLET_WRITE_CONTRACT=1 cargo test --features fixtures contract_js"
        );
    }

    #[test]
    fn the_module_names_every_kind_alias_and_weight() {
        let js = contract_module();
        assert!(js.contains(
            "EVENT_KINDS = Object.freeze([\"click\", \"view\", \"cart\", \"purchase\", \"like\", \"dislike\", \"search\"])"
        ));
        assert!(js.contains("not_interested: 5"));
        assert!(js.contains("add_to_cart: 2"));
        assert!(js.contains("view: 0.5, cart: 2, purchase: 3, like: 2, dislike: -2"));
        assert!(js.contains("PERSONA_DECAY = 0.98;"));
        assert!(js.contains("\"rating\"]"));
    }
}
