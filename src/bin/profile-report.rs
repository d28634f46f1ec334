//! `profile-report`: read pprof profiles without Go (cargo feature `cli`).
//!
//! ```text
//! profile-report top profiles/cpu.pb.gz
//! profile-report top --sample-index alloc_space --nodecount 20 --focus 'myapp::' heap.pb.gz
//! profile-report top --show-from 'myapp::' --hide 'tokio::' --tagfocus http.route=/users cpu.pb.gz
//! profile-report top --cum profiles/cpu.pb.gz
//! profile-report diff --base before.pb.gz after.pb.gz
//! profile-report flamegraph -o cpu.svg profiles/cpu.pb.gz
//! profile-report folded profiles/cpu.pb.gz | inferno-flamegraph > cpu.svg
//! profile-report text profiles/heap.pb.gz
//! ```

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use profile::report;

#[derive(Parser)]
#[command(
    name = "profile-report",
    version,
    about = "Read pprof profiles (ours and Go's, .pb.gz or raw) without Go: top tables, diffs, flame graphs, collapsed stacks, text",
    after_help = "FILE may be - for standard input. Values are formatted as `go tool pprof` does (ms/s for time, B/kB/MB for bytes)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct Select {
    /// Sample type to report: inuse_space, alloc_space, delay, cpu, samples, ... or its
    /// index (default: the profile's default type, else its last)
    #[arg(
        long = "sample-index",
        visible_alias = "sample_index",
        value_name = "TYPE"
    )]
    sample_index: Option<String>,
    /// Keep only samples with a frame matching this regex (function, file or object name)
    #[arg(long)]
    focus: Option<String>,
    /// Drop samples with a frame matching this regex
    #[arg(long)]
    ignore: Option<String>,
    /// Remove frames matching this regex from every stack
    #[arg(long)]
    hide: Option<String>,
    /// Keep only frames matching this regex in every stack
    #[arg(long)]
    show: Option<String>,
    /// Drop the callers of the outermost frame matching this regex (samples without one go)
    #[arg(long = "show-from", visible_alias = "show_from", value_name = "REGEX")]
    show_from: Option<String>,
    /// Keep only samples with a matching label: key=regex, regex (any key:value), or
    /// key=range for numeric labels (32kb, 1kb:4kb, :10ms)
    #[arg(long = "tagfocus", value_name = "FILTER")]
    tag_focus: Option<String>,
    /// Drop samples with a matching label (the same forms as --tagfocus)
    #[arg(long = "tagignore", value_name = "FILTER")]
    tag_ignore: Option<String>,
}

#[derive(Args, Clone)]
struct Trim {
    /// Show at most this many entries (0: all)
    #[arg(long, default_value_t = 0)]
    nodecount: usize,
    /// Hide entries whose cum is below this fraction of the total
    #[arg(long, default_value_t = 0.005)]
    nodefraction: f64,
    /// Sort by cumulative value (default: by flat)
    #[arg(long)]
    cum: bool,
}

#[derive(Subcommand)]
enum Command {
    /// The table `go tool pprof -top` prints: flat, flat%, sum%, cum, cum%, function
    Top {
        #[command(flatten)]
        select: Select,
        #[command(flatten)]
        trim: Trim,
        /// The profile (.pb.gz or raw protobuf)
        file: PathBuf,
    },
    /// The top table of FILE minus a base profile (`go tool pprof -top -diff_base BASE`)
    Diff {
        /// The profile to subtract; percentages are of its total
        #[arg(long)]
        base: PathBuf,
        #[command(flatten)]
        select: Select,
        #[command(flatten)]
        trim: Trim,
        /// The profile (.pb.gz or raw protobuf)
        file: PathBuf,
    },
    /// An interactive SVG flame graph (open it in a browser)
    Flamegraph {
        #[command(flatten)]
        select: Select,
        /// Write the SVG here (default: standard output)
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Leave out frames narrower than this many pixels (0: keep all)
        #[arg(long, default_value_t = 0.1)]
        min_width: f64,
        /// Title (default: the sample type and unit)
        #[arg(long)]
        title: Option<String>,
        /// The profile (.pb.gz or raw protobuf)
        file: PathBuf,
    },
    /// Collapsed stacks, `root;...;leaf VALUE`, for other flame graph viewers
    Folded {
        #[command(flatten)]
        select: Select,
        /// The profile (.pb.gz or raw protobuf)
        file: PathBuf,
    },
    /// The debug=1 text of the profile (Go's /debug/pprof/*?debug=1 layout)
    Text {
        /// Sample type for CPU and clock profiles
        #[arg(long = "sample-index", value_name = "TYPE")]
        sample_index: Option<String>,
        /// The profile (.pb.gz or raw protobuf)
        file: PathBuf,
    },
}

