//! Where schemas come from: Iglu static registries (a directory laid out as
//! `DIR/VENDOR/NAME/FORMAT/VERSION`, the same layout served over HTTP, and
//! the schemas built into this crate), and the resolver that orders them by
//! vendor prefix and priority, as an Iglu resolver configuration says.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use serde_json::Value;

use crate::event::IgluUri;

/// The largest schema a registry may hand over; a larger one is refused
/// rather than read into memory.
pub const MAX_SCHEMA_BYTES: u64 = 4 << 20;

/// The schemas this crate ships in `schemas/`, built in so that the tools'
/// own events validate with no registry at all.
/// (A test keeps this list and `schemas/` the same.)
pub const BUILTIN: &[(&str, &str)] = &[
    (
        "iglu:io.unilog/alert/jsonschema/1-0-0",
        include_str!("../../schemas/io.unilog/alert/jsonschema/1-0-0"),
    ),
    (
        "iglu:io.unilog/alert_outcome/jsonschema/1-0-0",
        include_str!("../../schemas/io.unilog/alert_outcome/jsonschema/1-0-0"),
    ),
    (
        "iglu:io.unilog/enriched_at/jsonschema/1-0-0",
        include_str!("../../schemas/io.unilog/enriched_at/jsonschema/1-0-0"),
    ),
    (
        "iglu:io.unilog/event_id/jsonschema/1-0-0",
        include_str!("../../schemas/io.unilog/event_id/jsonschema/1-0-0"),
    ),
    (
        "iglu:io.unilog/failure/jsonschema/1-0-0",
        include_str!("../../schemas/io.unilog/failure/jsonschema/1-0-0"),
    ),
    (
        "iglu:io.unilog/geo_location/jsonschema/1-0-0",
        include_str!("../../schemas/io.unilog/geo_location/jsonschema/1-0-0"),
    ),
    (
        "iglu:io.unilog/geo_location/jsonschema/1-0-1",
        include_str!("../../schemas/io.unilog/geo_location/jsonschema/1-0-1"),
    ),
    (
        "iglu:io.unilog/lookup/jsonschema/1-0-0",
        include_str!("../../schemas/io.unilog/lookup/jsonschema/1-0-0"),
    ),
    (
        "iglu:io.unilog/user_agent/jsonschema/1-0-0",
        include_str!("../../schemas/io.unilog/user_agent/jsonschema/1-0-0"),
    ),
    (
        "iglu:io.unilog/user_agent/jsonschema/2-0-0",
        include_str!("../../schemas/io.unilog/user_agent/jsonschema/2-0-0"),
    ),
    (
        "iglu:io.unilog/window/jsonschema/1-0-0",
        include_str!("../../schemas/io.unilog/window/jsonschema/1-0-0"),
    ),
];

/// One place schemas are kept.
#[derive(Debug, Clone)]
pub enum Source {
    /// A static registry on disk: `ROOT/VENDOR/NAME/FORMAT/VERSION`.
    Dir(PathBuf),
    /// A static registry over HTTP: `BASE/schemas/VENDOR/NAME/FORMAT/VERSION`.
    Http {
        /// The registry's base URL, without a trailing slash.
        base: String,
        /// Sent as the `apikey` header (Iglu Server), when set.
        api_key: Option<String>,
        /// The HTTP client, with its timeouts.
        agent: ureq::Agent,
    },
    /// The schemas built into this crate ([`BUILTIN`]).
    Builtin,
}

/// What looking a schema up in one source gave.
#[derive(Debug, Clone, PartialEq)]
pub enum Fetched {
    /// The schema's text.
    Found(String),
    /// Not there (the source answered that it does not have it).
    Missing,
    /// The source could not answer (I/O error, HTTP error, too large).
    Error(String),
}

impl Source {
    /// A directory registry.
    pub fn dir(root: impl Into<PathBuf>) -> Self {
        Source::Dir(root.into())
    }

