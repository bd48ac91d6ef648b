//! Per-hop latency breakdown from the timing headers that each hop of the chain adds to the
//! response (NGINX `$request_time`, Envoy `x-envoy-upstream-service-time`, W3C `Server-Timing`).
//!
//! Hops are listed from the outside in. A hop's header contains the time that hop and everything
//! inside it took, so a hop's self time is its time minus the time of the next inner hop that
//! reported one. What the client measured beyond the outermost hop (service time minus the
//! outermost hop's time) is the network and client remainder.
//!
//! A missing header means that hop never got a response from further in (it responded itself,
//! as Envoy does with a 503 when no upstream is healthy): the hop gets no sample, never a 0 ms
//! one, and its time goes to the next outer hop that reported. A self time below zero, which
//! happens when a coarse source (whole milliseconds) is compared with a finer one, is recorded
//! as 0 and counted as clamped.
//!
//! Parsing reads the header bytes in place and allocates nothing.

use hdrhistogram::Histogram;
use http::{HeaderMap, HeaderName};

use super::new_histogram;
use super::origin::Origin;

/// Largest hop time accepted, one hour in microseconds; larger values count as invalid.
pub const MAX_HOP_MICROS: u64 = 3_600_000_000;

/// The notation of a hop's header value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HopFormat {
    /// Seconds with a fraction (`0.012`), as NGINX writes `$request_time` and
    /// `$upstream_header_time`. Several values (`0.004, 0.012` or `0.004 : 0.012`, written when
    /// NGINX tried several upstreams) are summed: NGINX waited for each attempt in turn.
    Seconds,
    /// Milliseconds (`12`), as Envoy writes `x-envoy-upstream-service-time`.
    Milliseconds,
    /// The `dur` (milliseconds) of the named entry of a W3C `Server-Timing` header.
    ServerTiming { metric: String },
}

/// One hop of the breakdown, as configured in the scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HopSpec {
    pub name: String,
    pub header: HeaderName,
    pub format: HopFormat,
    /// The part of the chain that responded itself when this header is missing.
    pub origin_when_missing: Option<Origin>,
}

/// A hop time read from a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HopTime {
    pub micros: u64,
    /// Smallest step the source can express, from the digits it wrote (1000 for whole ms).
    pub resolution_micros: u64,
    /// True when the value listed several upstream attempts.
    pub retried: bool,
}

/// The content of one hop's header in one response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HopReading {
    Present(HopTime),
    Missing,
    /// Present but not a time this parser accepts (empty, negative, junk, over an hour).
    Invalid,
}

/// Reads `spec`'s time from the response headers. Several header lines are treated as one
/// comma-joined value.
pub fn read_hop(headers: &HeaderMap, spec: &HopSpec) -> HopReading {
    let mut values = headers.get_all(&spec.header).iter().peekable();
    if values.peek().is_none() {
        return HopReading::Missing;
    }
    match &spec.format {
        HopFormat::ServerTiming { metric } => {
            for value in values {
                if let Some(found) = server_timing_duration(value.as_bytes(), metric) {
                    return found.map_or(HopReading::Invalid, HopReading::Present);
                }
            }
            HopReading::Missing
        }
        HopFormat::Seconds | HopFormat::Milliseconds => {
            let unit = if spec.format == HopFormat::Seconds {
                1_000_000
            } else {
                1_000
            };
            let mut total = HopTime {
                micros: 0,
                resolution_micros: 1,
                retried: false,
            };
            let mut parts = 0;
            for value in values {
                match sum_values(value.as_bytes(), unit) {
                    Some(Some(time)) => {
                        parts += 1 + usize::from(time.retried);
                        total.micros = total.micros.saturating_add(time.micros);
                        total.resolution_micros =
                            total.resolution_micros.max(time.resolution_micros);
                    }
                    Some(None) => {}
                    None => return HopReading::Invalid,
                }
            }
            if parts == 0 {
                // Only `-` entries: NGINX writes `-` when no upstream was contacted.
                return HopReading::Missing;
            }
            total.retried = parts > 1;
            if total.micros > MAX_HOP_MICROS {
                return HopReading::Invalid;
            }
            HopReading::Present(total)
        }
    }
}

