//! What this instance holds in memory about live sessions, so a guarded
//! request needs no database round trip (API.md section 5).
//!
//! - An entry is made from the database's answer for a live session and
//!   names its user as the database had it.
//! - A change made here (logout, a session ended, a password, role, status
//!   or profile change, a deletion, refresh-token reuse) drops the user's
//!   entries at once; every such change also writes a row to the
//!   `session_changes` feed in its own transaction, and [`SessionCache::poll`]
//!   reads the feed every half `SESSION_CACHE_MS`, so other instances drop
//!   theirs within `SESSION_CACHE_MS`.
//! - Entries are trusted only while the last successful poll began less
//!   than `SESSION_CACHE_MS` ago. When the database cannot be polled,
//!   requests go to it and get its answer (503 when it is away), never a
//!   stale yes.
//! - The feed is read by change number, not by time, looking again behind
//!   any gap (a transaction that took its number early and committed late),
//!   so a change is never skipped ([`FeedCursor`]).
//! - At most [`CAPACITY`] entries are kept, oldest out first, and only for
//!   sessions the database vouched for: random session ids cannot fill it.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::store::{FeedStart, LiveSession, Liveness, SessionChange, Store, StoreResult};

/// The most sessions held in memory at once.
pub const CAPACITY: usize = 50_000;

/// How long a gap in the change numbers is waited for before it is taken
/// for a transaction that rolled back: longer than any transaction that
/// writes the feed can last.
const GAP_PATIENCE: Duration = Duration::from_secs(120);

/// More gaps than this at once is no longer a late commit but a feed this
/// instance lost track of: it forgets everything and starts over.
const MAX_GAPS: usize = 10_000;

/// After polls failed for this long, rows this instance never read may
/// have been swept: it forgets everything and starts at the newest change.
const STALE_AFTER: Duration = Duration::from_secs(300);

/// Rows read per query while catching up.
const PAGE: i64 = 1000;

pub struct SessionCache {
    /// `SESSION_CACHE_MS`; zero turns the cache off.
    ttl: Duration,
    entries: RwLock<Entries>,
    feed: Mutex<FeedCursor>,
    /// When the last successful poll began, as nanoseconds after `origin`
    /// (0: never): entries are trusted for `ttl` from then. Read on every
    /// request, so an atomic rather than a lock.
    last_ok: AtomicU64,
    origin: Instant,
}

impl SessionCache {
    /// A cache whose feed starts at `start` (see [`Store::feed_start`]).
    pub fn new(ttl: Duration, start: FeedStart) -> Self {
        Self {
            ttl,
            entries: RwLock::new(Entries::new(CAPACITY)),
            feed: Mutex::new(FeedCursor::starting_at(start, Instant::now())),
            last_ok: AtomicU64::new(0),
            origin: Instant::now(),
        }
    }

    /// When the last successful poll began, if one did.
    fn last_ok(&self) -> Option<Instant> {
        match self.last_ok.load(Ordering::Acquire) {
            0 => None,
            nanos => Some(self.origin + Duration::from_nanos(nanos)),
        }
    }

    fn set_last_ok(&self, at: Instant) {
        let nanos = at.saturating_duration_since(self.origin).as_nanos().max(1);
        self.last_ok
            .store(u64::try_from(nanos).unwrap_or(u64::MAX), Ordering::Release);
    }

    pub fn enabled(&self) -> bool {
        !self.ttl.is_zero()
    }

    /// How often the feed is read: twice per `SESSION_CACHE_MS`.
    pub fn poll_interval(&self) -> Duration {
        (self.ttl / 2).max(Duration::from_millis(10))
    }

    /// The session `session_id` of `user_id`, if memory vouches for it: the
    /// entry exists, is live by `liveness`, and the feed was read recently.
    pub fn lookup(
        &self,
        session_id: Uuid,
        user_id: Uuid,
        liveness: Liveness,
    ) -> Option<LiveSession> {
        if !self.trusted() {
            return None;
        }
        let entries = self.entries.read().expect("session cache lock");
        let live = entries.get(session_id)?;
        (live.user.id == user_id
            && live.expires_at > liveness.now
            && live.last_used_at > liveness.idle_cutoff)
            .then(|| live.clone())
    }

