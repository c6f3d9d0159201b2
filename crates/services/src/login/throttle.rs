//! Login throttling: exponential backoff after failed logins, kept in two tables — per client
//! address (every failure from it, whatever the account name), and per account name *and*
//! client address. The second is never keyed by the account alone: a flood against an account
//! from one address must not lock its owner out from another (a lockout would be a denial of
//! service in itself); guessing one account from many addresses is bounded by the per-address
//! table and by the password-hashing pool.
//!
//! A key's first `allowed` failures cost nothing; each further one makes it wait
//! `base × 2^(n − 1)` for the n-th failure past the allowance, at most `max`. While a key
//! waits, attempts are refused without checking the password and without counting. A success
//! clears the pair's and the address's records. A record with no failure for `max` after its
//! backoff ended is forgotten. Each table holds at most `max_entries` records: when full,
//! forgotten records are swept first, then the record whose backoff ends soonest among a
//! sample is evicted. Account names are kept as a 128-bit digest, so a record's size does not
//! depend on what a client sends.
//!
//! A third table remembers the addresses where a login succeeded (for as long as a refresh
//! token lives, `refresh_token_lifetime_secs`, bounded like the others): such an address with
//! no failure since is *trusted*, and its logins may use the half of the hashing queue that
//! others cannot fill (see `crate::passwords`).

use infrastream_config::Settings;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Records looked at when a full table must evict one that is still live.
const EVICTION_SAMPLE: usize = 32;

/// The client address a record is kept under: an IPv4 address (also when mapped into IPv6),
/// or the /64 prefix of an IPv6 address (one host usually owns the whole /64).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AddressKey(IpAddr);

impl AddressKey {
    /// The key of `ip`.
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Self(IpAddr::V4(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self(IpAddr::V4(v4)),
                None => {
                    let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                    Self(IpAddr::V6(Ipv6Addr::from(prefix)))
                }
            },
        }
    }
}

/// An account name (as a digest) paired with a client address.
type PairKey = ([u8; 16], AddressKey);

fn pair_key(name: &str, from: IpAddr) -> PairKey {
    let digest = Sha256::digest(name.as_bytes());
    let mut name = [0u8; 16];
    name.copy_from_slice(&digest[..16]);
    (name, AddressKey::of(from))
}

/// When backoff starts and how it grows.
#[derive(Clone, Copy, Debug)]
struct Policy {
    allowed: u32,
    base: Duration,
    max: Duration,
}

impl Policy {
    /// The wait after a key's `failures`-th failure.
    fn backoff(&self, failures: u32) -> Duration {
        match failures.checked_sub(self.allowed) {
            None | Some(0) => Duration::ZERO,
            Some(past) => self
                .base
                .saturating_mul(1u32 << (past - 1).min(31))
                .min(self.max),
        }
    }
}

/// The failures of one key.
#[derive(Clone, Copy, Debug)]
struct Record {
    failures: u32,
    /// Attempts are refused until then.
    blocked_until: Instant,
    /// The later of the last failure and the end of its backoff; the record is forgotten once
    /// it has been quiet for `Policy::max` after this.
    quiet_from: Instant,
}

/// One table of records.
struct Table<K> {
    policy: Policy,
    max_entries: usize,
    records: HashMap<K, Record>,
    last_sweep: Option<Instant>,
}

impl<K: Eq + Hash + Copy> Table<K> {
    fn new(policy: Policy, max_entries: usize) -> Self {
        Self {
            policy,
            max_entries: max_entries.max(1),
            records: HashMap::new(),
            last_sweep: None,
        }
    }

    fn forgotten(&self, r: &Record, now: Instant) -> bool {
        now.saturating_duration_since(r.quiet_from) >= self.policy.max
    }

    /// How long `key` must still wait, if it must.
    fn wait(&self, key: &K, now: Instant) -> Option<Duration> {
        let r = self.records.get(key)?;
        (now < r.blocked_until).then(|| r.blocked_until - now)
    }

    /// Counts a failure of `key`; true when it starts (or lengthens) a backoff.
    fn fail(&mut self, key: K, now: Instant) -> bool {
        let known = self
            .records
            .get(&key)
            .is_some_and(|r| !self.forgotten(r, now));
        if !self.records.contains_key(&key) {
            self.make_room(now);
        }
        let r = self.records.entry(key).or_insert(Record {
            failures: 0,
            blocked_until: now,
            quiet_from: now,
        });
        if !known {
            r.failures = 0;
        }
        r.failures = r.failures.saturating_add(1);
        let backoff = self.policy.backoff(r.failures);
        r.blocked_until = now + backoff;
        r.quiet_from = r.blocked_until;
        !backoff.is_zero()
    }

