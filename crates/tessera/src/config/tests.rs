use super::store_url::redact_url;
use super::*;

#[test]
fn passwords_never_reach_messages() {
    for (url, shown) in [
        (
            "postgres://tessera:s3cret@db/tessera",
            "postgres://tessera:***@db/tessera",
        ),
        (
            "postgres://tessera:p@ss@db:5432/t?sslmode=require",
            "postgres://tessera:***@db:5432/t?sslmode=require",
        ),
        (
            "postgres://db/t?user=x&password=s3cret",
            "postgres://db/t?user=x&password=***",
        ),
        ("postgres://tessera@db/t", "postgres://tessera@db/t"),
        ("sqlite://data/tessera.db", "sqlite://data/tessera.db"),
    ] {
        assert_eq!(redact_url(url), shown, "{url}");
    }
}

#[test]
fn debug_of_the_config_shows_no_secret() {
    let env = BTreeMap::from([
        (
            "TESSERA_STORE_URL".to_owned(),
            "postgres://tessera:s3cret@db/tessera?password=s3cret".to_owned(),
        ),
        (
            "TESSERA_MASTER_KEY".to_owned(),
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8".to_owned(),
        ),
    ]);
    let config = Config::load(None, &env).expect("config");
    let debug = format!("{config:?}");
    for secret in ["s3cret", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"] {
        assert!(!debug.contains(secret), "{debug}");
    }
    assert!(
        debug.contains("postgres://tessera:***@db/tessera?password=***"),
        "{debug}"
    );
}

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn load(file: Option<&str>, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    Config::load(file, &env(vars))
}

#[test]
fn durations() {
    for (text, ms) in [
        ("500ms", 500),
        ("10s", 10_000),
        ("5m", 300_000),
        ("2h", 7_200_000),
        ("30d", 2_592_000_000),
        ("0s", 0),
        ("1h30m", 5_400_000),
        (" 10s ", 10_000),
    ] {
        assert_eq!(
            parse_duration(text),
            Some(Duration::from_millis(ms)),
            "{text}"
        );
    }
    for bad in [
        "",
        "10",
        "s",
        "10 s",
        "1.5s",
        "-1s",
        "10w",
        "abc",
        "5mm",
        "m5",
        "99999999999999999999d",
        "999999999999999999d",
    ] {
        assert_eq!(parse_duration(bad), None, "{bad:?}");
    }
}

#[test]
fn defaults_follow_the_contract() {
    let c = load(None, &[]).expect("defaults");
    assert_eq!(c.listen, "127.0.0.1:8080");
    assert_eq!(c.issuer, None);
    assert_eq!(
        c.issuer_for("127.0.0.1:8080".parse().expect("addr")),
        "http://127.0.0.1:8080"
    );
    assert_eq!(c.data_dir, PathBuf::from("./data"));
    assert_eq!(c.store_url, "sqlite://./data/tessera.db");
    assert!(c.master_key.is_none());
    assert_eq!(c.master_key_path(), PathBuf::from("./data/master.key"));
    assert_eq!(c.access_ttl, Duration::from_secs(300));
    assert_eq!(c.token_format, TokenFormat::Jwt);
    assert_eq!(c.jwt_alg, tessera_core::Algorithm::EdDsa);
    assert!(
        !c.require_dpop && !c.dpop_require_nonce,
        "DPoP is optional by default"
    );
    assert_eq!(c.idle_timeout, days(14));
    assert_eq!(c.absolute_lifetime, days(30));
    assert_eq!(c.refresh_grace, Duration::from_secs(10));
    assert_eq!(c.max_per_subject, None);
    assert_eq!(c.limit_policy, LimitPolicy::EvictOldest);
    assert_eq!(c.rotation_period, days(30));
    assert_eq!(c.jwks_max_age, Duration::from_secs(300));
    assert_eq!(c.publish_ahead, Duration::from_secs(300) + PUBLISH_MARGIN);
    assert_eq!(c.status_list_ttl, Duration::from_secs(60));
}

