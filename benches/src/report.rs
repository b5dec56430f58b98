//! The comparison table: a row per test, a column per system, and sandbox-proxy's ratio
//! to the best peer.

use std::fmt::Write as _;

use crate::{Record, TestName};

/// The system whose ratio to the peers the table reports.
pub const OURS: &str = "sandbox-proxy";

/// The column of the path without proxy, which is not a peer.
pub const DIRECT: &str = "direct";

/// Preferred column order; other systems follow in order of appearance.
const COLUMN_ORDER: [&str; 4] = [OURS, "tinyproxy", "squid", DIRECT];

/// Which way a row improves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Better {
    Higher,
    Lower,
}

/// One value of the table and the failures behind it.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Cell {
    value: f64,
    errors: u64,
}

/// Computes a row's cell for one system from all records.
type Value = Box<dyn Fn(&[Record], &str) -> Option<Cell>>;

struct Row {
    label: String,
    unit: &'static str,
    better: Better,
    value: Value,
}

/// Renders the records of every system as one Markdown table.
pub fn render(records: &[Record]) -> String {
    let systems = systems(records);
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = write!(out, "| test | unit |");
    for s in &systems {
        let _ = write!(out, " {s} |");
    }
    let _ = writeln!(out, " {OURS} / best peer |");
    let _ = writeln!(out, "|---|---|{}---|", "---:|".repeat(systems.len()));
    for row in rows(records) {
        let cells: Vec<_> = systems.iter().map(|s| (row.value)(records, s)).collect();
        let _ = write!(out, "| {} | {} |", row.label, row.unit);
        for cell in &cells {
            let _ = write!(
                out,
                " {} |",
                cell.map_or_else(|| "-".to_owned(), format_cell)
            );
        }
        let ratio = ratio_to_best_peer(&systems, &cells, row.better);
        let _ = writeln!(out, " {} |", ratio.unwrap_or_else(|| "-".to_owned()));
    }
    out
}

/// The systems present in the records, in column order.
fn systems(records: &[Record]) -> Vec<String> {
    let mut systems: Vec<String> = COLUMN_ORDER
        .iter()
        .filter(|s| records.iter().any(|r| r.system == **s))
        .map(|s| (*s).to_owned())
        .collect();
    for r in records {
        if !systems.contains(&r.system) {
            systems.push(r.system.clone());
        }
    }
    systems
}

/// Our value divided by the best peer's (neither us nor the direct path), with which way
/// that is.
fn ratio_to_best_peer(
    systems: &[String],
    cells: &[Option<Cell>],
    better: Better,
) -> Option<String> {
    let ours = systems
        .iter()
        .position(|s| s == OURS)
        .and_then(|i| cells[i])?;
    let peers = systems
        .iter()
        .zip(cells)
        .filter(|(s, _)| *s != OURS && *s != DIRECT)
        .filter_map(|(_, c)| c.map(|c| c.value));
    let best = match better {
        Better::Higher => peers.reduce(f64::max),
        Better::Lower => peers.reduce(f64::min),
    }?;
    if best == 0.0 {
        return None;
    }
    let ratio = ours.value / best;
    let verdict = if (ratio - 1.0).abs() < 0.005 {
        "equal"
    } else if (ratio > 1.0) == (better == Better::Higher) {
        "better"
    } else {
        "worse"
    };
    Some(format!("{}x ({verdict})", format_number(ratio)))
}

fn format_cell(cell: Cell) -> String {
    match cell.errors {
        0 => format_number(cell.value),
        n => format!("{} ({n} err)", format_number(cell.value)),
    }
}

/// Three significant digits or so, never scientific notation.
fn format_number(v: f64) -> String {
    match v.abs() {
        a if a >= 100.0 => format!("{v:.0}"),
        a if a >= 10.0 => format!("{v:.1}"),
        a if a >= 0.1 => format!("{v:.2}"),
        _ => format!("{v:.3}"),
    }
}

/// The record of `system` for `test` that `pick` accepts.
fn find<'a>(
    records: &'a [Record],
    system: &str,
    test: TestName,
    pick: impl Fn(&Record) -> bool,
) -> Option<&'a Record> {
    records
        .iter()
        .find(|r| r.system == system && r.test == test && pick(r))
}

/// A row reading one figure of the record of `test` at `concurrency`.
fn metric(test: TestName, concurrency: u32, figure: fn(&Record) -> Option<f64>) -> Value {
    Box::new(move |records, system| {
        let r = find(records, system, test, |r| r.concurrency == concurrency)?;
        Some(Cell {
            value: figure(r)?,
            errors: r.errors,
        })
    })
}

fn p50_ms(r: &Record) -> Option<f64> {
    r.p50_us.map(|us| us / 1000.0)
}

fn p99_ms(r: &Record) -> Option<f64> {
    r.p99_us.map(|us| us / 1000.0)
}

fn row(label: impl Into<String>, unit: &'static str, better: Better, value: Value) -> Row {
    Row {
        label: label.into(),
        unit,
        better,
        value,
    }
}

