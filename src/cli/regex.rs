//! `banhammer regex`: fail2ban-regex's job, with its habits and output, much faster.
//!
//! Receives the command-line arguments; resolves the filter (see `filterload`), scans the
//! log (see `scan`) and prints either fail2ban-regex's report, one line per failure
//! (`-o`), or the same content as JSON (`--json`, schema in docs/regex.md).
//!
//! Exit codes: 0 the log was scanned (whether or not anything matched); 255 an error
//! (bad filter, unreadable log, bad option value), as fail2ban-regex; 2 bad usage.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use banhammer_core::filter::{Failure, Filter, GroupValue, HostKind, UseDns};
use banhammer_core::jail::{parse_ip, FailureKey};
use clap::Args;
use serde_json::{json, Value};

use crate::filterload::{self, FilterOrigin, FilterOverrides, ResolvedFilter};
use crate::pyfmt;
use crate::scan::{self, address_of, Input, Keep, Names, ScanOptions, ScanStats};

/// Lines of each kind listed before fail2ban-regex says "too many to print".
const DEFAULT_LIST_LIMIT: usize = 20;
/// Inputs at least this big get a progress display (when stderr is a terminal).
const PROGRESS_MIN_BYTES: u64 = 32 << 20;

#[derive(Debug, Args)]
pub struct RegexArgs {
    /// Log file to read, or a log line (or several, separated by newlines) given as text.
    pub log: String,
    /// Filter name (`sshd`, `sshd[mode=aggressive]`), filter file path (`filter.d/x.conf`),
    /// or a literal failregex.
    pub filter: String,
    /// An extra ignoreregex.
    pub ignoreregex: Option<String>,
    /// Config directory overlaying the embedded tree (where `filter.d/NAME.conf` is found).
    #[arg(
        short = 'c',
        long = "config-dir",
        visible_alias = "config",
        value_name = "DIR"
    )]
    pub config_dir: Option<PathBuf>,
    /// Date pattern overriding the filter's `datepattern`.
    #[arg(short = 'd', long)]
    pub datepattern: Option<String>,
    /// Time zone for dates without one (`UTC`, `UTC+0200`, `CET`, `Europe/Paris`).
    #[arg(long, visible_alias = "TZ", value_name = "ZONE")]
    pub timezone: Option<String>,
    /// Size of the multi-line buffer (overrides the filter's `maxlines`).
    #[arg(short = 'L', long, value_name = "N")]
    pub maxlines: Option<usize>,
    /// DNS use for `<HOST>`: yes, warn, no, raw.
    #[arg(long, value_name = "MODE")]
    pub usedns: Option<String>,
    /// Report hosts as written in the log, without resolving names.
    #[arg(short = 'r', long)]
    pub raw: bool,
    /// Stop at the first matching failregex (by default every failregex is tried, to count hits).
    #[arg(long)]
    pub no_check_all: bool,
    /// Print only one line per failure: `id`, `ip`, `msg`, `row`, a group name (`user`),
    /// or a template with tags (`<ip> <time>`, `<F-USER>`).
    #[arg(short = 'o', long = "out", value_name = "TOKENS")]
    pub out: Option<String>,
    /// Print the report as JSON (see docs/regex.md).
    #[arg(long, conflicts_with = "out")]
    pub json: bool,
    /// Encoding of the log (only UTF-8 is read; invalid bytes are replaced).
    #[arg(short = 'e', long, value_name = "ENCODING")]
    pub encoding: Option<String>,
    #[arg(long)]
    pub print_all_matched: bool,
    #[arg(long, conflicts_with = "print_no_missed")]
    pub print_all_missed: bool,
    #[arg(long, conflicts_with = "print_no_ignored")]
    pub print_all_ignored: bool,
    #[arg(long)]
    pub print_no_missed: bool,
    #[arg(long)]
    pub print_no_ignored: bool,
    /// Worker threads (0 = one per core).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub threads: usize,
}

