//! fail2ban's sample-log test, reimplemented: annotated logs (`# failJSON: {…}` before a
//! line) checked against a filter with fail2ban's own rules (compat.md §9).
//!
//! Receives a config tree, a filter name and the folder of sample logs; emits a
//! [`SampleReport`] listing every disagreement with the file and line it came from.
//! Rules followed: fixed clock (2005-08-14 12:00 CEST) and CET/CEST zone, every failregex
//! tried on every line (check-all), exactly one failure per matching line, host/time and
//! any other annotated field must agree, `filterOptions` blocks instantiate the filter per
//! option set, `fileOptions`, `addFILE`, `constraint`/`test.condition` expressions, and
//! every failregex of every instantiated filter must be hit by some sample.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{Context, Result};
use banhammer_config::{ConfigTree, Options};
use banhammer_core::filter::{
    Failure, Filter, FilterConfig, FilterRunner, GroupValue, ProcessOptions, UseDns,
};
use serde_json::{Map, Value};

/// fail2ban's test clock: 2005-08-14 12:00:00 CEST.
pub const TEST_NOW: i64 = 1_124_013_600;
/// fail2ban's test zone (Europe/Zurich rules) as a POSIX TZ string.
pub const TEST_TZ: &str = "CET-1CEST,M3.5.0,M10.5.0/3";

/// The outcome of checking one filter's sample log(s).
#[derive(Debug, Default)]
pub struct SampleReport {
    pub filter: String,
    /// Annotated lines checked (per filter variant).
    pub checked: usize,
    /// Each disagreement, as `file:line: [variant] what`.
    pub errors: Vec<String>,
}

/// One annotated line to check, with the filter variants of its block.
struct Event {
    origin: String,
    line: String,
    faildata: Map<String, Value>,
    /// Indices into the variant list, with the block options of each.
    entries: Vec<(usize, Map<String, Value>)>,
}

/// A filter instantiation (fail2ban caches them by name + options).
struct VariantSpec {
    key: String,
    args: Options,
}

/// Check the sample log(s) of `name` (in `logs_dir`) against the filter of that name in `tree`.
pub fn check_filter(tree: &ConfigTree, name: &str, logs_dir: &Path) -> Result<SampleReport> {
    let tz = jiff::tz::TimeZone::posix(TEST_TZ).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut report = SampleReport {
        filter: name.to_string(),
        ..Default::default()
    };
    let (variants, events) = read_events(name, logs_dir)?;

    // Build every variant first, so each keeps one runner (and its multi-line state)
    // across the whole file, as fail2ban's cached filter objects do.
    let mut filters = Vec::with_capacity(variants.len());
    let mut regexes = Vec::with_capacity(variants.len());
    for v in &variants {
        let (filter, failregex) =
            build_variant(tree, name, &v.args, &tz).with_context(|| format!("filter {}", v.key))?;
        filters.push(filter);
        regexes.push(failregex);
    }
    let mut runners: Vec<_> = filters.iter().map(Filter::runner).collect();
    let mut used: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); variants.len()];

    for ev in &events {
        for (vi, opts) in &ev.entries {
            if let Some(Value::String(c)) = ev.faildata.get("constraint") {
                if !eval_condition(c, name, opts)? {
                    continue;
                }
            }
            report.checked += 1;
            let origin = format!("{} [{}]", ev.origin, variants[*vi].key);
            check_line(
                &mut runners[*vi],
                &mut used[*vi],
                opts,
                &ev.line,
                &ev.faildata,
                &tz,
                &origin,
                &mut report.errors,
            );
        }
    }
    // fail2ban accepts a regex as sampled when this variant hit it, or when any variant
    // hit a regex of the same text.
    let mut used_texts: BTreeSet<&String> = BTreeSet::new();
    for (vi, set) in used.iter().enumerate() {
        used_texts.extend(set.iter().filter_map(|&u| regexes[vi].get(u)));
    }
    for (vi, v) in variants.iter().enumerate() {
        for (idx, re) in regexes[vi].iter().enumerate() {
            if !used[vi].contains(&idx) && !used_texts.contains(re) {
                report.errors.push(format!(
                    "[{}] regex has no samples: {}: {re}",
                    v.key,
                    idx + 1
                ));
            }
        }
    }
    Ok(report)
}