    fn clear(&mut self, key: &K) {
        self.records.remove(key);
    }

    /// Makes room for one more record: forgotten records go (swept at most once a second),
    /// then, if still full, the sampled record whose backoff ends soonest.
    fn make_room(&mut self, now: Instant) {
        if self.records.len() < self.max_entries {
            return;
        }
        if self
            .last_sweep
            .is_none_or(|t| now.saturating_duration_since(t) >= Duration::from_secs(1))
        {
            self.last_sweep = Some(now);
            let max = self.policy.max;
            self.records
                .retain(|_, r| now.saturating_duration_since(r.quiet_from) < max);
        }
        while self.records.len() >= self.max_entries {
            let victim = self
                .records
                .iter()
                .take(EVICTION_SAMPLE)
                .min_by_key(|(_, r)| r.blocked_until)
                .map(|(k, _)| *k);
            match victim {
                Some(k) => self.records.remove(&k),
                None => return,
            };
        }
    }
}

/// Addresses where a login succeeded, and when it last did.
struct Trusted {
    ttl: Duration,
    max_entries: usize,
    since: HashMap<AddressKey, Instant>,
    last_sweep: Option<Instant>,
}

impl Trusted {
    fn contains(&self, key: &AddressKey, now: Instant) -> bool {
        self.since
            .get(key)
            .is_some_and(|t| now.saturating_duration_since(*t) < self.ttl)
    }

    fn insert(&mut self, key: AddressKey, now: Instant) {
        if !self.since.contains_key(&key) && self.since.len() >= self.max_entries {
            if self
                .last_sweep
                .is_none_or(|t| now.saturating_duration_since(t) >= Duration::from_secs(1))
            {
                self.last_sweep = Some(now);
                let ttl = self.ttl;
                self.since
                    .retain(|_, t| now.saturating_duration_since(*t) < ttl);
            }
            while self.since.len() >= self.max_entries {
                let oldest = self
                    .since
                    .iter()
                    .take(EVICTION_SAMPLE)
                    .min_by_key(|(_, t)| **t)
                    .map(|(k, _)| *k);
                match oldest {
                    Some(k) => self.since.remove(&k),
                    None => break,
                };
            }
        }
        self.since.insert(key, now);
    }
}

/// The backoff tables of a server, and the trusted addresses.
pub struct LoginThrottle {
    addresses: Mutex<Table<AddressKey>>,
    pairs: Mutex<Table<PairKey>>,
    trusted: Mutex<Trusted>,
}

impl LoginThrottle {
    /// Tables with the `login_*` settings.
    pub fn new(s: &Settings) -> Self {
        let base = Duration::from_millis(s.login_backoff_base_ms);
        let max = Duration::from_millis(s.login_backoff_max_ms);
        let policy = |allowed| Policy { allowed, base, max };
        Self {
            addresses: Mutex::new(Table::new(
                policy(s.login_address_failures_before_backoff),
                s.login_throttle_max_entries,
            )),
            pairs: Mutex::new(Table::new(
                policy(s.login_failures_before_backoff),
                s.login_throttle_max_entries,
            )),
            trusted: Mutex::new(Trusted {
                ttl: Duration::from_secs(s.refresh_token_lifetime_secs),
                max_entries: s.login_throttle_max_entries.max(1),
                since: HashMap::new(),
                last_sweep: None,
            }),
        }
    }

    /// How long a login for `name` from `from` must still wait, if it must.
    pub fn wait(&self, name: &str, from: IpAddr) -> Option<Duration> {
        self.wait_at(name, from, Instant::now())
    }

    /// Whether `from` failed to log in recently (its record is not forgotten yet).
    fn has_failures_at(&self, from: IpAddr, now: Instant) -> bool {
        let table = lock(&self.addresses);
        table
            .records
            .get(&AddressKey::of(from))
            .is_some_and(|r| !table.forgotten(r, now))
    }

    /// Counts a failed login for `name` from `from`.
    pub fn failed(&self, name: &str, from: IpAddr) {
        self.failed_at(name, from, Instant::now());
    }

