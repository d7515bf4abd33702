//! Helpers for building and merging JSON reports. A multi-process parent
//! merges its children's reports mode by mode (each mode's `merge`); these
//! are the shared pieces: sums, maxima, per-kind maps, latency histograms.

use serde_json::{json, Map, Value};

use crate::hist::Histogram;

pub fn sum(rs: &[Value], k: &str) -> u64 {
    rs.iter().filter_map(|r| r[k].as_u64()).sum()
}

pub fn max_f(rs: &[Value], k: &str) -> f64 {
    rs.iter().filter_map(|r| r[k].as_f64()).fold(0.0, f64::max)
}

/// Per-key sums of the `{kind: count}` maps under `k`.
pub fn sum_maps(rs: &[Value], k: &str) -> Value {
    let mut out = Map::new();
    for r in rs {
        if let Some(m) = r[k].as_object() {
            for (kind, n) in m {
                let cur = out.get(kind).and_then(Value::as_u64).unwrap_or(0);
                out.insert(kind.clone(), json!(cur + n.as_u64().unwrap_or(0)));
            }
        }
    }
    Value::Object(out)
}

/// The children's latency histograms ("hist", with "max_us") merged.
pub fn hist(rs: &[Value]) -> Histogram {
    let mut h = Histogram::new();
    for r in rs {
        h.merge_json(&r["hist"]);
        h.raise_max(r["max_us"].as_u64().unwrap_or(0));
    }
    h
}

/// `x / secs`, one decimal; 0 for an empty interval.
pub fn per_sec(x: u64, secs: f64) -> f64 {
    if secs > 0.0 {
        (x as f64 / secs * 10.0).round() / 10.0
    } else {
        0.0
    }
}

/// The first child's value of `k` (for fields every child reports alike).
pub fn first(rs: &[Value], k: &str) -> Value {
    rs.iter().map(|r| r[k].clone()).find(|v| !v.is_null()).unwrap_or(Value::Null)
}