pub fn run(args: RegexArgs) -> Result<()> {
    if let Some(enc) = &args.encoding {
        let e = enc.to_ascii_lowercase().replace('_', "-");
        if !matches!(e.as_str(), "utf-8" | "utf8" | "auto" | "ascii") {
            anyhow::bail!("unsupported encoding {enc:?} (banhammer reads logs as UTF-8)");
        }
    }
    let now = jiff::Timestamp::now().as_second();
    let resolved = filterload::resolve_filter_arg(&args.filter, args.config_dir.as_deref())?;
    let overrides = FilterOverrides {
        datepattern: args.datepattern.clone(),
        maxlines: args.maxlines,
        usedns: args.usedns.clone(),
        timezone: args.timezone.clone(),
        ignoreregex: args.ignoreregex.clone(),
    };
    let filter = filterload::compile(&resolved, &overrides, now)?;

    let input = if std::path::Path::new(&args.log).is_file() {
        Input::File(PathBuf::from(&args.log))
    } else {
        Input::Text(args.log.clone())
    };
    let list_limit = args.maxlines.unwrap_or(DEFAULT_LIST_LIMIT);
    let keep = |all: bool, no: bool| {
        if all {
            Keep::All
        } else if no {
            Keep::Nothing
        } else {
            Keep::First(list_limit + 1)
        }
    };
    let opts = ScanOptions {
        // With -o fail2ban-regex stops at the first matching failregex.
        check_all: !args.no_check_all && args.out.is_none(),
        now: now as f64,
        keep_matched: if args.print_all_matched {
            Keep::All
        } else {
            Keep::Nothing
        },
        keep_missed: keep(args.print_all_missed, args.print_no_missed),
        keep_ignored: keep(args.print_all_ignored, args.print_no_ignored),
        failures_only: args.out.is_some(),
        threads: args.threads,
        names: if args.raw {
            Names::Raw
        } else {
            match filter.usedns() {
                UseDns::Yes | UseDns::Warn => Names::Resolve,
                // with `raw` the filter reports names as ids: nothing to settle
                UseDns::No | UseDns::Raw => Names::Drop,
            }
        },
        // the report only counts failures, unless its JSON lists them
        lean_failures: match args.out.as_deref() {
            Some(tokens) => OutFormat::parse(tokens).is_lean(),
            None => !(args.json && args.print_all_matched),
        },
    };

    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let progress = Progress::new(&input);
    let started = Instant::now();

    if let Some(tokens) = &args.out {
        let format = OutFormat::parse(tokens);
        // Formatted on the worker threads; written here in input order.
        let format_one = |f: &Failure, buf: &mut Vec<u8>| {
            // writing into a Vec cannot fail
            let _ = format.write(buf, f);
        };
        scan::scan_formatted(
            &filter,
            &input,
            &opts,
            &format_one,
            |bytes| {
                out.write_all(bytes)
                    .context("cannot write to standard output")
            },
            |done| progress.update(done),
        )?;
        progress.finish();
        out.flush().ok();
        return Ok(());
    }

    let mut failures = Vec::new();
    let stats = scan::scan(
        &filter,
        &input,
        &opts,
        |f| {
            if args.json && args.print_all_matched {
                failures.push(failure_json(f));
            }
            Ok(())
        },
        |done| progress.update(done),
    )?;
    progress.finish();
    let elapsed = started.elapsed().as_secs_f64();
    let report = Report {
        args: &args,
        resolved: &resolved,
        filter: &filter,
        input: &input,
        stats: &stats,
        elapsed,
        list_limit,
    };
    if args.json {
        let mut v = report.json()?;
        if args.print_all_matched {
            v["failures"] = Value::Array(failures);
        }
        serde_json::to_writer_pretty(&mut out, &v)?;
        writeln!(out)?;
    } else {
        report.print(&mut out)?;
        // Ours, so on stderr: the report itself stays fail2ban-regex's.
        if stats.without_address > 0 {
            eprintln!(
                "Note: {} failure(s) without a canonical IPv4/IPv6 address (e.g. {}): \
                 `banhammer run` never bans them",
                stats.without_address,
                stats
                    .without_address_examples
                    .iter()
                    .map(|e| format!("{e:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    out.flush().ok();
    Ok(())
}

/// `-o` output: one line per failure.
enum OutFormat {
    Id,
    Ip,
    Msg,
    Row,
    Group(String),
    /// Text and tags, split once (a template is applied to every failure).
    Template(Vec<Piece>),
}

/// A piece of an `-o` template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    /// A tag name, without its angle brackets.
    Tag(String),
}

/// Split a template into text and `<tag>` pieces (an unclosed `<` is text).
fn parse_template(template: &str) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('<') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('>') else { break };
        if open > 0 {
            pieces.push(Piece::Text(rest[..open].to_string()));
        }
        pieces.push(Piece::Tag(after[..close].to_string()));
        rest = &after[close + 1..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest.to_string()));
    }
    pieces
}

impl OutFormat {
    fn parse(tokens: &str) -> Self {
        match tokens {
            "id" | "fid" => OutFormat::Id,
            "ip" => OutFormat::Ip,
            "msg" => OutFormat::Msg,
            "row" => OutFormat::Row,
            t if !t.contains('<') => OutFormat::Group(t.to_string()),
            t => OutFormat::Template(parse_template(t)),
        }
    }

    /// Whether this format reads only a failure's id and time (not its groups nor matched
    /// lines), so that the scan may leave those out.
    fn is_lean(&self) -> bool {
        match self {
            OutFormat::Id => true,
            OutFormat::Template(pieces) => pieces.iter().all(|p| match p {
                Piece::Text(_) => true,
                Piece::Tag(t) => matches!(t.as_str(), "ip" | "fid" | "id" | "time" | "failures"),
            }),
            OutFormat::Ip | OutFormat::Msg | OutFormat::Row | OutFormat::Group(_) => false,
        }
    }

    fn write(&self, out: &mut impl Write, f: &Failure) -> std::io::Result<()> {
        match self {
            OutFormat::Id => {
                write_id(out, f)?;
                writeln!(out)
            }
            // A failure without an address prints no line where an address is asked for
            // (an empty one would shift a script's columns).
            OutFormat::Ip => match address_of(f) {
                Some(a) => {
                    write_address(out, f, &a)?;
                    writeln!(out)
                }
                None => Ok(()),
            },
            OutFormat::Msg => {
                for m in &f.matches {
                    writeln!(out, "{m}")?;
                }
                Ok(())
            }
            OutFormat::Row => {
                let groups: Vec<String> = f
                    .groups
                    .iter()
                    .filter(|(k, _)| &***k != "matches")
                    .map(|(k, v)| format!("{}: {}", pyfmt::string(k), pyfmt::group_value(v)))
                    .collect();
                writeln!(
                    out,
                    "[{},\t{},\t{{{}}}],",
                    pyfmt::string(&id_of(f)),
                    pyfmt::float(f.time),
                    groups.join(", ")
                )
            }
            OutFormat::Group(name) => {
                let v = f
                    .groups
                    .get(name.as_str())
                    .map_or_else(|| "None".to_string(), pyfmt::group_value_str);
                writeln!(out, "{v}")
            }
            OutFormat::Template(pieces) => {
                let wants_ip = pieces
                    .iter()
                    .any(|p| matches!(p, Piece::Tag(t) if t == "ip"));
                let address = if wants_ip { address_of(f) } else { None };
                if wants_ip && address.is_none() {
                    // as `-o ip`: no line without the address it asks for
                    return Ok(());
                }
                let values = Values { ip: address };
                // A multi-line <msg> prints the template once per matched line, as fail2ban does.
                let has_msg = pieces
                    .iter()
                    .any(|p| matches!(p, Piece::Tag(t) if t == "msg"));
                if has_msg && f.matches.len() > 1 {
                    for m in &f.matches {
                        substitute(out, pieces, f, &values, Some(m))?;
                    }
                    Ok(())
                } else {
                    substitute(out, pieces, f, &values, None)
                }
            }
        }
    }
}

/// fail2ban-regex's `id`: the failure id, printed as the address it is when it is canonical
/// address text (fail2ban prints its `IPAddr`: `::ffff:192.0.2.7` as `192.0.2.7`, a
/// `<SUBNET>` as its network), else as captured (a user name as `<F-ID>`, `1.2.3.256`).
fn id_key(f: &Failure) -> Option<FailureKey> {
    match f.kind {
        // the host may be another text than the id here; the id is the id
        HostKind::Id => parse_ip(&f.fid).map(FailureKey::Ip),
        _ => address_of(f),
    }
}

/// [`id_key`] as text (for `row`, JSON).
fn id_of(f: &Failure) -> std::borrow::Cow<'_, str> {
    id_key(f).map_or(std::borrow::Cow::Borrowed(f.fid.as_str()), |k| {
        std::borrow::Cow::Owned(k.to_string())
    })
}

