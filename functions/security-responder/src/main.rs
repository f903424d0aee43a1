//! Lambda entry point: wiring only. Configuration problems (enforce mode
//! without a revoker or without the blocklist database, a missing
//! credential) fail the cold start with a message naming the variable.

use std::sync::Arc;

use aws_lambda_events::event::sns::SnsEvent;
use lambda_runtime::{LambdaEvent, service_fn};
use monitoring_adapters::aws::load_sdk_config;
use monitoring_adapters::blocklist_revoker::BlocklistRevoker;
use monitoring_adapters::dynamodb_alerts::DynamoAlertStore;
use monitoring_adapters::dynamodb_response::DynamoResponseStore;
use monitoring_adapters::http_revoker::HttpRevoker;
use monitoring_adapters::probes::tls;
use monitoring_adapters::secrets::SecretResolver;
use monitoring_adapters::sns_publisher::SnsPublisher;
use monitoring_config::Env;
use monitoring_config::responder::{ResponderConfig, RevokerConfig};
use monitoring_core::ports::SystemClock;
use security_responder::{AnyRevoker, IncidentRevoker, Responder};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    monitoring_adapters::telemetry::init();
    let config = ResponderConfig::from_env(&Env::from_process())
        .inspect_err(|e| tracing::error!(error = %e, "configuration rejected"))?;
    let sdk = load_sdk_config().await;
    let secrets = SecretResolver::new(&sdk);
    let revoker = match &config.revoker {
        RevokerConfig::None => AnyRevoker::None,
        RevokerConfig::Blocklist {
            database,
            ca_file,
            settings,
        } => {
            let url = secrets
                .resolve_opt("BLOCKLIST_DATABASE_URL", database.as_ref())
                .await?;
            let tls = tls::client_config(ca_file.as_deref())?;
            AnyRevoker::Blocklist(Box::new(BlocklistRevoker::new(
                url.as_ref(),
                tls,
                *settings,
            )?))
        }
        RevokerConfig::Http {
            endpoint,
            credential,
            retry,
        } => {
            let credential = secrets.resolve("REVOKE_CREDENTIAL", credential).await?;
            AnyRevoker::Http(HttpRevoker::new(endpoint, credential, *retry)?)
        }
    };
    let responder = Responder {
        rails: config.guardrails.clone(),
        revoker,
        store: DynamoResponseStore::new(&sdk, &config.table_name),
        incidents: DynamoAlertStore::new(&sdk, &config.table_name),
        incidents_topic: config.incidents_topic_arn.clone(),
        team: config
            .security_topic_arn
            .as_ref()
            .map(|arn| SnsPublisher::new(&sdk, arn)),
        team_target: config.security_topic_arn.clone().unwrap_or_default(),
        clock: Arc::new(SystemClock),
        lease: config.claim_lease,
    };
    tracing::info!(
        mode = config.guardrails.mode.as_str(),
        revoker = responder.revoker.name(),
        max_per_incident = config.guardrails.max_per_incident,
        max_per_hour_per_rule = config.guardrails.max_per_hour,
        protected = config.guardrails.protected.len(),
        rules = ?config.guardrails.rules,
        user_cooldown_seconds = config.guardrails.user_cooldown.as_secs(),
        incidents_topic = %config.incidents_topic_arn,
        security_topic = config.security_topic_arn.is_some(),
        "security responder ready"
    );
    let responder = &responder;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SnsEvent>| async move {
        responder.handle(&event.payload).await.map_err(|e| {
            tracing::error!(error = %e, "security response failed; Lambda retries the message");
            lambda_runtime::Error::from(e)
        })
    }))
    .await
}
