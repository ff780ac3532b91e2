//! `plateau produce` and `plateau consume`: the Kafka path's two ends on their own.

use std::path::PathBuf;

use clap::Args;

use super::UsageError;
use crate::kafka::consume::ConsumeConfig;
use crate::kafka::consume::sink::SinkConfig;
use crate::kafka::{EventSpec, KeyMode, ProduceConfig, ProducerSettings, Ramp, RateSpec};
use crate::report::terminal;
use crate::units::{ByteSize, Span};

/// `plateau produce`.
#[derive(Debug, Args)]
pub struct ProduceArgs {
    /// Bootstrap servers, HOST:PORT[,HOST:PORT...].
    #[arg(long)]
    pub bootstrap: String,
    /// Topic to produce to (it must exist).
    #[arg(long)]
    pub topic: String,
    /// Fixed target rate, messages per second over all workers.
    #[arg(long, conflicts_with = "ramp", required_unless_present_any = ["ramp", "print_events"], allow_negative_numbers = true, value_parser = parse_msg_rate)]
    pub rate: Option<u64>,
    /// Ramp START:STEP:EVERY_S:MAX (msg/s), stopping at the plateau.
    #[arg(long)]
    pub ramp: Option<Ramp>,
    /// Seconds of a fixed-rate run.
    #[arg(long, default_value = "10")]
    pub time: Span,
    /// Simulated devices.
    #[arg(long, default_value_t = 10_000)]
    pub devices: u64,
    /// Device id prefix.
    #[arg(long, default_value = "sensor-")]
    pub device_prefix: String,
    /// Minimum digits of device ids.
    #[arg(long, default_value_t = 4)]
    pub device_width: usize,
    /// The first device's number (give generators of one run distinct devices).
    #[arg(long, default_value_t = 0)]
    pub first_device: u64,
    /// Pad every event to this many bytes.
    #[arg(long, default_value = "0")]
    pub size: ByteSize,
    /// Record keys.
    #[arg(long, value_enum, default_value_t = KeyMode::Device)]
    pub key: KeyMode,
    /// Producing threads.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// acks: all, 1 or 0.
    #[arg(long, default_value = "all")]
    pub acks: String,
    /// compression.type: lz4, zstd, gzip, snappy or none.
    #[arg(long, default_value = "lz4")]
    pub compression: String,
    /// linger.ms.
    #[arg(long, default_value_t = 5)]
    pub linger_ms: u32,
    /// batch.num.messages.
    #[arg(long, default_value_t = 10_000)]
    pub batch_messages: u32,
    /// Any librdkafka property, NAME=VALUE (security.protocol, sasl.*, ssl.*, ...).
    #[arg(short = 'X', value_parser = crate::kafka::parse_property)]
    pub property: Vec<(String, String)>,
    /// Read the topic back and count lost, duplicated and reordered events.
    #[arg(long)]
    pub validate: bool,
    /// With --ramp: also report the highest rate whose delivery p99 stays under this.
    #[arg(long)]
    pub sla_p99_ms: Option<f64>,
    /// Seconds between progress lines.
    #[arg(long, default_value = "5")]
    pub interval: Span,
    /// Temperature range LOW:HIGH.
    #[arg(long, default_value = "10:35", value_parser = parse_range)]
    pub temperature: (f64, f64),
    /// Humidity range LOW:HIGH.
    #[arg(long, default_value = "25:80", value_parser = parse_range)]
    pub humidity: (f64, f64),
    /// Pressure range LOW:HIGH.
    #[arg(long, default_value = "986:1050", value_parser = parse_range)]
    pub pressure: (f64, f64),
    /// Probability of status OK.
    #[arg(long, default_value_t = 0.99)]
    pub status_ok: f64,
    /// Probability of status WARN (ERROR gets the rest).
    #[arg(long, default_value_t = 0.0067)]
    pub status_warn: f64,
    /// Print one JSON object instead of progress lines and a table.
    #[arg(long)]
    pub json: bool,
    /// Only generate events, as fast as possible for --time on --workers threads, and
    /// report how many per second (is the generator host fast enough?).
    #[arg(long)]
    pub dry_run: bool,
    /// Only print N generated events, one JSON document per line, and exit: real events
    /// for other tools (e.g. a --payload-file for Kafka's ProducerPerformance).
    #[arg(long, value_name = "N", conflicts_with = "dry_run")]
    pub print_events: Option<u64>,
    /// Run on this agent (http://HOST:PORT) instead of here.
    #[arg(long)]
    pub on: Option<String>,
    /// File with the agent's bearer token (with --on).
    #[arg(long)]
    pub token_file: Option<PathBuf>,
}