/// Sums the comma- or colon-separated numbers of one header value, in `unit` microseconds
/// each. Returns `Some(None)` when every entry is `-`, `None` when an entry is invalid.
fn sum_values(value: &[u8], unit: u64) -> Option<Option<HopTime>> {
    let mut total: Option<HopTime> = None;
    for entry in value.split(|b| *b == b',' || *b == b':') {
        let entry = entry.trim_ascii();
        if entry == b"-" {
            continue;
        }
        let time = parse_decimal(entry, unit)?;
        total = Some(match total {
            None => time,
            Some(sum) => HopTime {
                micros: sum.micros.saturating_add(time.micros),
                resolution_micros: sum.resolution_micros.max(time.resolution_micros),
                retried: true,
            },
        });
    }
    Some(total)
}

/// Parses an unsigned decimal number (`12`, `0.012`) of `unit` microseconds into whole
/// microseconds, truncating digits finer than a microsecond. Rejects signs, exponents, empty
/// text and values over [`MAX_HOP_MICROS`].
pub fn parse_decimal(text: &[u8], unit: u64) -> Option<HopTime> {
    let (whole, fraction) = match text.iter().position(|b| *b == b'.') {
        Some(dot) => (&text[..dot], &text[dot + 1..]),
        None => (text, &text[text.len()..]),
    };
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    if !whole.iter().chain(fraction).all(u8::is_ascii_digit) {
        return None;
    }
    let mut micros: u64 = 0;
    for digit in whole {
        micros = micros
            .checked_mul(10)?
            .checked_add(u64::from(digit - b'0'))?;
        if micros > MAX_HOP_MICROS {
            return None;
        }
    }
    micros = micros.checked_mul(unit)?;
    // Each fraction digit is worth unit / 10^k microseconds; digits below 1 us are dropped.
    let mut place = unit;
    let mut resolution = unit;
    for digit in fraction {
        place /= 10;
        if place == 0 {
            break;
        }
        resolution = place;
        micros += u64::from(digit - b'0') * place;
    }
    if micros > MAX_HOP_MICROS {
        return None;
    }
    Some(HopTime {
        micros,
        resolution_micros: resolution.max(1),
        retried: false,
    })
}

/// Finds the entry named `metric` in a `Server-Timing` value (`db;dur=53, app;dur=47.2`) and
/// returns its `dur` in microseconds: `None` when no entry has that name, `Some(None)` when the
/// entry has no valid `dur`.
fn server_timing_duration(value: &[u8], metric: &str) -> Option<Option<HopTime>> {
    for entry in value.split(|b| *b == b',') {
        let mut params = entry.split(|b| *b == b';');
        let name = params.next().unwrap_or_default().trim_ascii();
        if !name.eq_ignore_ascii_case(metric.as_bytes()) {
            continue;
        }
        for param in params {
            let Some(eq) = param.iter().position(|b| *b == b'=') else {
                continue;
            };
            let key = param[..eq].trim_ascii();
            if key.eq_ignore_ascii_case(b"dur") {
                let raw = param[eq + 1..].trim_ascii();
                let raw = raw
                    .strip_prefix(b"\"")
                    .and_then(|r| r.strip_suffix(b"\""))
                    .unwrap_or(raw);
                return Some(parse_decimal(raw, 1_000));
            }
        }
        return Some(None);
    }
    None
}

/// Self and total times of one hop.
#[derive(Debug, Clone)]
pub struct HopStats {
    /// This hop's time minus the next inner reporting hop's time, microseconds.
    pub self_time: Histogram<u64>,
    /// The time in this hop's header, microseconds.
    pub total: Histogram<u64>,
    /// Responses without this header.
    pub missing: u64,
    /// Responses whose header held something other than a time.
    pub invalid: u64,
    /// Self times below zero, recorded as 0.
    pub clamped: u64,
    /// Sum of the self times before clamping, microseconds. Its mean is the unbiased one:
    /// rounding errors of coarse sources cancel out in it, where clamping adds them up.
    pub signed_sum: i64,
    /// Values listing several upstream attempts.
    pub retried: u64,
    /// Coarsest step seen in this hop's values or its inner hop's values, microseconds.
    pub resolution_micros: u64,
}

