//! Prometheus metrics in the text exposition format: requests by route and status, latency
//! histograms by route (seconds), and the inference pool's state.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the latency histogram's buckets, in seconds.
const BUCKETS_S: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS_S.len()],
    sum_s: f64,
    count: u64,
}

#[derive(Default)]
struct Inner {
    requests: BTreeMap<(String, String, u16), u64>,
    latency: BTreeMap<String, Histogram>,
}

/// Counters and histograms of the HTTP side.
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

/// Gauges read at scrape time.
pub struct Gauges {
    /// Inference jobs queued or running.
    pub pending: usize,
    /// Inference threads.
    pub workers: usize,
    /// Jobs that may wait for a thread.
    pub queue: usize,
    /// Requests refused with 429 since start.
    pub rejected: u64,
    /// Templates in this instance's search index.
    pub index_templates: usize,
    /// Gallery generation the index was built from.
    pub index_generation: i64,
}

impl Metrics {
    /// Counts one answered request on `route` (the matched pattern, so names in paths do not
    /// make new series) that took `elapsed`.
    pub fn record(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        *inner
            .requests
            .entry((method.to_string(), route.to_string(), status))
            .or_default() += 1;
        let h = inner.latency.entry(route.to_string()).or_default();
        let s = elapsed.as_secs_f64();
        for (bound, count) in BUCKETS_S.iter().zip(h.counts.iter_mut()) {
            if s <= *bound {
                *count += 1;
            }
        }
        h.sum_s += s;
        h.count += 1;
    }

    /// The exposition text.
    pub fn render(&self, gauges: &Gauges) -> String {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP visage_http_requests_total HTTP requests answered."
        );
        let _ = writeln!(out, "# TYPE visage_http_requests_total counter");
        for ((method, route, status), n) in &inner.requests {
            let _ = writeln!(
                out,
                "visage_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP visage_http_request_duration_seconds Time to answer, by route."
        );
        let _ = writeln!(out, "# TYPE visage_http_request_duration_seconds histogram");
        for (route, h) in &inner.latency {
            for (bound, count) in BUCKETS_S.iter().zip(h.counts) {
                let _ = writeln!(
                    out,
                    "visage_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "visage_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "visage_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                h.sum_s
            );
            let _ = writeln!(
                out,
                "visage_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                h.count
            );
        }
        let gauges = [
            (
                "visage_inference_pending",
                "Inference jobs queued or running.",
                "gauge",
                gauges.pending as f64,
            ),
            (
                "visage_inference_workers",
                "Inference threads.",
                "gauge",
                gauges.workers as f64,
            ),
            (
                "visage_inference_queue_capacity",
                "Inference jobs that may wait for a thread.",
                "gauge",
                gauges.queue as f64,
            ),
            (
                "visage_inference_rejected_total",
                "Requests refused with 429 (queue full).",
                "counter",
                gauges.rejected as f64,
            ),
            (
                "visage_index_templates",
                "Templates in this instance's search index.",
                "gauge",
                gauges.index_templates as f64,
            ),
            (
                "visage_index_generation",
                "Gallery generation the search index was built from.",
                "gauge",
                gauges.index_generation as f64,
            ),
        ];
        for (name, help, kind, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let m = Metrics::default();
        m.record("POST", "/api/v1/identify", 200, Duration::from_millis(30));
        m.record("POST", "/api/v1/identify", 429, Duration::from_millis(1));
        let text = m.render(&Gauges {
            pending: 0,
            workers: 2,
            queue: 4,
            rejected: 1,
            index_templates: 3,
            index_generation: 7,
        });
        assert!(text.contains(
            "visage_http_requests_total{method=\"POST\",route=\"/api/v1/identify\",status=\"429\"} 1"
        ));
        assert!(text.contains("route=\"/api/v1/identify\",le=\"0.005\"} 1"));
        assert!(text.contains("route=\"/api/v1/identify\",le=\"0.05\"} 2"));
        assert!(text.contains("visage_inference_rejected_total 1"));
    }
}
