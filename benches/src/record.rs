//! One measurement, as written to and read from the JSON-lines results file.

use std::{
    io::{BufRead, BufReader},
    path::Path,
};

use serde::{Deserialize, Serialize};

use crate::Error;

/// The tests of the comparison (numbered as in the benches README).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum TestName {
    /// 1 and 7: CONNECT tunnel bulk echo, 1 and 64 tunnels, throughput and CPU per GB.
    Tunnel,
    /// 2: new connection + CONNECT + 16-byte echo + close, concurrency 1 and 64.
    Setup,
    /// 3: absolute-form GET on kept-alive connections, concurrency 64.
    HttpKeepalive,
    /// 3: absolute-form GET with `Connection: close`, concurrency 64.
    HttpClose,
    /// 4: CONNECT to a name outside the allowlist (403), concurrency 64.
    Deny,
    /// 5: the setup test at concurrency 64, labelled with the allowlist size.
    Filter,
    /// 6: RSS idle and with many idle tunnels open.
    Memory,
}

/// One measurement of one test against one system.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The system measured: `sandbox-proxy`, `tinyproxy`, `squid` or `direct`.
    pub system: String,
    /// The test.
    pub test: TestName,
    /// Concurrent connections (tunnels for the bulk test, workers otherwise).
    pub concurrency: u32,
    /// Allowlist size (filter test).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entries: Option<u32>,
    /// Measured window in seconds.
    pub window_s: f64,
    /// Operations completed successfully in the window.
    pub ops: u64,
    /// Operations that failed.
    pub errors: u64,
    /// The first failure, for diagnosis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
    /// Median latency of successful operations, microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p50_us: Option<f64>,
    /// 99th percentile latency of successful operations, microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99_us: Option<f64>,
    /// CPU time (user + system) the proxy process used in the window, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_cpu_s: Option<f64>,
    /// Payload bytes echoed back and verified (bulk test).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// Idle tunnels open when the RSS was read (memory test).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tunnels: Option<u32>,
    /// Resident set size of the proxy process, KiB (memory test).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rss_kib: Option<u64>,
    /// Its anonymous part (heap and stacks, not the mapped executable), KiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anon_kib: Option<u64>,
}

impl Record {
    /// A record with the identifying fields set and every measurement empty.
    pub fn new(system: &str, test: TestName, concurrency: u32) -> Self {
        Self {
            system: system.to_owned(),
            test,
            concurrency,
            entries: None,
            window_s: 0.0,
            ops: 0,
            errors: 0,
            first_error: None,
            p50_us: None,
            p99_us: None,
            proxy_cpu_s: None,
            bytes: None,
            tunnels: None,
            rss_kib: None,
            anon_kib: None,
        }
    }

    /// Successful operations per second.
    pub fn rate(&self) -> Option<f64> {
        (self.window_s > 0.0).then(|| self.ops as f64 / self.window_s)
    }

    /// Proxy CPU microseconds per successful operation.
    pub fn cpu_us_per_op(&self) -> Option<f64> {
        let cpu = self.proxy_cpu_s?;
        (self.ops > 0).then(|| cpu * 1e6 / self.ops as f64)
    }

    /// Echoed payload in MB (10^6 bytes) per second.
    pub fn mb_per_s(&self) -> Option<f64> {
        let bytes = self.bytes?;
        (self.window_s > 0.0).then(|| bytes as f64 / 1e6 / self.window_s)
    }

    /// Proxy CPU seconds per GB (10^9 bytes) of echoed payload.
    pub fn cpu_s_per_gb(&self) -> Option<f64> {
        let (cpu, bytes) = (self.proxy_cpu_s?, self.bytes?);
        (bytes > 0).then(|| cpu / (bytes as f64 / 1e9))
    }
}

/// Reads every record of a JSON-lines file; blank lines are skipped.
pub fn read_records(path: &Path) -> Result<Vec<Record>, Error> {
    let file_error = |source| Error::File {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(file_error)?;
    let mut records = Vec::new();
    for (index, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(file_error)?;
        if line.trim().is_empty() {
            continue;
        }
        let record = serde_json::from_str(&line).map_err(|source| Error::Record {
            path: path.to_owned(),
            line: index + 1,
            source,
        })?;
        records.push(record);
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_rates_divide_by_ops_bytes_and_window() {
        let mut r = Record::new("squid", TestName::Tunnel, 1);
        r.window_s = 2.0;
        r.ops = 10;
        r.proxy_cpu_s = Some(0.5);
        r.bytes = Some(2_000_000_000);
        assert_eq!(r.rate(), Some(5.0));
        assert_eq!(r.cpu_us_per_op(), Some(50_000.0));
        assert_eq!(r.mb_per_s(), Some(1000.0));
        assert_eq!(r.cpu_s_per_gb(), Some(0.25));
    }

    #[test]
    fn nothing_measured_nothing_derived() {
        let r = Record::new("direct", TestName::Setup, 64);
        assert_eq!(
            (r.rate(), r.cpu_us_per_op(), r.cpu_s_per_gb()),
            (None, None, None)
        );
    }

    #[test]
    fn records_round_trip_through_json_lines() {
        let mut r = Record::new("tinyproxy", TestName::HttpKeepalive, 64);
        r.p99_us = Some(812.5);
        let line = serde_json::to_string(&r).unwrap();
        assert!(line.contains(r#""test":"http-keepalive""#), "{line}");
        let dir = std::env::temp_dir().join(format!("records-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("r.jsonl");
        std::fs::write(&path, format!("{line}\n\n{line}\n")).unwrap();
        assert_eq!(read_records(&path).unwrap(), vec![r.clone(), r]);
        std::fs::write(&path, "{}\n").unwrap();
        let err = read_records(&path).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("r.jsonl:1: invalid result record"),
            "{err}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
