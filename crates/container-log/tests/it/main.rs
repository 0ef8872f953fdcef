//! Integration tests of logtide-container-log: CRI and docker lines parsed and reassembled
//! across containers and streams, as properties.

mod roundtrip;
