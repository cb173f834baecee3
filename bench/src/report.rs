//! Renders an api-load [`Report`] as plain-text tables for people: one table
//! per phase, first column left-aligned, figures right-aligned.

use std::fmt::Write as _;

use crate::api_load::Report;
use crate::api_load::create::CreateResult;
use crate::rss::MemSample;
use crate::stats::LatencySummary;

/// The whole report as text, ending in a newline.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let version = report.server_version.as_deref().unwrap_or("version unknown");
    let _ = writeln!(
        out,
        "skiff-bench api-load: {} ({version}), namespace {}",
        report.server, report.namespace
    );

    let mut rows = vec![header(&[
        "pod creates",
        "pods",
        "ok",
        "errors",
        "wall s",
        "pods/s",
        "p50 ms",
        "p99 ms",
        "max ms",
    ])];
    for c in &report.create {
        rows.push(create_row(format!("concurrency {}", c.concurrency), c));
    }
    if let Some(fill) = &report.fill {
        rows.push(create_row(format!("fill (c={})", fill.concurrency), fill));
    }
    table(&mut out, &rows);
    for c in report.create.iter().chain(&report.fill) {
        if let Some(e) = &c.first_error {
            let _ = writeln!(out, "  first error at concurrency {}: {e}", c.concurrency);
        }
        if c.timed_out {
            let _ = writeln!(
                out,
                "  concurrency {} batch was cut short by --phase-timeout",
                c.concurrency
            );
        }
    }

    let mut rows = vec![header(&[
        "LIST /api/v1/pods",
        "items",
        "MiB",
        "runs",
        "p50 ms",
        "p99 ms",
        "max ms",
    ])];
    for l in &report.list {
        let mut row = vec![
            l.mode.label().to_string(),
            l.items.to_string(),
            format!("{:.1}", l.bytes as f64 / 1_048_576.0),
        ];
        row.extend(latency_cells(l.latency.as_ref(), true));
        rows.push(row);
    }
    table(&mut out, &rows);

    let mut rows = vec![header(&[
        "watch delivery",
        "writes",
        "errors",
        "delivered",
        "missing",
        "p50 ms",
        "p99 ms",
        "max ms",
        "p50 from send",
        "p99 from send",
    ])];
    for w in &report.watch {
        let mut row = vec![
            format!("{} writer{}", w.writers, if w.writers == 1 { "" } else { "s" }),
            w.writes.to_string(),
            w.write_errors.to_string(),
            w.delivered.to_string(),
            w.missing.to_string(),
        ];
        row.extend(latency_cells(w.latency.as_ref(), false));
        let from_send = w.latency_from_send.as_ref();
        row.extend(
            [from_send.map(|l| l.p50_ms), from_send.map(|l| l.p99_ms)]
                .map(|v| v.map_or("-".to_string(), |v| format!("{v:.1}"))),
        );
        rows.push(row);
    }
    table(&mut out, &rows);

    if !report.cpu.is_empty() {
        let mut rows = vec![header(&[
            "CPU per phase",
            "requests",
            "server ms",
            "client ms",
            "server ms/req",
            "client ms/req",
        ])];
        for c in &report.cpu {
            let per = |ms: Option<f64>| match ms {
                Some(ms) if c.ops > 0 => format!("{:.2}", ms / c.ops as f64),
                _ => "-".to_string(),
            };
            let total = |ms: Option<f64>| ms.map_or("-".to_string(), |ms| format!("{ms:.0}"));
            rows.push(vec![
                c.phase.clone(),
                c.ops.to_string(),
                total(c.server_ms),
                total(c.client_ms),
                per(c.server_ms),
                per(c.client_ms),
            ]);
        }
        table(&mut out, &rows);
    }
    if let Some(m) = &report.memory {
        let mut rows = vec![header(&[
            &format!("server memory (pid {})", m.pid),
            "VmRSS MiB",
            "VmHWM MiB",
        ])];
        rows.push(mem_row("idle".to_string(), m.idle));
        rows.push(mem_row(format!("{} pods stored", m.loaded_pods), m.loaded));
        table(&mut out, &rows);
    }
    if let Some(reason) = &report.aborted {
        let _ = writeln!(out, "\nRUN STOPPED EARLY: {reason}");
    }
    out
}

fn header(cells: &[&str]) -> Vec<String> {
    cells.iter().map(|c| c.to_string()).collect()
}

fn create_row(label: String, c: &CreateResult) -> Vec<String> {
    let mut row = vec![
        label,
        c.requested.to_string(),
        c.created.to_string(),
        c.errors.to_string(),
        format!("{:.2}", c.wall_ms / 1000.0),
        format!("{:.0}", c.per_sec),
    ];
    row.extend(latency_cells(c.latency.as_ref(), false));
    row
}

