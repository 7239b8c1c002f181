//! How long a ban lasts: `bantime` and the `bantime.*` increment options (compat §4.3).
//!
//! Owns the validated policy built from a jail's options ([`BanTimeConfig`] → [`BanTimePolicy`]).
//! Receives the offender's history from the store ([`BanHistory`], the `bips` row: previous ban
//! count, time of the last ban, its duration) and, for `bantime.rndtime`, a random number in
//! `0..1` drawn by the caller (so this stays deterministic). Emits the new ban's duration and
//! ban count, and the retry count a known offender starts with (fail2ban's observer
//! `failureFound`), following `jail.setBanTimeExtra` and `observer.incrBanTime`.
//!
//! The formula: with `bantime.multipliers`, `bantime · factor · multipliers[min(count, len−1)]`;
//! otherwise `max(bantime, formula)` where the formula is fail2ban's default
//! `ban.Time * (1<<(ban.Count if ban.Count<20 else 20)) * banFactor` or the exponential one
//! suggested in jail.conf; then `min(…, maxtime)`, then `+ random · rndtime`. Any other
//! formula is rejected by name: we do not embed a Python evaluator (yet).

/// The default `bantime.formula` of fail2ban.
pub const DEFAULT_FORMULA: &str = "ban.Time * (1<<(ban.Count if ban.Count<20 else 20)) * banFactor";
/// The exponential alternative given in fail2ban's jail.conf.
pub const EXP_FORMULA: &str =
    "ban.Time * math.exp(float(ban.Count+1)*banFactor)/math.exp(1*banFactor)";

/// A `bantime.*` option that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BanTimeError {
    /// A formula we cannot evaluate.
    #[error(
        "unsupported bantime.formula {formula:?} (supported: the default {DEFAULT_FORMULA:?}, \
         the exponential {EXP_FORMULA:?}, or use bantime.multipliers)"
    )]
    Formula {
        /// The formula as configured.
        formula: String,
    },
    /// `bantime.factor` is not a number or simple arithmetic.
    #[error(
        "invalid bantime.factor {value:?} (expected a number or arithmetic like 2.0 / 2.885385)"
    )]
    Factor {
        /// The value as configured.
        value: String,
    },
    /// `bantime.multipliers` holds something other than integers.
    #[error("invalid bantime.multipliers {value:?} (expected space-separated integers)")]
    Multipliers {
        /// The value as configured.
        value: String,
    },
}

/// A jail's ban-time options as configured (durations already in seconds; the config
/// crate parses fail2ban's duration syntax).
#[derive(Debug, Clone, PartialEq)]
pub struct BanTimeConfig {
    /// `bantime` in seconds; negative = permanent. fail2ban keeps its integer part.
    pub bantime: f64,
    /// `bantime.increment`.
    pub increment: bool,
    /// `bantime.factor` (a Python expression in fail2ban; numbers and `+ - * / ( )` here).
    pub factor: Option<String>,
    /// `bantime.formula`.
    pub formula: Option<String>,
    /// `bantime.multipliers` (space-separated integers).
    pub multipliers: Option<String>,
    /// `bantime.maxtime` in seconds.
    pub maxtime: Option<f64>,
    /// `bantime.rndtime` in seconds.
    pub rndtime: Option<f64>,
    /// `bantime.overalljails`: the store sums the history over all jails.
    pub overalljails: bool,
}

impl Default for BanTimeConfig {
    fn default() -> Self {
        BanTimeConfig {
            bantime: 600.0,
            increment: false,
            factor: None,
            formula: None,
            multipliers: None,
            maxtime: None,
            rndtime: None,
            overalljails: false,
        }
    }
}

/// What the store knows about an offender (fail2ban's `bips` row, or with `overalljails` the
/// sums/max over all jails).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BanHistory {
    /// How many times it was banned before.
    pub ban_count: u32,
    /// When the last ban started (unix seconds).
    pub time_of_ban: f64,
    /// How long the last ban was (seconds, −1 permanent).
    pub ban_time: f64,
}

/// How the increment grows.
#[derive(Debug, Clone, PartialEq)]
enum Growth {
    Multipliers(Vec<f64>),
    Default,
    Exp,
}

/// The validated ban-time policy of a jail.
#[derive(Debug, Clone, PartialEq)]
pub struct BanTimePolicy {
    bantime: f64,
    increment: bool,
    factor: f64,
    growth: Growth,
    maxtime: Option<f64>,
    rndtime: Option<f64>,
    overalljails: bool,
}

