//! What the screen shows and how keys change it: the view, each view's sort
//! order, the help overlay. No terminal here, so keys are unit-tested.

/// The four screens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Ports,
    Drops,
    Macs,
    Latency,
}

impl View {
    pub const ALL: [View; 4] = [View::Ports, View::Drops, View::Macs, View::Latency];

    /// The tab label (also what `--view` takes, lowercased).
    pub fn label(self) -> &'static str {
        match self {
            View::Ports => "Ports",
            View::Drops => "Drops",
            View::Macs => "FDB-MACs",
            View::Latency => "Latency",
        }
    }

    /// The heading above the table: what its numbers are.
    pub fn heading(self) -> &'static str {
        match self {
            View::Ports => "Traffic per port, per second",
            View::Drops => "Drops per second by port and reason",
            View::Macs => "Busiest MACs: frames per second received from each FDB entry",
            View::Latency => "Forwarding latency per egress port over the last interval (us)",
        }
    }

    /// Columns this view can be sorted by, the default first.
    pub fn sort_keys(self) -> &'static [SortKey] {
        match self {
            View::Ports => &[SortKey::Rx, SortKey::Tx, SortKey::Drops, SortKey::Name],
            View::Drops => &[SortKey::Drops, SortKey::Name],
            View::Macs => &[SortKey::Rx, SortKey::Name],
            View::Latency => &[SortKey::P99, SortKey::Tx, SortKey::Name],
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// A sort column. Names sort ascending, figures descending (busiest first);
/// `i` reverses either.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Name,
    Rx,
    Tx,
    Drops,
    P99,
}

impl SortKey {
    pub fn label(self) -> &'static str {
        match self {
            SortKey::Name => "name",
            SortKey::Rx => "rx",
            SortKey::Tx => "tx",
            SortKey::Drops => "drops",
            SortKey::P99 => "p99",
        }
    }

    fn key(self) -> char {
        match self {
            SortKey::Name => 'n',
            SortKey::Rx => 'r',
            SortKey::Tx => 't',
            SortKey::Drops => 'x',
            SortKey::P99 => 'p',
        }
    }

    fn from_key(c: char) -> Option<SortKey> {
        [
            SortKey::Name,
            SortKey::Rx,
            SortKey::Tx,
            SortKey::Drops,
            SortKey::P99,
        ]
        .into_iter()
        .find(|s| s.key() == c)
    }
}

/// What a key asks of the loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Quit,
    Redraw,
    Ignore,
}

/// The screen's state.
#[derive(Debug, Clone)]
pub struct ViewState {
    pub switch: String,
    pub view: View,
    sort: [SortKey; 4],
    reverse: [bool; 4],
    pub help: bool,
    /// A one-line message for the status bar (a key this view has no use for).
    pub note: Option<String>,
}

/// The help overlay's lines: every key, as `docs/operations.md` lists them.
pub const HELP: &[&str] = &[
    "1 2 3 4    views: Ports, Drops, FDB-MACs, Latency",
    "Tab        next view (Shift-Tab: previous)",
    "n          sort by name (MAC in FDB-MACs)",
    "r          sort by rx rate (frames/s from the MAC in FDB-MACs)",
    "t          sort by tx rate (frames timed/s in Latency)",
    "x          sort by drops per second",
    "p          sort by p99 latency (Latency)",
    "s          next sort column of this view",
    "i          reverse the order",
    "?          this help (any key closes it)",
    "q, Ctrl-C  quit",
];

impl ViewState {
    pub fn new(switch: &str, view: View) -> ViewState {
        ViewState {
            switch: switch.to_string(),
            view,
            sort: View::ALL.map(|v| v.sort_keys()[0]),
            reverse: [false; 4],
            help: false,
            note: None,
        }
    }

    pub fn sort(&self) -> SortKey {
        self.sort[self.view.index()]
    }

    pub fn reversed(&self) -> bool {
        self.reverse[self.view.index()]
    }

    /// Sorts the current view by `key` if it has that column.
    pub fn set_sort(&mut self, key: SortKey) -> bool {
        if self.view.sort_keys().contains(&key) {
            self.sort[self.view.index()] = key;
            true
        } else {
            false
        }
    }

    /// Handles one key press (`ctrl`: Control was held).
    pub fn on_key(&mut self, key: Key, ctrl: bool) -> Action {
        self.note = None;
        if ctrl {
            return match key {
                Key::Char('c') => Action::Quit,
                _ => Action::Ignore,
            };
        }
        if self.help {
            if key == Key::Char('q') {
                return Action::Quit;
            }
            self.help = false;
            return Action::Redraw;
        }
        let at = self.view.index();
        match key {
            Key::Char('q') | Key::Esc => return Action::Quit,
            Key::Char('?') | Key::Char('h') => self.help = true,
            Key::Char(c @ '1'..='4') => self.view = View::ALL[c as usize - '1' as usize],
            Key::Tab => self.view = View::ALL[(at + 1) % 4],
            Key::BackTab => self.view = View::ALL[(at + 3) % 4],
            Key::Char('i') => self.reverse[at] = !self.reverse[at],
            Key::Char('s') => {
                let keys = self.view.sort_keys();
                let now = keys.iter().position(|k| *k == self.sort()).unwrap_or(0);
                self.sort[at] = keys[(now + 1) % keys.len()];
            }
            Key::Char(c) => match SortKey::from_key(c) {
                Some(k) => {
                    if !self.set_sort(k) {
                        let have: Vec<String> = self
                            .view
                            .sort_keys()
                            .iter()
                            .map(|k| format!("{} ({})", k.key(), k.label()))
                            .collect();
                        self.note = Some(format!(
                            "{} has no {} column; sort keys here: {}",
                            self.view.label(),
                            k.label(),
                            have.join(", ")
                        ));
                    }
                }
                None => return Action::Ignore,
            },
            Key::Other => return Action::Ignore,
        }
        Action::Redraw
    }
}

/// The keys `top` knows, apart from the terminal library's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Char(char),
    Tab,
    BackTab,
    Esc,
    Other,
}
