//! The run loop: pacer -> lanes -> recorder -> interval snapshots.
//!
//! Open loop: a dedicated pacer thread releases each request at its absolute deadline (see
//! [`crate::timer`]) into a bounded queue that the lanes drain. The queue's capacity plus the
//! lanes is the cap on requests in flight; at the cap the pacer waits (the request goes out late
//! and its latency still counts from its intended time) or drops it, by policy. Closed loop: each
//! lane sends its next request as soon as the previous one ends.

pub mod stop;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use tokio::task::JoinSet;

pub use stop::StopSignal;

use crate::scenario::stages;
use crate::scenario::units::ReleaseGap;
use crate::scenario::{AtCapacity, LoadMode, RunPlan, Transport as TransportKind};
use crate::schedule::{self, Schedule};
use crate::stats::request_log::RequestLog;
use crate::stats::{Counts, IntervalSnapshot, PacerCounts, Recorder, Totals};
use crate::transport::{Job, Lane, Transport};

/// Receives each interval snapshot as the run goes (progress, interval files).
pub trait IntervalSink: Send {
    fn on_interval(&mut self, snapshot: &IntervalSnapshot);

    /// Completes the sink after the last interval (a file sink flushes and renames its file).
    /// `interrupted` is true when a stop signal cut the run short.
    fn finish(&mut self, interrupted: bool) -> std::io::Result<()> {
        let _ = interrupted;
        Ok(())
    }
}

/// How a run ended and what it measured.
pub struct RunOutcome {
    pub totals: Totals,
    pub started_at: SystemTime,
    /// From the start of the load to the end of the last request.
    pub elapsed: Duration,
    /// True when a stop signal cut the run short.
    pub interrupted: bool,
    pub lanes: usize,
}

/// Delay between preparing the run and its first intended send, so lanes are waiting when the
/// first request is due.
pub const START_LEAD: Duration = Duration::from_millis(20);

/// Number of lanes (concurrent senders) of the plan's transport. HTTP/1.1 carries one request
/// per connection; HTTP/2 (REST or gRPC) carries up to `streams_per_connection` on each.
pub fn lane_count(plan: &RunPlan) -> usize {
    let per_connection = match plan.target.transport {
        TransportKind::Http1 => 1,
        TransportKind::Http2 => plan.target.http2.streams_per_connection,
        TransportKind::Grpc => plan.target.grpc.streams_per_connection,
    };
    match plan.load.mode {
        LoadMode::Closed { concurrency } => concurrency as usize,
        LoadMode::Open { .. } => plan
            .load
            .connections
            .saturating_mul(per_connection)
            .min(plan.load.max_in_flight) as usize,
    }
}

/// Number of connections the plan's transport opens: one per lane over HTTP/1.1, and
/// `load.connections` over HTTP/2 and gRPC, where lanes share connections.
pub fn connection_count(plan: &RunPlan) -> u64 {
    match plan.target.transport {
        TransportKind::Http1 => lane_count(plan) as u64,
        TransportKind::Http2 | TransportKind::Grpc => u64::from(plan.load.connections),
    }
}

