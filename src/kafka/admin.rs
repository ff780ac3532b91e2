//! Cluster questions a diagnosis asks before producing: is the cluster reachable, does
//! the topic exist and with how many partitions, creating it when asked, and deleting a
//! sweep's cell topics.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;

/// How long a cluster may take to answer.
const TIMEOUT: Duration = Duration::from_secs(8);

fn config(bootstrap: &str, properties: &[(String, String)]) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", bootstrap).set("client.id", "plateau-admin");
    for (name, value) in properties {
        config.set(name, value);
    }
    config
}

/// A topic's layout as the cluster's metadata tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicLayout {
    /// Partitions.
    pub partitions: usize,
    /// Replicas of each partition (the smallest, should they differ).
    pub replication_factor: u32,
    /// Partitions whose in-sync replicas are fewer than their replicas now.
    pub under_replicated: usize,
    /// Brokers in the cluster.
    pub brokers: usize,
}

/// The topic's layout, `Ok(None)` when it does not exist, or why the cluster could not be
/// asked.
pub fn topic_layout(
    bootstrap: &str,
    properties: &[(String, String)],
    topic: &str,
) -> Result<Option<TopicLayout>, String> {
    cluster(bootstrap, properties, topic).map(|(_, layout)| layout)
}

fn layout_of(metadata: &rdkafka::metadata::Metadata, topic: &str) -> Option<TopicLayout> {
    let brokers = metadata.brokers().len();
    metadata.topics().iter().find(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty()).map(|t| {
        TopicLayout {
            partitions: t.partitions().len(),
            replication_factor: t.partitions().iter().map(|p| p.replicas().len() as u32).min().unwrap_or(1).max(1),
            under_replicated: t.partitions().iter().filter(|p| p.isr().len() < p.replicas().len()).count(),
            brokers,
        }
    })
}

/// A broker as the cluster's metadata advertises it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdvertisedBroker {
    /// Its node id.
    pub id: i32,
    /// The host it advertises.
    pub host: String,
    /// The port it advertises.
    pub port: u16,
}

/// The brokers the cluster advertises, by id, with the layout of `topic` (`None` when it
/// does not exist), or why the cluster could not be asked.
pub fn cluster(
    bootstrap: &str,
    properties: &[(String, String)],
    topic: &str,
) -> Result<(Vec<AdvertisedBroker>, Option<TopicLayout>), String> {
    let consumer: rdkafka::consumer::BaseConsumer =
        config(bootstrap, properties).create().map_err(|err| format!("client configuration refused: {err}"))?;
    let metadata = rdkafka::consumer::Consumer::fetch_metadata(&consumer, Some(topic), TIMEOUT)
        .map_err(|err| format!("no answer from {bootstrap} within {} s ({err})", TIMEOUT.as_secs()))?;
    let mut brokers: Vec<AdvertisedBroker> = metadata
        .brokers()
        .iter()
        .map(|b| AdvertisedBroker { id: b.id(), host: b.host().to_string(), port: b.port().clamp(0, 65535) as u16 })
        .collect();
    brokers.sort_by_key(|b| b.id);
    Ok((brokers, layout_of(&metadata, topic)))
}

/// Creates `topic` with `partitions` partitions and replication factor `replication`.
pub fn create_topic(
    bootstrap: &str,
    properties: &[(String, String)],
    topic: &str,
    partitions: u32,
    replication: u32,
) -> Result<(), String> {
    let admin: AdminClient<DefaultClientContext> =
        config(bootstrap, properties).create().map_err(|err| format!("client configuration refused: {err}"))?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|err| err.to_string())?;
    let new_topic = NewTopic::new(topic, partitions as i32, TopicReplication::Fixed(replication as i32));
    let options = AdminOptions::new().operation_timeout(Some(TIMEOUT)).request_timeout(Some(TIMEOUT));
    let results = runtime
        .block_on(admin.create_topics([&new_topic], &options))
        .map_err(|err| format!("creating topic {topic} on {bootstrap}: {err}"))?;
    for result in results {
        if let Err((name, code)) = result
            && code != rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists
        {
            return Err(format!("creating topic {name} on {bootstrap}: {code}"));
        }
    }
    Ok(())
}

/// Deletes `topic` (a sweep's cell topic, once measured); a topic already gone is not an
/// error.
pub fn delete_topic(bootstrap: &str, properties: &[(String, String)], topic: &str) -> Result<(), String> {
    let admin: AdminClient<DefaultClientContext> =
        config(bootstrap, properties).create().map_err(|err| format!("client configuration refused: {err}"))?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|err| err.to_string())?;
    let options = AdminOptions::new().operation_timeout(Some(TIMEOUT)).request_timeout(Some(TIMEOUT));
    let results = runtime
        .block_on(admin.delete_topics(&[topic], &options))
        .map_err(|err| format!("deleting topic {topic} on {bootstrap}: {err}"))?;
    for result in results {
        if let Err((name, code)) = result
            && code != rdkafka::types::RDKafkaErrorCode::UnknownTopicOrPartition
        {
            return Err(format!("deleting topic {name} on {bootstrap}: {code}"));
        }
    }
    Ok(())
}
