//! Telemetry events as seed 000's generators send them:
//! `{"event_id", "device_id", "timestamp", "seq", "metrics": {"temperature", "humidity",
//! "pressure"}, "status"}`, written straight into a reused buffer.
//!
//! Generation must never be what limits a produce run, so there is no allocation per
//! event: the JSON is written with `write!` into one reused buffer, event ids come from a
//! fast per-generator random source, and `--size` pads with a `pad` field to the exact
//! size.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

/// The most simulated devices a run may have.
pub const MAX_DEVICES: u64 = 10_000_000;
/// The most digits a device id may be padded to.
pub const MAX_DEVICE_WIDTH: usize = 20;
/// The highest first device number.
pub const MAX_FIRST_DEVICE: u64 = 1_000_000_000_000;
/// The longest device id prefix.
pub const MAX_DEVICE_PREFIX_BYTES: usize = 64;

/// Ranges and probabilities of the generated values (seed 000's form defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventSpec {
    /// Number of simulated devices.
    pub devices: u64,
    /// Device id prefix (`sensor-`).
    pub device_prefix: String,
    /// Minimum digits in device ids (zero-padded); widened to fit `devices`.
    pub device_width: usize,
    /// Temperature range, °C.
    pub temperature: (f64, f64),
    /// Humidity range, %.
    pub humidity: (f64, f64),
    /// Pressure range, hPa.
    pub pressure: (f64, f64),
    /// Probability of `OK`.
    pub status_ok: f64,
    /// Probability of `WARN`; `ERROR` gets the rest.
    pub status_warn: f64,
    /// Pad every event to this many bytes (0: no padding).
    pub size: usize,
    /// The first device's number: generators of one run simulate distinct devices
    /// (diagnose gives generator k of a ramp the devices from k × devices), so that a
    /// consumer can validate each device's sequence.
    #[serde(default)]
    pub first_device: u64,
}

impl Default for EventSpec {
    fn default() -> Self {
        EventSpec {
            devices: 10_000,
            device_prefix: "sensor-".into(),
            device_width: 4,
            temperature: (10.0, 35.0),
            humidity: (25.0, 80.0),
            pressure: (986.0, 1050.0),
            status_ok: 0.99,
            status_warn: 0.0067,
            size: 0,
            first_device: 0,
        }
    }
}

impl EventSpec {
    /// Checks the ranges; the message says what to fix.
    pub fn validate(&self) -> Result<(), String> {
        // Each device keeps a sequence number in memory (8 bytes, 16 with validation).
        if self.devices == 0 || self.devices > MAX_DEVICES {
            return Err(format!("--devices {} is out of range; use 1 to {MAX_DEVICES}", self.devices));
        }
        // A u64 has at most 20 digits; a wider id is only padding.
        if self.device_width > MAX_DEVICE_WIDTH {
            return Err(format!(
                "--device-width {} is out of range; use 0 to {MAX_DEVICE_WIDTH} digits",
                self.device_width
            ));
        }
        if self.device_prefix.len() > MAX_DEVICE_PREFIX_BYTES {
            return Err(format!(
                "--device-prefix is {} bytes long; use at most {MAX_DEVICE_PREFIX_BYTES}",
                self.device_prefix.len()
            ));
        }
        for (name, (low, high)) in
            [("temperature", self.temperature), ("humidity", self.humidity), ("pressure", self.pressure)]
        {
            if !(low.is_finite() && high.is_finite() && low <= high) {
                return Err(format!("the {name} range {low}..{high} is not a range; give LOW <= HIGH"));
            }
        }
        let (ok, warn) = (self.status_ok, self.status_warn);
        if !(0.0..=1.0).contains(&ok) || !(0.0..=1.0).contains(&warn) || ok + warn > 1.0 + 1e-9 {
            return Err(format!(
                "status probabilities OK {ok} and WARN {warn} must be within 0..1 and add up to at most 1"
            ));
        }
        if self.first_device > MAX_FIRST_DEVICE {
            return Err(format!("--first-device {} is out of range; use 0 to {MAX_FIRST_DEVICE}", self.first_device));
        }
        if self.size > 1 << 20 {
            return Err(format!("--size {} is over 1 MiB; Kafka's default message limit is 1 MB", self.size));
        }
        Ok(())
    }

    fn width(&self) -> usize {
        let digits = (self.first_device + self.devices.saturating_sub(1)).max(1).ilog10() as usize + 1;
        self.device_width.max(digits)
    }