const FILE: &str = r#"
    listen = "0.0.0.0:9000"
    issuer = "https://auth.example"
    data_dir = "/var/lib/tessera"
    master_key = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

    [store]
    url = "sqlite:///tmp/t.db"

    [tokens]
    access_ttl = "2m"
    format = "paseto"
    require_dpop = false

    [sessions]
    idle_timeout = "1d"
    absolute_lifetime = "7d"
    refresh_grace = "5s"
    max_per_subject = 3
    limit_policy = "reject"

    [keys]
    rotation_period = "7d"
    publish_ahead = "20m"
    jwks_max_age = "10m"

    [revocation]
    status_list_ttl = "30s"
"#;

#[test]
fn every_setting_from_the_file() {
    let c = load(Some(FILE), &[]).expect("file");
    assert_eq!(c.listen, "0.0.0.0:9000");
    assert_eq!(c.issuer.as_deref(), Some("https://auth.example"));
    assert_eq!(c.data_dir, PathBuf::from("/var/lib/tessera"));
    assert_eq!(c.store_url, "sqlite:///tmp/t.db");
    assert!(c.master_key.is_some());
    assert_eq!(c.access_ttl, Duration::from_secs(120));
    assert_eq!(c.token_format, TokenFormat::Paseto);
    assert_eq!(c.idle_timeout, days(1));
    assert_eq!(c.absolute_lifetime, days(7));
    assert_eq!(c.refresh_grace, Duration::from_secs(5));
    assert_eq!(c.max_per_subject, Some(3));
    assert_eq!(c.limit_policy, LimitPolicy::Reject);
    assert_eq!(c.rotation_period, days(7));
    assert_eq!(c.publish_ahead, Duration::from_secs(1200));
    assert_eq!(c.jwks_max_age, Duration::from_secs(600));
    assert_eq!(c.status_list_ttl, Duration::from_secs(30));
}

#[test]
fn environment_overrides_the_file() {
    let c = load(
        Some(FILE),
        &[
            ("TESSERA_LISTEN", "127.0.0.1:0"),
            ("TESSERA_ISSUER", "http://localhost:1"),
            ("TESSERA_DATA_DIR", "/tmp/d"),
            ("TESSERA_STORE_URL", "sqlite:///tmp/other.db"),
            ("TESSERA_TOKENS__ACCESS_TTL", "90s"),
            ("TESSERA_TOKENS__FORMAT", "jwt"),
            ("TESSERA_TOKENS__JWT_ALG", "ES256"),
            ("TESSERA_TOKENS__REQUIRE_DPOP", "true"),
            ("TESSERA_DPOP__REQUIRE_NONCE", "true"),
            ("TESSERA_SESSIONS__IDLE_TIMEOUT", "30m"),
            ("TESSERA_SESSIONS__MAX_PER_SUBJECT", "none"),
            ("TESSERA_SESSIONS__LIMIT_POLICY", "evict_oldest"),
            ("TESSERA_KEYS__JWKS_MAX_AGE", "1m"),
            ("TESSERA_KEYS__PUBLISH_AHEAD", "2m"),
            ("TESSERA_REVOCATION__STATUS_LIST_TTL", "15s"),
            ("TESSERA_SESSIONS__ABSOLUTE_LIFETIME", ""), // empty: unset
            ("TESSERA_SOMETHING_ELSE", "x"),
            ("PATH", "/bin"),
        ],
    )
    .expect("merged");
    assert_eq!(c.listen, "127.0.0.1:0");
    assert_eq!(c.issuer.as_deref(), Some("http://localhost:1"));
    assert_eq!(c.data_dir, PathBuf::from("/tmp/d"));
    assert_eq!(c.store_url, "sqlite:///tmp/other.db");
    assert_eq!(c.access_ttl, Duration::from_secs(90));
    assert_eq!(c.token_format, TokenFormat::Jwt);
    assert_eq!(c.jwt_alg, tessera_core::Algorithm::Es256);
    assert_eq!(c.policy().jwt_alg, tessera_core::Algorithm::Es256);
    assert!(c.require_dpop && c.policy().require_dpop);
    assert!(c.dpop_require_nonce);
    assert_eq!(c.idle_timeout, Duration::from_secs(1800));
    assert_eq!(
        c.absolute_lifetime,
        days(7),
        "empty variable leaves the file value"
    );
    assert_eq!(c.max_per_subject, None);
    assert_eq!(c.limit_policy, LimitPolicy::EvictOldest);
    assert_eq!(c.jwks_max_age, Duration::from_secs(60));
    assert_eq!(c.publish_ahead, Duration::from_secs(120));
    assert_eq!(c.status_list_ttl, Duration::from_secs(15));
    assert_eq!(c.unknown_env, vec!["TESSERA_SOMETHING_ELSE".to_owned()]);
}

