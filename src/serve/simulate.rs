//! The simulation shared by REST and gRPC: per-request latency, stalls, failures and route
//! labels, drawn from the seeded generator in request order.

use std::cmp::Reverse;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::Rng;

use super::State;

/// What the simulation decided for one infer request. Faults are applied by the protocol
/// handler on top of it.
pub(crate) struct Verdict {
    /// Position of the request among all infer requests (REST and gRPC), from 1.
    pub count: u64,
    /// Simulated service time, stalls included.
    pub delay: Duration,
    pub fail: bool,
    /// Route label drawn from the weights, if routes are configured.
    pub route: Option<String>,
    /// Headers (gRPC: metadata) added to the response, success or failure.
    pub headers: http::HeaderMap,
}

impl State {
    /// Draws the latency, failure and route of the next infer request.
    pub(crate) fn decide(&self) -> Verdict {
        let count = self.infer_count.fetch_add(1, Ordering::Relaxed) + 1;
        let (delay, fail, route) = {
            let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
            let delay = self.options.latency.sample(&mut *rng);
            let fail = self.options.error_rate > 0.0 && rng.gen::<f64>() < self.options.error_rate;
            let route = pick_route(&self.cumulative_weights, &mut rng);
            (delay, fail, route)
        };
        let stall = match self.options.stall_every {
            Some(every) if count % every == 0 => self.options.stall_for.0,
            _ => Duration::ZERO,
        };
        let mut headers = http::HeaderMap::new();
        if let Some(label) = route {
            if let Ok(value) = http::HeaderValue::try_from(format!(":{label}:")) {
                headers.insert("x-seldon-route", value);
            }
        }
        Verdict {
            count,
            delay: delay + stall,
            fail,
            route: route.map(str::to_string),
            headers,
        }
    }

    /// Returns when a request that needs `total` of simulated service, arriving now, ends.
    ///
    /// A limited target serves each request in the slot that frees first, in arrival order:
    /// the request's simulated service starts when that slot frees (or now) and the slot is
    /// busy until it ends. Service times are computed rather than observed, so a late wake-up
    /// of this process delays a response but does not lower the capacity: N slots with a fixed
    /// latency L serve N / L requests per second.
    pub(crate) fn service_deadline(&self, total: Duration) -> Instant {
        match &self.slots {
            Some(slots) => {
                let mut slots = slots.lock().unwrap_or_else(|e| e.into_inner());
                let now = Instant::now();
                let free_at = slots.pop().map_or(now, |Reverse(at)| at);
                let end = free_at.max(now) + total;
                slots.push(Reverse(end));
                end
            }
            None => Instant::now() + total,
        }
    }

    /// Applies the faults that act on the whole target at infer request `count`: a crash
    /// exits the process, and an outage closes every listener and connection.
    pub(crate) fn apply_process_faults(&self, count: u64) {
        if self.faults.crashes_at(count) {
            eprintln!("inferload serve: simulated crash at infer request {count}");
            std::process::exit(70);
        }
        if let Some(outage) = self.faults.down_after(count) {
            // Without a receiver no listener is running, so there is nothing to close.
            let _ = self.down.send(outage);
        }
    }

    /// Whether `model` is served.
    pub(crate) fn serves(&self, model: &str) -> bool {
        self.options.models.is_empty() || self.options.models.iter().any(|m| m == model)
    }
}

fn pick_route<'a>(cumulative: &'a [(String, f64)], rng: &mut SmallRng) -> Option<&'a str> {
    let total = cumulative.last()?.1;
    let draw = rng.gen::<f64>() * total;
    cumulative
        .iter()
        .find(|(_, upto)| draw < *upto)
        .or(cumulative.last())
        .map(|(l, _)| l.as_str())
}
