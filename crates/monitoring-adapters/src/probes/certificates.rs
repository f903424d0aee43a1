//! The `certificates` probe: days until the TLS certificates of configured
//! endpoints expire. Warns under `warn_days`, fails under `fail_days` and
//! when a certificate does not verify (expired, untrusted, wrong name).

use std::path::PathBuf;
use std::sync::Arc;

use futures::future::{BoxFuture, join_all};
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use time::OffsetDateTime;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use monitoring_core::domain::probe_result::{
    Component, Measurement, Observation, Reason, Status, Unit,
};
use monitoring_core::ports::Probe;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct CertificateSettings {
    pub endpoints: Vec<Endpoint>,
    /// PEM file of extra trusted CAs (private CAs, the local stack).
    pub extra_ca_file: Option<PathBuf>,
    pub warn_days: f64,
    pub fail_days: f64,
}

pub struct CertificateProbe {
    settings: CertificateSettings,
    connector: TlsConnector,
}

/// What one endpoint showed.
enum EndpointCheck {
    Expires { days: f64 },
    Failed { reason: Reason, detail: String },
}

impl CertificateProbe {
    pub fn new(settings: CertificateSettings, tls: Arc<ClientConfig>) -> Self {
        CertificateProbe {
            settings,
            connector: TlsConnector::from(tls),
        }
    }

    async fn check(&self, endpoint: &Endpoint) -> EndpointCheck {
        let failed = |reason, detail: String| EndpointCheck::Failed { reason, detail };
        let name = match ServerName::try_from(endpoint.host.clone()) {
            Ok(n) => n,
            // Configuration rejects such names at load; settings built by
            // hand can still hold one, and no connection can be made to it.
            Err(e) => return failed(Reason::Unreachable, format!("{endpoint}: {e}")),
        };
        let tcp = match TcpStream::connect((endpoint.host.as_str(), endpoint.port)).await {
            Ok(s) => s,
            Err(e) => return failed(Reason::Unreachable, format!("{endpoint}: {e}")),
        };
        let tls = match self.connector.connect(name, tcp).await {
            Ok(s) => s,
            Err(e) => {
                let invalid = e
                    .get_ref()
                    .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                    .is_some_and(|r| matches!(r, rustls::Error::InvalidCertificate(_)));
                let reason = if invalid {
                    Reason::CertificateInvalid
                } else {
                    Reason::Unreachable
                };
                return failed(reason, format!("{endpoint}: {e}"));
            }
        };
        let (_, session) = tls.get_ref();
        let Some(leaf) = session.peer_certificates().and_then(|c| c.first()) else {
            return failed(
                Reason::CertificateInvalid,
                format!("{endpoint}: no certificate presented"),
            );
        };
        match x509_parser::parse_x509_certificate(leaf.as_ref()) {
            Ok((_, cert)) => {
                let not_after = cert.validity().not_after.to_datetime();
                let left = not_after - OffsetDateTime::now_utc();
                EndpointCheck::Expires {
                    days: left.as_seconds_f64() / 86_400.0,
                }
            }
            Err(e) => failed(Reason::CertificateInvalid, format!("{endpoint}: {e}")),
        }
    }

    fn rate(&self, days: f64) -> Status {
        if days < self.settings.fail_days {
            Status::Fail
        } else if days < self.settings.warn_days {
            Status::Warn
        } else {
            Status::Pass
        }
    }
}

impl Probe for CertificateProbe {
    fn component(&self) -> Component {
        Component::Certificates
    }

    fn observe(&self) -> BoxFuture<'_, Observation> {
        Box::pin(async move {
            if self.settings.endpoints.is_empty() {
                return Observation::not_configured("CERT_ENDPOINTS is empty");
            }
            let checks = join_all(self.settings.endpoints.iter().map(|e| self.check(e))).await;
            let mut measurements = Vec::new();
            let mut worst: Option<(Status, Reason)> = None;
            let mut details = Vec::new();
            for (endpoint, check) in self.settings.endpoints.iter().zip(checks) {
                let (status, reason) = match check {
                    EndpointCheck::Expires { days } => {
                        let status = self.rate(days);
                        measurements.push(
                            Measurement::new("daysRemaining", days, Unit::Days)
                                .with_target(endpoint.to_string())
                                .with_status(status),
                        );
                        if status != Status::Pass {
                            details.push(format!("{endpoint}: expires in {days:.1} days"));
                        }
                        (status, Reason::CertificateExpiring)
                    }
                    EndpointCheck::Failed { reason, detail } => {
                        details.push(detail);
                        (Status::Fail, reason)
                    }
                };
                if status != Status::Pass && worst.is_none_or(|(s, _)| status > s) {
                    worst = Some((status, reason));
                }
            }
            let observation = Observation::measured(measurements);
            match worst {
                None => observation,
                Some((status, reason)) => {
                    observation.with_reason(status, reason, details.join("; "))
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probes::tls;

    fn settings(endpoints: Vec<Endpoint>) -> CertificateSettings {
        CertificateSettings {
            endpoints,
            extra_ca_file: None,
            warn_days: 14.0,
            fail_days: 3.0,
        }
    }

    /// Unset means off: no `CERT_ENDPOINTS` is `not_configured`, which
    /// neither passes (nothing was checked) nor fails.
    #[tokio::test]
    async fn no_endpoints_is_not_configured() {
        let probe = CertificateProbe::new(settings(vec![]), tls::client_config(None).unwrap());
        let obs = probe.observe().await;
        assert_eq!(obs.overall_status(), Status::NotConfigured);
        assert_eq!(obs.reason, None);
        assert_eq!(obs.detail.as_deref(), Some("CERT_ENDPOINTS is empty"));
    }

    /// A name no TLS connection can be made to is a failure of that
    /// endpoint, not a component that is not configured.
    #[tokio::test]
    async fn an_unusable_server_name_fails() {
        let endpoint = Endpoint {
            host: "bad name".into(),
            port: 443,
        };
        let probe =
            CertificateProbe::new(settings(vec![endpoint]), tls::client_config(None).unwrap());
        let obs = probe.observe().await;
        assert_eq!(obs.overall_status(), Status::Fail);
        assert_eq!(obs.reason, Some(Reason::Unreachable));
    }
}