/// Read the sample file(s) of `name` into the lines to check, following the annotations.
fn read_events(name: &str, logs_dir: &Path) -> Result<(Vec<VariantSpec>, Vec<Event>)> {
    let mut variants: Vec<VariantSpec> = Vec::new();
    let mut events = Vec::new();
    let mut filenames = vec![name.to_string()];
    let mut common_opts: Map<String, Value> = Map::new();
    let mut block: Option<Vec<(usize, Map<String, Value>)>> = None;
    let variant_of = |key: String, args: Options, variants: &mut Vec<VariantSpec>| -> usize {
        if let Some(i) = variants.iter().position(|v| v.key == key) {
            return i;
        }
        variants.push(VariantSpec { key, args });
        variants.len() - 1
    };
    let mut i = 0;
    while i < filenames.len() {
        let file = logs_dir.join(&filenames[i]);
        i += 1;
        let bytes =
            std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
        let text = String::from_utf8_lossy(&bytes);
        let lines: Vec<&str> = text.split_inclusive('\n').collect();
        let mut ignore_block = false;
        let mut n = 0;
        while n < lines.len() {
            let raw = lines[n];
            n += 1;
            let lnnum = n;
            let mut faildata = Map::new();
            let line: &str;
            if let Some((kind, json)) = annotation(raw) {
                let value: Value = serde_json::from_str(json)
                    .with_context(|| format!("{}:{lnnum}: bad JSON in {kind}", file.display()))?;
                match kind {
                    "fileOptions" => {
                        common_opts = value.as_object().cloned().unwrap_or_default();
                        continue;
                    }
                    "filterOptions" => {
                        let mut entries = Vec::new();
                        ignore_block = false;
                        let list = match value {
                            Value::Array(a) => a,
                            other => vec![other],
                        };
                        for entry in list {
                            let mut opts = common_opts.clone();
                            opts.extend(entry.as_object().cloned().unwrap_or_default());
                            if let Some(Value::String(cond)) = opts.get("test.condition") {
                                ignore_block = !eval_condition(cond, name, &opts)?;
                            }
                            if !ignore_block {
                                let args = filter_options(&opts);
                                let key = match opts.get("test.filter-name").and_then(Value::as_str)
                                {
                                    Some(k) => format!("{name}{k}"),
                                    None if args.is_empty() => name.to_string(),
                                    None => format!("{name}{args:?}"),
                                };
                                let vi = variant_of(key, args, &mut variants);
                                entries.push((vi, opts));
                            }
                        }
                        block = Some(entries);
                        continue;
                    }
                    "addFILE" => {
                        if let Value::String(f) = value {
                            filenames.push(f);
                        }
                        continue;
                    }
                    _ => {
                        faildata = value.as_object().cloned().unwrap_or_default();
                        // The annotation applies to the very next physical line.
                        let Some(next) = lines.get(n) else { break };
                        n += 1;
                        line = next;
                    }
                }
            } else if ignore_block || raw.starts_with('#') || raw.trim().is_empty() {
                continue;
            } else {
                line = raw;
            }
            if ignore_block {
                continue;
            }
            let entries = block
                .get_or_insert_with(|| {
                    vec![(
                        variant_of(name.to_string(), Options::new(), &mut variants),
                        Map::new(),
                    )]
                })
                .clone();
            events.push(Event {
                origin: format!("{}:{lnnum}:", file.display()),
                line: line.trim_end_matches(['\r', '\n']).to_string(),
                faildata,
                entries,
            });
        }
    }
    Ok((variants, events))
}

