//! The HTTP side of fetching: the client, URL checks, capped reads.

use super::*;

pub(crate) fn client(options: &RemoteOptions) -> Result<reqwest::Client, FetchError> {
    match &options.http_client {
        Some(client) => Ok(client.clone()),
        None => build_client(Some(options.http_timeout)),
    }
}

/// Tessera's own client: no redirects, an optional overall timeout.
pub(crate) fn build_client(timeout: Option<Duration>) -> Result<reqwest::Client, FetchError> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("tessera-verifier/", env!("CARGO_PKG_VERSION")));
    if let Some(timeout) = timeout {
        builder = builder.timeout(timeout);
    }
    builder.build().map_err(FetchError::Client)
}

/// `https` only, except to loopback, unless `allow_insecure_http`.
pub(crate) fn check_url(url: &str, allow_insecure_http: bool) -> Result<(), FetchError> {
    let refuse = |reason| FetchError::Insecure {
        url: url.to_owned(),
        reason,
    };
    let parsed = reqwest::Url::parse(url).map_err(|_| refuse("not a URL"))?;
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if allow_insecure_http => Ok(()),
        "http" => {
            let host = parsed.host_str().unwrap_or_default();
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let loopback = host.eq_ignore_ascii_case("localhost")
                || host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            if loopback {
                Ok(())
            } else {
                Err(refuse(
                    "plain http to a host that is not loopback (set allow_insecure_http to allow it)",
                ))
            }
        }
        _ => Err(refuse("only https (or http to loopback) is fetched")),
    }
}

/// Refuses an answer that came from another URL than the one asked (a
/// custom client that followed a redirect).
pub(crate) fn check_final_url(asked: &str, response: &reqwest::Response) -> Result<(), FetchError> {
    let asked_url = reqwest::Url::parse(asked).ok();
    if asked_url.as_ref() == Some(response.url()) {
        Ok(())
    } else {
        Err(FetchError::Insecure {
            url: asked.to_owned(),
            reason: "the answer came from another URL (redirects are not followed)",
        })
    }
}

/// Reads a response body of at most `max_bytes`.
pub(crate) async fn read_capped(
    url: &str,
    mut response: reqwest::Response,
    max_bytes: usize,
) -> Result<Vec<u8>, FetchError> {
    if response
        .content_length()
        .is_some_and(|n| usize::try_from(n).map_or(true, |n| n > max_bytes))
    {
        return Err(FetchError::TooLarge {
            url: url.to_owned(),
        });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|source| FetchError::Http {
        url: url.to_owned(),
        source,
    })? {
        if body.len() + chunk.len() > max_bytes {
            return Err(FetchError::TooLarge {
                url: url.to_owned(),
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

pub(crate) async fn fetch(
    http: &reqwest::Client,
    url: &str,
    etag: Option<&str>,
    options: &RemoteOptions,
) -> Result<Fetched, FetchError> {
    check_url(url, options.allow_insecure_http)?;
    let http_err = |source: reqwest::Error| FetchError::Http {
        url: url.to_owned(),
        source,
    };
    let mut request = http.get(url).header(ACCEPT, "application/json");
    if let Some(etag) = etag {
        request = request.header(IF_NONE_MATCH, etag);
    }
    let response = request.send().await.map_err(http_err)?;
    check_final_url(url, &response)?;
    let max_age = max_age(response.headers());
    let status = response.status().as_u16();
    if status == 304 && etag.is_some() {
        return Ok(Fetched::NotModified { max_age });
    }
    if !(200..300).contains(&status) {
        return Err(FetchError::Status {
            url: url.to_owned(),
            status,
        });
    }
    let etag = response
        .headers()
        .get(ETAG)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = read_capped(url, response, options.max_document_bytes).await?;
    Ok(Fetched::Fresh {
        body,
        etag,
        max_age,
    })
}

/// `max-age` of a `Cache-Control` header; `no-cache`/`no-store` count as 0.
fn max_age(headers: &HeaderMap) -> Option<Duration> {
    let mut found = None;
    for value in headers.get_all(CACHE_CONTROL) {
        let Ok(value) = value.to_str() else { continue };
        for directive in value.split(',').map(str::trim) {
            if directive.eq_ignore_ascii_case("no-cache")
                || directive.eq_ignore_ascii_case("no-store")
            {
                return Some(Duration::ZERO);
            }
            let Some((name, secs)) = directive.split_once('=') else {
                continue;
            };
            if name.trim().eq_ignore_ascii_case("max-age")
                && let Ok(secs) = secs.trim().trim_matches('"').parse::<u64>()
            {
                found = Some(Duration::from_secs(secs));
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn only_https_or_loopback_is_fetched() {
        for ok in [
            "https://issuer.example/.well-known/jwks.json",
            "http://127.0.0.1:8080/x",
            "http://127.3.4.5/x",
            "http://[::1]:9/x",
            "http://localhost/x",
        ] {
            assert!(check_url(ok, false).is_ok(), "{ok}");
        }
        for refused in [
            "http://issuer.example/x",
            "http://10.0.0.1/x",
            "http://[2001:db8::1]/x",
            "ftp://issuer.example/x",
            "file:///etc/passwd",
            "not a url",
        ] {
            assert!(
                matches!(check_url(refused, false), Err(FetchError::Insecure { .. })),
                "{refused}"
            );
        }
        assert!(
            check_url("http://issuer.example/x", true).is_ok(),
            "explicitly allowed"
        );
        assert!(check_url("ftp://issuer.example/x", true).is_err());
    }

    #[test]
    fn reads_max_age() {
        let cases = [
            ("max-age=60", Some(60)),
            ("public, max-age=300, must-revalidate", Some(300)),
            ("MAX-AGE = 7", Some(7)),
            ("no-store", Some(0)),
            ("public", None),
            ("max-age=abc", None),
        ];
        for (header, want) in cases {
            let mut headers = HeaderMap::new();
            headers.insert(CACHE_CONTROL, HeaderValue::from_static(header));
            assert_eq!(max_age(&headers), want.map(Duration::from_secs), "{header}");
        }
        assert_eq!(max_age(&HeaderMap::new()), None);
    }
}