    /// An HTTP registry at `base` (`http://host:port/path`).
    pub fn http(base: &str, api_key: Option<String>) -> Result<Self> {
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            bail!("registry URI {base:?} must start with http:// or https://");
        }
        let config = ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(5)))
            .timeout_global(Some(Duration::from_secs(20)))
            .http_status_as_error(false)
            .max_redirects(3)
            .build();
        Ok(Source::Http {
            base: base.trim_end_matches('/').to_string(),
            api_key,
            agent: config.into(),
        })
    }

    /// Where this source keeps `uri`, as said in messages: a path or a URL.
    pub fn location(&self, uri: &IgluUri) -> String {
        match self {
            Source::Dir(root) => root.join(relative_path(uri)).display().to_string(),
            Source::Http { base, .. } => format!("{base}/schemas/{}", relative_path(uri).display()),
            Source::Builtin => format!("built-in {uri}"),
        }
    }

    /// Looks `uri` up. The URI's parts are checked by [`IgluUri::parse`]
    /// (letters, digits, `-`, `_`, and `.` in the vendor, never `.` or `..`
    /// alone), so the path built from them stays inside the registry.
    pub fn fetch(&self, uri: &IgluUri) -> Fetched {
        match self {
            Source::Dir(root) => read_capped(root, uri),
            Source::Http {
                base,
                api_key,
                agent,
            } => {
                let url = format!("{base}/schemas/{}", relative_path(uri).display());
                let mut request = agent.get(&url);
                if let Some(key) = api_key {
                    request = request.header("apikey", key);
                }
                match request.call() {
                    Ok(mut response) => match response.status().as_u16() {
                        200 => match response
                            .body_mut()
                            .with_config()
                            .limit(MAX_SCHEMA_BYTES)
                            .read_to_string()
                        {
                            Ok(text) => Fetched::Found(text),
                            Err(e) => Fetched::Error(format!("{url}: {e}")),
                        },
                        404 | 410 => Fetched::Missing,
                        status => Fetched::Error(format!("{url}: HTTP status {status}")),
                    },
                    Err(e) => Fetched::Error(format!("{url}: {e}")),
                }
            }
            Source::Builtin => {
                let key = uri.to_string();
                match BUILTIN.iter().find(|(k, _)| *k == key) {
                    Some((_, text)) => Fetched::Found((*text).to_string()),
                    None => Fetched::Missing,
                }
            }
        }
    }
}

/// `VENDOR/NAME/FORMAT/VERSION`.
pub fn relative_path(uri: &IgluUri) -> PathBuf {
    let mut p = PathBuf::from(&uri.vendor);
    p.push(&uri.name);
    p.push(&uri.format);
    p.push(uri.version.to_string());
    p
}

/// Reads `uri`'s file from the registry at `root`: only a regular file
/// inside it, reached through no symbolic link (the URI's parts are plain
/// names, so no `..` either). A link or any other kind of file is refused
/// by name; its target is never opened, so nothing outside the registry
/// reaches a message.
fn read_capped(root: &Path, uri: &IgluUri) -> Fetched {
    use std::io::Read;
    let path = root.join(relative_path(uri));
    let version = uri.version.to_string();
    let parts = [
        uri.vendor.as_str(),
        uri.name.as_str(),
        uri.format.as_str(),
        version.as_str(),
    ];
    let file = match crate::store::file::open_beneath(root, &parts, refused) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Fetched::Missing,
        Err(e) if e.get_ref().is_some_and(|r| r.is::<Refused>()) => {
            return Fetched::Error(e.to_string())
        }
        Err(e) => return Fetched::Error(format!("{}: {e}", path.display())),
    };
    match file.metadata() {
        Ok(m) if m.len() > MAX_SCHEMA_BYTES => {
            return Fetched::Error(format!(
                "{}: {} bytes, over the {} byte limit for a schema",
                path.display(),
                m.len(),
                MAX_SCHEMA_BYTES
            ))
        }
        _ => {}
    }
    let mut text = String::new();
    match file.take(MAX_SCHEMA_BYTES + 1).read_to_string(&mut text) {
        Ok(_) if text.len() as u64 > MAX_SCHEMA_BYTES => Fetched::Error(format!(
            "{}: over the {} byte limit for a schema",
            path.display(),
            MAX_SCHEMA_BYTES
        )),
        Ok(_) => Fetched::Found(text),
        Err(e) => Fetched::Error(format!("{}: {e}", path.display())),
    }
}

