//! Probe results as CloudWatch metrics through the Embedded Metric Format:
//! one JSON line per dimension set on stdout, which Lambda ships to the
//! function's log group and CloudWatch turns into metrics. No API call, no
//! `cloudwatch:PutMetricData` permission, no CloudWatch SDK client (the
//! rendering is [`monitoring_core::domain::metrics::emf::render_probe_results`]).

use std::io::Write;
use std::sync::{Arc, Mutex};

use monitoring_core::domain::metrics::emf::render_probe_results;
use monitoring_core::domain::probe_result::ProbeResult;
use monitoring_core::ports::{MetricSink, MetricsError};

/// Where the EMF lines go: stdout in Lambda, a buffer in tests.
#[derive(Clone)]
enum Out {
    Stdout,
    Buffer(Arc<Mutex<Vec<u8>>>),
}

#[derive(Clone)]
pub struct EmfMetrics {
    namespace: String,
    out: Out,
}

impl EmfMetrics {
    /// Writes to stdout (Lambda's log stream).
    pub fn stdout(namespace: impl Into<String>) -> Self {
        EmfMetrics {
            namespace: namespace.into(),
            out: Out::Stdout,
        }
    }

    /// Keeps the lines in memory, for [`EmfMetrics::lines`].
    pub fn buffered(namespace: impl Into<String>) -> Self {
        EmfMetrics {
            namespace: namespace.into(),
            out: Out::Buffer(Arc::default()),
        }
    }

    /// The lines written so far (a buffered sink only; stdout keeps none).
    pub fn lines(&self) -> Vec<String> {
        match &self.out {
            Out::Stdout => Vec::new(),
            Out::Buffer(buffer) => {
                let bytes = buffer.lock().unwrap_or_else(|p| p.into_inner());
                String::from_utf8_lossy(&bytes)
                    .lines()
                    .map(str::to_owned)
                    .collect()
            }
        }
    }
}

fn write_all(out: &mut dyn Write, documents: &[String]) -> std::io::Result<()> {
    for doc in documents {
        writeln!(out, "{doc}")?;
    }
    out.flush()
}

impl MetricSink for EmfMetrics {
    async fn publish(&self, results: &[ProbeResult]) -> Result<(), MetricsError> {
        let documents = render_probe_results(results, &self.namespace);
        let written = match &self.out {
            // One lock for the run: no log line lands inside a document.
            Out::Stdout => write_all(&mut std::io::stdout().lock(), &documents),
            Out::Buffer(buffer) => {
                let mut bytes = buffer.lock().unwrap_or_else(|p| p.into_inner());
                write_all(&mut *bytes, &documents)
            }
        };
        written.map_err(|e| MetricsError::Unavailable(format!("writing EMF to stdout: {e}")))
    }
}