/// Write [`id_key`] (or the id as captured).
fn write_id(out: &mut impl Write, f: &Failure) -> std::io::Result<()> {
    match id_key(f) {
        Some(k) => write_key(out, &f.fid, &k),
        None => write_escaped(out, &f.fid),
    }
}

/// Write a failure's address `key` ([`address_of`]).
fn write_address(out: &mut impl Write, f: &Failure, key: &FailureKey) -> std::io::Result<()> {
    let text = match f.kind {
        HostKind::Id => f.host.as_deref().unwrap_or(&f.fid),
        _ => &f.fid,
    };
    write_key(out, text, key)
}

/// Write `key`, parsed from `text`. Canonical IPv4 text has one spelling, so when `text` is
/// a plain IPv4 address it is written as it is (this runs once per output line).
fn write_key(out: &mut impl Write, text: &str, key: &FailureKey) -> std::io::Result<()> {
    match key {
        FailureKey::Ip(std::net::IpAddr::V4(_))
            if memchr::memchr2(b':', b'[', text.as_bytes()).is_none() =>
        {
            out.write_all(text.as_bytes())
        }
        k => write!(out, "{k}"),
    }
}

/// A failure's `<ip>`: its address (fail2ban's `ip` group when a different id was captured,
/// else the id — canonical text only), when the template asks for it.
struct Values {
    ip: Option<FailureKey>,
}

