//! The filter language of `l2sw capture` (and trace): a small, tcpdump-like
//! boolean expression over a frame's Ethernet header and the switch port
//! the record is for. The syntax is documented in `docs/capture.md`.
//!
//! ```text
//! expr    := and_expr (("or" | "||") and_expr)*
//! and_expr:= unary (("and" | "&&") unary)*
//! unary   := ("not" | "!") unary | "(" expr ")" | primitive
//! ```
//!
//! Design notes:
//! - `and`/`or` chains are kept flat (`And(vec)`), so a long filter is a wide
//!   tree, not a deep one; depth only comes from parentheses and `not`, which
//!   are capped, so neither parsing, matching nor dropping a filter can run
//!   out of stack whatever the input.
//! - Aliases are folded while parsing (`broadcast` is `dst ff:ff:ff:ff:ff:ff`,
//!   `ip` is `ethertype 0x0800`), so two filters that mean the same primitive
//!   compare equal, and `Display` prints one canonical spelling.
//! - Columns in errors count characters from 0 (`pos`); the message shows
//!   them from 1, as editors do.

use std::fmt;
use std::str::FromStr;

use crate::wire::{EtherType, EthernetFrame, MacAddr, VLAN_TAG_LEN};

/// Parentheses plus `not`s allowed inside each other. Far beyond what anyone
/// types; it only exists so that hostile input cannot exhaust the stack.
const MAX_DEPTH: usize = 64;

const STP_GROUP: MacAddr = MacAddr([0x01, 0x80, 0xc2, 0x00, 0x00, 0x00]);

/// Words that name an EtherType, canonical spelling first for each value.
const ETHERTYPE_NAMES: &[(&str, u16)] = &[
    ("arp", 0x0806),
    ("ipv4", 0x0800),
    ("ip", 0x0800),
    ("ipv6", 0x86dd),
    ("ip6", 0x86dd),
    ("lldp", 0x88cc),
];

const PRIMITIVE_WORDS: &str = "src, dst, mac, vlan, ethertype, arp, ip, ip6, lldp, stp, \
                               broadcast, multicast, port, not or `(`";

/// A parsed filter. `match_all()` matches every record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// `None`: no filter, everything matches.
    root: Option<Expr>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Expr {
    Prim(Prim),
    Not(Box<Expr>),
    /// At least two operands.
    And(Vec<Expr>),
    /// At least two operands.
    Or(Vec<Expr>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Prim {
    Src(MacAddr),
    Dst(MacAddr),
    /// Source or destination.
    Mac(MacAddr),
    /// Any outer tag (`None`) or an outer tag with this VID.
    Vlan(Option<u16>),
    /// The payload's EtherType, behind every VLAN tag.
    EtherType(u16),
    /// Destination is a group address (broadcast included).
    Multicast,
    Port(String),
}

/// Why an expression is not a filter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad filter at column {col}: {msg}{excerpt}", col = self.pos + 1, msg = self.msg, excerpt = self.excerpt())]
pub struct FilterError {
    /// Offset of the offending token, in characters from 0; the length of
    /// the expression when something is missing at its end.
    pub pos: usize,
    pub msg: String,
    /// The expression, to point into.
    pub expr: String,
}

impl FilterError {
    /// Two indented lines: the expression and a caret under `pos`. Empty
    /// when the expression is blank (there is nothing to point at).
    pub fn excerpt(&self) -> String {
        if self.expr.trim().is_empty() {
            return String::new();
        }
        // Tabs and other controls would shift the caret or the terminal.
        let line: String = self
            .expr
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        format!("\n  {line}\n  {}^", " ".repeat(self.pos))
    }
}

impl Filter {
    /// Parses an expression; see the module docs and `docs/capture.md`.
    pub fn parse(expr: &str) -> Result<Filter, FilterError> {
        let fail = |pos: usize, msg: String| FilterError {
            pos,
            msg,
            expr: expr.to_string(),
        };
        let tokens = tokenize(expr).map_err(|(pos, msg)| fail(pos, msg))?;
        let end = expr.chars().count();
        let mut p = Parser {
            tokens: &tokens,
            next: 0,
            end,
            depth: 0,
        };
        let root = p.expr().map_err(|(pos, msg)| fail(pos, msg))?;
        if let Some(t) = p.peek() {
            let msg = match t.kind {
                Tok::RParen => "unmatched `)`".to_string(),
                _ => format!(
                    "unexpected `{}` after a complete expression (missing `and` or `or`?)",
                    t.text
                ),
            };
            return Err(fail(t.pos, msg));
        }
        Ok(Filter { root: Some(root) })
    }

    /// The filter that matches everything (no `--filter`). Displays as "".
    pub fn match_all() -> Filter {
        Filter { root: None }
    }

    pub fn is_match_all(&self) -> bool {
        self.root.is_none()
    }

    /// Whether the record of `frame` (raw Ethernet bytes, maybe VLAN tagged)
    /// on the switch port named `port` passes. Never panics: a frame too
    /// short for its header (a runt) matches no frame primitive, only `port`.
    pub fn matches(&self, frame: &[u8], port: &str) -> bool {
        match &self.root {
            None => true,
            Some(e) => e.eval(Header::parse(frame).as_ref(), port),
        }
    }

    /// The port names the expression mentions, each once, in order of
    /// appearance, so the caller can check they exist.
    pub fn ports(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(e) = &self.root {
            e.collect_ports(&mut out);
        }
        out
    }
}

impl Default for Filter {
    fn default() -> Self {
        Filter::match_all()
    }
}

impl FromStr for Filter {
    type Err = FilterError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Filter::parse(s)
    }
}

/// The canonical form: lower-case keywords, `and`/`or`/`not` spelled out,
/// canonical alias names, parentheses only where needed. It parses back to
/// an equal filter.
impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.root {
            None => Ok(()),
            Some(e) => write!(f, "{e}"),
        }
    }
}

