//! Draws one screen with ratatui: a header (switch, uptime, FDB churn), the
//! view tabs, the current view's table, and a status line; the help overlay
//! on top when asked. The same function draws the live terminal and the
//! `--once` text frame.

use std::cmp::Ordering;

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Clear, Paragraph, Row, Table};
use ratatui::Frame;

use super::keys::{SortKey, View, ViewState, HELP};
use super::rates::Rates;

/// Figures with an SI prefix and three significant digits: 0, 7.5, 950,
/// 1.23k, 45.6M.
pub fn si(x: f64) -> String {
    if x < 0.05 {
        return "0".into();
    }
    let (v, unit) = if x >= 1e9 {
        (x / 1e9, "G")
    } else if x >= 1e6 {
        (x / 1e6, "M")
    } else if x >= 1e3 {
        (x / 1e3, "k")
    } else {
        (x, "")
    };
    if v >= 100.0 || (unit.is_empty() && v >= 10.0) {
        format!("{v:.0}{unit}")
    } else if v >= 10.0 {
        format!("{v:.1}{unit}")
    } else if unit.is_empty() {
        format!("{v:.1}")
    } else {
        format!("{v:.2}{unit}")
    }
}

fn us(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(v) if v >= 100.0 => format!("{v:.0}"),
        Some(v) => format!("{v:.1}"),
    }
}

fn uptime(s: u64) -> String {
    match s {
        s if s >= 86_400 => format!("{}d{:02}h", s / 86_400, s % 86_400 / 3600),
        s if s >= 3600 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        s if s >= 60 => format!("{}m{:02}s", s / 60, s % 60),
        s => format!("{s}s"),
    }
}

/// Sorts `rows` by a name or a figure: names ascending, figures descending
/// (ties by name), then reversed if asked.
fn order<T>(
    rows: &mut [T],
    by_name: bool,
    reverse: bool,
    name: impl Fn(&T) -> String,
    figure: impl Fn(&T) -> f64,
) {
    rows.sort_by(|a, b| {
        let o = if by_name {
            Ordering::Equal
        } else {
            figure(b).total_cmp(&figure(a))
        };
        o.then_with(|| name(a).cmp(&name(b)))
    });
    if reverse {
        rows.reverse();
    }
}

fn right(s: String) -> Cell<'static> {
    Cell::from(Line::from(s).right_aligned())
}

