//! The load generator's results: the one-line summary (a fixed format that scripts parse), a
//! JSON report, and an SVG plot of latency percentiles over time.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use hdrhistogram::Histogram;
use plotters::prelude::*;
use serde::Serialize;

use super::LoadStats;

#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    pub sent: u64,
    pub answered: u64,
    pub router_errors: u64,
    pub lost: u64,
    pub duplicates: u64,
    /// Answers whose outcome differs from their command's first answer.
    pub conflicting_outcomes: u64,
    /// Longest time between two consecutive first answers (ms).
    pub max_answer_gap_ms: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub rate: f64,
    pub duration_s: f64,
    pub errors_by_type: BTreeMap<String, u64>,
    /// Latency per second of intended send time.
    pub windows: Vec<Window>,
    /// Correlation ids worth tracing (`fl-router trace <id>`).
    pub trace: TraceIds,
    /// Commands sent during the warm-up: accounted for, out of the percentiles.
    pub warmup_commands: u64,
    /// The FL answers' round trips in hops (ms; see `Stages`), after the warm-up.
    pub stages: StageReport,
}

/// p50 / p99 / max of each hop, in milliseconds (±1 ms: millisecond clocks).
#[derive(Debug, Clone, Default, Serialize)]
pub struct StageReport {
    pub counted: u64,
    pub to_fl: [u64; 3],
    pub answer_hop: [u64; 3],
    pub to_load: [u64; 3],
}

/// Commands of the run worth a look with `fl-router trace`: the slowest answered, the first
/// the router answered with an error, the first never answered.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TraceIds {
    pub slowest: Option<String>,
    pub slowest_ms: f64,
    pub first_error: Option<String>,
    pub first_lost: Option<String>,
}

