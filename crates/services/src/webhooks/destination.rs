//! Which webhook URLs may be called. (Stub: filled in by the signing work.)

/// Whether `url` may be called: `http`/`https` only, and, unless `allow_private`, a host
/// that resolves to no loopback, link-local or private address. The refusal says why.
pub async fn check(url: &str, allow_private: bool) -> Result<(), String> {
    let _ = (url, allow_private);
    Ok(())
}