/// Write one `-o` template line with its run-time tags replaced. Values are printed as
/// they are (no shell is involved here); unknown tags stay as written, as in fail2ban.
fn substitute(
    out: &mut impl Write,
    pieces: &[Piece],
    f: &Failure,
    values: &Values,
    msg_line: Option<&str>,
) -> std::io::Result<()> {
    for piece in pieces {
        match piece {
            Piece::Text(t) => out.write_all(t.as_bytes())?,
            // fail2ban's ActionInfo: <ip> is the ticket's `ip` data, else its id; <fid> the id
            Piece::Tag(t) if t == "ip" => {
                if let Some(k) = &values.ip {
                    write_address(out, f, k)?;
                }
            }
            Piece::Tag(t) if t == "fid" || t == "id" => write_id(out, f)?,
            Piece::Tag(t) if t == "time" => write_time(out, f.time)?,
            Piece::Tag(t) if t == "matches" => write_escaped(out, &f.matches.join("\n"))?,
            Piece::Tag(t) if t == "msg" => {
                let v = msg_line.map_or_else(|| f.matches.join("\n"), str::to_string);
                write_escaped(out, &v)?
            }
            Piece::Tag(t) if t == "failures" => out.write_all(b"1")?,
            Piece::Tag(t) => {
                let value = t
                    .strip_prefix("F-")
                    .and_then(|name| {
                        f.groups
                            .get(banhammer_core::failtags::map_tag_name(name).as_str())
                    })
                    .map(pyfmt::group_value_str);
                match value {
                    Some(v) => write_escaped(out, &v)?,
                    None => write!(out, "<{t}>")?,
                }
            }
        }
    }
    writeln!(out)
}

/// `v` with NUL bytes written as `\x00`; no copy in the usual case of no NUL.
fn write_escaped(out: &mut impl Write, v: &str) -> std::io::Result<()> {
    if memchr::memchr(0, v.as_bytes()).is_some() {
        out.write_all(v.replace('\0', "\\x00").as_bytes())
    } else {
        out.write_all(v.as_bytes())
    }
}

/// A failure's time as Python prints the float ([`pyfmt::float`]). Log dates are whole
/// seconds nearly always: those are written as an integer and `.0`, without the float
/// formatting machinery (which costs as much as the rest of an output line).
fn write_time(out: &mut impl Write, t: f64) -> std::io::Result<()> {
    // below 2^53 every whole number is exact, and Python's repr switches to exponent
    // notation only from 1e16 on
    const EXACT: f64 = 9_007_199_254_740_992.0;
    if (1.0..EXACT).contains(&t) && t.fract() == 0.0 {
        // digits by hand: `write!` costs a few hundred instructions per line here
        let mut digits = [0u8; 20];
        let mut n = t as u64;
        let mut i = digits.len();
        while n > 0 {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
        }
        out.write_all(&digits[i..])?;
        out.write_all(b".0")
    } else {
        out.write_all(pyfmt::float(t).as_bytes())
    }
}