    /// The device id of device `index` (counted from `first_device`).
    pub fn device_id(&self, index: u64) -> String {
        format!("{}{:0width$}", self.device_prefix, self.first_device + index, width = self.width())
    }
}

/// Writes events for a share of the devices, keeping each device's sequence number.
#[derive(Debug)]
pub struct EventGenerator {
    spec: EventSpec,
    width: usize,
    /// The devices this generator owns: `first_device + k * stride`.
    first_device: u64,
    stride: u64,
    owned: u64,
    next: u64,
    seqs: Vec<u64>,
    /// The metrics' ranges in hundredths.
    ranges: [(i64, i64); 3],
    rng: SmallRng,
    buffer: Vec<u8>,
    /// Where the device id is in `buffer`: the record's key.
    key: std::ops::Range<usize>,
    clock: MillisClock,
}

/// One generated event, borrowed from the generator's buffer.
#[derive(Debug)]
pub struct Event<'a> {
    /// The JSON bytes.
    pub payload: &'a [u8],
    /// The device id, as the record key.
    pub device_key: &'a [u8],
    /// Device index.
    pub device: u64,
    /// The device's sequence number (from 1).
    pub seq: u64,
}

impl EventGenerator {
    /// A generator for worker `worker` of `workers`: it owns every `workers`-th device,
    /// so that each device's sequence numbers come from one thread, in order.
    pub fn new(spec: &EventSpec, worker: u64, workers: u64) -> EventGenerator {
        let stride = workers.max(1);
        let owned = spec.devices.saturating_sub(worker).div_ceil(stride);
        EventGenerator {
            width: spec.width(),
            spec: spec.clone(),
            first_device: worker,
            stride,
            owned,
            next: 0,
            seqs: vec![0; owned as usize],
            ranges: [spec.temperature, spec.humidity, spec.pressure]
                .map(|(low, high)| ((low * 100.0).round() as i64, (high * 100.0).round() as i64)),
            rng: SmallRng::from_rng(&mut rand::rng()),
            buffer: Vec::with_capacity(512.max(spec.size)),
            key: 0..0,
            clock: MillisClock::default(),
        }
    }

    /// Whether this generator owns any device (more workers than devices leaves some idle).
    pub fn has_devices(&self) -> bool {
        self.owned > 0
    }

    /// The next event, round-robin over the owned devices, stamped now.
    pub fn next_event(&mut self) -> Event<'_> {
        self.next_event_at(Instant::now())
    }

    /// The next event, stamped with the wall-clock time at `now` (a producer's pacer has
    /// just read the clock: reading it again per event would cost a tenth of the event).
    pub fn next_event_at(&mut self, now: Instant) -> Event<'_> {
        let slot = self.next;
        self.next = (self.next + 1) % self.owned.max(1);
        let device = self.first_device + slot * self.stride;
        self.seqs[slot as usize] += 1;
        let seq = self.seqs[slot as usize];
        self.clock.refresh(now);
        self.write_event(device, seq);
        Event { payload: &self.buffer, device_key: &self.buffer[self.key.clone()], device, seq }
    }

    fn write_event(&mut self, device: u64, seq: u64) {
        let spec = &self.spec;
        let rng = &mut self.rng;
        // Metrics are drawn in hundredths and written as integers: formatting floats
        // would cost more than everything else in an event together.
        let metrics = self.ranges.map(|(low, high)| if high > low { rng.random_range(low..=high) } else { low });
        let roll: f64 = self.rng.random();
        let status = if roll < spec.status_ok {
            "OK"
        } else if roll < spec.status_ok + spec.status_warn {
            "WARN"
        } else {
            "ERROR"
        };
        let event_id = uuid::Builder::from_random_bytes(self.rng.random()).into_uuid();
        // Built from byte slices and integer formatting: `write!` here costs more than
        // the rest of the event.
        let buffer = &mut self.buffer;
        let mut number = itoa::Buffer::new();
        buffer.clear();
        buffer.extend_from_slice(b"{\"event_id\":\"");
        buffer.extend_from_slice(event_id.hyphenated().encode_lower(&mut uuid::Uuid::encode_buffer()).as_bytes());
        buffer.extend_from_slice(b"\",\"device_id\":\"");
        let key_start = buffer.len();
        buffer.extend_from_slice(spec.device_prefix.as_bytes());
        let digits = number.format(spec.first_device + device);
        buffer.resize(buffer.len() + self.width.saturating_sub(digits.len()), b'0');
        buffer.extend_from_slice(digits.as_bytes());
        self.key = key_start..buffer.len();
        buffer.extend_from_slice(b"\",\"timestamp\":\"");
        buffer.extend_from_slice(self.clock.text.as_bytes());
        buffer.extend_from_slice(b"\",\"seq\":");
        buffer.extend_from_slice(number.format(seq).as_bytes());
        buffer.extend_from_slice(b",\"metrics\":{");
        for (index, (name, value)) in ["temperature", "humidity", "pressure"].iter().zip(metrics).enumerate() {
            if index > 0 {
                buffer.push(b',');
            }
            buffer.push(b'"');
            buffer.extend_from_slice(name.as_bytes());
            buffer.extend_from_slice(b"\":");
            if value < 0 {
                buffer.push(b'-');
            }
            buffer.extend_from_slice(number.format(value.abs() / 100).as_bytes());
            let cents = (value.abs() % 100) as u8;
            buffer.extend_from_slice(&[b'.', b'0' + cents / 10, b'0' + cents % 10]);
        }
        buffer.extend_from_slice(b"},\"status\":\"");
        buffer.extend_from_slice(status.as_bytes());
        buffer.push(b'"');
        // Padding: `,"pad":"xxx…"}` brings the event to exactly `size` bytes when it fits.
        const PAD_OVERHEAD: usize = ",\"pad\":\"\"}".len();
        if spec.size > buffer.len() + PAD_OVERHEAD {
            let fill = spec.size - buffer.len() - PAD_OVERHEAD;
            buffer.extend_from_slice(b",\"pad\":\"");
            buffer.resize(buffer.len() + fill, b'x');
            buffer.extend_from_slice(b"\"}");
        } else {
            buffer.push(b'}');
        }
    }
}