/// A computed ban length.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BanLength {
    /// Seconds, or `None` for a permanent ban.
    pub duration: Option<f64>,
    /// This ban's number for the offender (1 = first), stored as `bancount`.
    pub ban_count: u32,
}

impl BanTimePolicy {
    /// Validate the options (fail2ban's `setBanTimeExtra`).
    pub fn new(config: &BanTimeConfig) -> Result<Self, BanTimeError> {
        let factor = match config.factor.as_deref().map(str::trim) {
            None | Some("") => 1.0,
            Some(v) => eval_arith(v).ok_or_else(|| BanTimeError::Factor {
                value: v.to_string(),
            })?,
        };
        let multipliers = match config.multipliers.as_deref() {
            None => Vec::new(),
            Some(v) => v
                .split_whitespace()
                .map(|w| w.parse::<i64>().map(|i| i as f64))
                .collect::<Result<Vec<f64>, _>>()
                .map_err(|_| BanTimeError::Multipliers {
                    value: v.to_string(),
                })?,
        };
        // As in fail2ban, the formula is only looked at when there are no multipliers.
        let growth = if !multipliers.is_empty() {
            Growth::Multipliers(multipliers)
        } else {
            match config.formula.as_deref() {
                None => Growth::Default,
                Some(f) if f.trim().is_empty() => Growth::Default,
                Some(f) => {
                    let squeezed: String = f.chars().filter(|c| !c.is_whitespace()).collect();
                    let same = |known: &str| {
                        squeezed
                            == known
                                .chars()
                                .filter(|c| !c.is_whitespace())
                                .collect::<String>()
                    };
                    if same(DEFAULT_FORMULA) {
                        Growth::Default
                    } else if same(EXP_FORMULA) {
                        Growth::Exp
                    } else {
                        return Err(BanTimeError::Formula {
                            formula: f.to_string(),
                        });
                    }
                }
            }
        };
        Ok(BanTimePolicy {
            bantime: config.bantime.trunc(),
            increment: config.increment,
            factor,
            growth,
            maxtime: config.maxtime,
            rndtime: config.rndtime,
            overalljails: config.overalljails,
        })
    }

    /// A plain policy: `bantime` seconds, no increment.
    pub fn fixed(bantime: f64) -> Self {
        BanTimePolicy {
            bantime: bantime.trunc(),
            increment: false,
            factor: 1.0,
            growth: Growth::Default,
            maxtime: None,
            rndtime: None,
            overalljails: false,
        }
    }

    /// The configured `bantime` (integer seconds; negative = permanent).
    pub fn bantime(&self) -> f64 {
        self.bantime
    }

    /// Change `bantime` (fail2ban `set JAIL bantime`).
    pub fn set_bantime(&mut self, bantime: f64) {
        self.bantime = bantime.trunc();
    }

    /// Whether bans are permanent.
    pub fn is_permanent(&self) -> bool {
        self.bantime < 0.0
    }

    /// Whether `bantime.increment` is on (the caller then looks up the history).
    pub fn increment(&self) -> bool {
        self.increment
    }

    /// Whether the history should be summed over all jails (`bantime.overalljails`).
    pub fn overalljails(&self) -> bool {
        self.overalljails
    }

    /// The longest ban this policy can produce (fail2ban `getMaxBanTime`): `None` if
    /// unbounded or permanent.
    pub fn max_ban_time(&self) -> Option<f64> {
        if self.is_permanent() {
            None
        } else if self.increment {
            self.maxtime
        } else {
            Some(self.bantime)
        }
    }

    /// fail2ban's `calcBanTime`: the ban time after `ban_count` previous bans (`ban_count`
    /// ≥ 1; the formula is used as is for 0), `random01` in `0..1` for `rndtime`.
    pub fn calc(&self, ban_count: u32, random01: f64) -> f64 {
        let t = self.bantime;
        let count = f64::from(ban_count);
        let mut v = match &self.growth {
            Growth::Multipliers(m) => {
                let i = (ban_count as usize).min(m.len().saturating_sub(1));
                t * self.factor * m.get(i).copied().unwrap_or(1.0)
            }
            Growth::Default => t.max(t * f64::from(1u32 << ban_count.min(20)) * self.factor),
            Growth::Exp => t.max(t * ((count + 1.0) * self.factor).exp() / self.factor.exp()),
        };
        if let Some(max) = self.maxtime {
            v = v.min(max);
        }
        if let Some(rnd) = self.rndtime {
            v += random01.clamp(0.0, 1.0) * rnd;
        }
        v
    }

