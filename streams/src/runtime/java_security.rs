//! Kafka's Java client security settings, translated to librdkafka's where the names differ, so an
//! application's Kafka Streams properties work as they are.
//!
//! | Java client                                           | librdkafka                         |
//! |-------------------------------------------------------|------------------------------------|
//! | `sasl.jaas.config` (Scram or Plain login module)      | `sasl.username`, `sasl.password`   |
//! | `ssl.truststore.location` with `ssl.truststore.type=PEM` | `ssl.ca.location`               |
//! | `ssl.truststore.certificates`                         | `ssl.ca.pem`                       |
//! | `ssl.keystore.location` (`PKCS12`)                    | `ssl.keystore.location` (same)     |
//! | `ssl.keystore.certificate.chain`, `ssl.keystore.key`  | `ssl.certificate.pem`, `ssl.key.pem` |
//! | `ssl.key.password`                                    | `ssl.key.password` (same)          |
//! | `ssl.endpoint.identification.algorithm=` (empty)      | `ssl.endpoint.identification.algorithm=none` |
//!
//! What librdkafka cannot read (JKS stores, other login modules) is refused with what to do instead.
//!
//! ```
//! use kstreams_streams::runtime::StreamsConfig;
//! let config = StreamsConfig::new()
//!     .set("application.id", "app")
//!     .set("bootstrap.servers", "broker:9093")
//!     .set("security.protocol", "SASL_PLAINTEXT")
//!     .set("sasl.mechanism", "SCRAM-SHA-512")
//!     .set(
//!         "sasl.jaas.config",
//!         r#"org.apache.kafka.common.security.scram.ScramLoginModule required username="app" password="s3cret";"#,
//!     );
//! let valid = config.validate().unwrap();
//! assert!(valid.passthrough.iter().any(|(_, k, v)| k == "sasl.username" && v == "app"));
//! ```

use std::collections::BTreeMap;

use crate::error::{Result, StreamsError};