/// An error without the library's `profile: ` / `profile: report: ` prefix (the command
/// prints its own).
fn msg(e: profile::Error) -> String {
    let s = e.to_string();
    let t = s.strip_prefix("profile: ").unwrap_or(&s);
    t.strip_prefix("report: ").unwrap_or(t).to_owned()
}

fn load(path: &Path) -> Result<profile::Profile, String> {
    let mut bytes = Vec::new();
    let limit = report::MAX_DECODED_BYTES + 1;
    let r = if path == Path::new("-") {
        std::io::stdin().take(limit).read_to_end(&mut bytes)
    } else {
        std::fs::File::open(path).and_then(|f| f.take(limit).read_to_end(&mut bytes))
    };
    r.map_err(|e| format!("{}: {e}", path.display()))?;
    report::read(&bytes).map_err(|e| format!("{}: {}", path.display(), msg(e)))
}

fn options(select: &Select, trim: Option<&Trim>) -> report::Options {
    let mut o = report::Options::default();
    o.sample_index = select.sample_index.clone();
    o.focus = select.focus.clone();
    o.ignore = select.ignore.clone();
    o.hide = select.hide.clone();
    o.show = select.show.clone();
    o.show_from = select.show_from.clone();
    o.tag_focus = select.tag_focus.clone();
    o.tag_ignore = select.tag_ignore.clone();
    if let Some(t) = trim {
        o.node_count = t.nodecount;
        o.node_fraction = t.nodefraction;
        o.cum = t.cum;
    }
    o
}

fn run(cli: Cli) -> Result<(), String> {
    let out = |bytes: &[u8]| {
        let mut stdout = std::io::stdout().lock();
        match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
            // `profile-report top x | head` closes the pipe: not an error.
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                Err(format!("standard output: {e}"))
            }
            _ => Ok(()),
        }
    };
    match cli.command {
        Command::Top { select, trim, file } => {
            let p = load(&file)?;
            let top = report::top(&p, &options(&select, Some(&trim))).map_err(msg)?;
            out(top.to_string().as_bytes())
        }
        Command::Diff {
            base,
            select,
            trim,
            file,
        } => {
            let (p, b) = (load(&file)?, load(&base)?);
            let top = report::diff(&p, &b, &options(&select, Some(&trim))).map_err(msg)?;
            out(top.to_string().as_bytes())
        }
        Command::Flamegraph {
            select,
            output,
            min_width,
            title,
            file,
        } => {
            let p = load(&file)?;
            let mut flame = report::FlameOptions::default().min_width(min_width);
            if let Some(t) = title {
                flame = flame.title(t);
            }
            let svg = report::flamegraph(&p, &options(&select, None), &flame).map_err(msg)?;
            match output {
                Some(path) => report::save(&path, &svg).map_err(msg),
                None => out(&svg),
            }
        }
        Command::Folded { select, file } => {
            let p = load(&file)?;
            let f = report::folded(&p, &options(&select, None)).map_err(msg)?;
            out(f.as_bytes())
        }
        Command::Text { sample_index, file } => {
            let p = load(&file)?;
            let mut o = report::Options::default();
            o.sample_index = sample_index;
            let t = report::text(&p, &o).map_err(msg)?;
            out(t.as_bytes())
        }
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("profile-report: {e}");
            ExitCode::FAILURE
        }
    }
}