// --- matching -----------------------------------------------------------

/// The fields primitives look at, decoded once per frame.
struct Header {
    dst: MacAddr,
    src: MacAddr,
    outer_vid: Option<u16>,
    /// `None` when an inner tag is cut short.
    ethertype: Option<u16>,
}

impl Header {
    /// `None` for a runt: nothing but `port` can match it.
    fn parse(frame: &[u8]) -> Option<Header> {
        let eth = EthernetFrame::new_checked(frame).ok()?;
        let outer_vid = eth.vlan().map(|t| t.vid);
        // QinQ: peel tags until the payload type; a tag cut short leaves no
        // EtherType to match.
        let mut ethertype = Some(eth.ethertype());
        let mut rest = eth.payload();
        while ethertype.is_some_and(EtherType::is_vlan_tpid) {
            ethertype = rest
                .get(2..VLAN_TAG_LEN)
                .map(|b| EtherType::from_u16(u16::from_be_bytes([b[0], b[1]])));
            rest = rest.get(VLAN_TAG_LEN..).unwrap_or(&[]);
        }
        Some(Header {
            dst: eth.dst(),
            src: eth.src(),
            outer_vid,
            ethertype: ethertype.map(EtherType::to_u16),
        })
    }
}

impl Expr {
    fn eval(&self, h: Option<&Header>, port: &str) -> bool {
        match self {
            Expr::Prim(p) => p.eval(h, port),
            Expr::Not(e) => !e.eval(h, port),
            Expr::And(v) => v.iter().all(|e| e.eval(h, port)),
            Expr::Or(v) => v.iter().any(|e| e.eval(h, port)),
        }
    }

    fn collect_ports(&self, out: &mut Vec<String>) {
        match self {
            Expr::Prim(Prim::Port(name)) => {
                if !out.contains(name) {
                    out.push(name.clone());
                }
            }
            Expr::Prim(_) => {}
            Expr::Not(e) => e.collect_ports(out),
            Expr::And(v) | Expr::Or(v) => v.iter().for_each(|e| e.collect_ports(out)),
        }
    }
}

impl Prim {
    fn eval(&self, h: Option<&Header>, port: &str) -> bool {
        if let Prim::Port(name) = self {
            return name == port;
        }
        let Some(e) = h else {
            return false;
        };
        match self {
            Prim::Src(m) => e.src == *m,
            Prim::Dst(m) => e.dst == *m,
            Prim::Mac(m) => e.src == *m || e.dst == *m,
            Prim::Vlan(None) => e.outer_vid.is_some(),
            Prim::Vlan(Some(vid)) => e.outer_vid == Some(*vid),
            Prim::EtherType(t) => e.ethertype == Some(*t),
            Prim::Multicast => e.dst.is_multicast(),
            Prim::Port(_) => unreachable!("handled above"),
        }
    }
}

