//! Integration tests of logtide-es: the sink against real local servers (noida-db for the
//! Elasticsearch 8 API, osmem-server for the OpenSearch API), and AWS SigV4 signing.

mod es;
mod sigv4;
