//! `_bulk` request bodies and per-item results.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The result of one bulk item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ItemResult {
    pub(crate) status: u16,
    /// `error.type`, when the item failed.
    pub(crate) error_type: Option<String>,
    /// `error.reason`, with the `caused_by` chain appended.
    pub(crate) reason: Option<String>,
}

#[derive(Deserialize)]
struct BulkResponse {
    items: Vec<BTreeMap<String, Item>>,
}

#[derive(Deserialize)]
struct Item {
    status: u16,
    #[serde(default)]
    error: Option<ItemError>,
}

#[derive(Deserialize)]
struct ItemError {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    caused_by: Option<Box<ItemError>>,
}

impl ItemError {
    fn reason(&self) -> String {
        let mut out = self.reason.clone().unwrap_or_default();
        let mut cause = self.caused_by.as_deref();
        let mut depth = 0;
        while let Some(c) = cause {
            if depth == 4 {
                break;
            }
            out.push_str(&format!(
                " (caused by {}: {})",
                c.kind.as_deref().unwrap_or("error"),
                c.reason.as_deref().unwrap_or("")
            ));
            cause = c.caused_by.as_deref();
            depth += 1;
        }
        out
    }
}

/// Parses a `_bulk` answer that must hold `expected` items, in request order.
pub(crate) fn parse_response(body: &[u8], expected: usize) -> Result<Vec<ItemResult>, String> {
    let response: BulkResponse =
        serde_json::from_slice(body).map_err(|e| format!("not a _bulk answer: {e}"))?;
    if response.items.len() != expected {
        return Err(format!(
            "the _bulk answer has {} items for {expected} documents",
            response.items.len()
        ));
    }
    response
        .items
        .into_iter()
        .enumerate()
        .map(|(i, mut op)| {
            let item = op
                .pop_first()
                .map(|(_, item)| item)
                .ok_or_else(|| format!("item {i} of the _bulk answer is empty"))?;
            Ok(ItemResult {
                status: item.status,
                error_type: item.error.as_ref().and_then(|e| e.kind.clone()),
                reason: item.error.as_ref().map(ItemError::reason),
            })
        })
        .collect()
}

/// Appends one `index` action and its document.
pub(crate) fn push_index(out: &mut Vec<u8>, index: &str, id: &str, doc: &[u8]) {
    out.extend_from_slice(b"{\"index\":{\"_index\":");
    push_json_str(out, index);
    out.extend_from_slice(b",\"_id\":");
    push_json_str(out, id);
    out.extend_from_slice(b"}}\n");
    out.extend_from_slice(doc);
    out.push(b'\n');
}

fn push_json_str(out: &mut Vec<u8>, s: &str) {
    // serde_json's string escaping; writing into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// Whether a 400 item error is a mapping rejection (Elasticsearch 7 says
/// `mapper_parsing_exception`, 8 `document_parsing_exception`; an illegal argument or a
/// strict mapping is a mapping problem too).
pub(crate) fn is_mapping_error(error_type: Option<&str>) -> bool {
    matches!(
        error_type,
        Some(
            "mapper_parsing_exception"
                | "document_parsing_exception"
                | "illegal_argument_exception"
                | "strict_dynamic_mapping_exception"
                | "mapper_exception"
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_come_back_in_order_with_their_errors() {
        let body = br#"{"errors":true,"took":1,"items":[
            {"index":{"_index":"a","_id":"1","status":201}},
            {"index":{"_index":"a","_id":"2","status":400,"error":{"type":"document_parsing_exception","reason":"failed to parse field [n] of type [long]","caused_by":{"type":"illegal_argument_exception","reason":"For input string: \"x\""}}}},
            {"index":{"_index":"a","_id":"3","status":429,"error":{"type":"es_rejected_execution_exception","reason":"rejected"}}}]}"#;
        let items = parse_response(body, 3).unwrap();
        assert_eq!(items[0].status, 201);
        assert_eq!(items[0].error_type, None);
        assert_eq!(
            items[1].error_type.as_deref(),
            Some("document_parsing_exception")
        );
        assert_eq!(
            items[1].reason.as_deref(),
            Some("failed to parse field [n] of type [long] (caused by illegal_argument_exception: For input string: \"x\")")
        );
        assert_eq!(items[2].status, 429);
        assert!(parse_response(body, 2)
            .unwrap_err()
            .contains("3 items for 2 documents"));
        assert!(parse_response(b"<html>", 1)
            .unwrap_err()
            .contains("not a _bulk answer"));
    }

    #[test]
    fn actions_are_escaped() {
        let mut out = Vec::new();
        push_index(&mut out, "logs-2024.05.01", "a\"b", b"{\"x\":1}");
        assert_eq!(
            out,
            b"{\"index\":{\"_index\":\"logs-2024.05.01\",\"_id\":\"a\\\"b\"}}\n{\"x\":1}\n"
        );
    }
}
