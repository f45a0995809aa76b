//! The budget of large request bodies in flight (`--max-bulk-bytes`): a
//! large write holds its body's size of it from before its body is read
//! until it is answered, so that many large writes at once cannot take
//! more memory than the budget allows (about three times the budget, at
//! the peak: the body as rows, and what the table and its log make of
//! them). One that finds no room waits for it (`--bulk-wait`), then is
//! answered 503 with `Retry-After`, its body unread. Small bodies never
//! wait.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::problem::Problem;

/// Bodies up to this size never wait (nor count).
pub const FREE_BYTES: usize = 1 << 20;
/// The budget is counted in units of this many bytes.
const UNIT: usize = 1024;
/// A body without a declared length claims room this far ahead of what
/// has arrived.
const STEP_BYTES: usize = 4 << 20;

/// Room for large bodies, shared by every request.
pub struct Budget {
    /// `None`: no limit.
    room: Option<Arc<Semaphore>>,
    units: u32,
    bytes: usize,
    wait: Duration,
}

/// The room one body holds, given back when it is dropped.
#[derive(Default)]
pub struct Claim {
    permit: Option<OwnedSemaphorePermit>,
    units: u32,
    /// When this body started waiting, for one that claims as it arrives.
    since: Option<Instant>,
}

impl Budget {
    /// `bytes`: the budget (0: no limit); `wait`: how long a body waits
    /// for room before it is refused.
    pub fn new(bytes: usize, wait: Duration) -> Budget {
        let units = u32::try_from(bytes.div_ceil(UNIT)).unwrap_or(u32::MAX);
        Budget {
            room: (bytes > 0).then(|| Arc::new(Semaphore::new(units as usize))),
            units,
            bytes,
            wait,
        }
    }

    /// Room for a body of `declared` bytes (its `Content-Length`); a body
    /// without one claims as it arrives ([`Budget::grow`]).
    pub async fn claim(&self, declared: Option<usize>) -> Result<Claim, Problem> {
        let mut claim = Claim::default();
        if let Some(bytes) = declared {
            self.reserve(&mut claim, bytes).await?;
        }
        Ok(claim)
    }

    /// Room for a body without a declared length, `received` bytes of
    /// which have arrived.
    pub async fn grow(&self, claim: &mut Claim, received: usize) -> Result<(), Problem> {
        if received <= FREE_BYTES || received <= claim.units as usize * UNIT {
            return Ok(());
        }
        self.reserve(claim, received.saturating_add(STEP_BYTES))
            .await
    }

    /// Makes `claim` hold room for `bytes` (at most the whole budget: a
    /// body larger than the budget is written alone).
    async fn reserve(&self, claim: &mut Claim, bytes: usize) -> Result<(), Problem> {
        let Some(room) = &self.room else {
            return Ok(());
        };
        if bytes <= FREE_BYTES {
            return Ok(());
        }
        let wanted = u32::try_from(bytes.div_ceil(UNIT))
            .unwrap_or(u32::MAX)
            .min(self.units);
        if wanted <= claim.units {
            return Ok(());
        }
        let since = *claim.since.get_or_insert_with(Instant::now);
        let more = room.clone().acquire_many_owned(wanted - claim.units);
        let permit = match tokio::time::timeout_at(since + self.wait, more).await {
            Ok(Ok(permit)) => permit,
            // The semaphore is never closed; a wait that ran out is busy.
            Ok(Err(_)) | Err(_) => return Err(self.busy()),
        };
        match &mut claim.permit {
            Some(held) => held.merge(permit),
            None => claim.permit = Some(permit),
        }
        claim.units = wanted;
        Ok(())
    }

    fn busy(&self) -> Problem {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            format!(
                "other large writes are taking all the room for large bodies ({} bytes in flight at most, --max-bulk-bytes), and none came free within {} s; nothing was written: send it again in a few seconds",
                self.bytes,
                self.wait.as_secs_f64()
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn large_bodies_wait_for_room_then_are_refused() {
        let budget = Budget::new(8 << 20, Duration::from_millis(50));
        let first = budget.claim(Some(6 << 20)).await.unwrap();
        // Small bodies pass whatever is held.
        budget.claim(Some(FREE_BYTES)).await.unwrap();
        budget.claim(None).await.unwrap();
        let refused = budget.claim(Some(3 << 20)).await.err().unwrap();
        assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            refused.detail.contains("--max-bulk-bytes"),
            "{}",
            refused.detail
        );
        budget.claim(Some(2 << 20)).await.unwrap();
        drop(first);
        // A body larger than the whole budget takes all of it, alone.
        let all = budget.claim(Some(100 << 20)).await.unwrap();
        assert_eq!(all.units, budget.units);
        assert!(budget.claim(Some(2 << 20)).await.is_err());
        drop(all);
        // Without a declared length, room is claimed as the body arrives.
        let mut growing = budget.claim(None).await.unwrap();
        budget.grow(&mut growing, 512 << 10).await.unwrap();
        assert_eq!(growing.units, 0);
        budget.grow(&mut growing, 2 << 20).await.unwrap();
        assert!(growing.units as usize * UNIT >= 2 << 20);
        budget.grow(&mut growing, 9 << 20).await.unwrap();
        assert_eq!(growing.units, budget.units);
        assert!(budget.claim(Some(2 << 20)).await.is_err());
    }

    #[tokio::test]
    async fn no_budget_no_limit() {
        let budget = Budget::new(0, Duration::ZERO);
        let _a = budget.claim(Some(1 << 30)).await.unwrap();
        let _b = budget.claim(Some(1 << 30)).await.unwrap();
    }
}
