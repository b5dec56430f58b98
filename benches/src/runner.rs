//! Closed-loop load: N workers repeat one operation for a fixed window while the proxy's
//! CPU time is sampled at the window's edges.

use std::{
    future::Future,
    time::{Duration, Instant},
};

use tokio::task::JoinSet;

use crate::{Error, Latencies, Process};

/// One repeatable operation of a test, with whatever state a worker keeps between runs.
pub trait Operation: Send + 'static {
    /// Performs the operation once.
    fn run(&mut self) -> impl Future<Output = Result<(), Error>> + Send;
}

/// How long a test measures, and how long one operation may take.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    /// The measured window.
    pub duration: Duration,
    /// Bound on a single operation; a slower one counts as an error.
    pub op_timeout: Duration,
}

/// Successes, failures and latencies of a test.
#[derive(Debug, Default)]
pub struct Tally {
    /// Successful operations.
    pub ops: u64,
    /// Failed operations.
    pub errors: u64,
    /// The first failure, for diagnosis.
    pub first_error: Option<String>,
    /// Latencies of the successful operations.
    pub latencies: Latencies,
}

impl Tally {
    /// Counts a failure, keeping the first one's message.
    pub fn fail(&mut self, error: &Error) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(error_chain(error));
        }
    }

    /// Adds the counts of `other`.
    pub fn merge(&mut self, other: Tally) {
        self.ops += other.ops;
        self.errors += other.errors;
        self.first_error = self.first_error.take().or(other.first_error);
        self.latencies.merge(other.latencies);
    }
}

/// The result of a closed-loop run.
#[derive(Debug)]
pub struct Outcome {
    /// What the workers counted.
    pub tally: Tally,
    /// The window as actually measured.
    pub elapsed: Duration,
    /// Proxy CPU time used in the window, if a process was given.
    pub cpu: Option<Duration>,
}

/// Samples a process's CPU time over a window.
#[derive(Debug)]
pub struct CpuMeter {
    process: Option<Process>,
    start: Option<Duration>,
    started_at: Instant,
}

impl CpuMeter {
    /// Starts measuring `process` (nothing is measured for `None`).
    pub fn start(process: Option<Process>) -> Result<Self, Error> {
        let start = process.map(|p| p.cpu_time()).transpose()?;
        Ok(Self {
            process,
            start,
            started_at: Instant::now(),
        })
    }

    /// Wall time and CPU time since the start.
    pub fn stop(&self) -> Result<(Duration, Option<Duration>), Error> {
        let end = self.process.map(|p| p.cpu_time()).transpose()?;
        let cpu = end.zip(self.start).map(|(e, s)| e.saturating_sub(s));
        Ok((self.started_at.elapsed(), cpu))
    }
}

/// Runs every worker in a loop for the window; operations that end after the window
/// are not counted.
pub async fn closed_loop<O: Operation>(
    workers: Vec<O>,
    window: Window,
    process: Option<Process>,
) -> Result<Outcome, Error> {
    let meter = CpuMeter::start(process)?;
    let deadline = tokio::time::Instant::now() + window.duration;
    let mut set = JoinSet::new();
    for mut worker in workers {
        set.spawn(async move {
            let mut tally = Tally::default();
            while tokio::time::Instant::now() < deadline {
                let began = Instant::now();
                let result = tokio::time::timeout(window.op_timeout, worker.run()).await;
                if tokio::time::Instant::now() > deadline {
                    break;
                }
                match result {
                    Ok(Ok(())) => {
                        tally.ops += 1;
                        tally.latencies.record(began.elapsed());
                    }
                    Ok(Err(e)) => tally.fail(&e),
                    Err(_) => tally.fail(&Error::Timeout),
                }
            }
            tally
        });
    }
    tokio::time::sleep_until(deadline).await;
    let (elapsed, cpu) = meter.stop()?;
    let mut tally = Tally::default();
    while let Some(worker) = set.join_next().await {
        tally.merge(worker?);
    }
    Ok(Outcome {
        tally,
        elapsed,
        cpu,
    })
}

/// An error and its causes on one line.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Flaky {
        calls: u32,
    }

    impl Operation for Flaky {
        async fn run(&mut self) -> Result<(), Error> {
            self.calls += 1;
            tokio::time::sleep(Duration::from_millis(1)).await;
            if self.calls.is_multiple_of(3) {
                Err(Error::Closed { op: "test" })
            } else {
                Ok(())
            }
        }
    }

    #[tokio::test]
    async fn counts_successes_and_failures_within_the_window() {
        let window = Window {
            duration: Duration::from_millis(100),
            op_timeout: Duration::from_secs(1),
        };
        let me = Process::new(std::process::id());
        let workers = (0..4).map(|_| Flaky { calls: 0 }).collect();
        let out = closed_loop(workers, window, Some(me)).await.unwrap();
        assert!(out.tally.ops > 8, "{out:?}");
        assert!(out.tally.errors > 4, "{out:?}");
        assert_eq!(out.tally.latencies.len() as u64, out.tally.ops);
        assert_eq!(
            out.tally.first_error.as_deref(),
            Some("connection closed early during test")
        );
        assert!(out.elapsed >= window.duration);
        assert!(out.cpu.is_some());
    }

    #[test]
    fn error_chain_joins_causes() {
        let e = Error::Io {
            op: "connect",
            source: std::io::Error::other("refused"),
        };
        assert_eq!(error_chain(&e), "connect failed: refused");
    }
}
