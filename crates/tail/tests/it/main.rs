//! Integration tests of logtide-tail: the tailer on real files (reading, rotation,
//! truncation, restarts, upgrades, bad input) and checked against an in-memory model
//! under random steps.

mod model;
mod tail;
