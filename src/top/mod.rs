//! `l2sw top`: a live full-screen view of a running switch, refreshed every
//! second: per-port rx/tx rates, drops per second by reason, FDB size and
//! churn, the busiest MACs and per-port latency percentiles.
//!
//! It is a plain control-socket client: each second it sends the `stats`,
//! `fdb-show` and `latency` requests every other client uses, and computes
//! rates from the counter deltas itself (`rates`), so the switch keeps no
//! per-viewer state. `sample` fetches, `rates` subtracts, `keys` holds what
//! the screen shows and how keys change it, `draw` renders it with ratatui,
//! `term` owns the terminal (raw mode, alternate screen, restored on exit
//! and on panic). `--once` renders the same screen into text instead.

mod draw;
mod keys;
mod rates;
mod sample;
mod term;
#[cfg(test)]
mod tests;

use std::io::IsTerminal as _;
use std::path::Path;
use std::time::Duration;

pub use keys::{SortKey, View};
pub use rates::Rates;
pub use sample::{Sample, SampleError};

use crate::control::client::Client;
use keys::ViewState;

/// Time between two samples.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// How `top` was asked to start.
#[derive(Debug, Clone)]
pub struct TopOptions {
    pub view: View,
    /// `None`: the view's default column.
    pub sort: Option<SortKey>,
    pub reverse: bool,
    /// Print one frame as text and exit instead of the live view.
    pub once: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum TopError {
    #[error(
        "l2sw top draws a live full-screen view and needs a terminal on stdout; \
         use `l2sw top --once` to print one frame as text"
    )]
    NotATerminal,
    #[error("the {view} view cannot be sorted by {sort}; it sorts by {have}")]
    NoSuchSort {
        view: &'static str,
        sort: &'static str,
        have: String,
    },
    #[error(transparent)]
    Client(#[from] crate::control::client::ClientError),
    #[error(transparent)]
    Sample(#[from] SampleError),
    #[error("terminal: {0}")]
    Terminal(#[from] std::io::Error),
}

fn initial_state(name: &str, opts: &TopOptions) -> Result<ViewState, TopError> {
    let mut state = ViewState::new(name, opts.view);
    if let Some(s) = opts.sort {
        if !state.set_sort(s) {
            let have: Vec<&str> = opts.view.sort_keys().iter().map(|k| k.label()).collect();
            return Err(TopError::NoSuchSort {
                view: opts.view.label(),
                sort: s.label(),
                have: have.join(", "),
            });
        }
    }
    if opts.reverse {
        state.on_key(keys::Key::Char('i'), false);
    }
    Ok(state)
}

/// Runs `top` against switch `name` (control socket `path`): the live view,
/// or with `once` one text frame, returned for the caller to print.
pub fn run(name: &str, path: &Path, opts: &TopOptions) -> Result<Option<String>, TopError> {
    let state = initial_state(name, opts)?;
    if !opts.once && !std::io::stdout().is_terminal() {
        return Err(TopError::NotATerminal);
    }
    let mut client = Client::connect(name, path)?;
    if opts.once {
        let first = Sample::fetch(&mut client)?;
        std::thread::sleep(INTERVAL);
        let second = Sample::fetch(&mut client)?;
        let rates = Rates::between(&first, &second);
        return Ok(Some(term::render_text(&state, &rates, term::text_width())));
    }
    term::live(name, path, client, state)?;
    Ok(None)
}