impl Default for HopStats {
    fn default() -> Self {
        HopStats {
            self_time: new_histogram(),
            total: new_histogram(),
            missing: 0,
            invalid: 0,
            clamped: 0,
            signed_sum: 0,
            retried: 0,
            resolution_micros: 0,
        }
    }
}

impl HopStats {
    fn add(&mut self, other: &HopStats) {
        let _ = self.self_time.add(&other.self_time);
        let _ = self.total.add(&other.total);
        self.missing += other.missing;
        self.invalid += other.invalid;
        self.clamped += other.clamped;
        self.signed_sum += other.signed_sum;
        self.retried += other.retried;
        self.resolution_micros = self.resolution_micros.max(other.resolution_micros);
    }

    fn reset(&mut self) {
        self.self_time.reset();
        self.total.reset();
        self.missing = 0;
        self.invalid = 0;
        self.clamped = 0;
        self.signed_sum = 0;
        self.retried = 0;
        self.resolution_micros = 0;
    }
}

/// The breakdown of successful responses: one entry per configured hop, outside in, and the
/// network and client remainder.
#[derive(Debug, Clone, Default)]
pub struct HopCounts {
    pub hops: Vec<HopStats>,
    /// Service time minus the outermost reporting hop's time, microseconds.
    pub network: Option<Histogram<u64>>,
    pub network_clamped: u64,
    /// Sum of the remainders before clamping, microseconds.
    pub network_signed_sum: i64,
    /// Latency minus service time: how long requests waited in the client before being sent
    /// (schedule lag, a busy connection), microseconds.
    pub client_wait: Option<Histogram<u64>>,
}

/// Most hops a breakdown records; more are rejected when the scenario is read.
pub const MAX_HOPS: usize = 16;

impl HopCounts {
    pub fn add(&mut self, other: &HopCounts) {
        if self.hops.len() < other.hops.len() {
            self.hops.resize_with(other.hops.len(), HopStats::default);
        }
        for (mine, theirs) in self.hops.iter_mut().zip(&other.hops) {
            mine.add(theirs);
        }
        if let Some(theirs) = &other.network {
            let _ = self.network.get_or_insert_with(new_histogram).add(theirs);
        }
        self.network_clamped += other.network_clamped;
        self.network_signed_sum += other.network_signed_sum;
        if let Some(theirs) = &other.client_wait {
            let _ = self
                .client_wait
                .get_or_insert_with(new_histogram)
                .add(theirs);
        }
    }

    pub fn reset(&mut self) {
        for hop in &mut self.hops {
            hop.reset();
        }
        if let Some(network) = &mut self.network {
            network.reset();
        }
        self.network_clamped = 0;
        self.network_signed_sum = 0;
        if let Some(wait) = &mut self.client_wait {
            wait.reset();
        }
    }

