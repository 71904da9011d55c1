//! Passwords: argon2id with OWASP's parameters (19 MiB, 2 passes, 1 lane).

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::error::AppError;

/// How long a login waits for a hashing permit before it is refused.
const PERMIT_WAIT: Duration = Duration::from_millis(100);

/// Runs `work` (hashing or verifying) on the blocking pool under one of
/// `permits`: when none frees up within `PERMIT_WAIT`, `AppError::Busy`.
/// The permit is held until the work ends, even if the request is dropped.
pub async fn limited<T: Send + 'static>(
    permits: &Arc<Semaphore>,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, AppError> {
    let permit = match tokio::time::timeout(PERMIT_WAIT, permits.clone().acquire_owned()).await {
        Ok(Ok(p)) => p,
        _ => return Err(AppError::Busy),
    };
    tokio::task::spawn_blocking(move || {
        let r = work();
        drop(permit);
        r
    })
    .await
    .map_err(|e| AppError::Internal(e.to_string()))
}

fn argon() -> Argon2<'static> {
    Argon2::new(
        Algorithm::Argon2id,
        Version::V0x13,
        Params::new(19 * 1024, 2, 1, None).expect("valid parameters"),
    )
}

pub fn hash(password: &str) -> Result<String, AppError> {
    let salt = SaltString::generate(&mut OsRng);
    argon()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AppError::Internal(e.to_string()))
}

/// Checks a password; with no stored hash it still does the work, so that
/// timing does not tell which emails have accounts.
pub fn verify(password: &str, stored: Option<&str>) -> bool {
    const DUMMY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$3dzmUjGfJxJcD5Hcd9HMAXYGcb0+JH7a0FxYPJvIn7o";
    let h = stored.unwrap_or(DUMMY);
    let ok = PasswordHash::new(h)
        .is_ok_and(|p| argon().verify_password(password.as_bytes(), &p).is_ok());
    ok && stored.is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_at_owasp_parameters_and_verify() {
        let h = hash("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify("correct horse battery", Some(&h)));
        assert!(!verify("wrong", Some(&h)));
        assert!(!verify("anything", None));
    }
}