    /// The length of a new ban given the offender's `history` (fail2ban's `incrBanTime`):
    /// permanent stays permanent, increments need `bantime > 0`, `increment` and a previous
    /// ban. `random01` in `0..1` feeds `rndtime`.
    pub fn ban_length(&self, history: Option<&BanHistory>, random01: f64) -> BanLength {
        if self.is_permanent() {
            let ban_count = match history {
                Some(h) if self.increment => h.ban_count.saturating_add(1),
                _ => 1,
            };
            return BanLength {
                duration: None,
                ban_count,
            };
        }
        match history {
            Some(h) if self.increment && self.bantime > 0.0 => {
                let duration = if h.ban_count > 0 {
                    self.calc(h.ban_count, random01)
                } else {
                    self.bantime
                };
                BanLength {
                    duration: Some(duration),
                    ban_count: h.ban_count.saturating_add(1),
                }
            }
            _ => BanLength {
                duration: Some(self.bantime),
                ban_count: 1,
            },
        }
    }

    /// The retry count a failure of a known offender is worth (fail2ban's observer
    /// `failureFound`): `min(maxretry, 2^min(ban_count, 20) / 2 + 1)`, i.e. 2, 3, 5, 9… for
    /// 1, 2, 3, 4 previous bans; 1 (no pre-seed) without increment, without history, or for
    /// a failure not newer than the last ban (a line read again after a restart).
    pub fn preseed_retry(&self, history: Option<&BanHistory>, time: f64, maxretry: u32) -> u32 {
        let Some(h) = history else { return 1 };
        if !self.increment || time <= h.time_of_ban {
            return 1;
        }
        // fail2ban divides as floats (1 previous ban of 0 gives 1.5); integer halves match
        // for every count ≥ 1, the only counts the store writes.
        let seeded = (1u32 << h.ban_count.min(20)) / 2 + 1;
        seeded.min(maxretry).max(1)
    }
}

/// Evaluate a small arithmetic expression: numbers, `+ - * /`, unary minus, parentheses.
fn eval_arith(text: &str) -> Option<f64> {
    let bytes = text.as_bytes();
    let mut pos = 0;
    let v = arith_sum(bytes, &mut pos)?;
    skip_ws(bytes, &mut pos);
    (pos == bytes.len() && v.is_finite()).then_some(v)
}

fn skip_ws(b: &[u8], pos: &mut usize) {
    while b.get(*pos).is_some_and(u8::is_ascii_whitespace) {
        *pos += 1;
    }
}

fn arith_sum(b: &[u8], pos: &mut usize) -> Option<f64> {
    let mut v = arith_product(b, pos)?;
    loop {
        skip_ws(b, pos);
        match b.get(*pos) {
            Some(b'+') => {
                *pos += 1;
                v += arith_product(b, pos)?;
            }
            Some(b'-') => {
                *pos += 1;
                v -= arith_product(b, pos)?;
            }
            _ => return Some(v),
        }
    }
}

fn arith_product(b: &[u8], pos: &mut usize) -> Option<f64> {
    let mut v = arith_unary(b, pos)?;
    loop {
        skip_ws(b, pos);
        match b.get(*pos) {
            Some(b'*') => {
                *pos += 1;
                v *= arith_unary(b, pos)?;
            }
            Some(b'/') => {
                *pos += 1;
                let d = arith_unary(b, pos)?;
                if d == 0.0 {
                    return None;
                }
                v /= d;
            }
            _ => return Some(v),
        }
    }
}

fn arith_unary(b: &[u8], pos: &mut usize) -> Option<f64> {
    skip_ws(b, pos);
    match b.get(*pos) {
        Some(b'-') => {
            *pos += 1;
            arith_unary(b, pos).map(|v| -v)
        }
        Some(b'+') => {
            *pos += 1;
            arith_unary(b, pos)
        }
        Some(b'(') => {
            *pos += 1;
            let v = arith_sum(b, pos)?;
            skip_ws(b, pos);
            if b.get(*pos) != Some(&b')') {
                return None;
            }
            *pos += 1;
            Some(v)
        }
        _ => {
            let start = *pos;
            while b
                .get(*pos)
                .is_some_and(|c| c.is_ascii_digit() || *c == b'.' || *c == b'e' || *c == b'E')
            {
                *pos += 1;
            }
            std::str::from_utf8(&b[start..*pos]).ok()?.parse().ok()
        }
    }
}