/// A registry path that is not a regular file or a real directory.
#[derive(Debug)]
struct Refused(String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

fn refused(path: &Path, what: &str) -> std::io::Error {
    std::io::Error::other(Refused(format!(
        "{} is {what}; a registry serves only regular files inside it and never follows links (put the schema file itself there)",
        path.display()
    )))
}

/// A source with its place in the resolution order.
#[derive(Debug, Clone)]
pub struct Repository {
    /// Name used in messages.
    pub name: String,
    /// Lower is tried first (as in Iglu).
    pub priority: i64,
    /// Vendors this repository is first choice for (`com.nile` matches
    /// `com.nile` and `com.nile.eu`).
    pub vendor_prefixes: Vec<String>,
    /// Where the schemas are.
    pub source: Source,
}

impl Repository {
    fn matches_vendor(&self, vendor: &str) -> bool {
        self.vendor_prefixes
            .iter()
            .any(|p| vendor.starts_with(p.as_str()))
    }

    fn class(&self) -> u8 {
        match self.source {
            Source::Dir(_) => 0,
            Source::Builtin => 1,
            Source::Http { .. } => 2,
        }
    }
}

/// A schema found: its text and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    /// The schema's text.
    pub text: String,
    /// Where it was found (path or URL).
    pub location: String,
}

/// A schema not found: every place looked, and any source that could not answer.
#[derive(Debug, Clone, PartialEq)]
pub struct NotFound {
    /// Every place looked, in order.
    pub looked_in: Vec<String>,
    /// Errors from sources that could not answer.
    pub errors: Vec<String>,
}

/// Default size of the compiled-schema cache.
pub const DEFAULT_CACHE_SIZE: usize = 500;

/// An ordered set of repositories and the cache settings, as an Iglu
/// resolver configuration describes them.
#[derive(Debug, Clone)]
pub struct Resolver {
    /// The repositories, in configuration order.
    pub repositories: Vec<Repository>,
    /// How many schemas (found or not) the cache keeps.
    pub cache_size: usize,
    /// How long a cached lookup stays good; `None` is for the whole run.
    pub cache_ttl: Option<Duration>,
}