/// `# failJSON: {...}` and friends: (kind, json text).
fn annotation(raw: &str) -> Option<(&str, &str)> {
    let line = raw.strip_suffix('\n').unwrap_or(raw);
    let rest = line.trim_start_matches('#');
    if rest.len() == line.len() {
        return None;
    }
    let rest = rest.strip_prefix(' ').unwrap_or(rest);
    for kind in ["failJSON", "fileOptions", "filterOptions", "addFILE"] {
        if let Some(json) = rest.strip_prefix(kind).and_then(|r| r.strip_prefix(':')) {
            if !json.is_empty() {
                return Some((kind, json));
            }
        }
    }
    None
}

/// The filter arguments of a block: everything but the `test.*` control keys.
fn filter_options(opts: &Map<String, Value>) -> Options {
    opts.iter()
        .filter(|(k, _)| !k.starts_with("test."))
        .map(|(k, v)| {
            (
                k.clone(),
                v.as_str().map_or_else(|| v.to_string(), str::to_string),
            )
        })
        .collect()
}

/// The Python expressions sample logs use as conditions: `A == 'x'`, `A != 'x'`,
/// `A in ('x', 'y')`, `A not in ('x', 'y')`, where A is `name` or `opts.get('key')`.
/// Anything else is refused (these are never evaluated as code).
fn eval_condition(expr: &str, name: &str, opts: &Map<String, Value>) -> Result<bool> {
    let unsupported = || anyhow::anyhow!("unsupported sample condition {expr:?}");
    let literal = |s: &str| -> Option<String> {
        let s = s.trim();
        let q = s.chars().next()?;
        (matches!(q, '\'' | '"') && s.ends_with(q) && s.len() >= 2)
            .then(|| s[1..s.len() - 1].to_string())
    };
    let (lhs, wanted, positive) = if let Some((l, r)) = expr.split_once("==") {
        (l, vec![literal(r).ok_or_else(unsupported)?], true)
    } else if let Some((l, r)) = expr.split_once("!=") {
        (l, vec![literal(r).ok_or_else(unsupported)?], false)
    } else {
        let (l, r, positive) = match expr.split_once(" not in ") {
            Some((l, r)) => (l, r, false),
            None => {
                let (l, r) = expr.split_once(" in ").ok_or_else(unsupported)?;
                (l, r, true)
            }
        };
        let inner = r
            .trim()
            .strip_prefix('(')
            .and_then(|r| r.strip_suffix(')'))
            .ok_or_else(unsupported)?;
        let items: Option<Vec<String>> = inner
            .split(',')
            .map(str::trim)
            .filter(|i| !i.is_empty())
            .map(literal)
            .collect();
        (l, items.ok_or_else(unsupported)?, positive)
    };
    let lhs = lhs.trim();
    let have: Option<String> = if lhs == "name" {
        Some(name.to_string())
    } else if let Some(key) = lhs
        .strip_prefix("opts.get(")
        .and_then(|r| r.strip_suffix(')'))
    {
        let key = literal(key).ok_or_else(unsupported)?;
        opts.get(&key).and_then(Value::as_str).map(str::to_string)
    } else {
        return Err(unsupported());
    };
    let found = have.is_some_and(|h| wanted.contains(&h));
    Ok(found == positive)
}

fn build_variant(
    tree: &ConfigTree,
    name: &str,
    args: &Options,
    tz: &jiff::tz::TimeZone,
) -> Result<(Filter, Vec<String>)> {
    let reference = crate::filterload::filter_ref(name, args);
    let spec = banhammer_config::read_filter(tree, &reference, &Options::new())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let cfg = FilterConfig {
        prefregex: spec.prefregex.clone(),
        failregex: spec.failregex.clone(),
        ignoreregex: spec.ignoreregex.clone(),
        maxlines: spec.maxlines.unwrap_or(1).max(1),
        datepattern: spec.datepattern.clone(),
        // The test compares raw hosts: names are never resolved.
        usedns: UseDns::Raw,
        timezone: tz.clone(),
        now: TEST_NOW,
    };
    let filter = Filter::new(&cfg).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok((filter, spec.failregex))
}