fn failure_json(f: &Failure) -> Value {
    let groups: serde_json::Map<String, Value> = f
        .groups
        .iter()
        .map(|(k, v)| {
            let v = match v {
                GroupValue::None => Value::Null,
                GroupValue::Str(s) => Value::String(s.clone()),
                GroupValue::Set(s) => Value::Array(s.iter().cloned().map(Value::String).collect()),
                GroupValue::Tuple(t) => Value::Array(
                    t.iter()
                        .map(|v| v.clone().map_or(Value::Null, Value::String))
                        .collect(),
                ),
            };
            (k.to_string(), v)
        })
        .collect();
    json!({
        "id": id_of(f),
        "ip": address_of(f).map(|a| a.to_string()),
        "time": f.time,
        "failregex": f.failregex + 1,
        "groups": groups,
        "matches": f.matches,
    })
}

/// A progress display on stderr for big files, only when a person is watching.
struct Progress {
    total: Option<u64>,
    started: Instant,
}

impl Progress {
    fn new(input: &Input) -> Self {
        let total = scan::input_len(input)
            .filter(|&n| n >= PROGRESS_MIN_BYTES && std::io::stderr().is_terminal());
        Progress {
            total,
            started: Instant::now(),
        }
    }

    fn update(&self, done: u64) {
        if let Some(total) = self.total {
            let pct = (done as f64 * 100.0 / total.max(1) as f64).min(100.0);
            let width = 30usize;
            let filled = (pct / 100.0 * width as f64) as usize;
            eprint!(
                "\r[{}{}] {:5.1}%  {:.1}s",
                "#".repeat(filled),
                " ".repeat(width - filled),
                pct,
                self.started.elapsed().as_secs_f64()
            );
        }
    }

    fn finish(&self) {
        if self.total.is_some() {
            eprint!("\r{}\r", " ".repeat(50));
        }
    }
}

/// fail2ban-regex's `shortstr`: cut to 53 characters with `...`.
fn shortstr(s: &str) -> String {
    if s.chars().count() > 53 {
        let cut: String = s.chars().take(50).collect();
        format!("{cut}...")
    } else {
        s.to_string()
    }
}

struct Report<'a> {
    args: &'a RegexArgs,
    resolved: &'a ResolvedFilter,
    filter: &'a Filter,
    input: &'a Input,
    stats: &'a ScanStats,
    elapsed: f64,
    list_limit: usize,
}

