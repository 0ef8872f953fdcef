//! What every logtide binary does at start: logging to standard error, and a stop flag
//! set by SIGTERM or SIGINT.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::Error;

/// Logs to standard error with `tracing`, at the level `LOGTIDE_LOG` gives (an
/// `EnvFilter` directive such as `info` or `logtide_tail=debug`; `info` by default), as
/// text or, with `LOGTIDE_LOG_FORMAT=json`, as one JSON object per line (`timestamp`,
/// `level`, `target`, `fields`) for log collectors.
///
/// Nothing logged carries a secret: configurations are never logged whole, and the
/// values that could hold one (webhook URLs, passwords, tokens) are redacted by their
/// types' `Debug`.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LOGTIDE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let json = match std::env::var("LOGTIDE_LOG_FORMAT").as_deref() {
        Ok("json") => true,
        Ok("text") | Err(_) => false,
        Ok(other) => {
            eprintln!("LOGTIDE_LOG_FORMAT={other:?} is neither text nor json; logging text");
            false
        }
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().with_current_span(false).init();
    } else {
        builder.with_ansi(std::io::stderr().is_terminal()).init();
    }
}

/// A flag that SIGTERM or SIGINT sets, logging `stopping` (what the program does now,
/// e.g. "flushing and saving the registry"). A second signal exits at once with status
/// 130, saying so as `program`.
pub fn stop_on_signals(
    program: &'static str,
    stopping: &'static str,
) -> Result<Arc<AtomicBool>, Error> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let stop = Arc::new(AtomicBool::new(false));
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT])
        .map_err(|e| Error::Process(format!("cannot install signal handlers: {e}")))?;
    let flag = stop.clone();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                if flag.swap(true, Ordering::SeqCst) {
                    eprintln!("{program}: second signal {sig}: exiting without a clean shutdown");
                    std::process::exit(130);
                }
                tracing::info!(signal = sig, "stopping: {stopping}");
            }
        })
        .map_err(|e| Error::Process(format!("cannot start the signal thread: {e}")))?;
    Ok(stop)
}