fn latency_cells(l: Option<&LatencySummary>, with_count: bool) -> Vec<String> {
    let mut cells = Vec::new();
    if with_count {
        cells.push(l.map_or("0".to_string(), |l| l.count.to_string()));
    }
    match l {
        Some(l) => cells.extend([l.p50_ms, l.p99_ms, l.max_ms].map(|v| format!("{v:.1}"))),
        None => cells.extend(["-", "-", "-"].map(String::from)),
    }
    cells
}

fn mem_row(label: String, sample: Option<MemSample>) -> Vec<String> {
    let mib = |kib: u64| format!("{:.1}", kib as f64 / 1024.0);
    match sample {
        Some(s) => vec![label, mib(s.rss_kib), s.hwm_kib.map_or("-".to_string(), mib)],
        None => vec![label, "-".to_string(), "-".to_string()],
    }
}

/// Appends `rows` (the first is the header) as an aligned table after a blank line.
fn table(out: &mut String, rows: &[Vec<String>]) {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    out.push('\n');
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i == 0 {
                let _ = write!(line, "{cell:<w$}", w = widths[0]);
            } else {
                let _ = write!(line, "  {cell:>w$}", w = widths[i]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::api_load::MemoryReport;
    use crate::api_load::list::{ListMode, ListResult};
    use crate::api_load::watch::WatchResult;

    fn summary(p50: f64, p99: f64) -> LatencySummary {
        LatencySummary {
            count: 10,
            mean_ms: p50,
            p50_ms: p50,
            p99_ms: p99,
            max_ms: p99,
        }
    }

    fn sample_report() -> Report {
        Report {
            server: "https://127.0.0.1:6443/".into(),
            server_version: Some("v1.33.0".into()),
            namespace: "skiff-bench-x".into(),
            settings: crate::api_load::Settings {
                concurrency: vec![32],
                pods: 1000,
                list_pods: 10_000,
                list_runs: 10,
                watch_writers: vec![8],
                watch_writes: 200,
            },
            create: vec![CreateResult {
                concurrency: 32,
                requested: 1000,
                created: 998,
                errors: 2,
                first_error: Some("ApiError: too many requests (429)".into()),
                timed_out: false,
                wall_ms: 500.0,
                per_sec: 1996.0,
                latency: Some(summary(12.25, 40.0)),
            }],
            fill: None,
            list: vec![ListResult {
                mode: ListMode::Rv0,
                items: 10_000,
                bytes: 3 * 1_048_576,
                latency: Some(summary(61.0, 75.5)),
            }],
            watch: vec![WatchResult {
                writers: 8,
                writes: 1600,
                write_errors: 0,
                delivered: 1600,
                missing: 0,
                latency: None,
                latency_from_send: None,
            }],
            cpu: vec![crate::cpu::CpuUse {
                phase: "create c=32".into(),
                ops: 1000,
                server_ms: Some(1500.0),
                client_ms: None,
            }],
            memory: Some(MemoryReport {
                pid: 42,
                idle: Some(MemSample {
                    rss_kib: 20480,
                    hwm_kib: Some(30720),
                }),
                loaded: None,
                loaded_pods: 10_000,
            }),
            aborted: None,
        }
    }

    #[test]
    fn table_shows_every_figure_a_reader_needs() {
        let text = render(&sample_report());
        let line = |start: &str| text.lines().find(|l| l.starts_with(start)).unwrap().to_string();
        let create = line("concurrency 32");
        for figure in ["1000", "998", "2", "0.50", "1996", "12.2", "40.0"] {
            assert!(create.contains(figure), "{create} lacks {figure}");
        }
        assert!(text.contains("first error at concurrency 32: ApiError: too many requests (429)"));
        let list = line("rv=0 (cache)");
        assert!(
            list.contains("10000") && list.contains("3.0") && list.contains("75.5"),
            "{list}"
        );
        let watch = line("8 writers");
        assert!(
            watch.split_whitespace().rev().take(5).all(|c| c == "-"),
            "{watch}"
        );
        assert!(line("idle").contains("20.0") && line("idle").contains("30.0"));
        assert!(line("10000 pods stored").ends_with("-"));
        let cpu = line("create c=32");
        assert!(
            cpu.contains("1500") && cpu.contains("1.50") && cpu.ends_with("-"),
            "{cpu}"
        );
    }

    #[test]
    fn every_table_has_a_header_cell_per_column() {
        // Right-aligned columns: a row with as many cells as its header is exactly as wide.
        let text = render(&sample_report());
        for block in text.split("\n\n").skip(1) {
            let widths: Vec<usize> = block
                .lines()
                .filter(|l| !l.starts_with(' '))
                .map(str::len)
                .collect();
            assert!(
                widths.len() > 1 && widths.iter().all(|w| *w == widths[0]),
                "{block}"
            );
        }
    }

    #[test]
    fn an_aborted_run_says_so() {
        let mut report = sample_report();
        report.aborted = Some("LIST rv=0 did not finish within 300 s".into());
        assert!(render(&report).contains("RUN STOPPED EARLY: LIST rv=0"));
    }
}