fn parse_msg_rate(text: &str) -> Result<u64, String> {
    match text.trim().parse::<i64>() {
        Ok(rate) if rate > 0 => Ok(rate as u64),
        _ => Err(format!("'{text}' is not a rate; give a positive number of messages per second")),
    }
}

fn parse_range(text: &str) -> Result<(f64, f64), String> {
    let (low, high) = text.split_once(':').ok_or_else(|| format!("'{text}' is not LOW:HIGH"))?;
    let number = |s: &str| s.trim().parse::<f64>().map_err(|_| format!("'{text}' is not LOW:HIGH"));
    Ok((number(low)?, number(high)?))
}

impl ProduceArgs {
    /// The run configuration.
    pub fn config(&self) -> ProduceConfig {
        let rate = match (self.rate, self.ramp) {
            (_, Some(ramp)) => RateSpec::Ramp(ramp),
            (Some(rate), None) => RateSpec::Fixed(rate),
            (None, None) => RateSpec::Fixed(0),
        };
        ProduceConfig {
            bootstrap: self.bootstrap.clone(),
            topic: self.topic.clone(),
            rate,
            time: self.time.0,
            events: EventSpec {
                devices: self.devices,
                device_prefix: self.device_prefix.clone(),
                device_width: self.device_width,
                temperature: self.temperature,
                humidity: self.humidity,
                pressure: self.pressure,
                status_ok: self.status_ok,
                status_warn: self.status_warn,
                size: self.size.bytes() as usize,
                first_device: self.first_device,
            },
            key: self.key,
            workers: self.workers,
            producer: ProducerSettings {
                acks: self.acks.clone(),
                compression: self.compression.clone(),
                linger_ms: self.linger_ms,
                batch_messages: self.batch_messages,
                extra: self.property.clone(),
            },
            validate: self.validate,
            sla_p99_ms: self.sla_p99_ms,
            interval: self.interval.0,
            stop_after_missed_steps: 2,
        }
    }
}

/// `plateau consume`.
#[derive(Debug, Args)]
pub struct ConsumeArgs {
    /// Bootstrap servers, HOST:PORT[,HOST:PORT...].
    #[arg(long)]
    pub bootstrap: String,
    /// Topic to consume (it must exist).
    #[arg(long)]
    pub topic: String,
    /// Consumer group; a fresh one, starting at the topic's end, when absent. An existing
    /// group continues from its committed offsets.
    #[arg(long)]
    pub group: Option<String>,
    /// Members of the group (threads, each with its own connection).
    #[arg(long, default_value_t = 1)]
    pub members: usize,
    /// How long to consume (until Ctrl-C when absent).
    #[arg(long)]
    pub time: Option<Span>,
    /// Device id prefix of the events, for per-device validation.
    #[arg(long, default_value = "sensor-")]
    pub device_prefix: String,
    /// Write every event to PostgreSQL: a libpq connection string
    /// (postgres://USER:PASSWORD@HOST:PORT/DB).
    #[arg(long)]
    pub sink: Option<String>,
    /// The sink's table (created when missing: event_id, device_id, timestamp, seq, metrics, status).
    #[arg(long, default_value = "events")]
    pub sink_table: String,
    /// Most records handled as one batch (max.poll.records).
    #[arg(long, default_value_t = 500)]
    pub max_batch: usize,
    /// Synchronous work per event on the polling thread, microseconds.
    #[arg(long, default_value_t = 0)]
    pub process_us: u64,
    /// Any librdkafka property, NAME=VALUE (security.protocol, sasl.*, ssl.*, ...).
    #[arg(short = 'X', value_parser = crate::kafka::parse_property)]
    pub property: Vec<(String, String)>,
    /// Seconds between progress lines.
    #[arg(long, default_value = "5")]
    pub interval: Span,
    /// Where a fresh group starts: latest (the topic's end), earliest (its first offset:
    /// a catch-up run), or the first record at an RFC 3339 time or Unix milliseconds.
    #[arg(long, default_value = "latest")]
    pub from: crate::kafka::consume::StartAt,
    /// Stop once the backlog the topic held at the start is read, and say how long it took
    /// (with --from earliest: a backlog catch-up).
    #[arg(long)]
    pub until_drained: bool,
    /// Print one JSON object instead of progress lines and a table.
    #[arg(long)]
    pub json: bool,
}

