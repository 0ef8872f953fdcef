//! `any`: every event the rule takes is a match.

use serde::{Deserialize, Serialize};

use super::{Ctx, Seen};

/// An `any` rule. It keeps no state; late events match too.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Any;

impl Any {
    /// A match on every event, described with the rule's `name`.
    pub(super) fn on_event(&self, name: &str, seen: &Seen<'_>, cx: &mut Ctx<'_>) {
        cx.found
            .push(seen.matched(format!("{name} matched an event")));
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::engine::testing::{at, event, key, seen, Harness};

    #[test]
    fn every_event_is_a_match_with_its_key_time_and_fields() {
        let mut h = Harness::new(true);
        let e0 = event(0, json!({"pod": "a"}));
        let e1 = event(7, json!({"pod": "b"}));
        let mut found = h.run(|cx| Any.on_event("errors", &seen(&e0, Some("a"), None), cx));
        found.extend(h.run(|cx| Any.on_event("errors", &seen(&e1, Some("b"), None), cx)));
        assert_eq!(at(&found), [(0, key("a")), (7, key("b"))]);
        assert_eq!(found[0].description, "errors matched an event");
        let e = found[1].event.as_ref().expect("the event is kept");
        assert_eq!(e.get("pod"), Some(&json!("b")));
    }

    #[test]
    fn late_events_match_too() {
        let mut h = Harness::new(false);
        let e = event(0, json!({}));
        let late = seen(&e, None, Some(60));
        assert!(late.late());
        let found = h.run(|cx| Any.on_event("r", &late, cx));
        assert_eq!(at(&found), [(0, None)]);
    }
}