#[test]
fn store_url_follows_data_dir_and_accepts_the_section_alias() {
    let c = load(None, &[("TESSERA_DATA_DIR", "/srv/t")]).expect("ok");
    assert_eq!(c.store_url, "sqlite:///srv/t/tessera.db");
    let c = load(None, &[("TESSERA_STORE__URL", "sqlite://x.db")]).expect("ok");
    assert_eq!(c.store_url, "sqlite://x.db");
    let c = load(None, &[("TESSERA_KEYS__JWKS_MAX_AGE", "10m")]).expect("ok");
    assert_eq!(c.publish_ahead, Duration::from_secs(600) + PUBLISH_MARGIN);
}

/// File text, environment, the setting named, a fragment of the message.
type BadCase<'a> = (Option<&'a str>, &'a [(&'a str, &'a str)], &'a str, &'a str);

#[test]
fn bad_settings_are_named() {
    let cases: &[BadCase] = &[
        (
            None,
            &[("TESSERA_SESSIONS__IDLE_TIMEOUT", "abc")],
            "sessions.idle_timeout",
            "\"abc\" is not a duration",
        ),
        (
            Some("[sessions]\nidle_timeout = \"abc\""),
            &[],
            "sessions.idle_timeout",
            "\"abc\" is not a duration",
        ),
        (
            None,
            &[("TESSERA_TOKENS__REQUIRE_DPOP", "yes")],
            "tokens.require_dpop",
            "\"yes\" is not true or false",
        ),
        (
            Some("[dpop]\nrequire_nonce = 1"),
            &[],
            "dpop.require_nonce",
            "\"1\" is not true or false",
        ),
        (
            Some("[tokens]\naccess_ttl = 300"),
            &[],
            "tokens.access_ttl",
            "is not a duration",
        ),
        (
            Some("[tokens]\naccess_ttl = true"),
            &[],
            "tokens.access_ttl",
            "expected a string",
        ),
        (
            None,
            &[("TESSERA_TOKENS__ACCESS_TTL", "0s")],
            "tokens.access_ttl",
            "longer than zero",
        ),
        (
            None,
            &[("TESSERA_TOKENS__FORMAT", "saml")],
            "tokens.format",
            "saml",
        ),
        (
            None,
            &[("TESSERA_TOKENS__JWT_ALG", "RS256")],
            "tokens.jwt_alg",
            "RS256",
        ),
        (
            None,
            &[("TESSERA_SESSIONS__MAX_PER_SUBJECT", "0")],
            "sessions.max_per_subject",
            "positive",
        ),
        (
            None,
            &[("TESSERA_SESSIONS__MAX_PER_SUBJECT", "-2")],
            "sessions.max_per_subject",
            "positive",
        ),
        (
            None,
            &[("TESSERA_SESSIONS__LIMIT_POLICY", "lru")],
            "sessions.limit_policy",
            "lru",
        ),
        (
            None,
            &[("TESSERA_SESSIONS__REFRESH_GRACE", "20d")],
            "sessions.refresh_grace",
            "shorter",
        ),
        (
            None,
            &[("TESSERA_KEYS__PUBLISH_AHEAD", "1m")],
            "keys.publish_ahead",
            "jwks_max_age",
        ),
        (
            None,
            &[("TESSERA_KEYS__ROTATION_PERIOD", "5m")],
            "keys.publish_ahead",
            "rotation_period",
        ),
        (
            None,
            &[("TESSERA_LISTEN", "nowhere")],
            "listen",
            "HOST:PORT",
        ),
        (
            None,
            &[("TESSERA_LISTEN", "127.0.0.1:99999")],
            "listen",
            "HOST:PORT",
        ),
        (
            None,
            &[("TESSERA_ISSUER", "auth.example")],
            "issuer",
            "http(s)",
        ),
        (
            None,
            &[("TESSERA_ISSUER", "https://a.example/?x=1")],
            "issuer",
            "query",
        ),
        (
            None,
            &[("TESSERA_STORE_URL", "mysql://x")],
            "store.url",
            "sqlite://",
        ),
        (
            None,
            &[("TESSERA_MASTER_KEY", "c2hvcnQ")],
            "master_key",
            "32 bytes",
        ),
        (
            Some("colour = \"blue\""),
            &[],
            "config file",
            "unknown field `colour`",
        ),
        (
            Some("[sessions]\nidle = \"1d\""),
            &[],
            "config file",
            "unknown field `idle`",
        ),
        (
            Some("[cache]\nsize = 1"),
            &[],
            "config file",
            "unknown field `cache`",
        ),
        (Some("listen = "), &[], "config file", "line 1"),
    ];
    for (file, vars, setting, fragment) in cases {
        let err = load(*file, vars).expect_err(&format!("{setting} {vars:?} {file:?}"));
        assert_eq!(err.setting, *setting, "{err}");
        assert!(
            err.to_string().contains(fragment),
            "{err} should contain {fragment:?}"
        );
        assert!(err.to_string().starts_with(setting), "{err}");
    }
}