// --- canonical form -------------------------------------------------------

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Prim(p) => write!(f, "{p}"),
            Expr::Not(e) => {
                f.write_str("not ")?;
                e.fmt_operand(f, matches!(**e, Expr::And(_) | Expr::Or(_)))
            }
            Expr::And(v) => {
                for (i, e) in v.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" and ")?;
                    }
                    // A nested `and` needs them too, or it would parse flat.
                    e.fmt_operand(f, matches!(e, Expr::And(_) | Expr::Or(_)))?;
                }
                Ok(())
            }
            Expr::Or(v) => {
                for (i, e) in v.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" or ")?;
                    }
                    e.fmt_operand(f, matches!(e, Expr::Or(_)))?;
                }
                Ok(())
            }
        }
    }
}

impl Expr {
    fn fmt_operand(&self, f: &mut fmt::Formatter<'_>, parens: bool) -> fmt::Result {
        if parens {
            write!(f, "({self})")
        } else {
            write!(f, "{self}")
        }
    }
}

impl fmt::Display for Prim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Prim::Dst(m) if m.is_broadcast() => f.write_str("broadcast"),
            Prim::Dst(m) if *m == STP_GROUP => f.write_str("stp"),
            Prim::Src(m) => write!(f, "src {m}"),
            Prim::Dst(m) => write!(f, "dst {m}"),
            Prim::Mac(m) => write!(f, "mac {m}"),
            Prim::Vlan(None) => f.write_str("vlan"),
            Prim::Vlan(Some(v)) => write!(f, "vlan {v}"),
            Prim::EtherType(t) => match ETHERTYPE_NAMES.iter().find(|(_, v)| v == t) {
                Some((name, _)) => f.write_str(name),
                None => write!(f, "ethertype 0x{t:04x}"),
            },
            Prim::Multicast => f.write_str("multicast"),
            Prim::Port(name) => write!(f, "port {name}"),
        }
    }
}

// --- tokens ---------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    LParen,
    RParen,
    /// `!`
    Bang,
    /// `&&`
    AndAnd,
    /// `||`
    OrOr,
    Word,
}

#[derive(Debug)]
struct Token<'a> {
    kind: Tok,
    text: &'a str,
    /// Character offset.
    pos: usize,
}

type Failure = (usize, String);

/// Words run until whitespace or one of `()!&|`; those are tokens of their
/// own (`&` and `|` only doubled).
fn tokenize(s: &str) -> Result<Vec<Token<'_>>, Failure> {
    let mut out = Vec::new();
    let mut it = s.char_indices().enumerate().peekable();
    while let Some((pos, (at, c))) = it.next() {
        let single = |kind, len: usize| Token {
            kind,
            text: &s[at..at + len],
            pos,
        };
        match c {
            c if c.is_whitespace() => {}
            '(' => out.push(single(Tok::LParen, 1)),
            ')' => out.push(single(Tok::RParen, 1)),
            '!' => out.push(single(Tok::Bang, 1)),
            '&' | '|' => {
                if it.peek().map(|(_, (_, n))| *n) != Some(c) {
                    let word = if c == '&' { "and" } else { "or" };
                    return Err((pos, format!("single `{c}`: write `{c}{c}` or `{word}`")));
                }
                it.next();
                let kind = if c == '&' { Tok::AndAnd } else { Tok::OrOr };
                out.push(single(kind, 2));
            }
            _ => {
                let mut end = at + c.len_utf8();
                while let Some(&(_, (i, n))) = it.peek() {
                    if n.is_whitespace() || "()!&|".contains(n) {
                        break;
                    }
                    end = i + n.len_utf8();
                    it.next();
                }
                out.push(Token {
                    kind: Tok::Word,
                    text: &s[at..end],
                    pos,
                });
            }
        }
    }
    Ok(out)
}

// --- parser ----------------------------------------------------------------

struct Parser<'t, 'a> {
    tokens: &'t [Token<'a>],
    next: usize,
    /// Character length of the input: where "missing ..." errors point.
    end: usize,
    /// Current nesting of parentheses and `not`.
    depth: usize,
}