/// Runs the load of `plan` over `transport`, feeding every interval to `sinks` and, when
/// given, every completed request to `request_log`.
pub async fn run<T: Transport>(
    plan: &RunPlan,
    transport: T,
    lanes: usize,
    sinks: &mut [Box<dyn IntervalSink>],
    stop: StopSignal,
    request_log: Option<Arc<RequestLog>>,
) -> RunOutcome {
    let shard_count = lanes.min(4 * thread::available_parallelism().map_or(2, |n| n.get()));
    let started_at = SystemTime::now();
    let start = Instant::now() + START_LEAD;
    if let Some(log) = &request_log {
        log.set_start(start);
    }
    let recorder = Arc::new(
        Recorder::new(shard_count, plan.route_header.clone())
            .with_hops(plan.hops.clone())
            .with_request_log(request_log),
    );
    let measure_start = start + plan.load.warmup;
    let end = measure_start + plan.load.duration;

    let mut tasks = JoinSet::new();
    let mut pacer_thread = None;
    match plan.load.mode {
        LoadMode::Open { .. } => {
            let queue_capacity = (plan.load.max_in_flight as usize).saturating_sub(lanes);
            let (sender, receiver) = flume::bounded::<Job>(queue_capacity);
            for index in 0..lanes {
                let mut lane = transport.lane(index);
                let receiver = receiver.clone();
                let recorder = Arc::clone(&recorder);
                tasks.spawn(async move {
                    while let Ok(job) = receiver.recv_async().await {
                        let exchange = lane.send(&job).await;
                        recorder.record(index, &exchange);
                    }
                });
            }
            let schedule = schedule::for_load(&plan.load).expect("open loop has a schedule");
            let pacer = Pacer {
                schedule,
                start,
                measure_start,
                at_cap: plan.load.at_cap,
                release_gap: plan.load.release_gap,
                recorder: Arc::clone(&recorder),
                stop: stop.clone(),
            };
            pacer_thread = Some(
                thread::Builder::new()
                    .name("inferload-pacer".into())
                    .spawn(move || pacer.run(sender))
                    .expect("the OS could not start the pacer thread"),
            );
        }
        LoadMode::Closed { .. } => {
            let sequence = Arc::new(AtomicU64::new(0));
            let stage_plans = Arc::new(plan.load.stages.clone());
            let warmup = plan.load.warmup;
            for index in 0..lanes {
                let mut lane = transport.lane(index);
                let recorder = Arc::clone(&recorder);
                let stop = stop.clone();
                let sequence = Arc::clone(&sequence);
                let stage_plans = Arc::clone(&stage_plans);
                tasks.spawn(async move {
                    tokio::time::sleep_until(start.into()).await;
                    loop {
                        let now = Instant::now();
                        if now >= end || stop.is_stopping() {
                            break;
                        }
                        // With concurrency stages, lane `index` only sends while the current
                        // stage's concurrency is above `index`.
                        let offset = now - start;
                        if !stage_plans.is_empty()
                            && index as u32 >= stages::concurrency_at(&stage_plans, warmup, offset)
                        {
                            let Some(next) = stages::next_stage_start(&stage_plans, warmup, offset)
                            else {
                                break;
                            };
                            let wake = (start + next).min(now + Duration::from_millis(50));
                            tokio::time::sleep_until(wake.into()).await;
                            continue;
                        }
                        let measured = now >= measure_start;
                        let job = Job {
                            intended: now,
                            sequence: sequence.fetch_add(1, Ordering::Relaxed),
                            measured,
                        };
                        recorder.record_release(Duration::ZERO, measured);
                        let exchange = lane.send(&job).await;
                        recorder.record(index, &exchange);
                    }
                });
            }
        }
    }

    let mut collector = Collector {
        recorder: Arc::clone(&recorder),
        start,
        measure_start,
        interval: plan.output.interval,
        rates: schedule::for_load(&plan.load),
        stages: plan
            .load
            .stages
            .iter()
            .map(|s| (s.duration, Arc::from(s.name.as_str())))
            .collect(),
        warmup: plan.load.warmup,
        index: 0,
        last_end: Duration::ZERO,
        totals: Totals::default(),
    };

    // Collect intervals until the load is over and every request has ended, a grace time
    // after a stop has passed, or a second stop arrives.
    let grace = plan.load.stop_grace;
    let mut grace_deadline: Option<Instant> = None;
    let mut interrupted = false;
    let mut next_tick = start + collector.interval;
    loop {
        while tasks.try_join_next().is_some() {}
        let load_over = match &pacer_thread {
            Some(thread) => thread.is_finished() && recorder.in_flight() == 0,
            None => tasks.is_empty(),
        };
        if load_over {
            break;
        }
        if stop.is_stopping() {
            interrupted = true;
            let deadline = *grace_deadline.get_or_insert_with(|| Instant::now() + grace);
            if stop.is_forced() || Instant::now() >= deadline {
                break;
            }
        }
        let wake = next_tick.min(Instant::now() + Duration::from_millis(20));
        tokio::select! {
            _ = tokio::time::sleep_until(wake.into()) => {}
            _ = stop.stopped() => {}
        }
        if Instant::now() >= next_tick {
            let mut snapshot = collector.collect(next_tick);
            snapshot.interrupted = is_interrupted(&stop);
            for sink in sinks.iter_mut() {
                sink.on_interval(&snapshot);
            }
            next_tick += collector.interval;
        }
    }

    tasks.abort_all();
    let finished = Instant::now();
    let mut snapshot = collector.collect(finished.max(start));
    snapshot.interrupted = is_interrupted(&stop);
    // An interrupted run always ends with a snapshot marked interrupted, even an empty one, so
    // the interval files show the interruption.
    if snapshot.counts.completed() + snapshot.counts.warmup_ok + snapshot.counts.warmup_errors > 0
        || snapshot.pacer.sent + snapshot.pacer.dropped > 0
        || snapshot.interrupted
    {
        for sink in sinks.iter_mut() {
            sink.on_interval(&snapshot);
        }
    }
    if let Some(thread) = pacer_thread {
        stop.request_stop();
        let _ = thread.join();
    }

    // A plan finished early on purpose (see `StopSignal::finish`) is not an interruption; its
    // measured window ends where scheduling stopped.
    let finished_early = stop.finished_at();
    if finished_early.is_some() {
        interrupted = stop.is_forced();
    }
    let mut totals = collector.totals;
    let measured_end = finished_early
        .unwrap_or(finished)
        .min(end)
        .max(measure_start);
    totals.measured_for = measured_end - measure_start;
    if interrupted {
        totals.measured_for = finished.saturating_duration_since(measure_start);
    }
    totals.in_flight_at_end = recorder.in_flight();
    RunOutcome {
        totals,
        started_at,
        elapsed: finished.saturating_duration_since(start),
        interrupted,
        lanes,
    }
}

