//! Typed events: what a history event was (the events contract, docs/design.md), as the
//! recommender sees it — a behaviour type per event, whether it is explicit positive or negative
//! feedback, and how much it says about the visitor's taste (the persona's weights).

use crate::error::{Error, Result};

/// The behaviour type of a history event. The discriminant is the row of the behaviour-type
/// embedding (`rec::SignalsConfig::kinds`); new types go at the end.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// An implicit click (open, play). Also a rating of 3 and every RecBole row without a rating.
    #[default]
    Click = 0,
    /// The item was shown for a while (a weaker implicit signal than a click).
    View = 1,
    /// Added to the cart.
    Cart = 2,
    /// Bought.
    Purchase = 3,
    /// Explicit positive feedback; a rating ≥ 4 of 5.
    Like = 4,
    /// Explicit negative feedback ("not interested"); a rating ≤ 2 of 5.
    Dislike = 5,
    /// A search query (a text event; not an item).
    Search = 6,
}

/// Number of behaviour types (rows of the behaviour-type embedding).
pub const NUM_EVENT_KINDS: usize = 7;

/// Every `event` name the events contract accepts for an item or search event, with its kind:
/// each kind's own name and the aliases shops send.
pub const EVENT_NAMES: [(&str, EventKind); 10] = [
    ("click", EventKind::Click),
    ("view", EventKind::View),
    ("cart", EventKind::Cart),
    ("add_to_cart", EventKind::Cart),
    ("purchase", EventKind::Purchase),
    ("buy", EventKind::Purchase),
    ("like", EventKind::Like),
    ("dislike", EventKind::Dislike),
    ("not_interested", EventKind::Dislike),
    ("search", EventKind::Search),
];

/// The `event` name of a star rating; its `value` decides the kind ([`EventKind::from_rating`]).
pub const RATING_EVENT: &str = "rating";
/// A rating at or above this is a like.
pub const RATING_LIKE_AT: f64 = 4.0;
/// A rating at or below this is a dislike (between the two: a click).
pub const RATING_DISLIKE_AT: f64 = 2.0;
/// Ratings are on a 0..=5 scale.
pub const RATING_MAX: f64 = 5.0;

impl EventKind {
    /// Every kind, in embedding-row order.
    pub const ALL: [EventKind; NUM_EVENT_KINDS] = [
        EventKind::Click,
        EventKind::View,
        EventKind::Cart,
        EventKind::Purchase,
        EventKind::Like,
        EventKind::Dislike,
        EventKind::Search,
    ];

    /// The kind of an events-contract `event` field: one of [`EVENT_NAMES`], or `rating`, which
    /// needs `value` (see [`EventKind::from_rating`]). A missing `event` is a click. Anything else
    /// is refused, naming the event.
    pub fn parse(event: Option<&str>, value: Option<f64>, at: &str) -> Result<Self> {
        let Some(name) = event.map(str::trim) else {
            return Ok(EventKind::Click);
        };
        if name == RATING_EVENT {
            let v = value.ok_or_else(|| {
                Error::bad_input(at, "a \"rating\" event needs a numeric \"value\"")
            })?;
            return Self::from_rating(v).ok_or_else(|| {
                Error::bad_input(at, format!("rating value {v} is not a number in 0..=5"))
            });
        }
        Self::named(name).ok_or_else(|| {
            let names: Vec<&str> = EVENT_NAMES.iter().map(|(n, _)| *n).collect();
            Error::bad_input(
                at,
                format!(
                    "unknown event type {name:?} (expected {} or {RATING_EVENT})",
                    names.join(", ")
                ),
            )
        })
    }

    /// The kind an event name stands for ([`EVENT_NAMES`]), aliases included.
    pub fn named(name: &str) -> Option<Self> {
        EVENT_NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, k)| *k)
    }

    /// A 1–5 star rating as feedback: ≥ 4 is a like, ≤ 2 a dislike, 3 a plain click. The item
    /// stays in the history either way (a rating means the user watched it): the rating adds
    /// the explicit signal, it does not replace the implicit one.
    pub fn from_rating(value: f64) -> Option<Self> {
        if !value.is_finite() || !(0.0..=RATING_MAX).contains(&value) {
            return None;
        }
        Some(if value >= RATING_LIKE_AT {
            EventKind::Like
        } else if value <= RATING_DISLIKE_AT {
            EventKind::Dislike
        } else {
            EventKind::Click
        })
    }

    /// Explicit positive feedback: likes, carts and purchases.
    pub fn is_positive(self) -> bool {
        matches!(
            self,
            EventKind::Like | EventKind::Cart | EventKind::Purchase
        )
    }

    /// Explicit negative feedback: dislikes / "not interested".
    pub fn is_negative(self) -> bool {
        self == EventKind::Dislike
    }

    /// The name used in the events contract.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Click => "click",
            EventKind::View => "view",
            EventKind::Cart => "cart",
            EventKind::Purchase => "purchase",
            EventKind::Like => "like",
            EventKind::Dislike => "dislike",
            EventKind::Search => "search",
        }
    }
}

/// Decay of an event's persona weight per later event (the shelf's `RECENCY`: on ml-100k the top
/// entry then names the dominant genre of the same history for 70 % of users, where 0.9 gave
/// 56 %; reports/history.json).
pub const PERSONA_DECAY: f32 = 0.98;

/// How much an event of this type says about taste.
pub fn persona_weight(kind: EventKind) -> f32 {
    match kind {
        EventKind::View => 0.5,
        EventKind::Click => 1.0,
        EventKind::Cart | EventKind::Like => 2.0,
        EventKind::Purchase => 3.0,
        EventKind::Dislike => -2.0,
        EventKind::Search => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratings_become_explicit_feedback() {
        assert_eq!(EventKind::from_rating(5.0), Some(EventKind::Like));
        assert_eq!(EventKind::from_rating(4.0), Some(EventKind::Like));
        assert_eq!(EventKind::from_rating(3.0), Some(EventKind::Click));
        assert_eq!(EventKind::from_rating(2.0), Some(EventKind::Dislike));
        assert_eq!(EventKind::from_rating(1.0), Some(EventKind::Dislike));
        assert_eq!(EventKind::from_rating(f64::NAN), None);
        assert_eq!(EventKind::from_rating(7.0), None);
    }

    #[test]
    fn event_names_parse_and_unknown_ones_are_refused() {
        for kind in EventKind::ALL {
            let parsed = EventKind::parse(Some(kind.name()), None, "x").unwrap();
            assert_eq!(parsed, kind);
            assert_eq!(
                kind as usize,
                EventKind::ALL.iter().position(|k| *k == kind).unwrap()
            );
        }
        assert_eq!(
            EventKind::parse(Some("not_interested"), None, "x").unwrap(),
            EventKind::Dislike
        );
        assert_eq!(EventKind::parse(None, None, "x").unwrap(), EventKind::Click);
        let err = EventKind::parse(Some("wishlist"), None, "events.jsonl line 4")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("events.jsonl line 4") && err.contains("\"wishlist\""),
            "{err}"
        );
        let err = EventKind::parse(Some("rating"), None, "e line 2")
            .unwrap_err()
            .to_string();
        assert!(err.contains("needs a numeric \"value\""), "{err}");
        assert_eq!(
            EventKind::parse(Some("rating"), Some(1.0), "x").unwrap(),
            EventKind::Dislike
        );
    }
}
