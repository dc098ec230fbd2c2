//! `chatbench chart`: SVG pictures of JSON reports, for people who would
//! rather look than read. Two charts:
//!
//! * `deliveries.svg`: deliveries per server-CPU-second for each workload
//!   and server (a bar at the median of the repeated runs, a line from the
//!   lowest to the highest, a dot per run);
//! * `latency.svg`: the latency workload's percentiles (p50, p99, p99.9,
//!   max; medians of the runs) per server, on a log scale.
//!
//! A report's server is its column (`chatserver`, `chatserver over ws`, ...)
//! and, when the file says it, its setup (bench/cluster.sh adds `setup`).

use std::collections::BTreeMap;
use std::path::Path;

use plotters::prelude::*;

use crate::report::Report;

/// One report as a chart sees it.
pub struct Point {
    /// Who answered: the report's column and setup.
    pub server: String,
    /// fanout, latency, private...
    pub workload: String,
    /// Deliveries per server-CPU-second, if measured.
    pub per_cpu: Option<f64>,
    /// Latency percentiles in milliseconds (p50, p99, p99.9, max).
    pub latency_ms: Option<[f64; 4]>,
}

impl Point {
    /// `report`, with `setup` if its line had one.
    pub fn of(report: &Report, setup: Option<&str>) -> Point {
        let server = match setup {
            Some(s) => format!("{} ({s})", report.column()),
            None => report.column(),
        };
        Point {
            server,
            workload: report.workload.clone(),
            per_cpu: report.deliveries_per_cpu_s,
            latency_ms: report
                .latency_ns
                .as_ref()
                .map(|l| [l.p50, l.p99, l.p999, l.max].map(|ns| ns as f64 / 1e6)),
        }
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// Draw both charts of `points` into `dir`; the files written.
pub fn draw(points: &[Point], dir: &Path) -> Result<Vec<String>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut written = Vec::new();
    let servers: Vec<String> = {
        let mut s: Vec<String> = points.iter().map(|p| p.server.clone()).collect();
        s.dedup();
        let mut seen = Vec::new();
        for x in s {
            if !seen.contains(&x) {
                seen.push(x);
            }
        }
        seen
    };
    if points.iter().any(|p| p.per_cpu.is_some()) {
        let path = dir.join("deliveries.svg");
        deliveries(points, &servers, &path).map_err(|e| format!("{}: {e}", path.display()))?;
        written.push(path.display().to_string());
    }
    if points.iter().any(|p| p.latency_ms.is_some()) {
        let path = dir.join("latency.svg");
        latency(points, &servers, &path).map_err(|e| format!("{}: {e}", path.display()))?;
        written.push(path.display().to_string());
    }
    Ok(written)
}

type DrawResult = Result<(), Box<dyn std::error::Error>>;

fn deliveries(points: &[Point], servers: &[String], path: &Path) -> DrawResult {
    // (workload, server) -> runs, in the order first seen.
    let mut workloads: Vec<String> = Vec::new();
    let mut runs: BTreeMap<(usize, usize), Vec<f64>> = BTreeMap::new();
    for p in points {
        let Some(v) = p.per_cpu else { continue };
        if !workloads.contains(&p.workload) {
            workloads.push(p.workload.clone());
        }
        let w = workloads.iter().position(|x| *x == p.workload).unwrap_or(0);
        let s = servers.iter().position(|x| *x == p.server).unwrap_or(0);
        runs.entry((w, s)).or_default().push(v / 1e6);
    }
    let top = runs.values().flatten().copied().fold(0.0, f64::max) * 1.15;
    let slots = servers.len() as f64 + 1.0;
    let width = (workloads.len() as f64 * slots).max(1.0);
    let root = SVGBackend::new(path, (900, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Deliveries per server-CPU-second (bar: median, line: spread, dot: a run)",
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(64)
        .build_cartesian_2d(0.0..width, 0.0..top.max(0.001))?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_desc("millions of deliveries per CPU-second")
        .draw()?;
    // Each workload's name over its group of bars.
    for (w, name) in workloads.iter().enumerate() {
        chart.draw_series(std::iter::once(Text::new(
            name.clone(),
            (w as f64 * slots + 0.5, top * 0.97),
            ("sans-serif", 16).into_font(),
        )))?;
    }
    for (s, server) in servers.iter().enumerate() {
        let color = COLORS[s % COLORS.len()];
        let mut legend = false;
        for ((w, s2), vals) in &runs {
            if *s2 != s {
                continue;
            }
            let x0 = *w as f64 * slots + 0.5 + s as f64;
            let mut v = vals.clone();
            let m = median(&mut v);
            let bar = chart.draw_series(std::iter::once(Rectangle::new(
                [(x0, 0.0), (x0 + 0.8, m)],
                color.mix(0.75).filled(),
            )))?;
            if !legend {
                let c = color;
                bar.label(server.clone()).legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 12, y + 5)], c.filled())
                });
                legend = true;
            }
            let (lo, hi) = (v[0], v[v.len() - 1]);
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(x0 + 0.4, lo), (x0 + 0.4, hi)],
                BLACK.stroke_width(2),
            )))?;
            chart.draw_series(
                vals.iter()
                    .map(|&y| Circle::new((x0 + 0.4, y), 3, BLACK.filled())),
            )?;
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

