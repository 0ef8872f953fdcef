//! `logtide-relay status`: per shard, the saved checkpoint, who holds it and how far the
//! reading is behind, from the checkpoint store and the running relay's endpoint.

use std::collections::BTreeMap;
use std::io::Write;

use logtide_pipeline::cli::StatusArgs;
use logtide_pipeline::http::RELAY_PORT;
use logtide_pipeline::status::{
    process_json, relay_checkpoints, write_process_line, write_totals, Scraped,
};
use logtide_pipeline::RelayConfig;
use serde_json::{json, Value};

use crate::Relay;

pub(crate) fn run(args: &StatusArgs<Relay>) -> anyhow::Result<()> {
    let config = RelayConfig::load(&args.config)?;
    let checkpoints = relay_checkpoints(&config);
    let scraped = Scraped::fetch(&config.http, RELAY_PORT);
    let lag: BTreeMap<String, f64> = scraped
        .as_ref()
        .map(|s| s.by_label("logtide_relay_millis_behind_latest", "shard"))
        .unwrap_or_default();
    let mut out = std::io::stdout().lock();
    if args.json {
        let shards: Value = match &checkpoints {
            Ok(leases) => leases
                .iter()
                .map(|l| {
                    json!({
                        "shard": l.key, "checkpoint": l.checkpoint, "owner": l.owner,
                        "finished": l.is_finished(),
                        "millis_behind_latest": lag.get(&l.key).map(|v| *v as u64),
                    })
                })
                .collect(),
            Err(e) => json!({"error": e.to_string()}),
        };
        let process = process_json(&scraped);
        writeln!(
            out,
            "{}",
            json!({"stream": config.source.kinesis.stream_name, "shards": shards, "process": process})
        )?;
        return Ok(());
    }
    write_process_line(&mut out, "logtide-relay", &scraped)?;
    writeln!(out, "stream {}", config.source.kinesis.stream_name)?;
    writeln!(out)?;
    match &checkpoints {
        Err(e) => writeln!(out, "checkpoints: cannot read: {e}")?,
        Ok(leases) => {
            writeln!(
                out,
                "{:<24} {:>14} {:<24} checkpoint",
                "shard", "millis behind", "owner"
            )?;
            for l in leases {
                let behind = lag
                    .get(&l.key)
                    .map_or_else(|| "-".to_owned(), |v| (*v as u64).to_string());
                let checkpoint = if l.is_finished() {
                    "SHARD_END (read to its end)"
                } else {
                    l.checkpoint.as_str()
                };
                writeln!(
                    out,
                    "{:<24} {:>14} {:<24} {checkpoint}",
                    l.key,
                    behind,
                    l.owner.as_deref().unwrap_or("-"),
                )?;
            }
        }
    }
    write_totals(&mut out, &scraped)?;
    Ok(())
}