impl Report<'_> {
    fn datepattern(&self) -> Option<String> {
        self.args
            .datepattern
            .clone()
            .or_else(|| self.resolved.spec.datepattern.clone())
    }

    fn datepattern_name(&self) -> String {
        let d = self.filter.date_detector();
        if d.template_count() == 1 {
            d.template_name(0).to_string()
        } else {
            "Default Detectors".to_string()
        }
    }

    fn maxlines(&self) -> Option<usize> {
        self.args.maxlines.or(self.resolved.spec.maxlines)
    }

    /// The failregexes as written (tags unexpanded), as fail2ban-regex lists them.
    fn failregexes(&self) -> Vec<String> {
        match &self.resolved.origin {
            FilterOrigin::Line { regex } => vec![regex.clone()],
            _ => self.resolved.spec.failregex.clone(),
        }
    }

    fn ignoreregexes(&self) -> Vec<String> {
        let mut v = match &self.resolved.origin {
            FilterOrigin::Line { .. } => Vec::new(),
            _ => self.resolved.spec.ignoreregex.clone(),
        };
        v.extend(self.args.ignoreregex.iter().cloned());
        v
    }

    fn print(&self, out: &mut impl Write) -> Result<()> {
        writeln!(out)?;
        writeln!(out, "Running tests")?;
        writeln!(out, "=============")?;
        writeln!(out)?;
        if let Some(n) = self.args.maxlines {
            writeln!(out, "Use         maxlines : {n}")?;
        }
        if let Some(d) = &self.args.datepattern {
            writeln!(
                out,
                "Use      datepattern : {d} : {}",
                self.datepattern_name()
            )?;
        }
        match &self.resolved.origin {
            FilterOrigin::Named { name, basedir } => writeln!(
                out,
                "Use   failregex filter file : {name}, basedir: {basedir}"
            )?,
            FilterOrigin::File { path } => writeln!(out, "Use   failregex file : {path}")?,
            FilterOrigin::Line { regex } => {
                writeln!(out, "Use   failregex line : {}", shortstr(regex))?
            }
        }
        if !self.resolved.args.is_empty() {
            let items: Vec<String> = self
                .resolved
                .args
                .iter()
                .map(|(k, v)| format!("{}: {}", pyfmt::string(k), pyfmt::string(v)))
                .collect();
            writeln!(out, "Use   filter options : {{{}}}", items.join(", "))?;
        }
        if let Some(ign) = &self.args.ignoreregex {
            writeln!(out, "Use ignoreregex line : {}", shortstr(ign))?;
        }
        if self.args.maxlines.is_none() {
            if let Some(n) = self.resolved.spec.maxlines {
                writeln!(out, "Use         maxlines : {n}")?;
            }
        }
        if self.args.datepattern.is_none() {
            if let Some(d) = &self.resolved.spec.datepattern {
                writeln!(
                    out,
                    "Use      datepattern : {d} : {}",
                    self.datepattern_name()
                )?;
            }
        }
        match self.input {
            Input::File(p) => {
                writeln!(out, "Use         log file : {}", p.display())?;
                writeln!(out, "Use         encoding : UTF-8")?;
            }
            Input::Text(t) if self.filter_maxlines() <= 1 && !t.contains('\n') => {
                writeln!(out, "Use      single line : {}", shortstr(t))?;
            }
            Input::Text(t) => {
                let lines: Vec<&str> = t.split('\n').collect();
                writeln!(out, "Use      multi line : {} line(s)", lines.len())?;
                for (i, l) in lines.iter().enumerate() {
                    if i >= 5 {
                        writeln!(out, "| ...")?;
                        break;
                    }
                    writeln!(out, "| {:>2}: {}", i + 1, shortstr(l))?;
                }
                writeln!(out, "`-")?;
            }
        }
        writeln!(out)?;
        writeln!(out)?;
        writeln!(out, "Results")?;
        writeln!(out, "=======")?;

        let s = self.stats;
        if let Some(pre) = self.filter.expanded_prefregex() {
            writeln!(out, "\nPrefregex: {} total", s.prefregex_matched)?;
            writeln!(out, "|  {pre}\n`-")?;
        }
        print_regex_list(out, "Failregex", &self.failregexes(), &s.failregex_hits)?;
        print_regex_list(out, "Ignoreregex", &self.ignoreregexes(), &s.ignore_hits)?;

        writeln!(out, "\nDate template hits:")?;
        let detector = self.filter.date_detector();
        let mut hits: Vec<(usize, u64)> = s
            .date_hits
            .iter()
            .copied()
            .enumerate()
            .filter(|&(_, n)| n > 0)
            .collect();
        // fail2ban moves templates that hit up its list; most hits first is the visible effect.
        hits.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let lines: Vec<String> = hits
            .iter()
            .map(|&(i, n)| format!("[{n}] {}", detector.template_name(i)))
            .collect();
        pprint_list(out, &lines, Some("[# of hits] date format"))?;

        writeln!(
            out,
            "\nLines: {} lines, {} ignored, {} matched, {} missed",
            s.tested, s.ignored, s.matched, s.missed
        )?;

        writeln!(out, "[processed in {:.2} sec]", self.elapsed)?;
        writeln!(out)?;

        if self.args.print_all_matched {
            self.print_lines(out, "Matched", "matched", s.matched, &s.matched_lines, true)?;
        }
        if !self.args.print_no_ignored {
            self.print_lines(
                out,
                "Ignored",
                "ignored",
                s.ignored,
                &s.ignored_lines,
                self.args.print_all_ignored,
            )?;
        }
        if !self.args.print_no_missed {
            self.print_lines(
                out,
                "Missed",
                "missed",
                s.missed,
                &s.missed_lines,
                self.args.print_all_missed,
            )?;
        }
        Ok(())
    }

    fn filter_maxlines(&self) -> usize {
        self.maxlines().unwrap_or(1)
    }

    fn print_lines(
        &self,
        out: &mut impl Write,
        title: &str,
        word: &str,
        count: u64,
        refs: &[scan::LineRef],
        all: bool,
    ) -> Result<()> {
        if count == 0 {
            return Ok(());
        }
        let header = format!("{title} line(s):");
        if all || count < self.list_limit as u64 {
            let lines: Vec<String> = scan::read_lines(self.input, refs)?
                .into_iter()
                .map(|l| l.trim_end().to_string())
                .collect();
            pprint_list(out, &lines, Some(&header))?;
        } else {
            writeln!(
                out,
                "{header} too many to print.  Use --print-all-{word} to print all {count} lines"
            )?;
        }
        Ok(())
    }

    fn json(&self) -> Result<Value> {
        let s = self.stats;
        let detector = self.filter.date_detector();
        let regexes = |list: Vec<String>, hits: &[u64]| -> Vec<Value> {
            list.iter()
                .zip(hits.iter().chain(std::iter::repeat(&0)))
                .enumerate()
                .map(|(i, (r, n))| json!({"index": i + 1, "regex": r, "hits": n}))
                .collect()
        };
        let origin = match &self.resolved.origin {
            FilterOrigin::Named { name, basedir } => {
                json!({"kind": "filter", "name": name, "basedir": basedir})
            }
            FilterOrigin::File { path } => json!({"kind": "file", "path": path}),
            FilterOrigin::Line { regex } => json!({"kind": "line", "regex": regex}),
        };
        let log = match self.input {
            Input::File(p) => json!({"kind": "file", "path": p.display().to_string()}),
            Input::Text(t) => json!({"kind": "text", "text": t}),
        };
        let lines_of = |refs: &[scan::LineRef]| -> Result<Value> {
            Ok(Value::Array(
                scan::read_lines(self.input, refs)?
                    .into_iter()
                    .map(Value::String)
                    .collect(),
            ))
        };
        Ok(json!({
            "filter": origin,
            "filter_options": self.resolved.args,
            "log": log,
            "maxlines": self.filter_maxlines(),
            "datepattern": self.datepattern(),
            "prefregex": self.filter.expanded_prefregex().map(|p| json!({"regex": p, "matched": s.prefregex_matched})),
            "failregex": regexes(self.failregexes(), &s.failregex_hits),
            "ignoreregex": regexes(self.ignoreregexes(), &s.ignore_hits),
            "date_templates": s.date_hits.iter().enumerate().filter(|(_, n)| **n > 0)
                .map(|(i, n)| json!({"name": detector.template_name(i), "hits": n})).collect::<Vec<_>>(),
            "lines": {"total": s.tested, "ignored": s.ignored, "matched": s.matched, "missed": s.missed},
            "failures_without_address": s.without_address,
            "matched_lines": lines_of(&s.matched_lines)?,
            "ignored_lines": lines_of(&s.ignored_lines)?,
            "missed_lines": lines_of(&s.missed_lines)?,
            "elapsed_seconds": self.elapsed,
        }))
    }
}

