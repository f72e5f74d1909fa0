//! The progress line of `reconcile --once` and `observe` while they probe: probes done of the
//! total, failures so far, elapsed time — drawn on standard error, and only when it is a
//! terminal (a pipe, a file, a CI log or `--format json` get nothing).
//!
//! Log lines share standard error with the line: the logger draws them through [`suspend`], so
//! that a line is printed above the progress line instead of through it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use galaxy_runtime_reconciler::ProbeProgress;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The line being drawn, if any, for the logger to step around.
static ACTIVE: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Runs `draw` (a write to standard error) with the progress line, if one is drawn, lifted out of
/// the way and redrawn after.
pub fn suspend<R>(draw: impl FnOnce() -> R) -> R {
    let active = ACTIVE.lock().ok().and_then(|bar| bar.clone());
    match active {
        Some(bar) => bar.suspend(draw),
        None => draw(),
    }
}

/// The progress line of one command.
pub struct ProgressLine {
    bar: ProgressBar,
    failures: AtomicU64,
}

impl ProgressLine {
    /// A line on standard error when it is a terminal and the output is for people; `None`
    /// otherwise.
    pub fn on_terminal(for_people: bool) -> Option<Arc<Self>> {
        use std::io::IsTerminal;
        (for_people && std::io::stderr().is_terminal())
            .then(|| Arc::new(Self::new(ProgressDrawTarget::stderr())))
    }

    /// A line drawn on `target`.
    fn new(target: ProgressDrawTarget) -> Self {
        let bar = ProgressBar::with_draw_target(None, target);
        bar.set_style(
            ProgressStyle::with_template("probing engines: {pos}/{len} done, {msg}, {elapsed}")
                .expect("the template is valid"),
        );
        Self {
            bar,
            failures: AtomicU64::new(0),
        }
    }

    fn failures_message(failures: u64) -> String {
        match failures {
            1 => "1 failure".to_owned(),
            n => format!("{n} failures"),
        }
    }
}

impl ProbeProgress for ProgressLine {
    fn started(&self, total: usize) {
        self.failures.store(0, Ordering::Relaxed);
        self.bar.set_message(Self::failures_message(0));
        self.bar.set_length(total as u64);
        self.bar.reset();
        // A slow engine must not freeze the elapsed time on screen.
        self.bar.enable_steady_tick(Duration::from_millis(200));
        if let Ok(mut active) = ACTIVE.lock() {
            *active = Some(self.bar.clone());
        }
    }

    fn probed(&self, failed: bool) {
        if failed {
            let failures = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
            self.bar.set_message(Self::failures_message(failures));
        }
        self.bar.inc(1);
    }

    fn finished(&self) {
        if let Ok(mut active) = ACTIVE.lock() {
            *active = None;
        }
        // The plan or the scenario follows: the line has said what it had to.
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use indicatif::TermLike;

    /// A terminal that keeps the last line drawn, and every line ever drawn.
    #[derive(Debug, Default, Clone)]
    struct Screen(Arc<Mutex<Vec<String>>>);

    impl TermLike for Screen {
        fn width(&self) -> u16 {
            120
        }
        fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn write_line(&self, line: &str) -> std::io::Result<()> {
            self.0.lock().unwrap().push(line.to_owned());
            Ok(())
        }
        fn write_str(&self, text: &str) -> std::io::Result<()> {
            if !text.is_empty() {
                self.0.lock().unwrap().push(text.to_owned());
            }
            Ok(())
        }
        fn clear_line(&self) -> std::io::Result<()> {
            Ok(())
        }
        fn flush(&self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Waits (up to two seconds: the line redraws on its own tick) until `screen` shows
    /// `text`, and returns what it shows.
    fn shows(screen: &Screen, text: &str) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        loop {
            let drawn = screen.0.lock().unwrap().join("\n");
            if drawn.contains(text) || std::time::Instant::now() > deadline {
                return drawn;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn the_line_counts_probes_and_failures() {
        let screen = Screen::default();
        let line = ProgressLine::new(ProgressDrawTarget::term_like_with_hz(
            Box::new(screen.clone()),
            50,
        ));
        line.started(3);
        line.probed(false);
        let expected = "probing engines: 1/3 done, 0 failures, 0s";
        let drawn = shows(&screen, expected);
        assert!(drawn.contains(expected), "{drawn}");
        line.probed(true);
        let expected = "probing engines: 2/3 done, 1 failure, 0s";
        let drawn = shows(&screen, expected);
        assert!(drawn.contains(expected), "{drawn}");
        line.probed(true);
        line.finished();
        assert!(line.bar.is_finished());
        assert!(
            ACTIVE.lock().unwrap().is_none(),
            "the logger no longer steps around it"
        );
    }

    #[test]
    fn no_line_for_machines() {
        // Whether standard error is a terminal depends on how the tests are run; output for
        // machines never gets a line (tests/terminal.rs runs the command on a real pty).
        assert!(ProgressLine::on_terminal(false).is_none());
    }
}
