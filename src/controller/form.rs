//! What the console's form edits (seed 000's fields), and its checks: a form that fails
//! them is refused with a message before anything is sent to an agent.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::kafka::{EventSpec, KeyMode, MAX_RATE, ProduceConfig, ProducerSettings, RateSpec};

/// A generator runs until stopped; this bounds a forgotten one.
const RUN_LIMIT: Duration = Duration::from_secs(24 * 3600);

/// The load settings, as seed 000's controller form has them: where to produce, the events
/// (device count/prefix/width, metric ranges, status probabilities), workers and the
/// producer tuning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoadForm {
    /// `bootstrap.servers`.
    pub bootstrap: String,
    /// Topic.
    pub topic: String,
    /// The events.
    pub events: EventSpec,
    /// Producing threads per generator.
    pub workers: usize,
    /// `acks`.
    pub acks: String,
    /// `compression.type`.
    pub compression: String,
    /// `linger.ms`.
    pub linger_ms: u32,
    /// `batch.num.messages`.
    pub batch_messages: u32,
}

impl LoadForm {
    /// Seed 000's settings, producing to `topic` through `bootstrap`.
    pub fn seed(bootstrap: &str, topic: &str) -> LoadForm {
        let producer = ProducerSettings::default();
        LoadForm {
            bootstrap: bootstrap.to_string(),
            topic: topic.to_string(),
            events: EventSpec::default(),
            workers: 2,
            acks: producer.acks,
            compression: producer.compression,
            linger_ms: producer.linger_ms,
            batch_messages: producer.batch_messages,
        }
    }

    /// The produce run these settings describe at `rate` msg/s per generator, checked.
    pub fn config(&self, rate: f64) -> Result<ProduceConfig, String> {
        let rate = check_rate("rate", rate)?;
        let config = ProduceConfig {
            time: RUN_LIMIT,
            events: self.events.clone(),
            key: KeyMode::Device,
            workers: self.workers,
            producer: ProducerSettings {
                acks: self.acks.trim().to_string(),
                compression: self.compression.trim().to_string(),
                linger_ms: self.linger_ms,
                batch_messages: self.batch_messages,
                extra: Vec::new(),
            },
            interval: Duration::from_secs(1),
            ..ProduceConfig::new(self.bootstrap.trim(), self.topic.trim(), RateSpec::Fixed(rate))
        };
        if config.bootstrap.is_empty() {
            return Err("bootstrap servers are empty; give HOST:PORT of a broker".into());
        }
        for server in config.bootstrap.split(',') {
            let port = server.trim().rsplit_once(':').and_then(|(_, port)| port.parse::<u16>().ok());
            if port.is_none() {
                return Err(format!("bootstrap server '{}' is not HOST:PORT", server.trim()));
            }
        }
        config.validate_input()?;
        Ok(config)
    }
}

/// A rate typed into the form: a whole number of msg/s from 1 to MAX_RATE.
pub fn check_rate(what: &str, rate: f64) -> Result<u64, String> {
    if !rate.is_finite() || rate < 1.0 || rate > MAX_RATE as f64 || rate.fract() != 0.0 {
        return Err(format!("{what} {rate} is not a whole number of msg/s from 1 to {MAX_RATE}"));
    }
    Ok(rate as u64)
}

/// A ramp on all generators, per generator (seed 000's "Ramp BOTH").
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RampForm {
    /// First rate, msg/s per generator.
    pub start: f64,
    /// Added every step, msg/s.
    pub step: f64,
    /// Seconds per step.
    pub every: f64,
    /// Highest rate, held once reached.
    pub max: f64,
}

impl RampForm {
    /// The ramp's targets, checked.
    pub fn targets(&self) -> Result<(Vec<u64>, Duration), String> {
        let start = check_rate("ramp start", self.start)?;
        let max = check_rate("ramp max", self.max)?;
        if !(self.step.is_finite() && self.step >= 0.0 && self.step.fract() == 0.0) {
            return Err(format!("ramp step {} is not a whole number of msg/s (0 or more)", self.step));
        }
        if max < start {
            return Err(format!("ramp max {max} is below its start {start}"));
        }
        if self.step == 0.0 && max != start {
            return Err("ramp step 0 never reaches max".into());
        }
        if !(self.every.is_finite() && (1.0..=3600.0).contains(&self.every)) {
            return Err(format!("ramp every {} s is out of range; use 1 to 3600 s", self.every));
        }
        let ramp =
            crate::kafka::Ramp { start, step: self.step as u64, every: Duration::from_secs_f64(self.every), max };
        Ok((ramp.targets(), ramp.every))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_settings_make_a_valid_run() {
        let form = LoadForm::seed("10.0.0.1:9092", "iot-load");
        let config = form.config(20_000.0).unwrap();
        assert_eq!(config.rate, RateSpec::Fixed(20_000));
        assert_eq!(config.producer.compression, "lz4");
        assert_eq!(config.events.device_prefix, "sensor-");
    }

    #[test]
    fn bad_input_is_refused_with_what_to_fix() {
        let form = LoadForm::seed("10.0.0.1:9092", "iot-load");
        assert!(form.config(-5.0).unwrap_err().contains("rate -5"));
        assert!(form.config(0.5).unwrap_err().contains("whole number"));
        let unknown = LoadForm { compression: "brotli".into(), ..form.clone() };
        assert!(unknown.config(100.0).unwrap_err().contains("compression 'brotli' is unknown"));
        let empty = LoadForm { bootstrap: " ".into(), ..form.clone() };
        assert!(empty.config(100.0).unwrap_err().contains("bootstrap servers are empty"));
        let portless = LoadForm { bootstrap: "broker1".into(), ..form.clone() };
        assert!(portless.config(100.0).unwrap_err().contains("not HOST:PORT"));
        let mut odds = form;
        (odds.events.status_ok, odds.events.status_warn) = (0.9, 0.5);
        assert!(odds.config(100.0).is_err());
    }

    #[test]
    fn ramps_are_checked_and_reach_their_max() {
        let ramp = RampForm { start: 20_000.0, step: 10_000.0, every: 10.0, max: 200_000.0 };
        let (targets, every) = ramp.targets().unwrap();
        assert_eq!((targets[0], *targets.last().unwrap(), targets.len()), (20_000, 200_000, 19));
        assert_eq!(every, Duration::from_secs(10));
        assert!(RampForm { max: 10.0, ..ramp }.targets().unwrap_err().contains("below its start"));
        assert!(RampForm { every: 0.0, ..ramp }.targets().unwrap_err().contains("every"));
        assert!(RampForm { step: -1.0, ..ramp }.targets().unwrap_err().contains("step"));
    }
}