/// The current time as RFC 3339 text with milliseconds, formatted once per millisecond,
/// and read from the monotonic instant the caller has: the wall clock is read once a
/// second, to follow its adjustments.
#[derive(Debug, Default)]
struct MillisClock {
    /// An instant and the wall-clock time then.
    base: Option<(Instant, Duration)>,
    millis: u128,
    text: String,
}

impl MillisClock {
    const REBASE_EVERY: Duration = Duration::from_secs(1);

    fn refresh(&mut self, now: Instant) {
        let base = match self.base {
            Some((at, wall)) if now >= at && now.duration_since(at) < Self::REBASE_EVERY => (at, wall),
            _ => {
                let base = (now, SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default());
                self.base = Some(base);
                base
            }
        };
        let wall = base.1 + now.duration_since(base.0);
        if wall.as_millis() != self.millis || self.text.is_empty() {
            self.millis = wall.as_millis();
            self.text = humantime::format_rfc3339_millis(UNIX_EPOCH + wall).to_string();
        }
    }
}

/// The fields validation needs from an event.
#[derive(Debug, Deserialize)]
pub struct EventIdentity {
    /// Unique event id.
    pub event_id: uuid::Uuid,
    /// Device id.
    pub device_id: String,
    /// Per-device sequence number.
    pub seq: u64,
    /// Creation time (RFC 3339).
    pub timestamp: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_follow_seed_000s_schema() {
        let mut generator = EventGenerator::new(&EventSpec::default(), 0, 1);
        let event = generator.next_event();
        let json: serde_json::Value = serde_json::from_slice(event.payload).unwrap();
        assert_eq!(json["device_id"], "sensor-0000");
        assert_eq!(json["seq"], 1);
        assert_eq!(json["event_id"].as_str().unwrap().len(), 36);
        let temperature = json["metrics"]["temperature"].as_f64().unwrap();
        assert!((10.0..=35.0).contains(&temperature));
        assert!(["OK", "WARN", "ERROR"].contains(&json["status"].as_str().unwrap()));
        assert!(humantime::parse_rfc3339(json["timestamp"].as_str().unwrap()).is_ok());
        let identity: EventIdentity = serde_json::from_slice(event.payload).unwrap();
        assert_eq!(identity.seq, 1);
    }

    #[test]
    fn sequences_are_per_device_and_devices_are_split_between_workers() {
        let spec = EventSpec { devices: 5, ..EventSpec::default() };
        let mut worker0 = EventGenerator::new(&spec, 0, 2);
        let mut worker1 = EventGenerator::new(&spec, 1, 2);
        let devices0: Vec<(u64, u64)> = (0..6)
            .map(|_| {
                let e = worker0.next_event();
                (e.device, e.seq)
            })
            .collect();
        assert_eq!(devices0, [(0, 1), (2, 1), (4, 1), (0, 2), (2, 2), (4, 2)]);
        let devices1: Vec<u64> = (0..4).map(|_| worker1.next_event().device).collect();
        assert_eq!(devices1, [1, 3, 1, 3]);
    }