#[allow(clippy::too_many_arguments)]
fn check_line(
    runner: &mut FilterRunner<'_>,
    used: &mut BTreeSet<usize>,
    opts: &Map<String, Value>,
    line: &str,
    faildata: &Map<String, Value>,
    tz: &jiff::tz::TimeZone,
    origin: &str,
    errors: &mut Vec<String>,
) {
    let journal = opts.get("logtype").and_then(Value::as_str) == Some("journal");
    let process = ProcessOptions {
        check_all: true,
        now: TEST_NOW as f64,
    };
    // The runner is recreated per line only for journal lines (no date detection); file
    // lines keep one runner so multi-line buffers work as in fail2ban.
    let result = if journal {
        let prefixed;
        let line = match opts.get("test.prefix-line").and_then(Value::as_str) {
            Some(p) => {
                prefixed = format!("{p}{line}");
                prefixed.as_str()
            }
            None => line,
        };
        runner.process_line_at(line, TEST_NOW as f64, &process)
    } else {
        runner.process_line(line, &process)
    };
    let mut found: Vec<&Failure> = Vec::new();
    // fail2ban counts a regex as sampled when it produced anything, pending or `nofail`
    // results included; check-all hits are exactly those.
    used.extend(result.failregex_hits.iter().copied());
    for f in &result.failures {
        found.push(f);
    }
    let expect_match = faildata
        .get("match")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if found.is_empty() {
        if expect_match {
            errors.push(format!(
                "{origin} line not matched when it should have: {line}"
            ));
        }
        return;
    }
    if !expect_match {
        errors.push(format!(
            "{origin} line matched when it should not have: {line}"
        ));
        return;
    }
    if found.len() != 1 {
        let idx: Vec<usize> = found.iter().map(|f| f.failregex + 1).collect();
        errors.push(format!("{origin} several regexes matched {idx:?}: {line}"));
        return;
    }
    let fail = found[0];
    used.insert(fail.failregex);
    for (k, want) in faildata {
        if matches!(k.as_str(), "time" | "match" | "desc" | "constraint") {
            continue;
        }
        let have: Value = match fail.groups.get(k.as_str()) {
            Some(GroupValue::Str(s)) => Value::String(s.clone()),
            Some(GroupValue::Set(s)) => {
                Value::Array(s.iter().cloned().map(Value::String).collect())
            }
            Some(GroupValue::Tuple(t)) => Value::Array(
                t.iter()
                    .map(|v| v.clone().map_or(Value::Null, Value::String))
                    .collect(),
            ),
            Some(GroupValue::None) | None => match k.as_str() {
                "host" => Value::String(fail.fid.clone()),
                "attempts" => Value::from(fail.matches.len()),
                _ => Value::Null,
            },
        };
        let same = match (&have, want) {
            (Value::Array(a), Value::Array(b)) => {
                let mut a: Vec<String> = a.iter().map(|v| v.to_string()).collect();
                let mut b: Vec<String> = b.iter().map(|v| v.to_string()).collect();
                a.sort();
                b.sort();
                a == b
            }
            (a, b) => a == b,
        };
        if !same {
            errors.push(format!(
                "{origin} field {k}: got {have}, expected {want}: {line}"
            ));
        }
    }
    if let Some(Value::String(t)) = faildata.get("time") {
        match local_time(t, tz) {
            Ok(want) if (fail.time - want).abs() < 1e-5 => {}
            Ok(want) => errors.push(format!(
                "{origin} time {} differs from expected {t} ({want}) by {:.3} s: {line}",
                fail.time,
                fail.time - want
            )),
            Err(e) => errors.push(format!("{origin} bad expected time {t:?}: {e}")),
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.ffffff]` as local time in `tz` → unix seconds (Python's
/// `strptime` + `mktime`: fields may have fewer digits, e.g. `2005-03-7T02:09:33`).
fn local_time(text: &str, tz: &jiff::tz::TimeZone) -> Result<f64> {
    let bad = || anyhow::anyhow!("expected YYYY-MM-DDTHH:MM:SS[.ffffff]");
    let (date, time) = text.split_once('T').ok_or_else(bad)?;
    let (time, frac) = match time.split_once('.') {
        Some((t, f)) => (t, Some(f)),
        None => (time, None),
    };
    let nums = |s: &str| -> Result<Vec<i64>> {
        s.split(['-', ':'])
            .map(|p| p.parse::<i64>().map_err(|_| bad()))
            .collect()
    };
    let (d, t) = (nums(date)?, nums(time)?);
    let (&[y, mo, day], &[h, mi, sec]) = (d.as_slice(), t.as_slice()) else {
        return Err(bad());
    };
    let dt = jiff::civil::DateTime::new(
        i16::try_from(y)?,
        i8::try_from(mo)?,
        i8::try_from(day)?,
        i8::try_from(h)?,
        i8::try_from(mi)?,
        i8::try_from(sec)?,
        0,
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let ts = tz
        .to_ambiguous_timestamp(dt)
        .compatible()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let micros = match frac {
        Some(f) if !f.is_empty() && f.len() <= 6 && f.bytes().all(|b| b.is_ascii_digit()) => {
            f.parse::<f64>()? / 10f64.powi(f.len() as i32)
        }
        Some(_) => return Err(bad()),
        None => 0.0,
    };
    Ok(ts.as_second() as f64 + micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotations() {
        assert_eq!(
            annotation("# failJSON: {\"match\": true}\n"),
            Some(("failJSON", " {\"match\": true}"))
        );
        assert_eq!(
            annotation("## filterOptions: [{}]"),
            Some(("filterOptions", " [{}]"))
        );
        assert_eq!(annotation("# just a comment"), None);
        assert_eq!(annotation("Aug 14 sshd: x"), None);
    }

    #[test]
    fn conditions() -> Result<()> {
        let mut opts = Map::new();
        opts.insert("mode".into(), Value::String("aggressive".into()));
        assert!(eval_condition("name == 'sshd'", "sshd", &opts)?);
        assert!(eval_condition("name=='sshd'", "sshd", &opts)?);
        assert!(!eval_condition("name != 'sshd'", "sshd", &opts)?);
        assert!(eval_condition(
            "opts.get('mode') == 'aggressive'",
            "x",
            &opts
        )?);
        assert!(eval_condition(
            "opts.get('logtype') != 'journal'",
            "x",
            &opts
        )?);
        assert!(eval_condition(
            "opts.get('mode') in ('ddos', 'aggressive')",
            "x",
            &opts
        )?);
        assert!(!eval_condition(
            "opts.get('mode') not in ('ddos', 'aggressive')",
            "x",
            &opts
        )?);
        assert!(!eval_condition(
            "opts.get('logtype') in ('journal',)",
            "x",
            &opts
        )?);
        assert!(eval_condition("__import__('os')", "x", &opts).is_err());
        Ok(())
    }

    #[test]
    fn expected_times_use_the_test_zone() -> Result<()> {
        let tz = jiff::tz::TimeZone::posix(TEST_TZ).map_err(|e| anyhow::anyhow!("{e}"))?;
        assert_eq!(local_time("2005-08-14T12:00:00", &tz)?, TEST_NOW as f64);
        assert_eq!(local_time("2005-01-01T00:00:00.5", &tz)?, 1_104_534_000.5);
        assert_eq!(
            local_time("2005-03-7T02:09:33", &tz)?,
            local_time("2005-03-07T02:09:33", &tz)?
        );
        assert!(local_time("2005-03-07 02:09:33", &tz).is_err());
        Ok(())
    }
}