impl ConsumeArgs {
    /// The run configuration.
    pub fn config(&self) -> ConsumeConfig {
        ConsumeConfig {
            bootstrap: self.bootstrap.clone(),
            topic: self.topic.clone(),
            group: self.group.clone(),
            members: self.members,
            time_secs: self.time.map(|span| span.0),
            device_prefix: self.device_prefix.clone(),
            sink: self.sink.as_ref().map(|url| SinkConfig {
                url: url.clone(),
                table: self.sink_table.clone(),
                addresses: Vec::new(),
            }),
            max_batch: self.max_batch,
            process_us: self.process_us,
            interval: self.interval.0,
            extra: self.property.clone(),
            start_at: self.from,
            until_drained: self.until_drained,
        }
    }
}

/// Runs a produce run here or on an agent (or only generates events).
pub fn run_produce(args: ProduceArgs) -> anyhow::Result<()> {
    let config = args.config();
    if let Some(events) = args.print_events {
        config.events.validate().map_err(UsageError)?;
        let mut generator = crate::kafka::event::EventGenerator::new(&config.events, 0, 1);
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        for _ in 0..events {
            use std::io::Write;
            out.write_all(generator.next_event().payload)?;
            out.write_all(b"\n")?;
        }
        return Ok(());
    }
    if args.dry_run {
        config.events.validate().map_err(UsageError)?;
        let rate = crate::kafka::event::generation_rate(&config.events, config.workers, config.time);
        if args.json {
            println!("{}", serde_json::to_string_pretty(&rate)?);
        } else {
            print!("{}", terminal::generation_rate(&rate, config.time.as_secs_f64()));
        }
        return Ok(());
    }
    if let Some(agent) = &args.on {
        let token = args.token_file.as_deref().map(crate::agent::read_token_file).transpose()?;
        let client = crate::agent::client::AgentClient::new(agent, token, std::time::Duration::from_secs(30));
        let report = client.produce_and_wait(&config, &mut |line| {
            if !args.json {
                println!("{line}");
            }
        })?;
        return print_produce(&report, args.json);
    }
    let control = std::sync::Arc::new(crate::kafka::run::RunControl::default());
    let interrupted = std::sync::Arc::clone(&control);
    // Ctrl-C ends the run early; the report still covers what was measured.
    let _ = ctrlc::set_handler(move || interrupted.cancel.cancel());
    let json = args.json;
    let report = crate::kafka::run::run_produce(&config, &control, &mut |interval| {
        if !json {
            println!("{}", terminal::produce_interval(interval));
        }
    })?;
    print_produce(&report, json)
}

/// Runs a consumer group until its time is up or Ctrl-C.
pub fn run_consume(args: ConsumeArgs) -> anyhow::Result<()> {
    let config = args.config();
    let control = std::sync::Arc::new(crate::kafka::consume::ConsumeControl::default());
    let interrupted = std::sync::Arc::clone(&control);
    // Ctrl-C ends the run; the report still covers what was measured.
    let _ = ctrlc::set_handler(move || interrupted.cancel.cancel());
    let report = crate::kafka::consume::run_consume(&config, &control, |interval| {
        if !args.json {
            println!("{}", terminal::consume_interval(interval));
        }
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", terminal::consume_summary(&report));
    }
    Ok(())
}

fn print_produce(report: &crate::kafka::ProduceReport, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        print!("{}", terminal::produce_summary(report));
    }
    Ok(())
}