fn latency(points: &[Point], servers: &[String], path: &Path) -> DrawResult {
    const LABELS: [&str; 4] = ["p50", "p99", "p99.9", "max"];
    let mut per_server: Vec<(String, [f64; 4])> = Vec::new();
    for server in servers {
        let runs: Vec<[f64; 4]> = points
            .iter()
            .filter(|p| &p.server == server && p.workload == "latency")
            .filter_map(|p| p.latency_ms)
            .collect();
        if runs.is_empty() {
            continue;
        }
        let mut m = [0.0; 4];
        for (i, slot) in m.iter_mut().enumerate() {
            let mut v: Vec<f64> = runs.iter().map(|r| r[i]).collect();
            *slot = median(&mut v).max(0.001);
        }
        per_server.push((server.clone(), m));
    }
    let lo = per_server
        .iter()
        .flat_map(|(_, m)| m.iter().copied())
        .fold(f64::MAX, f64::min)
        .min(1.0)
        / 1.5;
    let hi = per_server
        .iter()
        .flat_map(|(_, m)| m.iter().copied())
        .fold(0.0, f64::max)
        .max(1.0)
        * 1.5;
    let root = SVGBackend::new(path, (900, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Latency workload: percentiles (median of the runs), ms, log scale",
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(64)
        .build_cartesian_2d(-0.25f64..3.25f64, (lo..hi).log_scale())?;
    chart
        .configure_mesh()
        .x_labels(4)
        .x_label_formatter(&|x| {
            let i = x.round() as usize;
            if (x - i as f64).abs() < 0.1 {
                LABELS.get(i).copied().unwrap_or("").to_owned()
            } else {
                String::new()
            }
        })
        .y_desc("milliseconds")
        .draw()?;
    for (s, (server, m)) in per_server.iter().enumerate() {
        let color = COLORS[s % COLORS.len()];
        let pts: Vec<(f64, f64)> = m.iter().enumerate().map(|(i, &v)| (i as f64, v)).collect();
        chart
            .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))?
            .label(server.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 14, y)], color.stroke_width(2))
            });
        chart.draw_series(pts.into_iter().map(|p| Circle::new(p, 4, color.filled())))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(server: &str, workload: &str, per_cpu: f64, p99: f64) -> Point {
        Point {
            server: server.into(),
            workload: workload.into(),
            per_cpu: Some(per_cpu),
            latency_ms: (workload == "latency").then_some([1.0, p99, p99 * 2.0, p99 * 3.0]),
        }
    }

    #[test]
    fn both_charts_name_every_server_and_workload() {
        let dir = std::env::temp_dir().join(format!("chatbench-chart-{}", std::process::id()));
        let points = vec![
            point("chatserver", "fanout", 3.1e6, 0.0),
            point("chatserver", "fanout", 3.3e6, 0.0),
            point("nats-server", "fanout", 2.0e6, 0.0),
            point("chatserver", "latency", 2.0e5, 4.0),
            point("nats-server", "latency", 1.0e5, 9.0),
        ];
        let written = draw(&points, &dir).unwrap();
        assert_eq!(written.len(), 2);
        let bars = std::fs::read_to_string(dir.join("deliveries.svg")).unwrap();
        for name in ["chatserver", "nats-server", "fanout", "latency"] {
            assert!(bars.contains(name), "deliveries.svg lacks {name}");
        }
        let lat = std::fs::read_to_string(dir.join("latency.svg")).unwrap();
        assert!(lat.contains("p99.9") && lat.contains("nats-server"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&mut [5.0, 1.0, 3.0]), 3.0);
    }
}