/// The settings of one client prefix (`""`, `consumer.`, …), Java names translated.
pub(crate) fn translate(prefix: &str, settings: BTreeMap<String, String>) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let full = |key: &str| format!("{prefix}{key}");
    let truststore_type = settings.get("ssl.truststore.type").map(|t| t.trim().to_ascii_uppercase());
    let keystore_type = settings.get("ssl.keystore.type").map(|t| t.trim().to_ascii_uppercase());
    for (key, value) in &settings {
        match key.as_str() {
            "sasl.jaas.config" => {
                let (username, password) = parse_jaas(value).map_err(|why| StreamsError::config(full(key), why))?;
                out.insert("sasl.username".to_string(), username);
                out.insert("sasl.password".to_string(), password);
            }
            "ssl.truststore.type" | "ssl.keystore.type" => {}
            "ssl.truststore.location" => match truststore_type.as_deref() {
                Some("PEM") => {
                    out.insert("ssl.ca.location".to_string(), value.clone());
                }
                other => {
                    return Err(StreamsError::config(
                        full(key),
                        format!(
                            "librdkafka reads CA certificates in PEM only (ssl.truststore.type is {}): export them \
                             (keytool -exportcert -rfc -keystore <store> -alias <ca> > ca.pem) and set \
                             ssl.truststore.type=PEM, or set ssl.ca.location",
                            other.unwrap_or("JKS, the default")
                        ),
                    ))
                }
            },
            "ssl.truststore.password" => {
                if truststore_type.as_deref() != Some("PEM") {
                    return Err(StreamsError::config(
                        full(key),
                        "librdkafka reads CA certificates in PEM only: use a PEM truststore (no password)",
                    ));
                }
            }
            "ssl.truststore.certificates" => {
                out.insert("ssl.ca.pem".to_string(), value.clone());
            }
            "ssl.keystore.location" => match keystore_type.as_deref() {
                Some("PKCS12") => {
                    out.insert(key.clone(), value.clone());
                }
                other => {
                    return Err(StreamsError::config(
                        full(key),
                        format!(
                            "librdkafka reads client keystores in PKCS#12 only (ssl.keystore.type is {}): convert it \
                             (keytool -importkeystore -deststoretype PKCS12) and set ssl.keystore.type=PKCS12",
                            other.unwrap_or("JKS, the default")
                        ),
                    ))
                }
            },
            "ssl.keystore.certificate.chain" => {
                out.insert("ssl.certificate.pem".to_string(), value.clone());
            }
            "ssl.keystore.key" => {
                out.insert("ssl.key.pem".to_string(), value.clone());
            }
            "ssl.endpoint.identification.algorithm" if value.trim().is_empty() => {
                out.insert(key.clone(), "none".to_string());
            }
            _ => {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    Ok(out)
}

/// The username and password of a `sasl.jaas.config` for the SCRAM or PLAIN login module:
/// `<module> required username="…" password="…";`.
fn parse_jaas(text: &str) -> std::result::Result<(String, String), String> {
    let text = text.trim().trim_end_matches(';').trim();
    let (module, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
    let supported = ["ScramLoginModule", "PlainLoginModule"];
    if !supported.iter().any(|m| module.ends_with(m)) {
        return Err(format!(
            "the login module `{module}` is not supported: librdkafka takes SASL credentials as sasl.username and \
             sasl.password (SCRAM and PLAIN; ScramLoginModule and PlainLoginModule are translated), and \
             OAUTHBEARER and GSSAPI through its own sasl.oauthbearer.* and sasl.kerberos.* settings"
        ));
    }
    let rest = rest.trim_start();
    let rest = rest.strip_prefix("required").ok_or("expected `required` after the login module")?;
    let mut options = BTreeMap::new();
    let mut chars = rest.trim().chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let name: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=' && !c.is_whitespace())).collect();
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('=') {
            return Err(format!("expected `=` after `{name}`"));
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let value: String = if chars.peek() == Some(&'"') {
            chars.next();
            let mut value = String::new();
            loop {
                match chars.next() {
                    Some('\\') => value.extend(chars.next()),
                    Some('"') => break,
                    Some(c) => value.push(c),
                    None => return Err(format!("the value of `{name}` has no closing quote")),
                }
            }
            value
        } else {
            std::iter::from_fn(|| chars.next_if(|c| !c.is_whitespace())).collect()
        };
        options.insert(name, value);
    }
    match (options.remove("username"), options.remove("password")) {
        (Some(u), Some(p)) => Ok((u, p)),
        _ => Err("give both username=\"…\" and password=\"…\"".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn scram_and_plain_credentials_are_read_from_the_jaas_config() {
        for module in [
            "org.apache.kafka.common.security.scram.ScramLoginModule",
            "org.apache.kafka.common.security.plain.PlainLoginModule",
        ] {
            let jaas = format!(r#"{module} required username="app" password="p\"w d";"#);
            let out = translate("", settings(&[("sasl.jaas.config", &jaas)])).unwrap();
            assert_eq!(out.get("sasl.username").map(String::as_str), Some("app"));
            assert_eq!(out.get("sasl.password").map(String::as_str), Some("p\"w d"));
            assert!(!out.contains_key("sasl.jaas.config"));
        }
        let err = translate(
            "producer.",
            settings(&[(
                "sasl.jaas.config",
                "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required;",
            )]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("`producer.sasl.jaas.config`") && err.contains("OAuthBearerLoginModule"), "{err}");
        let err = translate("", settings(&[("sasl.jaas.config", "x.ScramLoginModule required username=\"a\";")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("password"), "{err}");
    }

    #[test]
    fn pem_stores_are_translated_and_jks_ones_refused() {
        let out = translate(
            "",
            settings(&[
                ("ssl.truststore.location", "/etc/ca.pem"),
                ("ssl.truststore.type", "PEM"),
                ("ssl.keystore.location", "/etc/client.p12"),
                ("ssl.keystore.type", "PKCS12"),
                ("ssl.keystore.password", "k"),
                ("ssl.endpoint.identification.algorithm", ""),
            ]),
        )
        .unwrap();
        assert_eq!(out.get("ssl.ca.location").map(String::as_str), Some("/etc/ca.pem"));
        assert_eq!(out.get("ssl.keystore.location").map(String::as_str), Some("/etc/client.p12"));
        assert_eq!(out.get("ssl.endpoint.identification.algorithm").map(String::as_str), Some("none"));
        assert!(!out.contains_key("ssl.truststore.type") && !out.contains_key("ssl.truststore.location"));
        let err = translate("", settings(&[("ssl.truststore.location", "/etc/ts.jks")])).unwrap_err().to_string();
        assert!(err.contains("`ssl.truststore.location`") && err.contains("PEM"), "{err}");
        let err = translate("", settings(&[("ssl.keystore.location", "/etc/ks.jks")])).unwrap_err().to_string();
        assert!(err.contains("PKCS#12"), "{err}");
    }
}
