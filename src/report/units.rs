//! Value and percentage formatting as `go tool pprof` prints them (google/pprof's
//! `internal/measurement`): `1.99s`, `10ms`, `512.14kB`, ` 4.50%`, `0.12%`.

struct Unit {
    name: &'static str,
    aliases: &'static [&'static str],
    factor: f64,
}

struct UnitType {
    units: &'static [Unit],
    default: (&'static str, f64),
}

const fn u(name: &'static str, aliases: &'static [&'static str], factor: f64) -> Unit {
    Unit {
        name,
        aliases,
        factor,
    }
}

const UNIT_TYPES: &[UnitType] = &[
    UnitType {
        units: &[
            u("B", &["b", "byte"], 1.0),
            u("kB", &["kb", "kbyte", "kilobyte"], 1024.0),
            u("MB", &["mb", "mbyte", "megabyte"], 1048576.0),
            u("GB", &["gb", "gbyte", "gigabyte"], 1073741824.0),
            u("TB", &["tb", "tbyte", "terabyte"], 1099511627776.0),
            u("PB", &["pb", "pbyte", "petabyte"], 1125899906842624.0),
        ],
        default: ("B", 1.0),
    },
    UnitType {
        units: &[
            u("ns", &["ns", "nanosecond"], 1.0),
            u("us", &["μs", "us", "microsecond"], 1e3),
            u("ms", &["ms", "millisecond"], 1e6),
            u("s", &["s", "sec", "second"], 1e9),
            u("hrs", &["hour", "hr"], 3.6e12),
        ],
        default: ("s", 1e9),
    },
];

impl UnitType {
    /// The unit an alias names, after lowercasing and dropping a plural `s`.
    fn sniff(&self, unit: &str) -> Option<&Unit> {
        let lower = unit.to_lowercase();
        let alias = if lower.chars().count() > 2 {
            lower.strip_suffix('s').unwrap_or(&lower)
        } else {
            &lower
        };
        self.units.iter().find(|u| u.aliases.contains(&alias))
    }

    fn auto_scale(&self, value: f64) -> Option<(f64, &'static str)> {
        let mut best: Option<&Unit> = None;
        for u in self.units {
            if u.factor >= best.map_or(0.0, |b| b.factor) && value / u.factor >= 1.0 {
                best = Some(u);
            }
        }
        best.map(|u| (value / u.factor, u.name))
    }

    fn convert(&self, value: i64, from: &str, to: &str) -> Option<(f64, &'static str)> {
        let from = self.sniff(from)?;
        let v = value as f64 * from.factor;
        if to == "minimum" || to == "auto" {
            return Some(
                self.auto_scale(v)
                    .unwrap_or((v / self.default.1, self.default.0)),
            );
        }
        Some(match self.sniff(to) {
            Some(t) => (v / t.factor, t.name),
            None => (v / self.default.1, self.default.0),
        })
    }
}

/// Scales `value` from `from` units into `to` (`minimum`/`auto`: the largest unit the value
/// reaches); the unit name is empty for counts.
pub(crate) fn scale(value: i64, from: &str, to: &str) -> (f64, String) {
    if value < 0 && value != i64::MIN {
        let (v, u) = scale(-value, from, to);
        return (-v, u);
    }
    for t in UNIT_TYPES {
        if let Some((v, u)) = t.convert(value, from, to) {
            return (v, u.to_owned());
        }
    }
    match to {
        "count" | "sample" | "unit" | "minimum" | "auto" => (value as f64, String::new()),
        _ => (value as f64, to.to_owned()),
    }
}

/// `value` in `from` units as Go's `ScaledLabel` prints it in `to` units.
pub(crate) fn scaled_label(value: i64, from: &str, to: &str) -> String {
    let (v, u) = scale(value, from, to);
    let s = format!("{v:.2}");
    let s = s.strip_suffix(".00").unwrap_or(&s);
    if s == "0" || s == "-0" {
        return "0".into();
    }
    format!("{s}{u}")
}

/// Go's `%.2g` for a non-negative finite number.
fn go_g2(x: f64) -> String {
    if x == 0.0 {
        return "0".into();
    }
    // Two significant digits, rounded, to find the exponent after rounding.
    let e = format!("{x:.1e}");
    let (mantissa, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..2).contains(&exp) {
        let m = mantissa.trim_end_matches('0').trim_end_matches('.');
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{m}e{sign}{:02}", exp.abs());
    }
    let decimals = usize::try_from(1 - exp).unwrap_or(0);
    let f = format!("{x:.decimals$}");
    if f.contains('.') {
        f.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        f
    }
}

/// `value` as a percentage of `total`, as Go's `measurement.Percentage` prints it
/// (`  100%`, `45.20%`, ` 0.12%`).
pub(crate) fn percentage(value: i64, total: i64) -> String {
    let ratio = if total == 0 {
        0.0
    } else {
        (value as f64 / total as f64).abs() * 100.0
    };
    if (99.95..=100.05).contains(&ratio) {
        "  100%".into()
    } else if ratio >= 1.0 {
        format!("{ratio:5.2}%")
    } else {
        format!("{:>5}%", go_g2(ratio))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_match_go() {
        assert_eq!(scaled_label(1_990_000_000, "nanoseconds", "s"), "1.99s");
        assert_eq!(scaled_label(10_000_000, "nanoseconds", "s"), "0.01s");
        assert_eq!(scaled_label(10_000_000, "nanoseconds", "minimum"), "10ms");
        assert_eq!(scaled_label(1_000_000_000, "nanoseconds", "s"), "1s");
        assert_eq!(scaled_label(524_432, "bytes", "kB"), "512.14kB");
        assert_eq!(scaled_label(1 << 20, "bytes", "MB"), "1MB");
        assert_eq!(scaled_label(0, "bytes", "MB"), "0");
        assert_eq!(scaled_label(42, "count", "count"), "42");
        assert_eq!(scaled_label(-3_000_000, "nanoseconds", "ms"), "-3ms");
        assert_eq!(scale(100, "bytes", "minimum").1, "B");
        assert_eq!(scale(5000, "bytes", "minimum").1, "kB");
        assert_eq!(scale(5, "count", "minimum").1, "");
    }

    #[test]
    fn percentages_match_go() {
        assert_eq!(percentage(1, 1), "  100%");
        assert_eq!(percentage(452, 1000), "45.20%");
        assert_eq!(percentage(5, 100), " 5.00%");
        assert_eq!(percentage(12, 10000), " 0.12%");
        assert_eq!(percentage(5, 1000), "  0.5%");
        assert_eq!(percentage(1, 100_000), "0.001%");
        assert_eq!(percentage(1, 10_000_000), "1e-05%");
        assert_eq!(percentage(0, 10), "    0%");
        assert_eq!(percentage(0, 0), "    0%");
        assert_eq!(percentage(9996, 1_000_000), "    1%");
        assert_eq!(percentage(-5, 10), "50.00%");
    }
}
