//! fail2ban's duration syntax (`MyTime.str2seconds`, compat §4.1). Owns a tiny tokenizer and
//! arithmetic evaluator; receives a string like `10m`, `1h 30m`, `2*1d`, `1d12h`, `-1`, `0.5h`;
//! emits seconds as f64 (or a `DurationError`). Units follow a number (case-insensitive):
//! s/sec/second(s)/ss, m/mm/min/minute(s), h/hh/hou/hour(s), d/dd/da/day(s), w/ww/wee/week(s),
//! mo/mon/month(s) (1/12 of 365.25 d), y/yy/yea/year(s) (365.25 d). Terms separated only by
//! whitespace are added; `+ - * /` and parentheses work as in Python, nested at most 100 deep.

use crate::error::DurationError;

const DAY: f64 = 86_400.0;
const YEAR: f64 = (365.0 * 3.0 + 366.0) * DAY / 4.0;

fn unit_seconds(word: &str) -> Option<f64> {
    Some(match word.to_ascii_lowercase().as_str() {
        "s" | "ss" | "sec" | "second" | "seconds" => 1.0,
        "m" | "mm" | "min" | "minute" | "minutes" => 60.0,
        "h" | "hh" | "hou" | "hour" | "hours" => 3600.0,
        "d" | "dd" | "da" | "day" | "days" => DAY,
        "w" | "ww" | "wee" | "week" | "weeks" => 7.0 * DAY,
        "mo" | "mon" | "month" | "months" => YEAR / 12.0,
        "y" | "yy" | "yea" | "year" | "years" => YEAR,
        _ => return None,
    })
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(f64),
    Op(char),
    Open,
    Close,
}

fn tokenize(text: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let cs: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < cs.len() {
        let c = cs[i];
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit()
            || (c == '.' && cs.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            let s = i;
            while i < cs.len() && (cs[i].is_ascii_digit() || cs[i] == '.') {
                i += 1;
            }
            let lit: String = cs[s..i].iter().collect();
            let mut v: f64 = lit.parse().map_err(|_| format!("bad number {lit:?}"))?;
            // A unit may follow the number, after optional spaces.
            let mut j = i;
            while j < cs.len() && cs[j].is_whitespace() {
                j += 1;
            }
            if j < cs.len() && cs[j].is_alphabetic() {
                let ws = j;
                while j < cs.len() && cs[j].is_alphabetic() {
                    j += 1;
                }
                let word: String = cs[ws..j].iter().collect();
                let mult = unit_seconds(&word).ok_or_else(|| format!("unknown unit {word:?}"))?;
                v *= mult;
                i = j;
            }
            // Implicit `+` between adjacent terms ("1h 30m", "1d12h").
            if matches!(out.last(), Some(Tok::Num(_) | Tok::Close)) {
                out.push(Tok::Op('+'));
            }
            out.push(Tok::Num(v));
        } else if matches!(c, '+' | '-' | '*' | '/') {
            out.push(Tok::Op(c));
            i += 1;
        } else if c == '(' {
            if matches!(out.last(), Some(Tok::Num(_) | Tok::Close)) {
                out.push(Tok::Op('+'));
            }
            out.push(Tok::Open);
            i += 1;
        } else if c == ')' {
            out.push(Tok::Close);
            i += 1;
        } else {
            return Err(format!("unexpected character {c:?}"));
        }
    }
    Ok(out)
}

/// The deepest nesting of parentheses and signs (`((1))`, `--1`). The parser recurses once
/// per level, so a value of a hundred thousand `(` would overflow the stack; Python's own
/// parser refuses 200 nested parentheses.
const MAX_NESTING: usize = 100;

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
    /// Parentheses and signs open around the current factor.
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn expr(&mut self) -> Result<f64, String> {
        let mut v = self.term()?;
        while let Some(Tok::Op(op @ ('+' | '-'))) = self.peek().cloned() {
            self.pos += 1;
            let r = self.term()?;
            v = if op == '+' { v + r } else { v - r };
        }
        Ok(v)
    }
    fn term(&mut self) -> Result<f64, String> {
        let mut v = self.factor()?;
        while let Some(Tok::Op(op @ ('*' | '/'))) = self.peek().cloned() {
            self.pos += 1;
            let r = self.factor()?;
            if op == '*' {
                v *= r;
            } else {
                if r == 0.0 {
                    return Err("division by zero".into());
                }
                v /= r;
            }
        }
        Ok(v)
    }
    fn factor(&mut self) -> Result<f64, String> {
        if self.depth >= MAX_NESTING {
            return Err(format!(
                "parentheses and signs nested deeper than {MAX_NESTING}"
            ));
        }
        self.depth += 1;
        let v = self.factor_within();
        self.depth -= 1;
        v
    }
    fn factor_within(&mut self) -> Result<f64, String> {
        match self.peek().cloned() {
            Some(Tok::Op('-')) => {
                self.pos += 1;
                Ok(-self.factor()?)
            }
            Some(Tok::Op('+')) => {
                self.pos += 1;
                self.factor()
            }
            Some(Tok::Num(v)) => {
                self.pos += 1;
                Ok(v)
            }
            Some(Tok::Open) => {
                self.pos += 1;
                let v = self.expr()?;
                if self.peek() != Some(&Tok::Close) {
                    return Err("missing `)`".into());
                }
                self.pos += 1;
                Ok(v)
            }
            Some(t) => Err(format!("unexpected {t:?}")),
            None => Err("unexpected end".into()),
        }
    }
}

/// Seconds of a fail2ban duration string (`10m`, `1h 30m`, `2*1d`, `-1`, `1d12h`, `600`).
pub fn parse_duration(text: &str) -> Result<f64, DurationError> {
    let err = |message: String| DurationError {
        text: text.to_string(),
        message,
    };
    let toks = tokenize(text).map_err(err)?;
    if toks.is_empty() {
        return Err(err("empty".into()));
    }
    let mut p = Parser {
        toks,
        pos: 0,
        depth: 0,
    };
    let v = p.expr().map_err(err)?;
    if p.pos != p.toks.len() {
        return Err(err(format!("unexpected {:?}", p.toks[p.pos])));
    }
    if !v.is_finite() {
        return Err(err("not a finite number".into()));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn examples() {
        let cases: &[(&str, f64)] = &[
            ("600", 600.0),
            ("10m", 600.0),
            ("1w", 604_800.0),
            ("1d 12h", 129_600.0),
            ("1d12h", 129_600.0),
            ("1h 30m", 5400.0),
            ("1hour+30min", 5400.0),
            ("0d 1h 30m", 5400.0),
            ("2*1d", 172_800.0),
            ("-1", -1.0),
            ("1year-6mo", 15_778_800.0),
            ("6 months", 15_778_800.0),
            ("1.5h", 5400.0),
            ("(1h+1h)/2", 3600.0),
            ("10 MINUTES", 600.0),
            ("1ss", 1.0),
        ];
        for (t, want) in cases {
            assert_eq!(parse_duration(t).unwrap(), *want, "{t}");
        }
        assert_eq!(parse_duration("1mo").unwrap() / DAY, 30.4375);
    }

    #[test]
    fn garbage() {
        for t in ["", "abc", "10 parsecs", "1h +", "(1h", "1/0", "5%"] {
            let e = parse_duration(t).unwrap_err();
            assert!(e.to_string().contains("invalid duration"), "{e}");
        }
    }
}