/// `iglu:com.snowplowanalytics.iglu/resolver-config/jsonschema/1-0-*`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConfigData {
    cache_size: Option<usize>,
    #[serde(default)]
    cache_ttl: Option<u64>,
    repositories: Vec<ConfigRepository>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ConfigRepository {
    name: String,
    #[serde(default)]
    priority: i64,
    #[serde(default)]
    vendor_prefixes: Vec<String>,
    connection: Connection,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
enum Connection {
    Embedded {
        path: String,
    },
    Http {
        uri: String,
        #[serde(default)]
        apikey: Option<String>,
    },
}

impl Resolver {
    /// The resolver the shared flags name: `--resolver FILE`, else the
    /// `--registry` directories, else [`Resolver::default_here`].
    pub fn from_flags(registry: &[PathBuf], config: Option<&Path>) -> Result<Self> {
        match config {
            Some(path) => Resolver::from_config_file(path),
            None if !registry.is_empty() => {
                for dir in registry {
                    if !dir.is_dir() {
                        bail!("registry {} is not a directory", dir.display());
                    }
                }
                Ok(Resolver::from_dirs(registry))
            }
            None => Ok(Resolver::default_here()),
        }
    }

    /// The default with no flags: `./schemas` when it is a directory, then
    /// the built-in schemas.
    pub fn default_here() -> Self {
        let mut dirs = Vec::new();
        if Path::new("schemas").is_dir() {
            dirs.push(PathBuf::from("schemas"));
        }
        Self::from_dirs(&dirs)
    }

    /// The given directories, first one first, then the built-in schemas.
    pub fn from_dirs(dirs: &[PathBuf]) -> Self {
        let mut repositories: Vec<Repository> = dirs
            .iter()
            .enumerate()
            .map(|(i, dir)| Repository {
                name: dir.display().to_string(),
                priority: i as i64,
                vendor_prefixes: vec![],
                source: Source::Dir(dir.clone()),
            })
            .collect();
        repositories.push(builtin_repository());
        Resolver {
            repositories,
            cache_size: DEFAULT_CACHE_SIZE,
            cache_ttl: None,
        }
    }

    /// Reads an Iglu resolver configuration (a self-describing JSON of
    /// `iglu:com.snowplowanalytics.iglu/resolver-config/jsonschema/1-0-x`).
    /// An `embedded` repository's `path` is a directory, relative to the
    /// configuration file; the built-in schemas come last.
    pub fn from_config_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read resolver configuration {}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::from_config(&text, base)
            .with_context(|| format!("resolver configuration {}", path.display()))
    }

    /// Parses a resolver configuration; `base` is where relative embedded paths start.
    pub fn from_config(text: &str, base: &Path) -> Result<Self> {
        let value: Value = serde_json::from_str(text).context("not JSON")?;
        let schema = value
            .get("schema")
            .and_then(Value::as_str)
            .context("must be self-describing: {\"schema\":\"iglu:com.snowplowanalytics.iglu/resolver-config/jsonschema/1-0-3\",\"data\":{…}}")?;
        let uri = IgluUri::parse(schema)?;
        if uri.vendor != "com.snowplowanalytics.iglu"
            || uri.name != "resolver-config"
            || uri.version.model != 1
        {
            bail!("schema {schema} is not an Iglu resolver configuration (iglu:com.snowplowanalytics.iglu/resolver-config/jsonschema/1-0-x)");
        }
        let data: ConfigData =
            serde_json::from_value(value.get("data").cloned().unwrap_or(Value::Null))
                .context("bad \"data\"")?;
        let mut repositories = Vec::new();
        for repo in data.repositories {
            let source = match repo.connection {
                Connection::Embedded { path } => {
                    let p = Path::new(&path);
                    let p = if p.is_absolute() {
                        p.to_path_buf()
                    } else {
                        base.join(p)
                    };
                    Source::Dir(p)
                }
                Connection::Http { uri, apikey } => Source::http(&uri, apikey)
                    .with_context(|| format!("repository {:?}", repo.name))?,
            };
            repositories.push(Repository {
                name: repo.name,
                priority: repo.priority,
                vendor_prefixes: repo.vendor_prefixes,
                source,
            });
        }
        repositories.push(builtin_repository());
        Ok(Resolver {
            repositories,
            cache_size: data.cache_size.unwrap_or(DEFAULT_CACHE_SIZE).max(1),
            cache_ttl: data.cache_ttl.map(Duration::from_secs),
        })
    }

    /// The repositories in the order they are tried for `vendor`: those
    /// whose vendor prefixes match first, then by priority (lower first),
    /// then directories and built-ins before HTTP, then configuration order.
    pub fn order_for(&self, vendor: &str) -> Vec<&Repository> {
        let mut order: Vec<(usize, &Repository)> = self.repositories.iter().enumerate().collect();
        order.sort_by_key(|(i, r)| (!r.matches_vendor(vendor), r.priority, r.class(), *i));
        order.into_iter().map(|(_, r)| r).collect()
    }

    /// Finds `uri` in the first repository that has it.
    pub fn resolve(&self, uri: &IgluUri) -> std::result::Result<Found, NotFound> {
        let mut not_found = NotFound {
            looked_in: vec![],
            errors: vec![],
        };
        for repo in self.order_for(&uri.vendor) {
            let location = repo.source.location(uri);
            match repo.source.fetch(uri) {
                Fetched::Found(text) => return Ok(Found { text, location }),
                Fetched::Missing => not_found.looked_in.push(location),
                Fetched::Error(e) => {
                    not_found.looked_in.push(location);
                    not_found
                        .errors
                        .push(format!("repository {:?}: {e}", repo.name));
                }
            }
        }
        Err(not_found)
    }
}