/// A plotted line: its name, colour and which percentile of a window it shows.
type Series = (&'static str, RGBColor, fn(&Window) -> f64);

#[derive(Debug, Clone, Serialize)]
pub struct Window {
    pub second: usize,
    pub count: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

pub fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    if h.is_empty() {
        return 0.0;
    }
    (h.value_at_quantile(q) as f64 / 1000.0 * 1000.0).round() / 1000.0
}

pub(super) fn build(stats: &LoadStats, rate: f64, sent_for: Duration, run_id: &str) -> LoadReport {
    let sent = stats.sent.load(Relaxed);
    let answered = stats.answered.load(Relaxed);
    let router_errors = stats.router_errors.load(Relaxed);
    let total = stats
        .total
        .lock()
        .map(|h| h.clone())
        .unwrap_or_else(|_| super::histogram());
    let windows = stats
        .per_second
        .lock()
        .map(|ps| {
            ps.iter()
                .enumerate()
                .map(|(second, h)| Window {
                    second,
                    count: h.len(),
                    p50_ms: ms(h, 0.5),
                    p99_ms: ms(h, 0.99),
                    p999_ms: ms(h, 0.999),
                    max_ms: ms(h, 1.0),
                })
                .collect()
        })
        .unwrap_or_default();
    let cid = |i: usize| format!("{run_id}-{i}");
    let (slowest_us, slowest) = stats.slowest.lock().map(|s| *s).unwrap_or((0, None));
    let trace = TraceIds {
        slowest: slowest.map(cid),
        slowest_ms: slowest_us as f64 / 1000.0,
        first_error: stats.first_error.lock().ok().and_then(|e| *e).map(cid),
        first_lost: stats
            .states
            .lock()
            .ok()
            .and_then(|st| st.iter().position(|s| *s == super::UNANSWERED))
            .map(cid),
    };
    let stages = stats
        .stages
        .lock()
        .map(|st| {
            // Recorded with +1 (a histogram starts at 1): taken off again here.
            let q = |h: &Histogram<u64>| {
                [0.5, 0.99, 1.0].map(|q| h.value_at_quantile(q).saturating_sub(1))
            };
            StageReport {
                counted: st.to_fl.len(),
                to_fl: q(&st.to_fl),
                answer_hop: q(&st.answer_hop),
                to_load: q(&st.to_load),
            }
        })
        .unwrap_or_default();
    LoadReport {
        warmup_commands: stats.warmup_commands.load(Relaxed).min(sent),
        stages,
        trace,
        sent,
        answered,
        router_errors,
        lost: sent.saturating_sub(answered + router_errors),
        duplicates: stats.duplicates.load(Relaxed),
        conflicting_outcomes: stats.conflicting.load(Relaxed),
        max_answer_gap_ms: stats.max_gap_ms.load(Relaxed),
        p50_ms: ms(&total, 0.5),
        p99_ms: ms(&total, 0.99),
        p999_ms: ms(&total, 0.999),
        max_ms: ms(&total, 1.0),
        rate,
        duration_s: sent_for.as_secs_f64(),
        errors_by_type: stats
            .errors_by_type
            .lock()
            .map(|m| m.clone())
            .unwrap_or_default(),
        windows,
    }
}

impl LoadReport {
    /// `summary: sent=… answered=… router_errors=… lost=… duplicates=… p50_ms=… p99_ms=… p999_ms=…`
    pub fn summary_line(&self) -> String {
        format!(
            "summary: sent={} answered={} router_errors={} lost={} duplicates={} p50_ms={:.3} p99_ms={:.3} p999_ms={:.3}",
            self.sent, self.answered, self.router_errors, self.lost, self.duplicates, self.p50_ms, self.p99_ms, self.p999_ms
        )
    }

    /// `trace: slowest=<id> (… ms) first_error=<id> first_lost=<id>` — the ids to hand to
    /// `fl-router trace`; None when nothing was answered.
    pub fn trace_line(&self) -> Option<String> {
        let t = &self.trace;
        let mut line = format!(
            "trace: slowest={} ({:.3} ms)",
            t.slowest.as_deref()?,
            t.slowest_ms
        );
        if let Some(e) = &t.first_error {
            line.push_str(&format!(" first_error={e}"));
        }
        if let Some(l) = &t.first_lost {
            line.push_str(&format!(" first_lost={l}"));
        }
        line.push_str(" (fl-router trace <id> shows a command's path)");
        Some(line)
    }

    /// The summary line, then the trace line (stdout: the end of a load's output).
    pub fn print(&self) {
        println!("{}", self.summary_line());
        if let Some(t) = self.trace_line() {
            println!("{t}");
        }
    }

    pub fn write_json(&self, path: &Path) -> anyhow::Result<()> {
        std::fs::write(path, serde_json::to_vec_pretty(self)?)?;
        Ok(())
    }

    /// Latency percentiles per second of the run, as an SVG image.
    pub fn write_plot(&self, path: &Path) -> anyhow::Result<()> {
        let root = SVGBackend::new(path, (960, 540)).into_drawing_area();
        root.fill(&WHITE)?;
        let max_x = self.windows.len().max(1) as f64;
        let max_y = self
            .windows
            .iter()
            .map(|w| w.p999_ms)
            .fold(0.0f64, f64::max)
            .max(1.0)
            * 1.1;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!(
                    "fl-router latency at {:.0} commands/s (from intended send time)",
                    self.rate
                ),
                ("sans-serif", 20),
            )
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..max_x, 0f64..max_y)?;
        chart
            .configure_mesh()
            .x_desc("second of run")
            .y_desc("latency (ms)")
            .draw()?;
        let series: [Series; 3] = [
            ("p50", BLUE, |w| w.p50_ms),
            ("p99", RGBColor(230, 120, 0), |w| w.p99_ms),
            ("p99.9", RED, |w| w.p999_ms),
        ];
        for (name, color, f) in series {
            chart
                .draw_series(LineSeries::new(
                    self.windows
                        .iter()
                        .filter(|w| w.count > 0)
                        .map(|w| (w.second as f64, f(w))),
                    color.stroke_width(2),
                ))?
                .label(name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .border_style(BLACK)
            .background_style(WHITE.mix(0.8))
            .draw()?;
        root.present()?;
        Ok(())
    }
}