fn is_word(t: &Token<'_>, w: &str) -> bool {
    t.kind == Tok::Word && t.text.eq_ignore_ascii_case(w)
}

impl<'t, 'a> Parser<'t, 'a> {
    fn peek(&self) -> Option<&'t Token<'a>> {
        self.tokens.get(self.next)
    }

    fn bump(&mut self) -> Option<&'t Token<'a>> {
        let t = self.tokens.get(self.next);
        self.next += t.is_some() as usize;
        t
    }

    fn at_or(&self) -> bool {
        self.peek()
            .is_some_and(|t| t.kind == Tok::OrOr || is_word(t, "or"))
    }

    fn at_and(&self) -> bool {
        self.peek()
            .is_some_and(|t| t.kind == Tok::AndAnd || is_word(t, "and"))
    }

    fn expr(&mut self) -> Result<Expr, Failure> {
        let mut v = vec![self.and_expr()?];
        while self.at_or() {
            self.bump();
            v.push(self.and_expr()?);
        }
        Ok(if v.len() == 1 {
            v.remove(0)
        } else {
            Expr::Or(v)
        })
    }

    fn and_expr(&mut self) -> Result<Expr, Failure> {
        let mut v = vec![self.unary()?];
        while self.at_and() {
            self.bump();
            v.push(self.unary()?);
        }
        Ok(if v.len() == 1 {
            v.remove(0)
        } else {
            Expr::And(v)
        })
    }