/// Sorted distinct values of a field over the records of `test`.
fn distinct(records: &[Record], test: TestName, field: fn(&Record) -> Option<u32>) -> Vec<u32> {
    let mut values: Vec<u32> = records
        .iter()
        .filter(|r| r.test == test)
        .filter_map(field)
        .collect();
    values.sort_unstable();
    values.dedup();
    values
}

/// The rows of the table, in the order of the tests in the README.
fn rows(records: &[Record]) -> Vec<Row> {
    use Better::{Higher, Lower};
    use TestName::{Deny, Filter, HttpClose, HttpKeepalive, Memory, Setup, Tunnel};
    let mut rows = vec![
        row(
            "1. tunnel bulk echo, 1 tunnel",
            "MB/s",
            Higher,
            metric(Tunnel, 1, Record::mb_per_s),
        ),
        row(
            "1. tunnel bulk echo, 1 tunnel, share of direct",
            "x",
            Higher,
            Box::new(share_of_direct),
        ),
        row(
            "1. tunnel bulk echo, 64 tunnels",
            "MB/s",
            Higher,
            metric(Tunnel, 64, Record::mb_per_s),
        ),
        row(
            "7. proxy CPU per GB echoed, 1 tunnel",
            "s/GB",
            Lower,
            metric(Tunnel, 1, Record::cpu_s_per_gb),
        ),
        row(
            "7. proxy CPU per GB echoed, 64 tunnels",
            "s/GB",
            Lower,
            metric(Tunnel, 64, Record::cpu_s_per_gb),
        ),
    ];
    for c in [1, 64] {
        let name = format!("2. CONNECT + 16 B echo + close, c={c}");
        rows.push(row(
            name.clone(),
            "conn/s",
            Higher,
            metric(Setup, c, Record::rate),
        ));
        rows.push(row(
            format!("{name}, p50"),
            "ms",
            Lower,
            metric(Setup, c, p50_ms),
        ));
        rows.push(row(
            format!("{name}, p99"),
            "ms",
            Lower,
            metric(Setup, c, p99_ms),
        ));
        rows.push(row(
            format!("{name}, proxy CPU/op"),
            "us",
            Lower,
            metric(Setup, c, Record::cpu_us_per_op),
        ));
    }
    for (test, name) in [
        (HttpKeepalive, "keep-alive"),
        (HttpClose, "Connection: close"),
    ] {
        let name = format!("3. HTTP GET {name}, c=64");
        rows.push(row(
            name.clone(),
            "req/s",
            Higher,
            metric(test, 64, Record::rate),
        ));
        rows.push(row(
            format!("{name}, p50"),
            "ms",
            Lower,
            metric(test, 64, p50_ms),
        ));
        rows.push(row(
            format!("{name}, p99"),
            "ms",
            Lower,
            metric(test, 64, p99_ms),
        ));
        rows.push(row(
            format!("{name}, proxy CPU/req"),
            "us",
            Lower,
            metric(test, 64, Record::cpu_us_per_op),
        ));
    }
    rows.push(row(
        "4. denied CONNECT (403), c=64",
        "403/s",
        Higher,
        metric(Deny, 64, Record::rate),
    ));
    rows.push(row(
        "4. denied CONNECT (403), c=64, proxy CPU/op",
        "us",
        Lower,
        metric(Deny, 64, Record::cpu_us_per_op),
    ));
    let sizes = distinct(records, Filter, |r| r.entries);
    for &n in &sizes {
        let name = format!("5. setup with {n} allowlist entries, c=64");
        rows.push(row(name.clone(), "conn/s", Higher, filter(n, Record::rate)));
        rows.push(row(
            format!("{name}, proxy CPU/op"),
            "us",
            Lower,
            filter(n, Record::cpu_us_per_op),
        ));
    }
    if let (Some(&small), Some(&large)) = (sizes.first(), sizes.last())
        && small != large
    {
        let name = format!("5. proxy CPU/op, {large} entries vs {small}");
        rows.push(row(
            name,
            "x",
            Lower,
            Box::new(move |records, system| {
                let at = |n| filter(n, Record::cpu_us_per_op)(records, system);
                let (small, large) = (at(small)?, at(large)?);
                Some(Cell {
                    value: large.value / small.value,
                    errors: small.errors + large.errors,
                })
            }),
        ));
    }
    rows.push(row(
        "6. RSS idle",
        "MiB",
        Lower,
        rss(0, |r| r.rss_kib, |rss, _| rss / 1024.0),
    ));
    rows.push(row(
        "6. RSS idle, anonymous part (heap, stacks)",
        "MiB",
        Lower,
        rss(0, |r| r.anon_kib, |rss, _| rss / 1024.0),
    ));
    for n in distinct(records, Memory, |r| r.tunnels)
        .into_iter()
        .filter(|&n| n > 0)
    {
        rows.push(row(
            format!("6. RSS with {n} idle tunnels"),
            "MiB",
            Lower,
            rss(n, |r| r.rss_kib, |rss, _| rss / 1024.0),
        ));
        rows.push(row(
            format!("6. RSS per idle tunnel ({n} open)"),
            "KiB",
            Lower,
            rss(
                n,
                |r| r.rss_kib,
                move |rss, idle| (rss - idle) / f64::from(n),
            ),
        ));
    }
    rows
}

