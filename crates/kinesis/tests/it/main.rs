//! Integration tests of logtide-kinesis: record packing and decoding as properties, the
//! sink against moto_server and kinesis-mock, and the consumer's checkpoints, resharding
//! and leases.

mod common;
mod consumer;
mod kinesis_mock;
mod moto;
mod roundtrip;