#[test]
fn secrets_are_never_echoed() {
    let secret = "not-a-valid-key-but-a-secret-all-the-same";
    let err = load(None, &[("TESSERA_MASTER_KEY", secret)]).expect_err("bad key");
    assert!(!err.to_string().contains(secret));
    let err =
        load(Some(&format!("master_key = \"{secret}\"\nbogus = 1")), &[]).expect_err("unknown");
    assert!(!err.to_string().contains(secret), "{err}");
    let err = load(None, &[("TESSERA_STORE_URL", "mysql://u:hunter2@h")]).expect_err("url");
    assert!(!err.to_string().contains("hunter2"));
    let c = load(
        None,
        &[(
            "TESSERA_MASTER_KEY",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        )],
    )
    .expect("ok");
    assert!(!format!("{c:?}").contains("AAAAAAAA"));
}

#[test]
fn every_setting_and_its_variable_is_in_the_readme() {
    let readme = include_str!("../../../../README.md");
    for setting in super::sources::SETTINGS {
        let key = setting.rsplit('.').next().unwrap_or(setting);
        assert!(
            readme.contains(&format!("`{setting}`")) || readme.contains(&format!("/ `{key}`")),
            "README lists {setting}"
        );
        let var = super::sources::env_var(setting);
        let short = var.rfind("__").map_or(var.as_str(), |i| &var[i..]);
        assert!(
            readme.contains(&format!("`{var}`"))
                || readme.contains(&format!("/ `{short}`"))
                || *setting == "store.url",
            "README lists {var}"
        );
    }
    assert_eq!(
        super::sources::env_var("store.max_connections"),
        "TESSERA_STORE__MAX_CONNECTIONS"
    );
}