/// The filter-test figure at allowlist size `entries`.
fn filter(entries: u32, figure: fn(&Record) -> Option<f64>) -> Value {
    Box::new(move |records, system| {
        let r = find(records, system, TestName::Filter, |r| {
            r.entries == Some(entries)
        })?;
        Some(Cell {
            value: figure(r)?,
            errors: r.errors,
        })
    })
}

/// A figure from a memory `field` with `tunnels` open and idle, both in KiB.
fn rss(
    tunnels: u32,
    field: fn(&Record) -> Option<u64>,
    figure: impl Fn(f64, f64) -> f64 + 'static,
) -> Value {
    Box::new(move |records, system| {
        let at = |n| find(records, system, TestName::Memory, |r| r.tunnels == Some(n));
        let (r, idle) = (at(tunnels)?, at(0)?);
        Some(Cell {
            value: figure(field(r)? as f64, field(idle)? as f64),
            errors: r.errors,
        })
    })
}

/// Single-tunnel throughput as a share of the direct path's.
fn share_of_direct(records: &[Record], system: &str) -> Option<Cell> {
    let mb = metric(TestName::Tunnel, 1, Record::mb_per_s);
    let (ours, direct) = (mb(records, system)?, mb(records, DIRECT)?);
    Some(Cell {
        value: ours.value / direct.value,
        errors: ours.errors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(system: &str, ops: u64, cpu_s: f64) -> Record {
        let mut r = Record::new(system, TestName::Setup, 64);
        r.window_s = 1.0;
        r.ops = ops;
        r.proxy_cpu_s = Some(cpu_s);
        r
    }

    fn line<'a>(table: &'a str, start: &str) -> &'a str {
        table.lines().find(|l| l.starts_with(start)).unwrap()
    }

    #[test]
    fn columns_are_ordered_and_the_ratio_uses_the_best_peer() {
        let records = [
            setup("squid", 1000, 0.115),
            setup("sandbox-proxy", 2000, 0.05),
            setup("tinyproxy", 1000, 0.092),
        ];
        let table = render(&records);
        assert!(table.starts_with(
            "| test | unit | sandbox-proxy | tinyproxy | squid | sandbox-proxy / best peer |"
        ));
        // 25 us against tinyproxy's 92 us: lower is better.
        assert_eq!(
            line(
                &table,
                "| 2. CONNECT + 16 B echo + close, c=64, proxy CPU/op"
            ),
            "| 2. CONNECT + 16 B echo + close, c=64, proxy CPU/op | us | 25.0 | 92.0 | 115 | 0.27x (better) |"
        );
        // 2000 conn/s against 1000: higher is better.
        assert!(
            line(&table, "| 2. CONNECT + 16 B echo + close, c=64 |")
                .ends_with("| 2.00x (better) |")
        );
    }

    #[test]
    fn missing_values_and_errors_are_shown() {
        let mut ours = setup("sandbox-proxy", 100, 0.01);
        ours.errors = 3;
        let table = render(&[ours, setup("direct", 500, 0.0)]);
        let row = line(&table, "| 2. CONNECT + 16 B echo + close, c=64 |");
        assert_eq!(
            row,
            "| 2. CONNECT + 16 B echo + close, c=64 | conn/s | 100 (3 err) | 500 | - |"
        );
        assert_eq!(
            line(&table, "| 2. CONNECT + 16 B echo + close, c=1 |")
                .matches(" - |")
                .count(),
            3
        );
    }

    #[test]
    fn memory_rows_derive_the_per_tunnel_cost_from_idle() {
        let mem = |tunnels, rss_kib| {
            let mut r = Record::new("sandbox-proxy", TestName::Memory, 64);
            r.tunnels = Some(tunnels);
            r.rss_kib = Some(rss_kib);
            r
        };
        let table = render(&[mem(0, 2048), mem(1000, 12_048)]);
        assert!(line(&table, "| 6. RSS idle |").contains("| 2.00 |"));
        assert!(line(&table, "| 6. RSS per idle tunnel (1000 open) |").contains("| 10.0 |"));
    }

    #[test]
    fn filter_rows_compare_the_largest_list_to_the_smallest() {
        let filter = |entries, cpu_s| {
            let mut r = setup("squid", 1000, cpu_s);
            r.test = TestName::Filter;
            r.entries = Some(entries);
            r
        };
        let table = render(&[filter(1, 0.1), filter(100_000, 0.15)]);
        assert!(line(&table, "| 5. proxy CPU/op, 100000 entries vs 1 |").contains("| 1.50 |"));
    }

    #[test]
    fn numbers_keep_about_three_digits() {
        let cases = [
            (12345.6, "12346"),
            (45.67, "45.7"),
            (1.234, "1.23"),
            (0.0123, "0.012"),
        ];
        for (v, text) in cases {
            assert_eq!(format_number(v), text);
        }
    }
}
