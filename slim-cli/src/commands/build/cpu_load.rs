//! A CPU load slim makes itself: one busy thread per CPU while a verification start runs, so
//! calls an app makes only on some schedules (thread start-up order, affinity, a slow runtime
//! init) show up as a failure here and not in production.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread::JoinHandle,
};

/// Busy threads, stopped and joined when dropped.
pub struct CpuLoad {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl CpuLoad {
    /// One busy thread per CPU this process may run on.
    pub fn start() -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let count = std::thread::available_parallelism().map_or(2, |n| n.get());
        let threads = (0..count)
            .filter_map(|i| {
                let stop = stop.clone();
                std::thread::Builder::new()
                    .name(format!("slim-load-{i}"))
                    .spawn(move || {
                        let mut x = 0u64;
                        while !stop.load(Ordering::Relaxed) {
                            // Work the optimiser cannot drop.
                            x = std::hint::black_box(x.wrapping_mul(6364136223846793005) + 1);
                        }
                    })
                    .ok()
            })
            .collect();
        Self { stop, threads }
    }

    /// Busy threads running.
    #[cfg(test)]
    pub fn threads(&self) -> usize {
        self.threads.len()
    }
}

impl Drop for CpuLoad {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_load_runs_until_dropped() {
        let load = CpuLoad::start();
        assert!(load.threads() >= 1);
        let threads = |name: &str| -> usize {
            std::fs::read_dir("/proc/self/task")
                .map(|d| {
                    d.filter_map(|e| e.ok())
                        .filter(|e| {
                            std::fs::read_to_string(e.path().join("comm"))
                                .is_ok_and(|c| c.starts_with(name))
                        })
                        .count()
                })
                .unwrap_or(0)
        };
        // Each thread names itself once it runs.
        for _ in 0..100 {
            if threads("slim-load-") == load.threads() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(threads("slim-load-"), load.threads());
        drop(load);
        assert_eq!(threads("slim-load-"), 0, "busy threads left running");
    }
}
