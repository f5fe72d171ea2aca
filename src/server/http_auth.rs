//! HTTP Digest authentication (RFC 7616, `MD5`, `qop=auth`) with
//! `--secret`: any user name, the secret as the password. Nonces come
//! from the OS's random source, expire after [`super::http_nonce::NONCE_TTL`], and each
//! remembers the highest nonce count it was used with: a request whose
//! count is not higher (a captured one sent again) is refused. Wrong
//! answers go through the same per-address gate, with its delays, as
//! wrong secrets on the control port. There is no Basic authentication.

use std::collections::HashMap;

use super::http_exchange::Exchange;
use super::http_nonce::{Nonces, Verdict};
use super::http_parse::Request;
use super::http_response::Response;
use crate::digest::Md5;

const REALM: &str = "p2pshare";

/// The parameters of an `Authorization: Digest ...` header.
fn params(v: &str) -> Option<HashMap<String, String>> {
    let mut rest = v.trim().strip_prefix("Digest")?.trim_start();
    let mut out = HashMap::new();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let key = key.trim().to_ascii_lowercase();
        let after = after.trim_start();
        let (value, next) = if let Some(q) = after.strip_prefix('"') {
            let mut val = String::new();
            let mut chars = q.char_indices();
            let end = loop {
                match chars.next()? {
                    (i, '"') => break i,
                    (_, '\\') => val.push(chars.next()?.1),
                    (_, c) => val.push(c),
                }
            };
            (val, &q[end + 1..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_string(), &after[end..])
        };
        out.insert(key, value);
        rest = next.trim_start().trim_start_matches(',').trim_start();
        if out.len() > 16 {
            return None;
        }
    }
    Some(out)
}

fn hex_md5(s: &str) -> String {
    Md5::of(s.as_bytes()).to_string()
}

/// Compares in time that does not depend on where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The 401 with a new challenge.
fn challenge(nonces: &Nonces, stale: bool, why: &str) -> Response {
    let Some(nonce) = nonces.issue() else {
        return Response::error(500, "no random source");
    };
    Response::error(401, why).header(
        "WWW-Authenticate",
        format!(
            "Digest realm=\"{REALM}\", qop=\"auth\", algorithm=MD5, nonce=\"{nonce}\"{}",
            if stale { ", stale=true" } else { "" }
        ),
    )
}

/// None when the request carries a right answer to a fresh nonce; the
/// 401 (with a new challenge) otherwise.
pub(super) fn check(ex: &Exchange, req: &Request, secret: &str) -> Option<Response> {
    let nonces = ex.nonces;
    let Some(p) = req.header("authorization").and_then(params) else {
        return Some(challenge(nonces, false, "authentication required (Digest)"));
    };
    let get = |k: &str| p.get(k).map(String::as_str).unwrap_or("");
    let nc = u64::from_str_radix(get("nc"), 16).ok();
    let algorithm_ok = matches!(get("algorithm"), "" | "MD5");
    let (Some(nc), true, "auth", true) = (nc, algorithm_ok, get("qop"), get("uri") == req.target)
    else {
        return Some(challenge(
            nonces,
            false,
            "Digest with qop=auth and MD5 only",
        ));
    };
    if get("realm") != REALM || get("cnonce").is_empty() {
        return Some(challenge(nonces, false, "wrong realm or no cnonce"));
    }
    match nonces.take(get("nonce"), nc) {
        Verdict::Fresh => {}
        Verdict::Stale => return Some(challenge(nonces, true, "the nonce expired")),
        Verdict::Replayed => return Some(challenge(nonces, false, "nonce count used already")),
        Verdict::Unknown => return Some(challenge(nonces, true, "unknown nonce")),
    }
    let ha1 = hex_md5(&format!("{}:{REALM}:{secret}", get("username")));
    let ha2 = hex_md5(&format!("{}:{}", req.method, get("uri")));
    let want = hex_md5(&format!(
        "{ha1}:{}:{}:{}:auth:{ha2}",
        get("nonce"),
        get("nc"),
        get("cnonce")
    ));
    let given = get("response").to_ascii_lowercase();
    let right = ex
        .shared
        .auth_gate
        .try_secret(ex.peer.ip(), &ex.shared.config, ex.stop, || {
            same(given.as_bytes(), want.as_bytes())
        });
    if right {
        None
    } else {
        Some(challenge(nonces, false, "wrong secret"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_digest_parameters() {
        let p = params(r#"Digest username="a\"b", nc=00000001, qop=auth, uri="/x?y=1,2""#).unwrap();
        assert_eq!(p["username"], "a\"b");
        assert_eq!(p["nc"], "00000001");
        assert_eq!(p["qop"], "auth");
        assert_eq!(p["uri"], "/x?y=1,2");
        assert!(params("Basic abc").is_none());
    }
}