    fn enter(&mut self, pos: usize) -> Result<(), Failure> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err((
                pos,
                format!("nested too deeply (more than {MAX_DEPTH} parentheses and `not`s)"),
            ));
        }
        Ok(())
    }

    /// What was expected at the end of the input, phrased after the last token.
    fn missing(&self, what: &str) -> Failure {
        match self.next.checked_sub(1).and_then(|i| self.tokens.get(i)) {
            None => (0, "empty expression".to_string()),
            Some(prev) => (
                self.end,
                format!("expected {what} after `{}`, found the end", prev.text),
            ),
        }
    }

    fn unary(&mut self) -> Result<Expr, Failure> {
        let Some(t) = self.peek() else {
            return Err(self.missing("a primitive"));
        };
        match t.kind {
            Tok::Bang => {
                self.bump();
                self.negation(t.pos)
            }
            Tok::Word if is_word(t, "not") => {
                self.bump();
                self.negation(t.pos)
            }
            Tok::LParen => {
                self.bump();
                self.enter(t.pos)?;
                if self.peek().is_some_and(|n| n.kind == Tok::RParen) {
                    return Err((t.pos, "empty parentheses".to_string()));
                }
                let e = self.expr()?;
                match self.bump() {
                    Some(c) if c.kind == Tok::RParen => {}
                    None => {
                        return Err((t.pos, "unclosed `(`: `)` missing".to_string()));
                    }
                    Some(other) => {
                        return Err((
                            other.pos,
                            format!("unexpected `{}`: expected `and`, `or` or `)`", other.text),
                        ));
                    }
                }
                self.depth -= 1;
                Ok(e)
            }
            Tok::RParen => Err(self.found(t, "a primitive")),
            Tok::AndAnd | Tok::OrOr => Err(self.found(t, "a primitive")),
            Tok::Word if is_word(t, "and") || is_word(t, "or") => Err(self.found(t, "a primitive")),
            Tok::Word => {
                self.bump();
                Ok(Expr::Prim(self.primitive(t)?))
            }
        }
    }

    /// "expected X, found `t`", or "expected X before `t`" at the start.
    fn found(&self, t: &Token<'_>, what: &str) -> Failure {
        if self.next == 0 {
            (t.pos, format!("expected {what} before `{}`", t.text))
        } else {
            (t.pos, format!("expected {what}, found `{}`", t.text))
        }
    }

    fn negation(&mut self, pos: usize) -> Result<Expr, Failure> {
        self.enter(pos)?;
        let e = self.unary()?;
        self.depth -= 1;
        Ok(Expr::Not(Box::new(e)))
    }

    /// The word after a keyword that takes an argument, if any.
    fn argument(&mut self) -> Option<&'t Token<'a>> {
        let t = self.peek().filter(|t| t.kind == Tok::Word)?;
        self.bump();
        Some(t)
    }

    /// The argument a keyword requires; errors name the keyword.
    fn required(&mut self, kw: &Token<'_>, what: &str) -> Result<&'t Token<'a>, Failure> {
        if let Some(t) = self.argument() {
            return Ok(t);
        }
        let msg = format!("expected {what} after `{}`", kw.text);
        Err(match self.peek() {
            None => (self.end, format!("{msg}, found the end")),
            Some(t) => (t.pos, format!("{msg}, found `{}`", t.text)),
        })
    }

    fn mac(&mut self, kw: &Token<'_>) -> Result<MacAddr, Failure> {
        let what = "a MAC address";
        let t = self.required(kw, what)?;
        if ["and", "or", "not"].iter().any(|w| is_word(t, w)) {
            return Err((
                t.pos,
                format!("expected {what} after `{}`, found `{}`", kw.text, t.text),
            ));
        }
        t.text.parse().map_err(|_| {
            (
                t.pos,
                format!(
                    "`{}` is not a MAC address (expected six hex octets like 02:00:00:00:00:01)",
                    t.text
                ),
            )
        })
    }

    fn primitive(&mut self, t: &Token<'_>) -> Result<Prim, Failure> {
        let w = t.text.to_ascii_lowercase();
        if let Some((_, v)) = ETHERTYPE_NAMES.iter().find(|(n, _)| *n == w) {
            return Ok(Prim::EtherType(*v));
        }
        Ok(match w.as_str() {
            "src" => Prim::Src(self.mac(t)?),
            "dst" => Prim::Dst(self.mac(t)?),
            "mac" => Prim::Mac(self.mac(t)?),
            "broadcast" => Prim::Dst(MacAddr::BROADCAST),
            "stp" => Prim::Dst(STP_GROUP),
            "multicast" => Prim::Multicast,
            "vlan" => {
                // A bare `vlan` is a primitive of its own; a number after it
                // is its VID.
                let Some(n) = self.peek().filter(|n| {
                    n.kind == Tok::Word && n.text.starts_with(|c: char| c.is_ascii_digit())
                }) else {
                    return Ok(Prim::Vlan(None));
                };
                self.bump();
                match parse_number(n.text) {
                    Some(v) if v <= 4095 => Prim::Vlan(Some(v as u16)),
                    Some(_) => {
                        return Err((n.pos, format!("VLAN ID {} out of range 0..=4095", n.text)))
                    }
                    None => {
                        return Err((
                            n.pos,
                            format!("`{}` is not a VLAN ID (expected a number 0..=4095)", n.text),
                        ))
                    }
                }
            }
            "ethertype" => {
                let n = self.required(t, "a number (like 0x88cc)")?;
                match parse_number(n.text) {
                    Some(v) if v <= 0xffff => Prim::EtherType(v as u16),
                    Some(_) => {
                        return Err((
                            n.pos,
                            format!("EtherType {} out of range 0..=0xffff", n.text),
                        ))
                    }
                    None => {
                        return Err((
                            n.pos,
                            format!(
                                "`{}` is not an EtherType (expected a number like 2048 or 0x0800)",
                                n.text
                            ),
                        ))
                    }
                }
            }
            "port" => {
                let n = self.required(t, "a port name")?;
                Prim::Port(n.text.to_string())
            }
            _ if t.text.parse::<MacAddr>().is_ok() => {
                return Err((
                    t.pos,
                    format!(
                        "a MAC address needs `src`, `dst` or `mac` before it: `mac {}`",
                        t.text
                    ),
                ))
            }
            _ if parse_number(t.text).is_some() => {
                return Err((
                    t.pos,
                    "a number needs `vlan` or `ethertype` before it".to_string(),
                ))
            }
            _ => {
                return Err((
                    t.pos,
                    format!(
                        "unknown word `{}`; expected one of {PRIMITIVE_WORDS}",
                        t.text
                    ),
                ))
            }
        })
    }
}

/// Decimal or `0x` hexadecimal; `Some(u64::MAX)` for numbers too large for a
/// u64 (so that they read as out of range, not as "not a number").
fn parse_number(s: &str) -> Option<u64> {
    let (digits, radix) = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => (h, 16),
        None => (s, 10),
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    Some(u64::from_str_radix(digits, radix).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests;