    /// Records the hop headers of one successful response with its latency and service time.
    pub fn record(
        &mut self,
        specs: &[HopSpec],
        headers: &HeaderMap,
        latency_micros: u64,
        service_micros: u64,
    ) {
        if specs.is_empty() {
            return;
        }
        let _ = self
            .client_wait
            .get_or_insert_with(new_histogram)
            .record(latency_micros.saturating_sub(service_micros));
        if self.hops.len() < specs.len() {
            self.hops.resize_with(specs.len(), HopStats::default);
        }
        let mut readings = [None::<HopTime>; MAX_HOPS];
        for (index, spec) in specs.iter().take(MAX_HOPS).enumerate() {
            match read_hop(headers, spec) {
                HopReading::Present(time) => readings[index] = Some(time),
                HopReading::Missing => self.hops[index].missing += 1,
                HopReading::Invalid => self.hops[index].invalid += 1,
            }
        }
        let count = specs.len().min(MAX_HOPS);
        let mut outermost = None;
        for index in 0..count {
            let Some(time) = readings[index] else {
                continue;
            };
            outermost.get_or_insert(time.micros);
            let inner = readings[index + 1..count].iter().flatten().next();
            let stats = &mut self.hops[index];
            let _ = stats.total.record(time.micros);
            if time.retried {
                stats.retried += 1;
            }
            let mut resolution = time.resolution_micros;
            let inner_micros = match inner {
                Some(inner) => {
                    resolution = resolution.max(inner.resolution_micros);
                    if inner.micros > time.micros {
                        stats.clamped += 1;
                    }
                    inner.micros
                }
                None => 0,
            };
            let self_micros = time.micros.saturating_sub(inner_micros);
            stats.signed_sum += time.micros as i64 - inner_micros as i64;
            stats.resolution_micros = stats.resolution_micros.max(resolution);
            let _ = stats.self_time.record(self_micros);
        }
        if let Some(outermost) = outermost {
            if outermost > service_micros {
                self.network_clamped += 1;
            }
            self.network_signed_sum += service_micros as i64 - outermost as i64;
            let _ = self
                .network
                .get_or_insert_with(new_histogram)
                .record(service_micros.saturating_sub(outermost));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn spec(header: &'static str, format: HopFormat) -> HopSpec {
        HopSpec {
            name: header.into(),
            header: HeaderName::from_static(header),
            format,
            origin_when_missing: None,
        }
    }

    fn read(format: HopFormat, values: &[&[u8]]) -> HopReading {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append("x-time", HeaderValue::from_bytes(value).unwrap());
        }
        read_hop(&headers, &spec("x-time", format))
    }

    fn present(micros: u64, resolution_micros: u64, retried: bool) -> HopReading {
        HopReading::Present(HopTime {
            micros,
            resolution_micros,
            retried,
        })
    }

    #[test]
    fn seconds_forms() {
        let s = || HopFormat::Seconds;
        assert_eq!(read(s(), &[b"0.012"]), present(12_000, 1_000, false));
        assert_eq!(read(s(), &[b"1.5"]), present(1_500_000, 100_000, false));
        assert_eq!(read(s(), &[b"2"]), present(2_000_000, 1_000_000, false));
        assert_eq!(read(s(), &[b"0.0123456789"]), present(12_345, 1, false));
        assert_eq!(read(s(), &[b" 0.004 "]), present(4_000, 1_000, false));
        assert_eq!(read(s(), &[b".5"]), present(500_000, 100_000, false));
    }

    #[test]
    fn seconds_upstream_retries_sum() {
        let s = || HopFormat::Seconds;
        assert_eq!(read(s(), &[b"0.004, 0.012"]), present(16_000, 1_000, true));
        assert_eq!(read(s(), &[b"0.004 : 0.012"]), present(16_000, 1_000, true));
        assert_eq!(
            read(s(), &[b"0.001, 0.002 : 0.003"]),
            present(6_000, 1_000, true)
        );
        assert_eq!(read(s(), &[b"-, 0.010"]), present(10_000, 1_000, false));
        assert_eq!(
            read(s(), &[b"0.001", b"0.002"]),
            present(3_000, 1_000, true)
        );
    }

    #[test]
    fn milliseconds_forms() {
        let ms = || HopFormat::Milliseconds;
        assert_eq!(read(ms(), &[b"11"]), present(11_000, 1_000, false));
        assert_eq!(read(ms(), &[b"0"]), present(0, 1_000, false));
        assert_eq!(read(ms(), &[b"2.25"]), present(2_250, 10, false));
    }

    #[test]
    fn server_timing_forms() {
        let st = |m: &str| HopFormat::ServerTiming { metric: m.into() };
        assert_eq!(
            read(st("inference"), &[b"inference;dur=7.25"]),
            present(7_250, 10, false)
        );
        assert_eq!(
            read(st("app"), &[b"db;dur=53, app;desc=\"App\";dur=47.2"]),
            present(47_200, 100, false)
        );
        assert_eq!(
            read(st("app"), &[b"db;dur=53", b"APP; dur = 4"]),
            present(4_000, 1_000, false)
        );
        assert_eq!(
            read(st("app"), &[b"app;dur=\"1.5\""]),
            present(1_500, 100, false)
        );
        assert_eq!(read(st("app"), &[b"db;dur=53"]), HopReading::Missing);
        assert_eq!(read(st("app"), &[b"app;desc=x"]), HopReading::Invalid);
        assert_eq!(read(st("app"), &[b"app;dur=-1"]), HopReading::Invalid);
        assert_eq!(read(st("app"), &[b"app;dur=1e3"]), HopReading::Invalid);
    }

    #[test]
    fn junk_values() {
        for format in [HopFormat::Seconds, HopFormat::Milliseconds] {
            assert_eq!(read(format.clone(), &[]), HopReading::Missing);
            assert_eq!(read(format.clone(), &[b"-"]), HopReading::Missing);
            assert_eq!(read(format.clone(), &[b"-, -"]), HopReading::Missing);
            for junk in [
                &b""[..],
                b"   ",
                b".",
                b"-1",
                b"-0.5",
                b"+3",
                b"1e3",
                b"12ms",
                b"0x10",
                b"NaN",
                b"inf",
                b"1..2",
                b"1,",
                b"99999999999999999999999999",
                b"\xff\xfe",
                b"1\xc3\xa9",
            ] {
                let header_value = HeaderValue::from_bytes(junk).unwrap();
                assert_eq!(
                    read(format.clone(), &[header_value.as_bytes()]),
                    HopReading::Invalid,
                    "{format:?} {:?}",
                    String::from_utf8_lossy(junk)
                );
            }
        }
        assert_eq!(
            read(HopFormat::Seconds, &[b"3600"]),
            present(MAX_HOP_MICROS, 1_000_000, false)
        );
        assert_eq!(
            read(HopFormat::Seconds, &[b"3600.000001"]),
            HopReading::Invalid
        );
        assert_eq!(
            read(HopFormat::Milliseconds, &[b"3600001"]),
            HopReading::Invalid
        );
    }

    fn chain() -> Vec<HopSpec> {
        vec![
            spec("x-outer", HopFormat::Seconds),
            spec("x-middle", HopFormat::Milliseconds),
            spec(
                "x-inner",
                HopFormat::ServerTiming {
                    metric: "model".into(),
                },
            ),
        ]
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    // Each test records one sample, and `min` returns its bucket's lowest value: exact here.
    #[test]
    fn self_times_telescope() {
        let mut counts = HopCounts::default();
        let response = headers(&[
            ("x-outer", "0.012"),
            ("x-middle", "9"),
            ("x-inner", "model;dur=6.5"),
        ]);
        counts.record(&chain(), &response, 14_000, 13_500);
        assert_eq!(counts.hops[0].self_time.min(), 3_000);
        assert_eq!(counts.hops[1].self_time.min(), 2_500);
        assert_eq!(counts.hops[2].self_time.min(), 6_500);
        assert_eq!(counts.network.as_ref().unwrap().min(), 1_500);
        assert_eq!(counts.client_wait.as_ref().unwrap().min(), 500);
        assert_eq!(counts.hops[0].resolution_micros, 1_000);
        assert_eq!(counts.hops[1].resolution_micros, 1_000);
        assert_eq!(counts.hops[2].resolution_micros, 100);
        assert!(counts.hops.iter().all(|h| h.clamped == 0));
    }

    #[test]
    fn missing_hop_gives_time_outward() {
        let mut counts = HopCounts::default();
        // The middle hop responded itself: no inner header and no middle header.
        let response = headers(&[("x-outer", "0.004")]);
        counts.record(&chain(), &response, 5_000, 5_000);
        assert_eq!(counts.hops[0].self_time.len(), 1);
        assert_eq!(counts.hops[0].self_time.min(), 4_000);
        assert_eq!(counts.hops[1].self_time.len(), 0);
        assert_eq!(counts.hops[1].missing, 1);
        assert_eq!(counts.hops[2].missing, 1);
        assert_eq!(counts.network.as_ref().unwrap().min(), 1_000);
    }

    #[test]
    fn negative_self_time_clamps() {
        let mut counts = HopCounts::default();
        let response = headers(&[
            ("x-outer", "0.002"),
            ("x-middle", "3"),
            ("x-inner", "model;dur=1"),
        ]);
        counts.record(&chain(), &response, 1_500, 1_500);
        assert_eq!(counts.hops[0].clamped, 1);
        assert_eq!(counts.hops[0].self_time.min(), 0);
        assert_eq!(counts.hops[1].self_time.min(), 2_000);
        assert_eq!(counts.network_clamped, 1);
        assert_eq!(counts.network.as_ref().unwrap().min(), 0);
        // The unclamped sums still add up to the service time.
        let signed: i64 = counts.hops.iter().map(|h| h.signed_sum).sum();
        assert_eq!(signed + counts.network_signed_sum, 1_500);
        assert_eq!(counts.hops[0].signed_sum, -1_000);
    }
}
