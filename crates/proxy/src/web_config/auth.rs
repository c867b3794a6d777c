//! Basic auth: passwords checked with bcrypt one at a time off the async workers, at most
//! [`MAX_PENDING_CHECKS`] waiting, outcomes cached as digests (valid and invalid apart).

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use parking_lot::Mutex;

use super::{Loaded, Verdict};

/// A bcrypt hash of "fakepassword" (exporter-toolkit's): unknown users are checked against it, so a
/// failed login takes as long whether the user exists or not.
pub(super) const UNKNOWN_USER_HASH: &str =
    "$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi";
/// Cached authentication outcomes (exporter-toolkit's size).
pub(super) const AUTH_CACHE_SIZE: usize = 100;
/// Password checks (bcrypt) waiting or running at once; a request beyond them is answered 503 at once,
/// so a flood of made-up passwords cannot queue a scraper's first login behind it for minutes.
pub const MAX_PENDING_CHECKS: usize = 16;

/// SHA-256 of a user, its configured hash and a password: what the outcome caches keep.
type Digest = [u8; 32];

fn digest(user: &str, hash: &str, pass: &str) -> Digest {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for part in [user, hash, pass] {
        ctx.update(&(part.len() as u64).to_le_bytes());
        ctx.update(part.as_bytes());
    }
    let mut out = [0; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// Adds `key` to `set`, first dropping a tenth of it when it holds [`AUTH_CACHE_SIZE`] (whichever
/// the set yields first, as exporter-toolkit does).
fn remember(set: &Mutex<HashSet<Digest>>, key: Digest) {
    let mut set = set.lock();
    if set.len() >= AUTH_CACHE_SIZE {
        let drop: Vec<Digest> = set.iter().take(AUTH_CACHE_SIZE / 10).copied().collect();
        for k in &drop {
            set.remove(k);
        }
    }
    set.insert(key);
}

/// One place among the [`MAX_PENDING_CHECKS`], given back when dropped.
struct Pending(Arc<AtomicUsize>);

impl Pending {
    fn take(count: &Arc<AtomicUsize>) -> Option<Self> {
        count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_PENDING_CHECKS).then_some(n + 1)
            })
            .ok()
            .map(|_| Self(Arc::clone(count)))
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Password checks, and their outcomes cached.
#[derive(Debug)]
pub(super) struct Passwords {
    /// Credentials found valid, and found invalid: digests of user, hash and password, each set
    /// bounded on its own, so made-up passwords never push out a scraper's valid ones.
    granted: Mutex<HashSet<Digest>>,
    refused: Mutex<HashSet<Digest>>,
    /// bcrypt runs one check at a time (it is slow on purpose); the permit lives in the blocking task,
    /// so a request dropped while its check runs does not let the next one start beside it.
    pub(super) bcrypt: Arc<tokio::sync::Semaphore>,
    /// Checks waiting for bcrypt or running, at most [`MAX_PENDING_CHECKS`].
    pub(super) pending: Arc<AtomicUsize>,
    /// bcrypt checks run so far.
    checks: AtomicU64,
}

impl Passwords {
    pub(super) fn new() -> Self {
        Self {
            granted: Mutex::new(HashSet::new()),
            refused: Mutex::new(HashSet::new()),
            bcrypt: Arc::new(tokio::sync::Semaphore::new(1)),
            pending: Arc::new(AtomicUsize::new(0)),
            checks: AtomicU64::new(0),
        }
    }

    /// Forgets every cached outcome (a new configuration).
    pub(super) fn forget(&self) {
        self.granted.lock().clear();
        self.refused.lock().clear();
    }

    /// bcrypt checks run so far.
    pub(super) fn checks(&self) -> u64 {
        self.checks.load(Ordering::Relaxed)
    }

    /// Checks a request's `Authorization` header against `config`'s users (which are not empty).
    pub(super) async fn check(&self, config: &Loaded, authorization: Option<&[u8]>) -> Verdict {
        let Some((user, pass)) = authorization.and_then(basic_credentials) else {
            return Verdict::Unauthorized;
        };
        let (hash, known) = match config.users.get(&user) {
            Some(h) => (h.clone(), true),
            None => (config.unknown_user_hash.clone(), false),
        };
        let key = digest(&user, &hash, &pass);
        if self.granted.lock().contains(&key) {
            return Verdict::Allowed;
        }
        if self.refused.lock().contains(&key) {
            return Verdict::Unauthorized;
        }
        let Some(pending) = Pending::take(&self.pending) else {
            return Verdict::Busy;
        };
        let Ok(permit) = Arc::clone(&self.bcrypt).acquire_owned().await else {
            return Verdict::Unauthorized;
        };
        self.checks.fetch_add(1, Ordering::Relaxed);
        let matches = tokio::task::spawn_blocking(move || {
            let _held = (permit, pending);
            bcrypt::verify(pass.as_bytes(), &hash).unwrap_or(false)
        })
        .await
        .unwrap_or(false);
        if known && matches {
            remember(&self.granted, key);
            Verdict::Allowed
        } else {
            remember(&self.refused, key);
            Verdict::Unauthorized
        }
    }
}

/// The user and password of a `Basic` `Authorization` header.
pub(super) fn basic_credentials(header: &[u8]) -> Option<(String, String)> {
    use base64::Engine as _;
    let header = std::str::from_utf8(header).ok()?.trim();
    let (scheme, encoded) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, pass) = decoded.split_once(':')?;
    Some((user.to_string(), pass.to_string()))
}
