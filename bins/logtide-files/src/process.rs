//! `logtide-files process`: run a configuration's processors over NDJSON events.

use std::io::{self, BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use logtide_event::Event;
use logtide_pipeline::files::load_processors;

/// Read NDJSON events on standard input (`@timestamp` and `@metadata` as Filebeat uses
/// them), run the configuration's `processors:` over each, and print each resulting event
/// as one JSON object (a dropped event prints nothing). Processor errors and lines that
/// are not events are reported on standard error; the exit status is still 0.
#[derive(Debug, clap::Args)]
pub(crate) struct ProcessArgs {
    /// Configuration file with a `processors:` list (a full logtide-files configuration,
    /// or a file with only `processors:`).
    #[arg(short = 'c', long = "config")]
    config: PathBuf,
}

pub(crate) fn run(args: &ProcessArgs) -> anyhow::Result<ExitCode> {
    let processors = load_processors(&args.config)?;
    let stdin = io::stdin().lock();
    let mut out = io::BufWriter::new(io::stdout().lock());
    let mut err = io::stderr().lock();
    let mut buf = Vec::new();
    for (n, line) in stdin.split(b'\n').enumerate() {
        let line = line?;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let event = serde_json::from_slice(&line)
            .map_err(|e| e.to_string())
            .and_then(|v| Event::from_json(v).map_err(|e| e.to_string()));
        let mut event = match event {
            Ok(e) => e,
            Err(e) => {
                writeln!(err, "line {}: not an event: {e}", n + 1)?;
                continue;
            }
        };
        let outcome = processors.run(&mut event);
        for e in outcome.errors() {
            writeln!(err, "line {}: {e}", n + 1)?;
        }
        if !outcome.is_dropped() {
            buf.clear();
            event.write_json(&mut buf);
            buf.push(b'\n');
            out.write_all(&buf)?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