/// Returns whether a stop signal has interrupted the run; a plan finished early on purpose
/// (see [`StopSignal::finish`]) is not interrupted.
fn is_interrupted(stop: &StopSignal) -> bool {
    stop.is_stopping() && stop.finished_at().is_none()
}

/// Releases open-loop requests at their deadlines, on its own thread.
struct Pacer {
    schedule: Box<dyn Schedule>,
    start: Instant,
    measure_start: Instant,
    at_cap: AtCapacity,
    /// Shortest time between two wake-ups. Each wake-up costs a sleep, two context switches
    /// and a wake-up of a runtime worker, which at 20,000 req/s and one wake-up per request
    /// took more CPU than the requests themselves. Requests closer together than the gap go
    /// out in groups, late by at most the gap plus the kernel's wake-up delay, and the lag
    /// records it. Requests further apart each get their own precise wake-up.
    release_gap: ReleaseGap,
    recorder: Arc<Recorder>,
    stop: StopSignal,
}

impl Pacer {
    fn run(mut self, sender: flume::Sender<Job>) {
        crate::timer::lower_timer_slack();
        crate::timer::request_short_slice();
        let mut sequence = 0u64;
        let mut last_wake = self.start - ReleaseGap::MAX;
        while let Some(offset) = self.schedule.next_offset() {
            let intended = self.start + offset;
            if !self.wait_until(intended, offset, &mut last_wake) {
                break;
            }
            let measured = intended >= self.measure_start;
            let job = Job {
                intended,
                sequence,
                measured,
            };
            sequence += 1;
            // A rendezvous queue (capacity 0) is always "full", so it cannot tell.
            let at_cap = sender.capacity().is_some_and(|c| c > 0) && sender.is_full();
            if self.at_cap == AtCapacity::Wait && at_cap {
                self.recorder.record_wait_at_cap(measured);
            }
            match self.at_cap {
                AtCapacity::Drop => match sender.try_send(job) {
                    Ok(()) => self.release(intended, measured),
                    Err(flume::TrySendError::Full(_)) => self.recorder.record_drop(measured),
                    Err(flume::TrySendError::Disconnected(_)) => break,
                },
                AtCapacity::Wait => {
                    let mut pending = job;
                    loop {
                        match sender.send_timeout(pending, Duration::from_millis(50)) {
                            Ok(()) => break,
                            Err(flume::SendTimeoutError::Timeout(job))
                                if !self.stop.is_stopping() =>
                            {
                                pending = job;
                            }
                            Err(_) => return,
                        }
                    }
                    self.release(intended, measured);
                }
            }
        }
    }