fn header(cols: &[&'static str], numeric_from: usize) -> Row<'static> {
    Row::new(cols.iter().enumerate().map(|(i, c)| {
        if i >= numeric_from {
            right(c.to_string())
        } else {
            Cell::from(*c)
        }
    }))
    .style(Style::new().add_modifier(Modifier::BOLD | Modifier::REVERSED))
}

/// The table of the current view, and how many rows it has.
fn table(state: &ViewState, rates: &Rates) -> (Table<'static>, usize) {
    let by_name = state.sort() == SortKey::Name;
    let rev = state.reversed();
    let sort = state.sort();
    match state.view {
        View::Ports => {
            let mut rows = rates.ports.clone();
            order(
                &mut rows,
                by_name,
                rev,
                |p| p.name.clone(),
                |p| match sort {
                    SortKey::Tx => p.tx_bps,
                    SortKey::Drops => p.drops_ps,
                    _ => p.rx_bps,
                },
            );
            let n = rows.len();
            let body = rows.into_iter().map(|p| {
                Row::new(vec![
                    Cell::from(p.name),
                    right(si(p.rx_fps)),
                    right(si(p.rx_bps)),
                    right(si(p.tx_fps)),
                    right(si(p.tx_bps)),
                    right(si(p.drops_ps)),
                    right(p.macs.to_string()),
                ])
            });
            let t = Table::new(
                body,
                [
                    Constraint::Min(16),
                    Constraint::Length(11),
                    Constraint::Length(11),
                    Constraint::Length(11),
                    Constraint::Length(11),
                    Constraint::Length(9),
                    Constraint::Length(6),
                ],
            )
            .header(header(
                &[
                    "PORT", "RX frm/s", "RX bit/s", "TX frm/s", "TX bit/s", "DROPS/s", "MACS",
                ],
                1,
            ));
            (t, n)
        }
        View::Drops => {
            let mut rows = rates.drops.clone();
            order(
                &mut rows,
                by_name,
                rev,
                |d| format!("{}\0{}", d.port, d.reason.name()),
                |d| d.per_s,
            );
            let n = rows.len();
            let body = rows.into_iter().map(|d| {
                Row::new(vec![
                    Cell::from(d.port),
                    Cell::from(d.reason.name()),
                    right(si(d.per_s)),
                    right(d.total.to_string()),
                    Cell::from(d.reason.help()),
                ])
            });
            let t = Table::new(
                body,
                [
                    Constraint::Length(16),
                    Constraint::Length(22),
                    Constraint::Length(8),
                    Constraint::Length(10),
                    Constraint::Fill(1),
                ],
            )
            .header(header(&["PORT", "REASON", "DROPS/s", "TOTAL", "WHY"], 2));
            (t, n)
        }
        View::Macs => {
            let mut rows = rates.macs.clone();
            order(
                &mut rows,
                by_name,
                rev,
                |m| format!("{}\0{:04}", m.mac, m.vlan),
                |m| m.fps,
            );
            let n = rows.len();
            let body = rows.into_iter().map(|m| {
                let kind = match m.kind {
                    crate::switch::EntryKind::Learned => "learned",
                    crate::switch::EntryKind::Static => "static",
                    crate::switch::EntryKind::Evpn => "evpn",
                };
                Row::new(vec![
                    Cell::from(m.mac.to_string()),
                    right(m.vlan.to_string()),
                    Cell::from(m.port),
                    Cell::from(kind),
                    right(si(m.fps)),
                    right(m.frames.to_string()),
                    right(m.age_s.to_string()),
                ])
            });
            let t = Table::new(
                body,
                [
                    Constraint::Length(17),
                    Constraint::Length(4),
                    Constraint::Min(16),
                    Constraint::Length(7),
                    Constraint::Length(9),
                    Constraint::Length(12),
                    Constraint::Length(6),
                ],
            )
            .header(
                Row::new(vec![
                    Cell::from("MAC"),
                    right("VLAN".into()),
                    Cell::from("PORT"),
                    Cell::from("TYPE"),
                    right("FRM/s".into()),
                    right("FRAMES".into()),
                    right("AGE s".into()),
                ])
                .style(Style::new().add_modifier(Modifier::BOLD | Modifier::REVERSED)),
            );
            (t, n)
        }
        View::Latency => {
            let mut rows = rates.latency.clone();
            order(
                &mut rows,
                by_name,
                rev,
                |l| l.port.clone(),
                |l| match sort {
                    SortKey::Tx => l.per_s,
                    _ => l.p99_us.unwrap_or(-1.0),
                },
            );
            let n = rows.len();
            let body = rows.into_iter().map(|l| {
                Row::new(vec![
                    Cell::from(l.port),
                    right(si(l.per_s)),
                    right(us(l.p50_us)),
                    right(us(l.p99_us)),
                    right(us(l.max_us)),
                    right(us(l.p99_all_us)),
                ])
            });
            let t = Table::new(
                body,
                [
                    Constraint::Min(16),
                    Constraint::Length(11),
                    Constraint::Length(9),
                    Constraint::Length(9),
                    Constraint::Length(9),
                    Constraint::Length(13),
                ],
            )
            .header(header(
                &["PORT", "TIMED/s", "P50", "P99", "MAX", "P99 (start)"],
                1,
            ));
            (t, n)
        }
    }
}

/// Rows the current view has, for sizing the `--once` frame.
pub fn row_count(state: &ViewState, rates: &Rates) -> usize {
    table(state, rates).1
}

/// Draws the whole screen. `rates` is `None` until two samples are in;
/// `problem` replaces the key hints (a switch that stopped answering).
pub fn draw(frame: &mut Frame, state: &ViewState, rates: Option<&Rates>, problem: Option<&str>) {
    let [top, churn, tabs, body, status] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Fill(1),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    let bold = Style::new().add_modifier(Modifier::BOLD);

    let mut title = vec![
        Span::styled("l2sw top", bold),
        Span::raw(format!("  switch {}", state.switch)),
    ];
    if let Some(r) = rates {
        title.push(Span::raw(format!(
            "  up {}  interval {:.2} s",
            uptime(r.uptime_s),
            r.interval_s
        )));
    }
    frame.render_widget(Paragraph::new(Line::from(title)), top);
    if let Some(r) = rates {
        let f = &r.fdb;
        frame.render_widget(
            Paragraph::new(format!(
                "FDB {} entries ({} learned)  learned {}/s  moved {}/s  aged {}/s  refused {}/s",
                f.entries,
                f.learned_entries,
                si(f.learned_ps),
                si(f.moved_ps),
                si(f.aged_ps),
                si(f.refused_ps)
            )),
            churn,
        );
    }

    let mut spans = Vec::new();
    for (i, v) in View::ALL.iter().enumerate() {
        let label = format!(" {} {} ", i + 1, v.label());
        spans.push(if *v == state.view {
            Span::styled(label, bold.add_modifier(Modifier::REVERSED))
        } else {
            Span::raw(label)
        });
        spans.push(Span::raw(" "));
    }
    spans.push(Span::raw(format!(
        "  sort: {} {}",
        state.sort().label(),
        if state.reversed() { "(reversed)" } else { "" }
    )));
    frame.render_widget(Paragraph::new(Line::from(spans)), tabs);

    let block = Block::new()
        .borders(Borders::TOP)
        .title(Span::styled(state.view.heading(), bold));
    match rates {
        Some(r) => frame.render_widget(table(state, r).0.block(block), body),
        None => frame.render_widget(
            Paragraph::new("measuring: the first rates come one interval after start").block(block),
            body,
        ),
    }

    let line = match (problem, &state.note) {
        (Some(p), _) => Line::from(Span::styled(
            p.to_string(),
            Style::new().add_modifier(Modifier::BOLD),
        )),
        (None, Some(n)) => Line::from(n.clone()),
        (None, None) => {
            Line::from("q quit  ? help  1-4/Tab views  n r t x p sort  s next sort  i reverse")
        }
    };
    frame.render_widget(Paragraph::new(line), status);

    if state.help {
        help(frame, frame.area());
    }
}

fn help(frame: &mut Frame, area: Rect) {
    let h = (HELP.len() as u16 + 2).min(area.height);
    let w = (HELP.iter().map(|l| l.len()).max().unwrap_or(0) as u16 + 4).min(area.width);
    let at = area.centered(Constraint::Length(w), Constraint::Length(h));
    frame.render_widget(Clear, at);
    frame.render_widget(
        Paragraph::new(HELP.iter().map(|l| Line::from(*l)).collect::<Vec<_>>())
            .block(Block::bordered().title(" Keys ")),
        at,
    );
}
