//! Sub-millisecond sleeps.
//!
//! Tokio's timer wheel has a 1 ms tick, so `tokio::time::sleep(2ms)` wakes 2 to 3 ms later. The
//! pacer and the embedded target need wake-ups within tens of microseconds, so both use this
//! module: a blocking [`sleep_until`] for dedicated threads, and [`PreciseTimer`], one thread that
//! wakes async tasks at their deadlines. Both lower the thread's Linux timer slack (50 us by
//! default) to 1 ns and spin for the last few microseconds.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::{Duration, Instant};

/// How long before a deadline a sleeping thread stops sleeping in the kernel and spins.
const SPIN_WINDOW: Duration = Duration::from_micros(20);

/// Lowers the calling thread's timer slack so that kernel sleeps end close to their deadline.
pub fn lower_timer_slack() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_TIMERSLACK takes a plain integer argument and only changes the calling
    // thread's timer slack; it cannot affect memory safety.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0);
    }
}

/// Scheduling slice asked for by [`request_short_slice`]: the shortest the kernel grants.
const SHORT_SLICE: Duration = Duration::from_micros(100);

/// Asks the kernel for a short scheduling slice for the calling thread (Linux 6.12 and later
/// read `sched_runtime` of a normal thread as its slice). A thread with a shorter slice than
/// the one running preempts it when it wakes up, instead of waiting up to the running thread's
/// slice (0.75 ms by default, several on a busy CPU). The pacer shares its CPU with the runtime
/// workers, so this is what keeps its wake-ups on time while the lanes are busy. It changes
/// neither the thread's policy nor its nice value, and does nothing when the thread is not a
/// normal (`SCHED_OTHER`) thread or the kernel refuses.
pub fn request_short_slice() {
    #[cfg(target_os = "linux")]
    {
        /// `struct sched_attr`, version 0 (48 bytes), from `linux/sched/types.h`.
        #[repr(C)]
        struct SchedAttr {
            size: u32,
            policy: u32,
            flags: u64,
            nice: i32,
            priority: u32,
            runtime: u64,
            deadline: u64,
            period: u64,
        }
        // SAFETY: sched_getscheduler and getpriority take plain integers and read no memory of
        // ours; errno is thread-local.
        let (policy, nice) = unsafe {
            *libc::__errno_location() = 0;
            let nice = libc::getpriority(libc::PRIO_PROCESS, 0);
            (libc::sched_getscheduler(0), nice)
        };
        if policy != libc::SCHED_OTHER {
            return;
        }
        let attr = SchedAttr {
            size: std::mem::size_of::<SchedAttr>() as u32,
            policy: libc::SCHED_OTHER as u32,
            flags: 0,
            nice,
            priority: 0,
            runtime: SHORT_SLICE.as_nanos() as u64,
            deadline: 0,
            period: 0,
        };
        // SAFETY: `attr` is a valid, initialised `struct sched_attr` of the size it declares and
        // outlives the call; pid 0 is the calling thread.
        let result =
            unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0u32) };
        if result != 0 {
            tracing::debug!(
                "the kernel refused a short scheduling slice for the pacer: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}

/// Blocks the calling thread until `deadline`, sleeping in the kernel and spinning only for the
/// last [`SPIN_WINDOW`]. Call [`lower_timer_slack`] once on the thread first.
pub fn sleep_until(deadline: Instant) {
    loop {
        let now = Instant::now();
        if now >= deadline {
            return;
        }
        let remaining = deadline - now;
        if remaining > SPIN_WINDOW {
            thread::sleep(remaining - SPIN_WINDOW);
        } else {
            std::hint::spin_loop();
        }
    }
}

struct Entry {
    deadline: Instant,
    sequence: u64,
    waker: Waker,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        (self.deadline, self.sequence) == (other.deadline, other.sequence)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.deadline, self.sequence).cmp(&(other.deadline, other.sequence))
    }
}

#[derive(Default)]
struct Queue {
    heap: BinaryHeap<Reverse<Entry>>,
    next_sequence: u64,
}

/// A timer thread that wakes async tasks at deadlines with sub-millisecond precision.
pub struct PreciseTimer {
    queue: Mutex<Queue>,
    changed: Condvar,
}

impl PreciseTimer {
    /// Returns the process-wide timer, starting its thread on first use.
    pub fn global() -> &'static Arc<PreciseTimer> {
        static TIMER: OnceLock<Arc<PreciseTimer>> = OnceLock::new();
        TIMER.get_or_init(|| {
            let timer = Arc::new(PreciseTimer {
                queue: Mutex::new(Queue::default()),
                changed: Condvar::new(),
            });
            let worker = Arc::clone(&timer);
            thread::Builder::new()
                .name("inferload-timer".into())
                .spawn(move || worker.run())
                .expect("the OS could not start the timer thread");
            timer
        })
    }

    fn run(&self) {
        lower_timer_slack();
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let now = Instant::now();
            while let Some(Reverse(first)) = queue.heap.peek() {
                if first.deadline > now {
                    break;
                }
                let Reverse(entry) = queue.heap.pop().expect("peeked entry exists");
                entry.waker.wake();
            }
            let next = queue.heap.peek().map(|Reverse(e)| e.deadline);
            queue = match next {
                None => self.changed.wait(queue).unwrap_or_else(|e| e.into_inner()),
                Some(deadline) => {
                    let remaining = deadline.saturating_duration_since(Instant::now());
                    if remaining <= SPIN_WINDOW {
                        drop(queue);
                        sleep_until(deadline);
                        self.queue.lock().unwrap_or_else(|e| e.into_inner())
                    } else {
                        self.changed
                            .wait_timeout(queue, remaining - SPIN_WINDOW)
                            .unwrap_or_else(|e| e.into_inner())
                            .0
                    }
                }
            };
        }
    }

    fn register(&self, deadline: Instant, waker: Waker) {
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        let sequence = queue.next_sequence;
        queue.next_sequence += 1;
        let earliest = queue.heap.peek().map(|Reverse(e)| e.deadline);
        queue.heap.push(Reverse(Entry {
            deadline,
            sequence,
            waker,
        }));
        if earliest.is_none_or(|first| deadline < first) {
            self.changed.notify_one();
        }
    }
}

/// Completes at `deadline`, woken by the [`PreciseTimer`] thread.
pub fn precise_sleep_until(deadline: Instant) -> PreciseSleep {
    PreciseSleep { deadline }
}

/// Completes after `duration`, woken by the [`PreciseTimer`] thread.
pub fn precise_sleep(duration: Duration) -> PreciseSleep {
    precise_sleep_until(Instant::now() + duration)
}

/// The future returned by [`precise_sleep_until`].
pub struct PreciseSleep {
    deadline: Instant,
}

impl Future for PreciseSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.deadline {
            return Poll::Ready(());
        }
        // The timer wakes each registration once, so a spurious poll before the deadline
        // registers again rather than waiting on a waker that may be stale.
        PreciseTimer::global().register(self.deadline, cx.waker().clone());
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn precise_sleep_is_not_early() {
        for micros in [0u64, 50, 300, 1500] {
            let start = Instant::now();
            precise_sleep(Duration::from_micros(micros)).await;
            assert!(start.elapsed() >= Duration::from_micros(micros));
        }
    }

    #[test]
    fn blocking_sleep_is_not_early() {
        lower_timer_slack();
        let start = Instant::now();
        let deadline = start + Duration::from_micros(700);
        sleep_until(deadline);
        assert!(Instant::now() >= deadline);
    }
}
