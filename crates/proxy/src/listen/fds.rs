//! File descriptors: raise the soft limit to the hard one at start (as statsd_exporter's Go runtime
//! does), and size the connection caps from what the limit leaves, so that idle StatsD clients can
//! never take the descriptors a scrape needs.

use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// Descriptors kept for everything but client connections: listeners, the UDP and unixgram sockets,
/// the mapping file, /proc reads, the relay socket, logging.
pub const RESERVED_FDS: u64 = 64;
/// The most StatsD TCP connections a derived cap allows, however high the limit.
pub const MAX_DERIVED_TCP_CONNECTIONS: usize = 16_384;
/// The most HTTP connections a derived cap allows.
pub const MAX_DERIVED_HTTP_CONNECTIONS: usize = 1_024;

/// The open-files limit before and after [`raise_nofile_limit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdLimit {
    /// The soft limit found at start.
    pub before: u64,
    /// The soft limit now.
    pub soft: u64,
    /// The hard limit.
    pub hard: u64,
}

impl FdLimit {
    /// The descriptors left for connections, three quarters for StatsD TCP clients and a quarter for
    /// HTTP: `(tcp, http)`, each at least 8.
    pub fn connection_caps(&self) -> (usize, usize) {
        let budget = usize::try_from(self.soft.saturating_sub(RESERVED_FDS)).unwrap_or(usize::MAX);
        let tcp = (budget / 4 * 3).clamp(8, MAX_DERIVED_TCP_CONNECTIONS);
        let http = (budget / 4).clamp(8, MAX_DERIVED_HTTP_CONNECTIONS);
        (tcp, http)
    }
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (an unlimited hard limit is capped at 1 << 20, as
/// Go does), and returns both. On an error the limit is left as it is.
pub fn raise_nofile_limit() -> FdLimit {
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return FdLimit {
            before: 1024,
            soft: 1024,
            hard: 1024,
        };
    };
    let target = hard.min(1 << 20);
    let raised = target > soft && setrlimit(Resource::RLIMIT_NOFILE, target, hard).is_ok();
    FdLimit {
        before: soft,
        soft: if raised { target } else { soft },
        hard,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_leave_room_for_scrapes() {
        let at = |soft| {
            FdLimit {
                before: soft,
                soft,
                hard: soft,
            }
            .connection_caps()
        };
        assert_eq!(at(1024), (720, 240));
        assert_eq!(at(256), (144, 48));
        assert_eq!(at(64), (8, 8));
        assert_eq!(
            at(1 << 20),
            (MAX_DERIVED_TCP_CONNECTIONS, MAX_DERIVED_HTTP_CONNECTIONS)
        );
    }

    #[test]
    fn the_soft_limit_is_raised_to_the_hard_one() {
        let limit = raise_nofile_limit();
        assert!(limit.soft >= limit.before);
        assert!(limit.soft == limit.hard.min(1 << 20) || limit.soft == limit.before);
    }
}
