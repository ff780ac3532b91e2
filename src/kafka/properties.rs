//! Which librdkafka properties a produce run started through an agent may set.
//!
//! An agent runs as root on production hosts, and `POST /kafka/produce` hands its
//! `properties` to librdkafka. Many librdkafka properties do far more than tune a
//! producer: they load shared objects, read or write files, run commands, or open
//! connections of their own. So a remote run may set only the properties a load
//! generator needs (an allow-list), and the refusal names the class a property belongs
//! to, so that the user learns why and what to do instead. `plateau produce` on the
//! user's own machine is not limited: there the user already runs what they like.

/// Producer tuning and client behaviour: harmless on any host.
const TUNING: &[&str] = &[
    "acks",
    "request.required.acks",
    "enable.idempotence",
    "enable.gapless.guarantee",
    "compression.type",
    "compression.codec",
    "compression.level",
    "linger.ms",
    "queue.buffering.max.ms",
    "batch.num.messages",
    "batch.size",
    "queue.buffering.max.messages",
    "queue.buffering.max.kbytes",
    "message.max.bytes",
    "message.copy.max.bytes",
    "receive.message.max.bytes",
    "max.in.flight.requests.per.connection",
    "max.in.flight",
    "request.timeout.ms",
    "message.timeout.ms",
    "delivery.timeout.ms",
    "retries",
    "message.send.max.retries",
    "retry.backoff.ms",
    "retry.backoff.max.ms",
    "partitioner",
    "sticky.partitioning.linger.ms",
    "statistics.interval.ms",
    "client.id",
    "client.rack",
    "socket.timeout.ms",
    "socket.send.buffer.bytes",
    "socket.receive.buffer.bytes",
    "socket.keepalive.enable",
    "socket.nagle.disable",
    "socket.connection.setup.timeout.ms",
    "connections.max.idle.ms",
    "reconnect.backoff.ms",
    "reconnect.backoff.max.ms",
    "topic.metadata.refresh.interval.ms",
    "metadata.max.age.ms",
    "topic.metadata.refresh.fast.interval.ms",
    "topic.metadata.refresh.sparse",
    "topic.metadata.propagation.max.ms",
    "broker.address.family",
    "broker.address.ttl",
    "api.version.request",
    "api.version.request.timeout.ms",
    "api.version.fallback.ms",
    "broker.version.fallback",
    "queuing.strategy",
    "transaction.timeout.ms",
];

/// Authentication with inline secrets (no files): what a generator needs to reach a
/// secured cluster.
const SECURITY: &[&str] = &[
    "security.protocol",
    "sasl.mechanism",
    "sasl.mechanisms",
    "sasl.username",
    "sasl.password",
    "ssl.ca.pem",
    "ssl.certificate.pem",
    "ssl.key.pem",
    "ssl.key.password",
    "ssl.endpoint.identification.algorithm",
    "enable.ssl.certificate.verification",
    "ssl.cipher.suites",
    "ssl.curves.list",
    "ssl.sigalgs.list",
];

/// The classes of refused properties, each with the reason given to the user.
const REFUSED: &[(&[&str], &str)] = &[
    (
        &["plugin.library.paths", "ssl.engine.location", "ssl.engine.id", "ssl_engine_callback_data", "ssl.providers"],
        "loads code into the agent's process",
    ),
    (
        &[
            "ssl.ca.location",
            "ssl.certificate.location",
            "ssl.key.location",
            "ssl.keystore.location",
            "ssl.keystore.password",
            "ssl.crl.location",
            "ssl.ca.certificate.stores",
            "sasl.kerberos.keytab",
            "sasl.oauthbearer.assertion.file",
            "sasl.oauthbearer.assertion.private.key.file",
            "sasl.oauthbearer.assertion.jwt.template.file",
            "sasl.oauthbearer.ssl.ca.location",
            "ssl.ca.pem.location",
        ],
        "reads a file on the agent's host; pass the PEM text inline (ssl.ca.pem, ssl.certificate.pem, ssl.key.pem)",
    ),
    (&["sasl.kerberos.kinit.cmd", "sasl.kerberos.min.time.before.relogin"], "runs a command on the agent's host"),
    (
        &[
            "bootstrap.servers",
            "metadata.broker.list",
            "sasl.oauthbearer.token.endpoint.url",
            "sasl.oauthbearer.method",
            "https.ca.location",
            "https.ca.pem",
            "client.dns.lookup",
            "resolve.canonical.bootstrap.servers.only",
        ],
        "opens connections of its own; name the cluster with \"bootstrap\", which the agent checks against its --allow list",
    ),
    (
        &["debug", "log_level", "log.queue", "log.thread.name", "log.connection.close", "opaque", "interceptors"],
        "changes the agent's logging or callbacks, not the producer",
    ),
];

/// Whether a librdkafka property's value is a secret (a password, a key, a client
/// secret): used, never written to a plan, a report or a log.
pub fn is_secret(name: &str) -> bool {
    name.contains("password") || name.contains("secret") || name.ends_with(".pem")
}

/// Checks one property a remote run would set; the error says why it is refused.
pub fn check_remote_property(name: &str) -> Result<(), String> {
    let name = name.trim();
    if TUNING.contains(&name) || SECURITY.contains(&name) {
        return Ok(());
    }
    if let Some((_, reason)) = REFUSED.iter().find(|(names, _)| names.contains(&name)) {
        return Err(format!("librdkafka property '{name}' is refused on an agent: it {reason}"));
    }
    Err(format!(
        "librdkafka property '{name}' is not one an agent's produce run may set; allowed are producer tuning ({}, ...) and inline security settings ({}, ...)",
        TUNING[..6].join(", "),
        SECURITY[..4].join(", ")
    ))
}

/// Checks every property of a remote run; the first refusal is the error.
pub fn check_remote_properties<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<(), String> {
    names.into_iter().try_for_each(check_remote_property)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_class_is_refused_with_its_reason() {
        for (name, reason) in [
            ("plugin.library.paths", "loads code"),
            ("ssl.key.location", "reads a file"),
            ("sasl.kerberos.kinit.cmd", "runs a command"),
            ("bootstrap.servers", "opens connections"),
            ("metadata.broker.list", "opens connections"),
            ("debug", "logging"),
        ] {
            let err = check_remote_property(name).unwrap_err();
            assert!(err.contains(reason), "{name}: {err}");
        }
        assert!(check_remote_property("some.new.property").unwrap_err().contains("not one an agent"));
    }

    #[test]
    fn what_a_generator_needs_passes() {
        for name in ["linger.ms", "security.protocol", "sasl.password", "ssl.ca.pem", "enable.idempotence"] {
            assert!(check_remote_property(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn no_property_is_both_allowed_and_refused() {
        for (names, _) in REFUSED {
            for name in *names {
                assert!(!TUNING.contains(name) && !SECURITY.contains(name), "{name}");
            }
        }
    }

    #[test]
    fn secrets_are_told_from_settings() {
        for name in ["sasl.password", "ssl.key.password", "ssl.key.pem", "sasl.oauthbearer.client.secret"] {
            assert!(super::is_secret(name), "{name}");
        }
        for name in ["sasl.username", "security.protocol", "linger.ms"] {
            assert!(!super::is_secret(name), "{name}");
        }
    }
}
