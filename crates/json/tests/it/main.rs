//! Integration tests of logtide-json: the shared conformance cases through the
//! processors, and JSON messages kept as text decoding the same as maps.

mod as_is;
mod conformance;
