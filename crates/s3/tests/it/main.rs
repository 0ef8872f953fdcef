//! Integration tests of logtide-s3: the sink against moto_server, objects read back with
//! boto3.

mod moto;
