//! Integration tests of logtide-mapping: the model against Elasticsearch's dynamic
//! mapping (documented behaviour and the shared conformance cases), the normalizer and its
//! properties.

mod conformance;
mod model;
mod normalize;
mod properties;