    fn release(&self, intended: Instant, measured: bool) {
        let lag = Instant::now().saturating_duration_since(intended);
        self.recorder.record_release(lag, measured);
    }

    /// Sleeps until `deadline`, waking every 50 ms to check for a stop. Returns false on stop.
    ///
    /// Waits for the release gap (at the schedule's rate at `offset`) instead when `deadline`
    /// is closer than that to the previous wake-up, without spinning, so the request goes out
    /// with every other request due by then.
    fn wait_until(&self, deadline: Instant, offset: Duration, last_wake: &mut Instant) -> bool {
        let mut gap = None;
        loop {
            if self.stop.is_stopping() {
                return false;
            }
            let now = Instant::now();
            if now >= deadline {
                return true;
            }
            let gap =
                *gap.get_or_insert_with(|| self.release_gap.at_rate(self.schedule.rate_at(offset)));
            let batched = deadline < *last_wake + gap;
            if batched {
                std::thread::sleep(*last_wake + gap - now);
            } else {
                let step = (deadline - now).min(Duration::from_millis(50));
                crate::timer::sleep_until(now + step);
            }
            *last_wake = Instant::now();
        }
    }
}

struct Collector {
    recorder: Arc<Recorder>,
    start: Instant,
    measure_start: Instant,
    interval: Duration,
    /// A second instance of the open-loop schedule, for target rates; `None` for closed loop.
    rates: Option<Box<dyn Schedule>>,
    /// Duration and name of each stage, in order.
    stages: Vec<(Duration, Arc<str>)>,
    warmup: Duration,
    index: u64,
    last_end: Duration,
    totals: Totals,
}

impl Collector {
    fn collect(&mut self, at: Instant) -> IntervalSnapshot {
        let mut counts = Counts::default();
        let mut pacer = PacerCounts::default();
        self.recorder.drain_into(&mut counts, &mut pacer);
        self.totals.counts.add(&counts);
        self.totals.pacer.add(&pacer);
        let end = at.saturating_duration_since(self.start);
        let middle = (self.last_end + end) / 2;
        let stage = self.stage_at(middle);
        let snapshot = IntervalSnapshot {
            index: self.index,
            start: self.last_end,
            end,
            warmup: at <= self.measure_start,
            // The rate at the interval's middle is its mean target rate for a held rate and
            // for a linear ramp alike.
            target_rate: self.rates.as_ref().map(|r| r.rate_at(middle)),
            stage,
            stage_name: stage.map(|i| Arc::clone(&self.stages[i].1)),
            counts,
            pacer,
            in_flight: self.recorder.in_flight(),
            interrupted: false,
        };
        self.index += 1;
        self.last_end = end;
        snapshot
    }

    /// Index of the stage running at `offset`, or `None` in the warm-up or without stages.
    fn stage_at(&self, offset: Duration) -> Option<usize> {
        let mut start = self.warmup;
        if offset < start {
            return None;
        }
        for (index, (duration, _)) in self.stages.iter().enumerate() {
            start += *duration;
            if offset < start {
                return Some(index);
            }
        }
        self.stages.len().checked_sub(1)
    }
}
