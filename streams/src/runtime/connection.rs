//! Why the brokers cannot be reached. librdkafka reports a failed SASL authentication or TLS
//! handshake only through its error callback, and a metadata request then just times out with
//! "broker transport failure"; the admin client at start keeps the reason, so that a wrong password
//! or an untrusted certificate fails `start` within a second or two, naming the cause.

use std::sync::{Arc, Mutex};

use rdkafka::client::ClientContext;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

/// A client context that remembers the last authentication or TLS failure.
#[derive(Clone, Default)]
pub(crate) struct ConnectionCtx {
    refused: Arc<Mutex<Option<String>>>,
}

impl ConnectionCtx {
    /// Why the brokers refused the client, if they did.
    pub fn refused(&self) -> Option<String> {
        self.refused.lock().ok().and_then(|r| r.clone())
    }
}

/// Whether `error` (with librdkafka's `reason`) means the brokers refuse this client's credentials
/// or it does not trust theirs: retrying cannot help.
pub(crate) fn is_refusal(error: &KafkaError, reason: &str) -> bool {
    matches!(error.rdkafka_error_code(), Some(RDKafkaErrorCode::Authentication | RDKafkaErrorCode::SSL))
        || reason.contains("SSL handshake failed")
        || reason.contains("SASL authentication error")
}

/// Which settings to check, in Kafka Streams' names and librdkafka's.
fn hint(reason: &str) -> &'static str {
    if reason.contains("SASL") {
        "; check the credentials: sasl.jaas.config (or sasl.username and sasl.password) and sasl.mechanism"
    } else {
        "; check that the truststore holds the CA that signed the brokers' certificates: \
         ssl.truststore.location (PEM) or ssl.ca.location"
    }
}

impl ClientContext for ConnectionCtx {
    fn error(&self, error: KafkaError, reason: &str) {
        if is_refusal(&error, reason) {
            if let Ok(mut refused) = self.refused.lock() {
                *refused = Some(format!("{reason}{}", hint(reason)));
            }
        }
        tracing::error!(error = %error, "librdkafka: {reason}");
    }
}

impl ConsumerContext for ConnectionCtx {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authentication_and_tls_failures_are_refusals() {
        let auth = KafkaError::Global(RDKafkaErrorCode::Authentication);
        assert!(is_refusal(&auth, "SASL authentication error: invalid credentials"));
        let transport = KafkaError::Global(RDKafkaErrorCode::BrokerTransportFailure);
        assert!(is_refusal(&transport, "SSL handshake failed: certificate verify failed"));
        assert!(!is_refusal(&transport, "Connect to ipv4#127.0.0.1:9092 failed: Connection refused"));
    }

    #[test]
    fn the_context_keeps_the_last_refusal() {
        let ctx = ConnectionCtx::default();
        assert_eq!(ctx.refused(), None);
        ctx.error(KafkaError::Global(RDKafkaErrorCode::AllBrokersDown), "1/1 brokers are down");
        assert_eq!(ctx.refused(), None);
        ctx.error(KafkaError::Global(RDKafkaErrorCode::Authentication), "SASL authentication error: wrong");
        let refused = ctx.refused().unwrap_or_default();
        assert!(refused.starts_with("SASL authentication error: wrong; check the credentials"), "{refused}");
    }
}