    /// A successful login for `name` from `from`: the pair's and the address's records go,
    /// and the address is trusted.
    pub fn succeeded(&self, name: &str, from: IpAddr) {
        self.succeeded_at(name, from, Instant::now());
    }

    /// Whether `from` is trusted: a login succeeded there recently and none failed since.
    pub fn is_trusted(&self, from: IpAddr) -> bool {
        self.is_trusted_at(from, Instant::now())
    }

    fn succeeded_at(&self, name: &str, from: IpAddr, now: Instant) {
        let address = AddressKey::of(from);
        lock(&self.pairs).clear(&pair_key(name, from));
        lock(&self.addresses).clear(&address);
        lock(&self.trusted).insert(address, now);
    }

    fn is_trusted_at(&self, from: IpAddr, now: Instant) -> bool {
        lock(&self.trusted).contains(&AddressKey::of(from), now) && !self.has_failures_at(from, now)
    }

    fn wait_at(&self, name: &str, from: IpAddr, now: Instant) -> Option<Duration> {
        let address = lock(&self.addresses).wait(&AddressKey::of(from), now);
        let pair = lock(&self.pairs).wait(&pair_key(name, from), now);
        address.max(pair)
    }

    fn failed_at(&self, name: &str, from: IpAddr, now: Instant) {
        let address = AddressKey::of(from);
        if lock(&self.addresses).fail(address, now) {
            tracing::info!(address = %address.0, "failed logins from this address: backing off");
        }
        lock(&self.pairs).fail(pair_key(name, from), now);
    }

