//! `logtide-files parse`: shows how logtide reads container log lines, one JSON object per
//! output line.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use logtide_container_log::{
    parse_line, Entry, Format, Line, ParseError, Reassembler, ReassemblerConfig, Stream,
    DEFAULT_MAX_ENTRY_BYTES,
};
use logtide_event::Timestamp;

/// Output is written to the terminal or pipe once this much has accumulated.
const OUTPUT_CHUNK: usize = 64 * 1024;
/// Input is read in chunks of this size.
const INPUT_CHUNK: usize = 256 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum FormatArg {
    /// Docker json-file when the line starts with '{', CRI otherwise.
    Auto,
    /// CRI (containerd, CRI-O).
    Cri,
    /// Docker json-file.
    Docker,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum StreamArg {
    /// Both streams.
    All,
    /// Standard output only.
    Stdout,
    /// Standard error only.
    Stderr,
}

impl StreamArg {
    fn accepts(self, stream: Stream) -> bool {
        match self {
            StreamArg::All => true,
            StreamArg::Stdout => stream == Stream::Stdout,
            StreamArg::Stderr => stream == Stream::Stderr,
        }
    }
}

/// Parse container log lines (CRI or docker json-file) and print each as one JSON object:
/// {"time","stream","partial","message"} (plus "attrs", "truncated"), or {"error","line"}
/// for a line that cannot be parsed. Exits 0 even when lines are bad.
#[derive(Debug, clap::Args)]
pub(crate) struct ParseArgs {
    /// Line format: detected per line, or forced.
    #[arg(long, value_enum, default_value_t = FormatArg::Auto)]
    format: FormatArg,
    /// Join partial chunks and print only finished entries; entries still pending at the
    /// end of the input are printed with "partial":true.
    #[arg(long)]
    reassemble: bool,
    /// Print only the entries of this stream.
    #[arg(long, value_enum, default_value_t = StreamArg::All)]
    stream: StreamArg,
    /// With --reassemble: largest entry in bytes; the rest is cut and the entry is marked
    /// "truncated":true.
    #[arg(long, default_value_t = DEFAULT_MAX_ENTRY_BYTES as u64, value_parser = clap::value_parser!(u64).range(1..))]
    max_entry_bytes: u64,
    /// Files to read, one after the other; standard input when none. Partial chunks are
    /// joined within a file, never across files.
    files: Vec<PathBuf>,
}

/// Renders entries and errors as JSON lines into a buffer that is written out in chunks.
struct Printer<W: Write> {
    out: W,
    buf: Vec<u8>,
    /// The file being read, named in error objects when reading files.
    file: Option<String>,
}

impl<W: Write> Printer<W> {
    #[allow(clippy::too_many_arguments)]
    fn entry(
        &mut self,
        time: Timestamp,
        stream: Stream,
        partial: bool,
        message: &[u8],
        attrs: Option<&[u8]>,
        truncated: bool,
        flushed_at_eof: bool,
    ) {
        let b = &mut self.buf;
        b.extend_from_slice(b"{\"time\":\"");
        time.write_rfc3339(b);
        b.extend_from_slice(b"\",\"stream\":\"");
        b.extend_from_slice(stream.as_str().as_bytes());
        b.extend_from_slice(if partial {
            b"\",\"partial\":true,\"message\":"
        } else {
            b"\",\"partial\":false,\"message\":"
        });
        write_json_string(b, message);
        if let Some(attrs) = attrs {
            // Valid JSON already; bytes that are not UTF-8 can only sit inside its strings.
            b.extend_from_slice(b",\"attrs\":");
            b.extend_from_slice(String::from_utf8_lossy(attrs).as_bytes());
        }
        if truncated {
            b.extend_from_slice(b",\"truncated\":true");
        }
        if flushed_at_eof {
            b.extend_from_slice(b",\"flushed_at_eof\":true");
        }
        b.extend_from_slice(b"}\n");
    }

    fn line(&mut self, line: &Line<'_>) {
        let message = line.message.to_bytes();
        self.entry(
            line.time,
            line.stream,
            line.partial,
            &message,
            line.attrs,
            false,
            false,
        );
    }

    fn joined<K, M>(&mut self, e: &Entry<'_, K, M>, at_eof: bool) {
        self.entry(
            e.time,
            e.stream,
            e.partial,
            &e.message,
            e.attrs.as_deref(),
            e.truncated,
            at_eof,
        );
    }

    fn error(&mut self, line_no: u64, error: &ParseError) {
        let mut obj = serde_json::Map::new();
        obj.insert("error".into(), error.to_string().into());
        obj.insert("line".into(), line_no.into());
        if let Some(file) = &self.file {
            obj.insert("file".into(), file.clone().into());
        }
        // A map of strings and numbers always serializes.
        let _ = serde_json::to_writer(&mut self.buf, &obj);
        self.buf.push(b'\n');
    }

    fn maybe_flush(&mut self) -> io::Result<()> {
        if self.buf.len() >= OUTPUT_CHUNK {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.write_all(&self.buf)?;
        self.buf.clear();
        self.out.flush()
    }
}

/// Appends `bytes` as a JSON string, with bytes that are not UTF-8 replaced by U+FFFD.
fn write_json_string(out: &mut Vec<u8>, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    // Serializing a string into a Vec cannot fail.
    let _ = serde_json::to_writer(out, text.as_ref());
}

pub(crate) fn run(args: &ParseArgs) -> anyhow::Result<ExitCode> {
    let stdout = io::stdout();
    let mut printer = Printer {
        out: stdout.lock(),
        buf: Vec::with_capacity(OUTPUT_CHUNK * 2),
        file: None,
    };
    let mut failed = false;
    let result = (|| -> io::Result<()> {
        if args.files.is_empty() {
            parse_input(args, io::stdin().lock(), &mut printer)?;
        }
        for path in &args.files {
            let file = match File::open(path) {
                Ok(f) => f,
                Err(e) => {
                    eprintln!("logtide-files: cannot open {}: {e}", path.display());
                    failed = true;
                    continue;
                }
            };
            printer.file = Some(path.display().to_string());
            if let Err(e) = parse_input(args, file, &mut printer) {
                if e.kind() == io::ErrorKind::BrokenPipe {
                    return Err(e);
                }
                eprintln!("logtide-files: cannot read {}: {e}", path.display());
                failed = true;
            }
        }
        printer.flush()
    })();
    match result {
        // The reader of our output went away (`| head`): nothing left to do.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => Err(e.into()),
        Ok(()) if failed => Ok(ExitCode::FAILURE),
        Ok(()) => Ok(ExitCode::SUCCESS),
    }
}

fn parse_input<R: Read, W: Write>(
    args: &ParseArgs,
    input: R,
    printer: &mut Printer<W>,
) -> io::Result<()> {
    let format = match args.format {
        FormatArg::Auto => Format::Auto,
        FormatArg::Cri => Format::Cri,
        FormatArg::Docker => Format::Docker,
    };
    let mut reader = BufReader::with_capacity(INPUT_CHUNK, input);
    let mut joiner = args.reassemble.then(|| {
        Reassembler::<(), u64>::new(ReassemblerConfig {
            max_entry_bytes: usize::try_from(args.max_entry_bytes).unwrap_or(usize::MAX),
            ..ReassemblerConfig::default()
        })
    });
    let mut line_buf = Vec::new();
    let mut line_no = 0u64;
    loop {
        line_buf.clear();
        if reader.read_until(b'\n', &mut line_buf)? == 0 {
            break;
        }
        line_no += 1;
        match parse_line(&line_buf, format) {
            Err(e) => printer.error(line_no, &e),
            Ok(line) if !args.stream.accepts(line.stream) => {}
            Ok(line) => match joiner.as_mut() {
                Some(j) => j.push(&(), &line, line_no, |e| printer.joined(&e, false)),
                None => printer.line(&line),
            },
        }
        printer.maybe_flush()?;
    }
    if let Some(j) = joiner.as_mut() {
        j.flush_all(|e| printer.joined(&e, true));
    }
    Ok(())
}
