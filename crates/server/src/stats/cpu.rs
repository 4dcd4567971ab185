//! CPU time the server used, for `INFO cpu` and `/metrics`: read from `/proc` (Linux), where
//! the kernel keeps it in clock ticks of 1/100 s. Elsewhere every figure is 0.

/// Clock ticks per second in `/proc/<pid>/stat` (Linux's `USER_HZ`, 100 on every platform it
/// supports).
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU seconds, as `INFO cpu` reports them.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct CpuTimes {
    pub(crate) user: f64,
    pub(crate) sys: f64,
    pub(crate) user_children: f64,
    pub(crate) sys_children: f64,
    pub(crate) user_main_thread: f64,
    pub(crate) sys_main_thread: f64,
}

/// Reads the process's CPU time.
#[derive(Debug, Default)]
pub(crate) struct Cpu;

impl Cpu {
    pub(crate) fn now(&self) -> CpuTimes {
        let mut times = CpuTimes::default();
        if let Some(f) = read_stat("/proc/self/stat") {
            times.user = f[0];
            times.sys = f[1];
            times.user_children = f[2];
            times.sys_children = f[3];
        }
        let main = format!("/proc/self/task/{}/stat", std::process::id());
        if let Some(f) = read_stat(&main) {
            times.user_main_thread = f[0];
            times.sys_main_thread = f[1];
        }
        times
    }
}

fn read_stat(path: &str) -> Option<[f64; 4]> {
    parse_stat(&std::fs::read_to_string(path).ok()?)
}

/// utime, stime, cutime and cstime in seconds, from a `stat` line. The command name (in
/// parentheses) may hold spaces, so fields are counted from its closing parenthesis.
fn parse_stat(line: &str) -> Option<[f64; 4]> {
    let (_, rest) = line.rsplit_once(") ")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, so utime (14) .. cstime (17) are 11 ..= 14 here.
    let mut out = [0.0; 4];
    for (i, slot) in out.iter_mut().enumerate() {
        *slot = fields.get(11 + i)?.parse::<f64>().ok()? / TICKS_PER_SECOND;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stat_line_with_spaces_in_the_name_is_read() {
        let line = "4242 (kvs worker 1) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 130 7 3 20 0 4 0";
        assert_eq!(parse_stat(line), Some([2.5, 1.3, 0.07, 0.03]));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn this_process_has_used_some_cpu() {
        let mut spin = 0u64;
        let start = std::time::Instant::now();
        while start.elapsed() < std::time::Duration::from_millis(50) {
            spin = spin.wrapping_add(1);
        }
        assert!(spin > 0);
        let t = Cpu.now();
        assert!(t.user + t.sys > 0.0, "{t:?}");
    }
}
