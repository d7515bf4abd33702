//! Log-linear latency histogram in microseconds (about 3% resolution),
//! mergeable across processes through a sparse JSON form. The exact maximum
//! is kept beside it (reports carry it as `max_us`; merge it separately).

const LINEAR: u64 = 64; // values below this get their own bucket
const SUB: u64 = 32; // buckets per power of two above that
const BUCKETS: usize = (LINEAR + (64 - 6) * SUB) as usize;

#[derive(Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

fn index(v: u64) -> usize {
    if v < LINEAR {
        return v as usize;
    }
    let msb = 63 - v.leading_zeros() as u64; // >= 6
    let shift = msb - 5;
    let top = v >> shift; // in [32, 64)
    (LINEAR + (msb - 6) * SUB + (top - SUB)) as usize
}

/// Midpoint of a bucket.
fn value(i: usize) -> u64 {
    let i = i as u64;
    if i < LINEAR {
        return i;
    }
    let octave = (i - LINEAR) / SUB; // msb - 6
    let top = (i - LINEAR) % SUB + SUB;
    let shift = octave + 1;
    (top << shift) + ((1u64 << shift) >> 1)
}

impl Histogram {
    pub fn new() -> Self {
        Histogram { counts: vec![0; BUCKETS], total: 0, max: 0 }
    }

    pub fn record(&mut self, micros: u64) {
        self.counts[index(micros)] += 1;
        self.total += 1;
        self.max = self.max.max(micros);
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    /// Largest recorded value (exact; `merge_json` does not carry it, see `raise_max`).
    pub fn max(&self) -> u64 {
        self.max
    }

    /// Merge a maximum reported beside a merged histogram.
    pub fn raise_max(&mut self, m: u64) {
        self.max = self.max.max(m);
    }

    /// Value at quantile q (0..=1) in microseconds; 0 when empty. Never above
    /// the maximum when it is known (a bucket's midpoint can be).
    pub fn quantile(&self, q: f64) -> u64 {
        match self.bucket_quantile(q) {
            v if self.max > 0 => v.min(self.max),
            v => v,
        }
    }

    fn bucket_quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return value(i);
            }
        }
        value(BUCKETS - 1)
    }

    pub fn quantile_ms(&self, q: f64) -> f64 {
        self.quantile(q) as f64 / 1000.0
    }

    /// Sparse form: [[bucket, count], ...].
    pub fn to_json(&self) -> serde_json::Value {
        let pairs: Vec<serde_json::Value> =
            self.counts.iter().enumerate().filter(|(_, c)| **c > 0).map(|(i, c)| serde_json::json!([i, c])).collect();
        serde_json::Value::Array(pairs)
    }

    pub fn merge_json(&mut self, v: &serde_json::Value) {
        if let Some(arr) = v.as_array() {
            for p in arr {
                let i = p.get(0).and_then(|x| x.as_u64()).unwrap_or(u64::MAX) as usize;
                let c = p.get(1).and_then(|x| x.as_u64()).unwrap_or(0);
                if i < BUCKETS {
                    self.counts[i] += c;
                    self.total += c;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_close() {
        let mut last = 0;
        for v in [0u64, 1, 63, 64, 65, 100, 1000, 12_345, 1_000_000, 60_000_000, u64::MAX / 2] {
            let i = index(v);
            assert!(i < BUCKETS);
            assert!(i >= last);
            last = i;
            let mid = value(i);
            let err = (mid as f64 - v as f64).abs() / (v.max(1) as f64);
            assert!(err < 0.04, "v={v} mid={mid}");
        }
    }

    #[test]
    fn quantiles_and_merge() {
        let mut a = Histogram::new();
        for v in 1..=1000 {
            a.record(v * 1000);
        }
        let p50 = a.quantile(0.5) as f64;
        assert!((p50 - 500_000.0).abs() / 500_000.0 < 0.04);
        assert_eq!(a.max(), 1_000_000);
        let mut b = Histogram::new();
        b.merge_json(&a.to_json());
        assert_eq!(b.count(), 1000);
        assert_eq!(b.quantile(0.99), a.quantile(0.99));
        // A bucket midpoint above the largest value is clamped to it.
        let mut c = Histogram::new();
        c.record(543_986);
        assert_eq!(c.quantile(0.99), 543_986);
    }
}