fn print_regex_list(
    out: &mut impl Write,
    title: &str,
    regexes: &[String],
    hits: &[u64],
) -> Result<()> {
    let total: u64 = hits.iter().sum();
    let lines: Vec<String> = regexes
        .iter()
        .zip(hits)
        .enumerate()
        .filter(|(_, (_, &n))| n > 0)
        .map(|(i, (r, n))| format!("{:>2}) [{n}] {r}", i + 1))
        .collect();
    writeln!(out, "\n{title}: {total} total")?;
    pprint_list(out, &lines, Some(" #) [# of hits] regular expression"))?;
    Ok(())
}

/// fail2ban-regex's `pprint_list`: nothing for an empty list.
fn pprint_list(out: &mut impl Write, lines: &[String], header: Option<&str>) -> Result<()> {
    if lines.is_empty() {
        return Ok(());
    }
    if let Some(h) = header {
        writeln!(out, "|- {h}")?;
    }
    writeln!(out, "|  {}\n`-", lines.join("\n|  "))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_fast_path_prints_like_pyfmt() {
        for t in [
            1795564800.0,
            1795564800.5,
            1.0,
            0.0,
            -0.0,
            -3.0,
            0.25,
            9_007_199_254_740_991.0,
            9_007_199_254_740_992.0,
            1e17,
        ] {
            let mut out = Vec::new();
            write_time(&mut out, t).unwrap();
            assert_eq!(String::from_utf8(out).unwrap(), pyfmt::float(t), "{t}");
        }
    }

    #[test]
    fn shortstr_cuts_like_fail2ban() {
        assert_eq!(shortstr("short"), "short");
        let long = "x".repeat(60);
        assert_eq!(shortstr(&long), format!("{}...", "x".repeat(50)));
    }

    /// `-o` lines of `line` through a one-regex filter.
    fn out(format: &str, failregex: &str, line: &str) -> String {
        let filter = Filter::new(&banhammer_core::filter::FilterConfig {
            prefregex: None,
            failregex: vec![failregex.to_string()],
            ignoreregex: vec![],
            maxlines: 1,
            datepattern: None,
            usedns: UseDns::Raw,
            timezone: jiff::tz::TimeZone::UTC,
            now: 1_700_000_000,
        })
        .unwrap();
        let res = filter.runner().process_line(
            line,
            &banhammer_core::filter::ProcessOptions {
                check_all: false,
                now: 1_700_000_000.0,
            },
        );
        let format = OutFormat::parse(format);
        let mut buf = Vec::new();
        for f in &res.failures {
            format.write(&mut buf, f).unwrap();
        }
        String::from_utf8(buf).unwrap()
    }

    /// Where `-o` asks for an address (`ip`, `<ip>`), a non-canonical one is never printed
    /// (no line at all); ids are printed as fail2ban reports them, addresses normalised.
    #[test]
    fn regex_output_never_prints_a_non_canonical_address() {
        for host in ["001.002.003.013", "1.2.3.256", "\u{661}.2.3.4"] {
            let line = format!("fail from {host}");
            assert_eq!(out("ip", "^fail from <HOST>$", &line), "", "{host}");
            assert_eq!(
                out("<ip> <time>", "^fail from <HOST>$", &line),
                "",
                "{host}"
            );
            assert_eq!(out("id", "^fail from <HOST>$", &line), format!("{host}\n"));
            assert_eq!(
                out("<fid>!", "^fail from <HOST>$", &line),
                format!("{host}!\n")
            );
        }
        assert_eq!(out("ip", "^fail from <F-ID/>$", "fail from 6.6"), "");
        assert_eq!(
            out(
                "<ip> <time>",
                "^fail from <HOST>$",
                "fail from ::ffff:192.0.2.7"
            ),
            "192.0.2.7 1700000000.0\n"
        );
        assert_eq!(
            out(
                "id",
                "^fail from <F-ID/>$",
                "fail from 2001:0DB8:0:0:0:0:0:1"
            ),
            "2001:db8::1\n"
        );
        assert_eq!(
            out("row", "^fail from <SUBNET>$", "fail from 192.0.2.9/24")
                .split(',')
                .next(),
            Some("['192.0.2.0/24'")
        );
    }

    /// fail2ban-regex's `<ip>` is the address captured beside a different failure id (its
    /// ticket's `ip` data), `<fid>` and `<F-ID>` the id.
    #[test]
    fn regex_output_ip_is_the_host_beside_an_id() {
        let re = "^user <F-ID/> from <HOST>$";
        assert_eq!(
            out("<ip>|<fid>|<F-ID>", re, "user alice from 192.0.2.7"),
            "192.0.2.7|alice|alice\n"
        );
        assert_eq!(out("ip", re, "user alice from 192.0.2.7"), "192.0.2.7\n");
        assert_eq!(out("id", re, "user alice from 192.0.2.7"), "alice\n");
        assert_eq!(
            out("<fid>", re, "user alice from 001.002.003.013"),
            "alice\n"
        );
        assert_eq!(out("ip", re, "user alice from 001.002.003.013"), "");
    }

    #[test]
    fn out_format_parsing() {
        assert!(matches!(OutFormat::parse("row"), OutFormat::Row));
        assert!(matches!(OutFormat::parse("fid"), OutFormat::Id));
        assert!(matches!(OutFormat::parse("user"), OutFormat::Group(_)));
        assert!(matches!(
            OutFormat::parse("<ip> <time>"),
            OutFormat::Template(_)
        ));
    }
}
