//! `GET /_metrics`: counters in the Prometheus text format, kept with
//! atomics so that counting costs a request no lock.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use crate::store::{StoreStats, TableInfo};

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// What the server counts.
pub struct Metrics {
    /// Requests by status code, 100..=599.
    by_status: Vec<AtomicU64>,
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
    open_connections: AtomicI64,
    /// Requests whose answer has not begun.
    unanswered: AtomicI64,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics {
            by_status: (100..600).map(|_| AtomicU64::new(0)).collect(),
            buckets: Default::default(),
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
            open_connections: AtomicI64::new(0),
            unanswered: AtomicI64::new(0),
        }
    }
}

impl Metrics {
    pub fn request(&self, status: u16, seconds: f64) {
        if let Some(counter) = status
            .checked_sub(100)
            .and_then(|i| self.by_status.get(i as usize))
        {
            counter.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(bucket) = BUCKETS.iter().position(|&le| seconds <= le) {
            self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
    }

    /// A request came in; [`Metrics::answering`] once its answer begins.
    pub fn received(&self) {
        self.unanswered.fetch_add(1, Ordering::AcqRel);
    }

    pub fn answering(&self) {
        self.unanswered.fetch_sub(1, Ordering::AcqRel);
    }

    /// Requests whose answer has not begun (writes being made durable…).
    pub fn unanswered(&self) -> i64 {
        self.unanswered.load(Ordering::Acquire)
    }

    pub fn connection_opened(&self) {
        self.open_connections.fetch_add(1, Ordering::Relaxed);
    }

    pub fn connection_closed(&self) {
        self.open_connections.fetch_sub(1, Ordering::Relaxed);
    }

    /// The text exposition of every metric.
    pub fn render(&self, tables: &[TableInfo], store: StoreStats) -> String {
        let mut out = String::new();
        out.push_str("# HELP csvd_requests_total Requests answered, by status code.\n# TYPE csvd_requests_total counter\n");
        for (i, counter) in self.by_status.iter().enumerate() {
            let n = counter.load(Ordering::Relaxed);
            if n > 0 {
                let _ = writeln!(out, "csvd_requests_total{{status=\"{}\"}} {n}", i + 100);
            }
        }
        out.push_str("# HELP csvd_request_duration_seconds Time to answer a request (until the response head).\n# TYPE csvd_request_duration_seconds histogram\n");
        let mut cumulative = 0;
        for (le, bucket) in BUCKETS.iter().zip(&self.buckets) {
            cumulative += bucket.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "csvd_request_duration_seconds_bucket{{le=\"{le}\"}} {cumulative}"
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "csvd_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(
            out,
            "csvd_request_duration_seconds_sum {sum}\ncsvd_request_duration_seconds_count {count}"
        );
        let open = self.open_connections.load(Ordering::Relaxed);
        let _ = writeln!(out, "# HELP csvd_open_connections Connections open now.\n# TYPE csvd_open_connections gauge\ncsvd_open_connections {open}");
        out.push_str("# HELP csvd_table_rows Rows in each table.\n# TYPE csvd_table_rows gauge\n");
        for table in tables {
            let _ = writeln!(
                out,
                "csvd_table_rows{{table=\"{}\"}} {}",
                table.name, table.rows
            );
        }
        for counter in &store.counters {
            let name = counter.name;
            let _ = writeln!(
                out,
                "# HELP csvd_{name} {}\n# TYPE csvd_{name} counter\ncsvd_{name} {}",
                counter.help, counter.value
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backends_counters_are_rendered_as_it_names_them() {
        let stats = StoreStats {
            counters: vec![crate::store::Counter {
                name: "queries_total",
                help: "Queries sent.",
                value: 7,
            }],
        };
        let text = Metrics::default().render(&[], stats);
        assert!(
            text.contains("# HELP csvd_queries_total Queries sent.\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE csvd_queries_total counter\ncsvd_queries_total 7\n"),
            "{text}"
        );
    }

    #[test]
    fn renders_counters_and_histogram() {
        let m = Metrics::default();
        m.request(200, 0.0003);
        m.request(404, 0.02);
        let text = m.render(&[], StoreStats::default());
        assert!(text.contains("csvd_requests_total{status=\"200\"} 1"));
        assert!(text.contains("csvd_requests_total{status=\"404\"} 1"));
        assert!(text.contains("csvd_request_duration_seconds_bucket{le=\"0.0005\"} 1"));
        assert!(text.contains("csvd_request_duration_seconds_bucket{le=\"+Inf\"} 2"));
    }
}
