//! `llama-orch logs`: reads JSON-lines logs (files, or stdin), merges them by time, filters them
//! and renders them as the live pretty sink would have (`logging::replay`); `--follow` keeps
//! polling the files for new lines, like `tail -F`.

mod filter;
mod merge;
mod source;

use crate::args::LogsArgs;
use crate::console;
use crate::error::CliError;
use filter::Filter;
use logging::replay::{Line, Renderer, ReplayOptions};
use merge::Merger;
use source::Source;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

/// How often followed files are looked at again when nothing new came.
const POLL_EVERY: Duration = Duration::from_millis(250);

pub fn run(args: &LogsArgs) -> Result<(), CliError> {
    let filter = Filter::from_args(args, time::OffsetDateTime::now_utc())?;
    let paths = if args.files.is_empty() {
        vec![PathBuf::from("-")]
    } else {
        args.files.clone()
    };
    let stdins = paths.iter().filter(|p| p.as_os_str() == "-").count();
    if stdins > 1 {
        return Err(CliError::Usage("stdin (`-`) can be read only once".into()));
    }
    if stdins == 1 && std::io::stdin().is_terminal() {
        return Err(CliError::Usage(
            "give log files, or pipe a log into `llama-orch logs -`".into(),
        ));
    }
    let sources = paths
        .iter()
        .map(|p| Source::open(p, args.follow))
        .collect::<Result<Vec<_>, _>>()?;
    let mut merger = Merger::new(sources);
    let mut printer = Printer {
        filter,
        renderer: Renderer::new(ReplayOptions {
            colour: console::colour_on_stdout(),
            full: args.full,
            offsets: false,
        }),
        out: std::io::BufWriter::new(std::io::stdout().lock()),
    };
    merger.merge_available(true, &mut |line| printer.emit(&line))?;
    printer.flush()?;
    while args.follow && !merger.all_done() {
        let any = merger.merge_available(false, &mut |line| printer.emit(&line))?;
        printer.flush()?;
        if !any {
            std::thread::sleep(POLL_EVERY);
        }
    }
    Ok(())
}

/// Renders the lines the filter keeps, in the order given, into stdout.
struct Printer<W: Write> {
    filter: Filter,
    renderer: Renderer,
    out: W,
}

impl<W: Write> Printer<W> {
    fn emit(&mut self, line: &Line) -> Result<(), CliError> {
        if self.filter.keeps(line) {
            let text = self.renderer.render(line);
            self.out.write_all(text.as_bytes()).map_err(write_error)?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), CliError> {
        self.out.flush().map_err(write_error)
    }
}

fn write_error(e: std::io::Error) -> CliError {
    match e.kind() {
        std::io::ErrorKind::BrokenPipe => CliError::StdoutClosed,
        _ => CliError::Other(format!("cannot write to stdout: {e}")),
    }
}