fn builtin_repository() -> Repository {
    Repository {
        name: "built-in".into(),
        priority: i64::MAX,
        vendor_prefixes: vec!["io.unilog".into()],
        source: Source::Builtin,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(s: &str) -> IgluUri {
        IgluUri::parse(s).unwrap()
    }

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    #[test]
    fn dirs_are_tried_in_order_and_misses_say_where() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        write(a.path(), "com.x/e/jsonschema/1-0-0", "A");
        write(b.path(), "com.x/e/jsonschema/1-0-0", "B");
        write(b.path(), "com.x/f/jsonschema/1-0-0", "F");
        let r = Resolver::from_dirs(&[a.path().into(), b.path().into()]);
        assert_eq!(
            r.resolve(&uri("iglu:com.x/e/jsonschema/1-0-0"))
                .unwrap()
                .text,
            "A"
        );
        assert_eq!(
            r.resolve(&uri("iglu:com.x/f/jsonschema/1-0-0"))
                .unwrap()
                .text,
            "F"
        );
        let miss = r
            .resolve(&uri("iglu:com.x/g/jsonschema/1-0-0"))
            .unwrap_err();
        assert_eq!(miss.looked_in.len(), 3);
        assert!(miss.looked_in[0].ends_with("com.x/g/jsonschema/1-0-0"));
        assert!(miss.looked_in[0].starts_with(&a.path().display().to_string()));
        assert_eq!(miss.looked_in[2], "built-in iglu:com.x/g/jsonschema/1-0-0");
    }

    #[test]
    fn builtins_resolve_with_no_registry() {
        let r = Resolver::from_dirs(&[]);
        let found = r.resolve(&uri(crate::event::FAILURE_SCHEMA)).unwrap();
        assert!(found.text.contains("\"io.unilog\""));
    }

    #[test]
    fn resolver_config_orders_by_vendor_prefix_then_priority() {
        let config = r#"{"schema":"iglu:com.snowplowanalytics.iglu/resolver-config/jsonschema/1-0-3",
          "data":{"cacheSize":10,"cacheTtl":60,"repositories":[
            {"name":"low","priority":5,"vendorPrefixes":[],"connection":{"embedded":{"path":"low"}}},
            {"name":"high","priority":1,"vendorPrefixes":[],"connection":{"embedded":{"path":"/abs/high"}}},
            {"name":"nile","priority":9,"vendorPrefixes":["com.nile"],"connection":{"http":{"uri":"http://127.0.0.1:1/r/"}}}
          ]}}"#;
        let r = Resolver::from_config(config, Path::new("/etc/u")).unwrap();
        assert_eq!(r.cache_size, 10);
        assert_eq!(r.cache_ttl, Some(Duration::from_secs(60)));
        let names = |v: &str| {
            r.order_for(v)
                .iter()
                .map(|r| r.name.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(names("com.plum"), ["high", "low", "nile", "built-in"]);
        assert_eq!(names("com.nile"), ["nile", "high", "low", "built-in"]);
        assert_eq!(names("com.nile.eu"), ["nile", "high", "low", "built-in"]);
        assert_eq!(names("io.unilog"), ["built-in", "high", "low", "nile"]);
        let low = &r.repositories[0];
        assert!(matches!(&low.source, Source::Dir(p) if p == Path::new("/etc/u/low")));
        assert_eq!(
            r.repositories[2]
                .source
                .location(&uri("iglu:com.nile/a/jsonschema/1-0-0")),
            "http://127.0.0.1:1/r/schemas/com.nile/a/jsonschema/1-0-0"
        );
    }

    #[test]
    fn bad_configs_are_refused() {
        let base = Path::new(".");
        assert!(Resolver::from_config("{", base).is_err());
        assert!(Resolver::from_config(r#"{"data":{"repositories":[]}}"#, base).is_err());
        let wrong = r#"{"schema":"iglu:com.x/other/jsonschema/1-0-0","data":{"repositories":[]}}"#;
        assert!(Resolver::from_config(wrong, base).is_err());
        let bad_conn = r#"{"schema":"iglu:com.snowplowanalytics.iglu/resolver-config/jsonschema/1-0-1",
          "data":{"repositories":[{"name":"x","connection":{"ftp":{"uri":"x"}}}]}}"#;
        assert!(Resolver::from_config(bad_conn, base).is_err());
        let bad_http = r#"{"schema":"iglu:com.snowplowanalytics.iglu/resolver-config/jsonschema/1-0-1",
          "data":{"repositories":[{"name":"x","connection":{"http":{"uri":"file:///etc"}}}]}}"#;
        assert!(Resolver::from_config(bad_http, base).is_err());
    }

    #[test]
    fn oversize_and_directory_schemas_are_errors() {
        let a = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(a.path().join("com.x/d/jsonschema/1-0-0")).unwrap();
        let src = Source::dir(a.path());
        assert!(matches!(
            src.fetch(&uri("iglu:com.x/d/jsonschema/1-0-0")),
            Fetched::Error(_)
        ));
        write(
            a.path(),
            "com.x/big/jsonschema/1-0-0",
            &" ".repeat(MAX_SCHEMA_BYTES as usize + 1),
        );
        assert!(matches!(
            src.fetch(&uri("iglu:com.x/big/jsonschema/1-0-0")),
            Fetched::Error(_)
        ));
    }
}