    fn trusted(&self) -> bool {
        self.enabled() && self.last_ok().is_some_and(|at| at.elapsed() < self.ttl)
    }

    /// A mark to take before asking the database, for [`Self::remember`].
    pub fn epoch(&self) -> u64 {
        self.entries.read().expect("session cache lock").epoch
    }

    /// Keeps the database's answer for `session_id`, unless some user's
    /// entries were dropped since `epoch` was taken: the answer may predate
    /// that change, and keeping it would bring back what was dropped.
    pub fn remember(&self, session_id: Uuid, live: &LiveSession, epoch: u64) {
        if !self.enabled() {
            return;
        }
        let mut entries = self.entries.write().expect("session cache lock");
        if entries.epoch == epoch {
            entries.insert(session_id, live.clone());
        }
    }

    /// Records that the session was used at `at` (its row was updated).
    pub fn touched(&self, session_id: Uuid, at: i64) {
        let mut entries = self.entries.write().expect("session cache lock");
        entries.touch(session_id, at);
    }

    /// Drops every entry of `user_id`: something about the user or one of
    /// their sessions changed.
    pub fn forget_user(&self, user_id: Uuid) {
        self.entries
            .write()
            .expect("session cache lock")
            .forget_user(user_id);
    }

    pub fn len(&self) -> usize {
        self.entries.read().expect("session cache lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reads the changes written since the last poll, by any instance, and
    /// drops the entries they concern.
    pub async fn poll(&self, store: &Store) -> StoreResult<()> {
        let started = Instant::now();
        if self.last_ok().is_some_and(|at| at.elapsed() > STALE_AFTER) {
            let start = store.feed_start().await?;
            self.entries.write().expect("session cache lock").clear();
            *self.feed.lock().expect("session feed lock") = FeedCursor::starting_at(start, started);
        }
        loop {
            let from = self.feed.lock().expect("session feed lock").read_after();
            let rows = store.session_changes_after(from, PAGE).await?;
            let complete = (rows.len() as i64) < PAGE;
            let forget = {
                let mut cursor = self.feed.lock().expect("session feed lock");
                cursor.expire_gaps(started, GAP_PATIENCE);
                cursor.accept(&rows, started)
            };
            self.apply(forget);
            if complete {
                break;
            }
        }
        self.set_last_ok(started);
        Ok(())
    }

    fn apply(&self, forget: Forget) {
        let mut entries = self.entries.write().expect("session cache lock");
        match forget {
            Forget::Users(users) => {
                for user in users {
                    if let Ok(user) = Uuid::parse_str(&user) {
                        entries.forget_user(user);
                    }
                }
            }
            Forget::Everything => entries.clear(),
        }
    }
}

/// The sessions held, with what dropping them by user and oldest-first
/// needs.
struct Entries {
    capacity: usize,
    by_session: HashMap<Uuid, LiveSession>,
    by_user: HashMap<Uuid, Vec<Uuid>>,
    /// Session ids in the order they were added; ids dropped meanwhile are
    /// skipped when their turn comes.
    order: VecDeque<Uuid>,
    /// Counts the drops, for [`SessionCache::remember`].
    epoch: u64,
}

impl Entries {
    fn new(capacity: usize) -> Self {
        Self {
            capacity,
            by_session: HashMap::new(),
            by_user: HashMap::new(),
            order: VecDeque::new(),
            epoch: 0,
        }
    }

    fn get(&self, session_id: Uuid) -> Option<&LiveSession> {
        self.by_session.get(&session_id)
    }

    fn len(&self) -> usize {
        self.by_session.len()
    }

    fn insert(&mut self, session_id: Uuid, live: LiveSession) {
        let user = live.user.id;
        if self.by_session.insert(session_id, live).is_none() {
            self.by_user.entry(user).or_default().push(session_id);
            self.order.push_back(session_id);
        }
        while self.by_session.len() > self.capacity {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            self.remove(oldest);
        }
        // Ids dropped by user stay in `order` until their turn; rebuild it
        // before they outnumber the live ones.
        if self.order.len() > 2 * self.capacity.max(1) {
            let live = &self.by_session;
            self.order.retain(|id| live.contains_key(id));
        }
    }

    fn touch(&mut self, session_id: Uuid, at: i64) {
        if let Some(live) = self.by_session.get_mut(&session_id) {
            live.last_used_at = live.last_used_at.max(at);
        }
    }

    fn remove(&mut self, session_id: Uuid) {
        if let Some(live) = self.by_session.remove(&session_id)
            && let Some(sessions) = self.by_user.get_mut(&live.user.id)
        {
            sessions.retain(|id| *id != session_id);
            if sessions.is_empty() {
                self.by_user.remove(&live.user.id);
            }
        }
    }

    fn forget_user(&mut self, user: Uuid) {
        self.epoch += 1;
        for session_id in self.by_user.remove(&user).unwrap_or_default() {
            self.by_session.remove(&session_id);
        }
    }

    fn clear(&mut self) {
        self.epoch += 1;
        self.by_session.clear();
        self.by_user.clear();
        self.order.clear();
    }
}

/// What a batch of feed rows asks to drop.
#[derive(Debug, PartialEq, Eq)]
enum Forget {
    Users(Vec<String>),
    Everything,
}

/// Where this instance is in the change feed. Change numbers are handed out
/// when a row is written but become visible when its transaction commits,
/// so a reader can see 12 before 11. The cursor remembers such gaps and
/// reads again from the oldest one until it fills or is old enough to be a
/// rollback.
#[derive(Debug)]
struct FeedCursor {
    newest: i64,
    gaps: BTreeMap<i64, Instant>,
}

impl FeedCursor {
    fn starting_after(latest: i64) -> Self {
        Self {
            newest: latest,
            gaps: BTreeMap::new(),
        }
    }

    /// Starts after the newest change, with the numbers missing just below
    /// it taken for gaps: a transaction that took one of them before this
    /// instance started may not have committed yet.
    fn starting_at(start: FeedStart, now: Instant) -> Self {
        let mut cursor = Self::starting_after(start.newest);
        for missing in start.missing {
            cursor.gaps.insert(missing, now);
        }
        cursor
    }

    /// The number after which the next read starts.
    fn read_after(&self) -> i64 {
        self.gaps
            .keys()
            .next()
            .map_or(self.newest, |oldest_gap| oldest_gap - 1)
    }

    /// Takes a batch read at `now` (oldest first) and says what to drop:
    /// the users of rows not seen before.
    fn accept(&mut self, rows: &[SessionChange], now: Instant) -> Forget {
        let mut users = Vec::new();
        for row in rows {
            if row.seq > self.newest {
                let skipped = (row.seq - self.newest - 1) as usize;
                if self.gaps.len() + skipped > MAX_GAPS {
                    self.gaps.clear();
                    self.newest = rows.last().map_or(row.seq, |last| last.seq.max(row.seq));
                    return Forget::Everything;
                }
                for missing in self.newest + 1..row.seq {
                    self.gaps.insert(missing, now);
                }
                self.newest = row.seq;
                users.push(row.user_id.clone());
            } else if self.gaps.remove(&row.seq).is_some() {
                // A late commit.
                users.push(row.user_id.clone());
            }
        }
        Forget::Users(users)
    }

    /// Gives up on gaps first noticed more than `patience` before `now`.
    fn expire_gaps(&mut self, now: Instant, patience: Duration) {
        self.gaps
            .retain(|_, noticed| now.saturating_duration_since(*noticed) < patience);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::User;

    fn change(seq: i64, user: &str) -> SessionChange {
        SessionChange {
            seq,
            user_id: user.to_owned(),
        }
    }

    fn users(forget: Forget) -> Vec<String> {
        match forget {
            Forget::Users(users) => users,
            Forget::Everything => panic!("expected users"),
        }
    }

    #[test]
    fn a_change_that_commits_late_is_read_once_it_appears() {
        let t0 = Instant::now();
        let mut cursor = FeedCursor::starting_after(10);
        // 12 is visible before 11, whose transaction has not committed.
        assert_eq!(users(cursor.accept(&[change(12, "b")], t0)), ["b"]);
        assert_eq!(cursor.read_after(), 10, "reads again from the gap");
        // The next read sees 12 again (already handled) and, now, 11.
        assert_eq!(
            users(cursor.accept(&[change(11, "a"), change(12, "b")], t0)),
            ["a"]
        );
        assert_eq!(cursor.read_after(), 12);
        assert_eq!(users(cursor.accept(&[change(13, "c")], t0)), ["c"]);
    }

    #[test]
    fn numbers_missing_when_an_instance_starts_are_watched_like_gaps() {
        let t0 = Instant::now();
        let start = FeedStart {
            newest: 20,
            missing: vec![18],
        };
        let mut cursor = FeedCursor::starting_at(start, t0);
        assert_eq!(cursor.read_after(), 17);
        // 19 and 20 were there at start: old news. 18 commits late.
        let rows = [change(18, "late"), change(19, "old"), change(20, "old")];
        assert_eq!(users(cursor.accept(&rows, t0)), ["late"]);
        assert_eq!(cursor.read_after(), 20);
    }

    #[test]
    fn a_gap_that_never_fills_is_given_up_in_time() {
        let t0 = Instant::now();
        let mut cursor = FeedCursor::starting_after(0);
        cursor.accept(&[change(2, "b")], t0);
        cursor.expire_gaps(t0 + Duration::from_secs(60), GAP_PATIENCE);
        assert_eq!(cursor.read_after(), 0);
        cursor.expire_gaps(t0 + GAP_PATIENCE, GAP_PATIENCE);
        assert_eq!(cursor.read_after(), 2);
    }

    #[test]
    fn a_feed_far_ahead_forgets_everything() {
        let mut cursor = FeedCursor::starting_after(0);
        let far = MAX_GAPS as i64 + 5;
        assert_eq!(
            cursor.accept(&[change(far, "x")], Instant::now()),
            Forget::Everything
        );
        assert_eq!(cursor.read_after(), far);
    }

    fn live(user: Uuid) -> LiveSession {
        LiveSession {
            user: User::sample(user),
            last_used_at: 100,
            expires_at: 1_000,
        }
    }

    #[test]
    fn the_cache_never_holds_more_than_its_capacity() {
        let mut entries = Entries::new(100);
        for _ in 0..1_000 {
            entries.insert(Uuid::new_v4(), live(Uuid::new_v4()));
        }
        assert_eq!(entries.len(), 100);
        // Dropping by user in between does not let `order` grow unchecked.
        for _ in 0..1_000 {
            let user = Uuid::new_v4();
            entries.insert(Uuid::new_v4(), live(user));
            entries.forget_user(user);
        }
        assert!(entries.order.len() <= 200 + 1, "{}", entries.order.len());
    }

    #[test]
    fn entries_are_dropped_by_user_and_an_older_answer_is_not_kept() {
        let cache = SessionCache::new(Duration::from_secs(1), FeedStart::default());
        cache.set_last_ok(Instant::now());
        let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
        let (s1, s2, s3) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let now = Liveness {
            now: 500,
            idle_cutoff: 0,
        };
        let epoch = cache.epoch();
        cache.remember(s1, &live(alice), epoch);
        cache.remember(s2, &live(alice), epoch);
        cache.remember(s3, &live(bob), epoch);
        assert!(cache.lookup(s1, alice, now).is_some());
        assert!(
            cache.lookup(s1, bob, now).is_none(),
            "another user's session"
        );
        cache.forget_user(alice);
        assert!(cache.lookup(s1, alice, now).is_none());
        assert!(cache.lookup(s2, alice, now).is_none());
        assert!(cache.lookup(s3, bob, now).is_some());
        // An answer fetched before the drop would bring the entry back.
        cache.remember(s1, &live(alice), epoch);
        assert!(cache.lookup(s1, alice, now).is_none());
        // Expired or idle sessions are not served from memory either.
        let late = Liveness {
            now: 1_000,
            idle_cutoff: 0,
        };
        assert!(cache.lookup(s3, bob, late).is_none());
    }

    #[test]
    fn without_a_recent_poll_nothing_is_trusted() {
        let cache = SessionCache::new(Duration::from_millis(50), FeedStart::default());
        let (user, session) = (Uuid::new_v4(), Uuid::new_v4());
        let now = Liveness {
            now: 500,
            idle_cutoff: 0,
        };
        cache.remember(session, &live(user), cache.epoch());
        assert!(cache.lookup(session, user, now).is_none(), "never polled");
        cache.set_last_ok(Instant::now());
        assert!(cache.lookup(session, user, now).is_some());
        std::thread::sleep(Duration::from_millis(60));
        assert!(cache.lookup(session, user, now).is_none(), "poll too old");
    }
}