    #[test]
    fn negative_and_fractional_metrics_are_written_exactly() {
        let spec = EventSpec { temperature: (-5.25, -5.25), humidity: (0.07, 0.07), ..EventSpec::default() };
        let mut generator = EventGenerator::new(&spec, 0, 1);
        let json: serde_json::Value = serde_json::from_slice(generator.next_event().payload).unwrap();
        assert_eq!(json["metrics"]["temperature"].as_f64(), Some(-5.25));
        assert_eq!(json["metrics"]["humidity"].as_f64(), Some(0.07));
    }

    #[test]
    fn size_pads_to_the_exact_byte() {
        let spec = EventSpec { size: 1024, ..EventSpec::default() };
        let mut generator = EventGenerator::new(&spec, 0, 1);
        let event = generator.next_event();
        assert_eq!(event.payload.len(), 1024);
        assert!(serde_json::from_slice::<serde_json::Value>(event.payload).is_ok());
    }

    #[test]
    fn generators_of_one_run_simulate_distinct_devices() {
        let spec = EventSpec { devices: 3, first_device: 10_000, ..EventSpec::default() };
        let mut generator = EventGenerator::new(&spec, 0, 1);
        let ids: Vec<String> = (0..3)
            .map(|_| {
                let event = generator.next_event();
                let identity: EventIdentity = serde_json::from_slice(event.payload).unwrap();
                assert_eq!(event.device_key, identity.device_id.as_bytes());
                identity.device_id
            })
            .collect();
        assert_eq!(ids, ["sensor-10000", "sensor-10001", "sensor-10002"]);
        assert_eq!(spec.device_id(2), "sensor-10002");
        assert!(EventSpec { first_device: u64::MAX, ..spec }.validate().unwrap_err().contains("--first-device"));
    }

    #[test]
    fn device_ids_widen_to_fit() {
        let spec = EventSpec { devices: 100_000, device_width: 2, ..EventSpec::default() };
        assert_eq!(spec.device_id(42), "sensor-00042");
    }

    #[test]
    fn bad_ranges_are_refused() {
        assert!(
            EventSpec { temperature: (30.0, 10.0), ..EventSpec::default() }
                .validate()
                .unwrap_err()
                .contains("LOW <= HIGH")
        );
        assert!(EventSpec { status_ok: 0.9, status_warn: 0.5, ..EventSpec::default() }.validate().is_err());
        assert!(EventSpec { devices: 0, ..EventSpec::default() }.validate().is_err());
    }
}

/// How fast events can be generated, measured without sending them (`--dry-run`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct GenerationRate {
    /// Events generated.
    pub events: u64,
    /// Events per second over all workers.
    pub events_per_sec: f64,
    /// Events per second per worker thread (about one core each).
    pub events_per_sec_per_worker: f64,
    /// Mean event size in bytes.
    pub bytes_per_event: f64,
}

/// Generates events as fast as possible on `workers` threads for `duration`.
pub fn generation_rate(spec: &EventSpec, workers: usize, duration: std::time::Duration) -> GenerationRate {
    let start = std::time::Instant::now();
    let counts: Vec<(u64, u64)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers.max(1))
            .map(|worker| {
                scope.spawn(move || {
                    let mut generator = EventGenerator::new(spec, worker as u64, workers.max(1) as u64);
                    let (mut events, mut bytes) = (0u64, 0u64);
                    while generator.has_devices() && start.elapsed() < duration {
                        for _ in 0..1000 {
                            bytes += std::hint::black_box(generator.next_event().payload.len()) as u64;
                        }
                        events += 1000;
                    }
                    (events, bytes)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or((0, 0))).collect()
    });
    let secs = start.elapsed().as_secs_f64().max(1e-9);
    let events: u64 = counts.iter().map(|c| c.0).sum();
    let bytes: u64 = counts.iter().map(|c| c.1).sum();
    GenerationRate {
        events,
        events_per_sec: events as f64 / secs,
        events_per_sec_per_worker: events as f64 / secs / workers.max(1) as f64,
        bytes_per_event: if events > 0 { bytes as f64 / events as f64 } else { 0.0 },
    }
}
