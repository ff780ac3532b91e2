//! Terminal tables (comfy-table) for the single probes: `plateau sample` and
//! `plateau disk`. Numbers are shown in the units people read in iostat and fio:
//! percentages, MB/s (10^6 bytes), milliseconds.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{Cell, CellAlignment, Table};

use crate::probe::disk::DiskResult;
use crate::sampler::Sample;

fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table.load_style(UTF8_FULL_CONDENSED).set_header(header.iter().map(Cell::new));
    for index in 1..header.len() {
        if let Some(column) = table.column_mut(index) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    table
}

fn pct(ratio: f64) -> String {
    format!("{:.1}", ratio * 100.0)
}

fn mb(bytes_per_sec: f64) -> String {
    format!("{:.2}", bytes_per_sec / 1e6)
}

fn opt_ms(value: Option<f64>) -> String {
    value.map(|ms| format!("{ms:.2}")).unwrap_or_else(|| "-".into())
}

/// One interval of `plateau sample`: CPU, disks, NICs, TCP, memory, PSI and the watch.
pub fn sample_tables(sample: &Sample) -> String {
    let time =
        humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_millis(sample.ts_ms));
    let mut out = format!("── {time} ({} ms)\n", sample.interval_ms);

    let mut cpu = table(&["cpu", "%usr", "%sys", "%iowait", "%irq", "%steal", "%idle", "runq", "load1"]);
    let total = &sample.cpu.total;
    cpu.add_row(vec![
        "all".to_string(),
        pct(total.user + total.nice),
        pct(total.system),
        pct(total.iowait),
        pct(total.irq),
        pct(total.steal),
        pct(total.idle),
        sample.cpu.procs_running.map(|n| n.to_string()).unwrap_or_default(),
        sample.cpu.load1.map(|l| format!("{l:.2}")).unwrap_or_default(),
    ]);
    for (index, core) in sample.cpu.cores.iter().enumerate() {
        cpu.add_row(vec![
            index.to_string(),
            pct(core.user + core.nice),
            pct(core.system),
            pct(core.iowait),
            pct(core.irq),
            pct(core.steal),
            pct(core.idle),
            String::new(),
            String::new(),
        ]);
    }
    out.push_str(&format!("{cpu}\n"));

    if !sample.disks.is_empty() {
        let mut disks = table(&["disk", "r/s", "w/s", "rMB/s", "wMB/s", "r_await", "w_await", "aqu-sz", "%util"]);
        for d in &sample.disks {
            disks.add_row(vec![
                d.name.clone(),
                format!("{:.1}", d.reads_per_sec),
                format!("{:.1}", d.writes_per_sec),
                mb(d.read_bytes_per_sec),
                mb(d.write_bytes_per_sec),
                opt_ms(d.read_await_ms),
                opt_ms(d.write_await_ms),
                format!("{:.2}", d.queue_depth),
                pct(d.util_ratio),
            ]);
        }
        out.push_str(&format!("{disks}\n"));
    }

    if !sample.nics.is_empty() {
        let mut nics = table(&["nic", "rxMB/s", "txMB/s", "rxpkt/s", "txpkt/s", "drop/s", "err/s", "link Mbit/s"]);
        for n in &sample.nics {
            nics.add_row(vec![
                n.name.clone(),
                mb(n.rx_bytes_per_sec),
                mb(n.tx_bytes_per_sec),
                format!("{:.0}", n.rx_packets_per_sec),
                format!("{:.0}", n.tx_packets_per_sec),
                format!("{:.1}", n.rx_drops_per_sec + n.tx_drops_per_sec),
                format!("{:.1}", n.rx_errors_per_sec + n.tx_errors_per_sec),
                n.speed_bits_per_sec.map(|b| (b / 1_000_000).to_string()).unwrap_or_else(|| "-".into()),
            ]);
        }
        out.push_str(&format!("{nics}\n"));
    }

    let mut misc = Vec::new();
    if let Some(tcp) = &sample.tcp {
        misc.push(format!(
            "tcp: {:.0} seg/s out, {:.1} retrans/s ({:.2}%)",
            tcp.out_segs_per_sec,
            tcp.retrans_segs_per_sec,
            tcp.retrans_ratio * 100.0
        ));
    }
    if let Some(mem) = &sample.memory {
        misc.push(format!(
            "mem: {:.0} MiB used, {:.0} MiB available, swap in/out {:.0}/{:.0} pages/s",
            mem.used_bytes as f64 / (1 << 20) as f64,
            mem.available_bytes as f64 / (1 << 20) as f64,
            mem.swap_in_pages_per_sec,
            mem.swap_out_pages_per_sec
        ));
    }
    if let Some(psi) = &sample.psi {
        let some =
            |r: Option<crate::sampler::sample::PsiResource>| r.map(|r| pct(r.some_ratio)).unwrap_or_else(|| "-".into());
        misc.push(format!("psi some %: cpu {} io {} mem {}", some(psi.cpu), some(psi.io), some(psi.memory)));
    }
    if let Some(watch) = &sample.watch {
        let opt = |v: Option<f64>, digits: usize| v.map(|v| format!("{v:.digits$}")).unwrap_or_else(|| "-".into());
        misc.push(format!(
            "watch {}: {} procs, {} cpu s/s, quota {} cores, throttled {} periods / {} s, io r/w {}/{} MB/s",
            watch.target,
            watch.n_processes,
            opt(watch.cpu_seconds_per_sec, 2),
            opt(watch.cpu_quota_cores, 2),
            watch.throttled_periods.map(|n| n.to_string()).unwrap_or_else(|| "-".into()),
            opt(watch.throttled_seconds, 3),
            opt(watch.io_read_bytes_per_sec.map(|b| b / 1e6), 2),
            opt(watch.io_write_bytes_per_sec.map(|b| b / 1e6), 2),
        ));
    }
    for line in misc {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// The result of `plateau disk`.
pub fn disk_table(result: &DiskResult) -> String {
    let mut summary = table(&["phase", "MB/s", "IOPS", "p50 ms", "p99 ms", "max ms", "count"]);
    let write_iops = if result.write_seconds > 0.0 { result.write_ms.count as f64 / result.write_seconds } else { 0.0 };
    summary.add_row(vec![
        format!("append {} blocks", crate::units::ByteSize(result.block_bytes)),
        format!("{:.2}", result.write_mb_per_sec),
        format!("{write_iops:.0}"),
        format!("{:.2}", result.write_ms.p50),
        format!("{:.2}", result.write_ms.p99),
        format!("{:.2}", result.write_ms.max),
        result.write_ms.count.to_string(),
    ]);
    if result.fsync_ms.count > 0 {
        summary.add_row(vec![
            "fsync".to_string(),
            String::new(),
            String::new(),
            format!("{:.2}", result.fsync_ms.p50),
            format!("{:.2}", result.fsync_ms.p99),
            format!("{:.2}", result.fsync_ms.max),
            result.fsync_ms.count.to_string(),
        ]);
    }
    summary.add_row(vec![
        "random 4K reads".to_string(),
        format!("{:.2}", result.read_mb_per_sec),
        format!("{:.0}", result.read_iops),
        format!("{:.2}", result.read_ms.p50),
        format!("{:.2}", result.read_ms.p99),
        format!("{:.2}", result.read_ms.max),
        result.read_ms.count.to_string(),
    ]);
    let mut out = format!(
        "disk probe on {}: {} appended, fsync {}{}\n{summary}\n",
        result.path.display(),
        crate::units::ByteSize(result.size_bytes),
        result.fsync,
        if result.direct { ", O_DIRECT" } else { "" },
    );
    if !result.reads_uncached {
        out.push_str("note: the kernel kept the file in the page cache; read figures may be cache hits\n");
    }
    if result.network_filesystem {
        out.push_str(&format!(
            "note: {} is a network file system ({}): these figures are a server's and a link's, not a local disk's\n",
            result.path.display(),
            result.filesystem
        ));
    }
    if result.stopped_at_time_limit {
        out.push_str("note: the append phase stopped at its 5-minute limit before the whole size was written\n");
    }
    out
}

fn rate(bits_per_second: f64) -> String {
    match bits_per_second {
        b if b >= 1e9 => format!("{:.2} Gbits/sec", b / 1e9),
        b if b >= 1e6 => format!("{:.1} Mbits/sec", b / 1e6),
        b => format!("{:.0} Kbits/sec", b / 1e3),
    }
}

fn transfer(bytes: u64) -> String {
    let bytes = bytes as f64;
    match bytes {
        b if b >= (1u64 << 30) as f64 => format!("{:.2} GBytes", b / (1u64 << 30) as f64),
        b if b >= (1u64 << 20) as f64 => format!("{:.1} MBytes", b / (1u64 << 20) as f64),
        b => format!("{:.0} KBytes", b / 1024.0),
    }
}

fn segment_line(label: &str, segment: &crate::net::report::Segment) -> String {
    let mut line = format!(
        "[{label:>3}] {:6.2}-{:<6.2} sec  {:>12}  {:>15}",
        segment.start,
        segment.end,
        transfer(segment.bytes),
        rate(segment.bits_per_second)
    );
    if let Some(retransmits) = segment.retransmits {
        line.push_str(&format!("  {retransmits:>5} retr"));
    }
    if let Some(cwnd) = segment.snd_cwnd {
        line.push_str(&format!("  cwnd {:>10}", transfer(cwnd)));
    }
    if let Some(rtt) = segment.rtt {
        line.push_str(&format!("  rtt {:.2} ms", rtt as f64 / 1000.0));
    }
    if let (Some(lost), Some(packets)) = (segment.lost_packets, segment.packets) {
        line.push_str(&format!(
            "  {:.3} ms jitter  {lost}/{packets} ({:.2}%) lost",
            segment.jitter_ms.unwrap_or(0.0),
            segment.lost_percent.unwrap_or(0.0)
        ));
    } else if let Some(packets) = segment.packets {
        line.push_str(&format!("  {packets} datagrams"));
    }
    if segment.omitted == Some(true) {
        line.push_str("  (omitted)");
    }
    line
}

/// The header printed before a network test's interval lines.
pub fn net_header(target: &str, protocol: crate::net::Protocol) -> String {
    format!("{protocol} test to {target}\n[ ID] Interval            Transfer          Bitrate")
}

/// One interval of a network test, as iperf3 prints it: a line per stream and a sum.
pub fn net_interval(interval: &crate::net::report::Interval) -> String {
    let mut out = String::new();
    for stream in &interval.streams {
        out.push_str(&segment_line(&stream.socket.unwrap_or(0).to_string(), stream));
        out.push('\n');
    }
    if interval.streams.len() > 1 || interval.sum_bidir_reverse.is_some() {
        out.push_str(&segment_line("SUM", &interval.sum));
        out.push('\n');
    }
    if let Some(reverse) = &interval.sum_bidir_reverse {
        out.push_str(&segment_line("REV", reverse));
        out.push('\n');
    }
    out
}

/// The totals of a network test and who limited it.
pub fn net_summary(report: &crate::net::NetReport) -> String {
    let end = &report.end;
    let mut summary = table(&["direction", "sent", "received", "retransmits", "lost", "jitter ms"]);
    let mut row = |name: &str,
                   sent: &crate::net::report::Segment,
                   received: &crate::net::report::Segment,
                   udp: Option<&crate::net::report::Segment>| {
        summary.add_row(vec![
            name.to_string(),
            rate(sent.bits_per_second),
            rate(received.bits_per_second),
            sent.retransmits.map(|r| r.to_string()).unwrap_or_else(|| "-".into()),
            udp.and_then(|u| Some(format!("{}/{} ({:.2}%)", u.lost_packets?, u.packets?, u.lost_percent?)))
                .unwrap_or_else(|| "-".into()),
            udp.and_then(|u| u.jitter_ms).map(|j| format!("{j:.3}")).unwrap_or_else(|| "-".into()),
        ]);
    };
    let forward = if report.start.test_start.reverse == 1 { "target → here" } else { "here → target" };
    row(forward, &end.sum_sent, &end.sum_received, end.sum.as_ref());
    if let (Some(sent), Some(received)) = (&end.sum_sent_bidir_reverse, &end.sum_received_bidir_reverse) {
        row("target → here", sent, received, None);
    }
    let cpu = &end.cpu_utilization_percent;
    let findings = &report.plateau;
    format!(
        "{summary}\nCPU: this end {:.1} %, remote {:.1} % (of one core)\nlimited by: {} — {}\n",
        cpu.host_total,
        cpu.remote_total,
        serde_json::to_value(findings.limited_by).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default(),
        findings.explanation
    )
}

/// The network matrix: received throughput from each row's agent to each column's.
pub fn matrix_table(report: &crate::net::matrix::MatrixReport) -> String {
    let mut header = vec!["from \\ to".to_string()];
    header.extend((0..report.agents.len()).map(|i| format!("#{i}")));
    let mut grid = Table::new();
    grid.load_style(UTF8_FULL_CONDENSED).set_header(header);
    for from in 0..report.agents.len() {
        let mut row = vec![format!("#{from}")];
        for to in 0..report.agents.len() {
            row.push(match report.cell(from, to) {
                None => "—".to_string(),
                Some(cell) => match (cell.bits_per_second, &cell.error) {
                    (Some(bits), _) => rate(bits),
                    (None, Some(_)) => "failed".to_string(),
                    (None, None) => "?".to_string(),
                },
            });
        }
        grid.add_row(row);
    }
    let mut out = format!("{grid}\n");
    for (index, agent) in report.agents.iter().enumerate() {
        out.push_str(&format!("#{index} = {agent}\n"));
    }
    for cell in report.cells.iter().filter(|c| c.error.is_some()) {
        out.push_str(&format!("#{} → #{} failed: {}\n", cell.from, cell.to, cell.error.as_deref().unwrap_or_default()));
    }
    out.push_str(&format!("{} tests in {} rounds, {:.1} s\n", report.cells.len(), report.rounds, report.elapsed_secs));
    out
}

/// One progress line of a produce run, as kafka-producer-perf-test prints them.
pub fn produce_interval(interval: &crate::kafka::report::ProduceInterval) -> String {
    format!(
        "{:7.1} s: {} records acked, {:.1} records/sec ({:.2} MB/sec), {:.1} ms avg latency, {:.1} ms p99, {:.1} ms max latency, target {}/s{}",
        interval.end_secs,
        interval.records_acked,
        interval.records_per_sec,
        interval.mb_per_sec,
        interval.latency_avg_ms,
        interval.latency_p99_ms,
        interval.latency_max_ms,
        interval.target_rate,
        if interval.errors > 0 { format!(", {} errors", interval.errors) } else { String::new() }
    )
}

/// The summary of a produce run.
pub fn produce_summary(report: &crate::kafka::ProduceReport) -> String {
    let mut out = String::new();
    let mut summary = Table::new();
    summary.load_style(UTF8_FULL_CONDENSED).set_header(vec!["produce run", "result"]);
    let rows: Vec<(String, String)> = vec![
        ("records sent / acked".into(), format!("{} / {}", report.records_sent, report.records_acked)),
        (
            "throughput".into(),
            format!(
                "{:.1} records/s, {:.2} MB/s over {:.1} s",
                report.records_per_sec, report.mb_per_sec, report.duration_secs
            ),
        ),
        (
            "delivery latency ms".into(),
            format!(
                "p50 {:.1}, p95 {:.1}, p99 {:.1}, p99.9 {:.1}, max {:.1}",
                report.latency_ms.p50,
                report.latency_ms.p95,
                report.latency_ms.p99,
                report.latency_ms.p999,
                report.latency_ms.max
            ),
        ),
        (
            "publish delay ms".into(),
            format!(
                "p50 {:.2}, p99 {:.2}, max {:.2}",
                report.publish_delay_ms.p50, report.publish_delay_ms.p99, report.publish_delay_ms.max
            ),
        ),
        (
            "errors".into(),
            if report.errors.total == 0 {
                "none".into()
            } else {
                let kinds: Vec<String> = report.errors.by_kind.iter().map(|(k, n)| format!("{k} {n}")).collect();
                format!(
                    "{} ({}); last: {}",
                    report.errors.total,
                    kinds.join(", "),
                    report.errors.last_error.as_deref().unwrap_or("-")
                )
            },
        ),
        (
            "partitions".into(),
            format!(
                "{} of {} used, skew {:.2}{}",
                report.partitions.used,
                report.partitions.total,
                report.partitions.skew,
                report
                    .partitions
                    .expected_used
                    .map(|e| format!(
                        " ({} keys: {e:.0} expected to be used)",
                        report.partitions.key_cardinality.unwrap_or(0)
                    ))
                    .unwrap_or_default()
            ),
        ),
    ];
    for (name, value) in rows {
        summary.add_row(vec![name, value]);
    }
    if let Some(rate) = report.max_sustained_rate {
        summary.add_row(vec!["max sustained rate".to_string(), format!("{rate:.0} msg/s")]);
    }
    if let Some(rate) = report.max_rate_within_sla {
        summary.add_row(vec!["max rate within the p99 SLA".to_string(), format!("{rate} msg/s")]);
    }
    if let Some(v) = &report.validation {
        summary.add_row(vec![
            "validation".to_string(),
            format!(
                "{} consumed, {} lost, {} duplicated, {} out of order, e2e p50 {:.1} ms p99 {:.1} ms{}",
                v.consumed,
                v.lost,
                v.duplicated,
                v.out_of_order,
                v.e2e_latency_ms.p50,
                v.e2e_latency_ms.p99,
                if v.complete { "" } else { " (consumer did not catch up in time)" }
            ),
        ]);
    }
    if let Some(reason) = &report.stopped_early {
        summary.add_row(vec!["stopped early".to_string(), reason.clone()]);
    }
    out.push_str(&format!("{summary}\n"));
    out.push_str(&produce_tables(report));
    out
}

/// A produce run's steps and its brokers as librdkafka saw them, when it has them.
fn produce_tables(report: &crate::kafka::ProduceReport) -> String {
    let mut out = String::new();
    if let Some(steps) = &report.steps {
        let mut ramp =
            table(&["target msg/s", "achieved msg/s", "p99 ms", "publish delay p99 ms", "errors", "kept up"]);
        for step in steps {
            ramp.add_row(vec![
                step.target_rate.to_string(),
                format!("{:.0}", step.achieved_rate),
                format!("{:.1}", step.p99_ms),
                format!("{:.1}", step.publish_delay_p99_ms),
                step.errors.to_string(),
                if step.sustained { "yes".into() } else { "no".into() },
            ]);
        }
        out.push_str(&format!("{ramp}\n"));
    }
    if !report.brokers.is_empty() {
        let mut brokers =
            table(&["broker", "queue p99 µs", "outbuf p99 µs", "rtt p99 µs", "throttle max ms", "retries", "timeouts"]);
        let p99 =
            |w: Option<crate::kafka::report::WindowUs>| w.map(|w| w.p99.to_string()).unwrap_or_else(|| "-".into());
        for b in &report.brokers {
            brokers.add_row(vec![
                b.name.clone(),
                p99(b.int_latency_us),
                p99(b.outbuf_latency_us),
                p99(b.rtt_us),
                b.throttle_ms.map(|w| w.max.to_string()).unwrap_or_else(|| "-".into()),
                b.txretries.to_string(),
                b.req_timeouts.to_string(),
            ]);
        }
        out.push_str(&format!("{brokers}\n"));
    }
    out
}

/// One progress line of a consume run.
pub fn consume_interval(interval: &crate::kafka::consume::ConsumeInterval) -> String {
    format!(
        "{:7.1} s: {} records, {:.1} records/sec ({:.2} MB/sec), e2e {:.1} ms avg, {:.1} ms p99, lag {}{}",
        interval.end_secs,
        interval.records,
        interval.records_per_sec,
        interval.mb_per_sec,
        interval.e2e_avg_ms,
        interval.e2e_p99_ms,
        interval.lag.map_or_else(|| "unreadable".to_string(), |lag| lag.to_string()),
        interval.insert_p99_ms.map(|ms| format!(", insert p99 {ms:.1} ms")).unwrap_or_default()
    )
}

fn latency_line(latency: &crate::latency::LatencyMs) -> String {
    format!(
        "avg {:.1}, p50 {:.1}, p95 {:.1}, p99 {:.1}, p99.9 {:.1}, max {:.1}",
        latency.avg, latency.p50, latency.p95, latency.p99, latency.p999, latency.max
    )
}

/// The summary of a consume run.
pub fn consume_summary(report: &crate::kafka::consume::ConsumeReport) -> String {
    let mut summary = Table::new();
    summary.load_style(UTF8_FULL_CONDENSED).set_header(vec!["consume run", "result"]);
    let v = &report.validation;
    let m = &report.membership;
    let mut rows: Vec<(String, String)> = vec![
        ("group".into(), format!("{} ({} members on {} partitions)", report.group, report.members, report.partitions)),
        (
            "throughput".into(),
            format!(
                "{} records, {:.1} records/s, {:.2} MB/s over {:.1} s",
                report.consumed, report.records_per_sec, report.mb_per_sec, report.duration_secs
            ),
        ),
        ("end-to-end ms (event time)".into(), latency_line(&report.e2e_ms)),
        ("end-to-end ms (produce time)".into(), latency_line(&report.e2e_record_ms)),
        (
            "validation".into(),
            format!(
                "{} events of {} devices, {} lost, {} duplicated, {} out of order{}{}",
                v.unique,
                v.devices,
                v.lost,
                v.duplicated,
                v.out_of_order,
                if v.foreign > 0 { format!(", {} not plateau's", v.foreign) } else { String::new() },
                if v.from_first_event {
                    ""
                } else {
                    " (joined mid-stream: gaps counted from each device's first event read)"
                }
            ),
        ),
        (
            "lag".into(),
            format!(
                "{:?}: last {}, max {}{}",
                report.lag.status,
                report.lag.last.map_or_else(|| "-".to_string(), |lag| lag.to_string()),
                report.lag.max,
                report
                    .lag
                    .last_error
                    .as_ref()
                    .map(|e| format!(" ({} unreadable: {e})", report.lag.unreadable))
                    .unwrap_or_default()
            ),
        ),
        (
            "group membership".into(),
            format!(
                "joined in {:.0} ms, {} rebalances (longest {:.0} ms), partitions per member {:?}{}",
                m.join_ms,
                m.rebalances,
                m.rebalance_max_ms,
                m.assigned,
                if m.idle_members > 0 { format!(", {} idle", m.idle_members) } else { String::new() }
            ),
        ),
    ];
    if let Some(catch_up) = &report.catch_up {
        rows.push((
            "catch-up".into(),
            match catch_up.drained_secs {
                Some(secs) => format!(
                    "backlog of {} records drained in {:.1} s: {:.1} records/s, {:.2} MB/s",
                    catch_up.backlog_records, secs, catch_up.records_per_sec, catch_up.mb_per_sec
                ),
                None => format!(
                    "backlog of {} records NOT drained: {} read, {:.1} records/s, {:.2} MB/s",
                    catch_up.backlog_records, catch_up.records, catch_up.records_per_sec, catch_up.mb_per_sec
                ),
            },
        ));
    }
    if let Some(rtt) = report.fetch_rtt_us {
        rows.push(("fetch round trip µs".into(), format!("avg {}, p99 {}, max {}", rtt.avg, rtt.p99, rtt.max)));
    }
    if let Some(sink) = &report.sink {
        rows.push((
            format!("sink {}", sink.table),
            format!(
                "{} rows inserted, {} already stored, {} batches ({} failed), transaction ms {}{}",
                sink.rows_inserted,
                sink.rows_already_stored,
                sink.batches,
                sink.failed_batches,
                latency_line(&sink.insert_ms),
                sink.last_error.as_ref().map(|e| format!("; last failure: {e}")).unwrap_or_default()
            ),
        ));
    }
    if report.errors.total > 0 {
        rows.push((
            "errors".into(),
            format!("{}; last: {}", report.errors.total, report.errors.last_error.as_deref().unwrap_or("-")),
        ));
    }
    if let Some(reason) = &report.stopped_early {
        rows.push(("stopped early".into(), reason.clone()));
    }
    for (name, value) in rows {
        summary.add_row(vec![name, value]);
    }
    format!("{summary}\n")
}

/// `plateau produce --dry-run`: how fast events are written, without Kafka.
pub fn generation_rate(rate: &crate::kafka::event::GenerationRate, seconds: f64) -> String {
    format!(
        "{} events in {seconds:.1} s: {:.0} events/s, {:.0} per worker thread, {:.0} bytes each\n",
        rate.events, rate.events_per_sec, rate.events_per_sec_per_worker, rate.bytes_per_event
    )
}

/// `plateau rules check`: what a rule directory holds.
pub fn rules_checked(place: &str, signals: usize, rules: usize) -> String {
    format!("{place}: {signals} signals, {rules} rules, no errors\n")
}

/// `plateau rules write`: the files written.
pub fn rules_written(paths: &[std::path::PathBuf]) -> String {
    let mut out: String = paths.iter().map(|path| format!("wrote {}\n", path.display())).collect();
    out.push_str("edit them, check them with `plateau rules check DIR`, use them with `--rules DIR`\n");
    out
}

/// `plateau rules bench`: how long the rules took over synthetic evidence.
pub fn rules_bench(
    rules: usize,
    series: usize,
    points: usize,
    took: std::time::Duration,
    verdict: &crate::rules::Verdict,
) -> String {
    format!(
        "{rules} rules over {series} series x {points} points: {:.1} ms (target < 100 ms); verdict {} ({:.2})\n",
        took.as_secs_f64() * 1000.0,
        verdict.bound,
        verdict.confidence
    )
}

/// The capacity model's loads and ceilings.
pub fn model_table(prediction: &crate::model::Prediction) -> String {
    let l = &prediction.loads;
    let mut loads = table(&["load", "MB/s"]);
    for (name, value) in [
        ("producers → cluster (network)", l.producer_network_mbps),
        ("replication (broker network)", l.replication_network_mbps),
        ("consumers ← cluster (network)", l.consumer_network_mbps),
        ("remote storage (network)", l.remote_storage_network_mbps),
        ("total network", prediction.total_network_mbps),
        ("local writes (I/O)", l.io_write_mbps),
        ("local reads (I/O)", l.io_read_mbps),
        ("total I/O", prediction.total_io_mbps),
    ] {
        loads.add_row(vec![name.to_string(), format!("{value:.1}")]);
    }
    let mut out = format!("{loads}\nfan-out {:.2}\n", prediction.fan_out);
    let c = &prediction.max_ingress_mbps;
    if prediction.binding.is_some() {
        let mut ceilings = table(&["resource", "max ingress MB/s"]);
        for (name, value) in
            [("broker NICs in", c.nic_in_mbps), ("broker NICs out", c.nic_out_mbps), ("broker disks", c.disk_mbps)]
        {
            if let Some(value) = value {
                ceilings.add_row(vec![name.to_string(), format!("{value:.1}")]);
            }
        }
        out.push_str(&format!(
            "{ceilings}\npredicted bottleneck: {} at {:.1} MB/s of producer ingress\n",
            prediction.binding.as_deref().unwrap_or("-"),
            prediction.predicted_max_ingress_mbps.unwrap_or(0.0)
        ));
    }
    out
}
