//! What `slim build` and `slim profile` print while they work: one line per phase on stderr, a
//! spinner with elapsed time for the long phases on a terminal, nothing with `--quiet`.

use std::{
    io::IsTerminal as _,
    time::{Duration, Instant},
};

/// The console of one run.
#[derive(Clone, Copy)]
pub struct Console {
    pub quiet: bool,
}

impl Console {
    /// Prints one line, unless quiet.
    pub fn say(&self, line: impl AsRef<str>) {
        if !self.quiet {
            eprintln!("{}", line.as_ref());
        }
    }

    /// Starts a long phase.
    pub fn phase(&self, line: String) -> Phase {
        Phase::start(self.quiet, line)
    }
}

/// A long phase on the console: a spinner with elapsed time on a terminal, a plain line
/// otherwise.
pub struct Phase(Option<(indicatif::ProgressBar, String, Instant)>);

impl Phase {
    fn start(quiet: bool, line: String) -> Self {
        if quiet {
            return Self(None);
        }
        if !std::io::stderr().is_terminal() {
            eprintln!("{line}");
            return Self(None);
        }
        let bar = indicatif::ProgressBar::new_spinner();
        if let Ok(style) = indicatif::ProgressStyle::with_template("{msg} {spinner} {elapsed}") {
            bar.set_style(style);
        }
        bar.set_message(line.clone());
        bar.enable_steady_tick(Duration::from_millis(120));
        Self(Some((bar, line, Instant::now())))
    }

    /// Replaces the spinner with the phase's line and its duration.
    pub fn done(self) {
        if let Some((bar, line, started)) = self.0 {
            bar.finish_and_clear();
            eprintln!("{line} ({:.1}s)", started.elapsed().as_secs_f64());
        }
    }
}