    /// Records held (per address, per pair).
    #[cfg(test)]
    fn sizes(&self) -> (usize, usize) {
        (
            lock(&self.addresses).records.len(),
            lock(&self.pairs).records.len(),
        )
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    fn throttle(pair: u32, address: u32, max_entries: usize) -> LoginThrottle {
        LoginThrottle::new(&Settings {
            login_failures_before_backoff: pair,
            login_address_failures_before_backoff: address,
            login_backoff_base_ms: 1000,
            login_backoff_max_ms: 8000,
            login_throttle_max_entries: max_entries,
            ..Settings::default()
        })
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn backoff_doubles_up_to_the_maximum() {
        let p = Policy {
            allowed: 2,
            base: SEC,
            max: 8 * SEC,
        };
        let waits: Vec<u64> = (1..=8).map(|n| p.backoff(n).as_secs()).collect();
        assert_eq!(waits, [0, 0, 1, 2, 4, 8, 8, 8]);
        assert_eq!(p.backoff(u32::MAX), 8 * SEC, "no overflow");
        let none_allowed = Policy { allowed: 0, ..p };
        assert_eq!(none_allowed.backoff(1), SEC);
    }

    #[test]
    fn a_pair_backs_off_without_locking_the_owner_out_elsewhere() {
        let t = throttle(3, 100, 1000);
        let (x, y) = (ip("10.0.0.1"), ip("10.0.0.2"));
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(t.wait_at("alice", x, t0), None);
            t.failed_at("alice", x, t0);
        }
        assert_eq!(t.wait_at("alice", x, t0), None, "within the allowance");
        t.failed_at("alice", x, t0);
        assert_eq!(t.wait_at("alice", x, t0), Some(SEC));
        assert_eq!(
            t.wait_at("alice", x, t0 + SEC / 4),
            Some(SEC * 3 / 4),
            "the wait counts down"
        );
        // The owner from another address, and other accounts from X, are not held up.
        assert_eq!(t.wait_at("alice", y, t0), None);
        assert_eq!(t.wait_at("bob", x, t0), None);
        // The next failure after the wait doubles it.
        t.failed_at("alice", x, t0 + SEC);
        assert_eq!(t.wait_at("alice", x, t0 + SEC), Some(2 * SEC));
        // A success clears the pair.
        t.succeeded_at("alice", x, t0);
        assert_eq!(t.wait_at("alice", x, t0 + SEC), None);
    }

    #[test]
    fn an_address_backs_off_over_all_account_names() {
        let t = throttle(100, 4, 1000);
        let (x, y) = (ip("10.0.0.1"), ip("10.0.0.2"));
        let t0 = Instant::now();
        for i in 0..5 {
            t.failed_at(&format!("user{i}"), x, t0);
        }
        assert_eq!(t.wait_at("anyone", x, t0), Some(SEC));
        assert_eq!(t.wait_at("anyone", y, t0), None);
        assert!(t.has_failures_at(x, t0) && !t.has_failures_at(y, t0));
        // A success from the address clears its record.
        t.succeeded_at("user0", x, t0);
        assert_eq!(t.wait_at("anyone", x, t0), None);
        assert!(!t.has_failures_at(x, t0));
        assert!(t.is_trusted_at(x, t0) && !t.is_trusted_at(y, t0));
        // A failure from a trusted address withdraws the trust while it is remembered.
        t.failed_at("user0", x, t0);
        assert!(!t.is_trusted_at(x, t0));
    }

    #[test]
    fn records_are_forgotten_after_a_quiet_maximum() {
        let t = throttle(1, 100, 1000);
        let x = ip("10.0.0.1");
        let t0 = Instant::now();
        for _ in 0..4 {
            t.failed_at("alice", x, t0);
        }
        // Failures 2, 3, 4 past an allowance of 1: the last wait is 4 s.
        assert_eq!(t.wait_at("alice", x, t0), Some(4 * SEC));
        // Quiet for the 8 s maximum after the wait ended: the next failure starts over.
        let later = t0 + 4 * SEC + 8 * SEC;
        assert_eq!(t.wait_at("alice", x, later), None);
        assert!(!t.has_failures_at(x, later), "forgotten");
        t.failed_at("alice", x, later);
        assert_eq!(t.wait_at("alice", x, later), None, "first failure again");
        // Not quiet long enough: the count goes on.
        let t1 = later + 7 * SEC;
        t.failed_at("alice", x, t1);
        assert_eq!(t.wait_at("alice", x, t1), Some(SEC));
    }

    #[test]
    fn ipv6_addresses_count_per_64_and_mapped_ipv4_as_ipv4() {
        assert_eq!(
            AddressKey::of(ip("2001:db8:1:2:aaaa::1")),
            AddressKey::of(ip("2001:db8:1:2:bbbb::2"))
        );
        assert_ne!(
            AddressKey::of(ip("2001:db8:1:2::1")),
            AddressKey::of(ip("2001:db8:1:3::1"))
        );
        assert_eq!(
            AddressKey::of(ip("::ffff:10.0.0.1")),
            AddressKey::of(ip("10.0.0.1"))
        );
        let t = throttle(100, 1, 1000);
        let t0 = Instant::now();
        t.failed_at("a", ip("2001:db8::1"), t0);
        t.failed_at("b", ip("2001:db8::ffff"), t0);
        assert_eq!(t.wait_at("c", ip("2001:db8::1234"), t0), Some(SEC));
    }

    #[test]
    fn trust_lasts_a_refresh_token_lifetime_and_stays_bounded() {
        let t = LoginThrottle::new(&Settings {
            refresh_token_lifetime_secs: 100,
            login_throttle_max_entries: 10,
            ..Settings::default()
        });
        let t0 = Instant::now();
        let x = ip("10.0.0.1");
        t.succeeded_at("a", x, t0);
        assert!(t.is_trusted_at(x, t0 + 99 * SEC));
        assert!(!t.is_trusted_at(x, t0 + 100 * SEC));
        for i in 0..100u32 {
            t.succeeded_at("a", IpAddr::from((i + 1000).to_be_bytes()), t0 + SEC);
            assert!(lock(&t.trusted).since.len() <= 10);
        }
    }

    #[test]
    fn tables_stay_within_their_bound() {
        let t = throttle(0, 0, 50);
        let t0 = Instant::now();
        for i in 0..1000u32 {
            let from = IpAddr::from(i.to_be_bytes());
            t.failed_at(&format!("user{i}"), from, t0);
            let (a, p) = t.sizes();
            assert!(a <= 50 && p <= 50, "{a} {p}");
        }
        // Records still waiting survive eviction of the ones whose backoff ends sooner.
        let long = ip("10.9.9.9");
        for _ in 0..4 {
            t.failed_at("victim", long, t0);
        }
        for i in 0..10u32 {
            t.failed_at("other", IpAddr::from((i + 5000).to_be_bytes()), t0);
        }
        assert_eq!(t.wait_at("victim", long, t0), Some(8 * SEC));
        // Forgotten records are swept before anything live is evicted.
        let later = t0 + 100 * SEC;
        t.failed_at("new", ip("10.1.1.1"), later);
        assert_eq!(t.sizes(), (1, 1));
    }
}
