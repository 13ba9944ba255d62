//! The terminal: the live loop (a sample per second, keys in between) and
//! the text rendering of one frame for `--once`.
//!
//! ratatui's `try_init` enters raw mode and the alternate screen and
//! installs a panic hook that leaves both before the panic message is
//! printed; [`Restore`] leaves them on every other way out (`q`, an error),
//! so the shell gets its terminal back whatever happens.

use std::path::Path;
use std::time::Instant;

use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::Terminal;

use super::draw::{draw, row_count};
use super::keys::{Action, Key, ViewState};
use super::rates::Rates;
use super::sample::Sample;
use super::{TopError, INTERVAL};
use crate::control::client::Client;

/// Leaves raw mode and the alternate screen when dropped.
struct Restore;

impl Drop for Restore {
    fn drop(&mut self) {
        ratatui::restore();
    }
}

fn key_of(code: KeyCode) -> Key {
    match code {
        KeyCode::Char(c) => Key::Char(c),
        KeyCode::Tab => Key::Tab,
        KeyCode::BackTab => Key::BackTab,
        KeyCode::Esc => Key::Esc,
        _ => Key::Other,
    }
}

/// The live view until `q`. A switch that stops answering is reported on
/// the status line and asked again every interval; the view stays.
pub fn live(name: &str, path: &Path, client: Client, mut state: ViewState) -> Result<(), TopError> {
    let mut client = Some(client);
    let mut prev: Option<Sample> = None;
    let mut rates: Option<Rates> = None;
    let mut problem: Option<String> = None;
    let mut terminal = ratatui::try_init()?;
    let _restore = Restore;
    let mut next = Instant::now();
    loop {
        let now = Instant::now();
        if now >= next {
            next = now + INTERVAL;
            let got = match client.take() {
                Some(c) => Ok(c),
                None => Client::connect(name, path),
            }
            .map_err(super::SampleError::from)
            .and_then(|mut c| Sample::fetch(&mut c).map(|s| (c, s)));
            match got {
                Ok((c, s)) => {
                    client = Some(c);
                    if let Some(p) = &prev {
                        rates = Some(Rates::between(p, &s));
                    }
                    prev = Some(s);
                    problem = None;
                }
                Err(e) => problem = Some(format!("{e} (retrying every second)")),
            }
        }
        terminal.draw(|f| draw(f, &state, rates.as_ref(), problem.as_deref()))?;
        let wait = next.saturating_duration_since(Instant::now());
        if event::poll(wait)? {
            match event::read()? {
                Event::Key(k) if k.kind != KeyEventKind::Release => {
                    let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
                    if state.on_key(key_of(k.code), ctrl) == Action::Quit {
                        return Ok(());
                    }
                }
                // A resize or an ignored event: redraw at once.
                _ => {}
            }
        }
    }
}

/// Columns of the `--once` frame: `$COLUMNS` if set, else 120.
pub fn text_width() -> u16 {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse::<u16>().ok())
        .filter(|c| (40..=1000).contains(c))
        .unwrap_or(120)
}

/// One frame as text, tall enough for every row of the view, trailing
/// blanks trimmed.
pub fn render_text(state: &ViewState, rates: &Rates, width: u16) -> String {
    // Header, churn, tabs, heading, column titles, status line.
    let height = (row_count(state, rates) + 6).clamp(8, 5000) as u16;
    let mut t = Terminal::new(TestBackend::new(width, height))
        .expect("an in-memory terminal cannot fail to open");
    t.draw(|f| draw(f, state, Some(rates), None))
        .expect("drawing into memory cannot fail");
    let buf = t.backend().buffer();
    let mut out = String::new();
    for y in 0..buf.area.height {
        let line: String = (0..buf.area.width)
            .map(|x| buf[(x, y)].symbol().to_string())
            .collect();
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
