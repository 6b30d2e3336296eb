//! `.tagback.yml`: per-service settings for when zero-config is not enough.
//!
//! ```yaml
//! stack: shop            # default stack name for generated scripts
//! files: [stack.yml]     # stack files (like -f)
//! services:
//!   web:
//!     repo: ../shop-app          # where the Django code lives (default: this repository)
//!     ref: "release-{tag}"       # image tag -> git revision (default: "{tag}", then "v{tag}")
//!     manage_py: src/manage.py   # manage.py inside the app repository
//!     settings: shop.settings    # settings module (default: read from manage.py)
//!     installed_apps: [shop, members]  # when INSTALLED_APPS is too dynamic to read
//!     migration_modules: {shop: shop.db_migrations}  # over the settings' MIGRATION_MODULES
//!     python: "3.12"             # the image's Python: decides the pins' environment markers
//!     older:                     # what differs at the revision rolled back to
//!       settings: proj.settings  # (also `newer:`; manage_py, settings, installed_apps,
//!                                #  not_installed, migration_modules, python, requirements)
//!     command: "python manage.py"      # how to run manage.py in the container
//!     strategy: exec             # exec | job | compose
//!   nginx:
//!     django: false
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::source::ProjectSource;

/// The config file's name at the deploy repository's root.
pub const FILE_NAME: &str = ".tagback.yml";

/// How the rollback script runs `manage.py`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Deserialize,
    clap::ValueEnum,
    serde::Serialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// `docker exec` into a running task of the newer image on this node.
    Exec,
    /// A Swarm `replicated-job` service from the newer image.
    Job,
    /// `docker compose exec` / `up -d` for Compose deployments.
    Compose,
}

impl Strategy {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Exec => "exec",
            Strategy::Job => "job",
            Strategy::Compose => "compose",
        }
    }
}

/// The whole file.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Default stack name.
    #[serde(default)]
    pub stack: Option<String>,
    /// Stack files.
    #[serde(default)]
    pub files: Vec<String>,
    /// Where records are kept (default `.tagback/records`).
    #[serde(default)]
    pub ledger: Option<String>,
    /// Per-service settings.
    #[serde(default)]
    pub services: BTreeMap<String, ServiceConfig>,
    /// Keys whose signatures make a record count (git `allowed_signers`
    /// lines, ssh-ed25519); when set, unsigned records do not count.
    #[serde(default)]
    pub trusted_keys: Vec<String>,
    /// Settings of `tagback guard`.
    #[serde(default)]
    pub guard: GuardConfig,
    /// Warnings a person checked and accepted, per migration, with the
    /// reason (blocking findings cannot be acknowledged).
    #[serde(default)]
    pub acknowledge: Vec<crate::finding::Acknowledgement>,
}

/// `guard:` in `.tagback.yml`.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GuardConfig {
    /// Rows of `django_migrations` the code does not know that are not the
    /// database being ahead (each with the reason a person checked).
    #[serde(default)]
    pub allow: Vec<GuardAllow>,
}

/// One allowed row: `migration: APP.NAME` and why it is harmless.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GuardAllow {
    /// `APP.NAME`, as in `django_migrations`.
    pub migration: String,
    /// Why this row is not a newer migration (required).
    pub reason: String,
}

/// What `.tagback.yml` states about one migration.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StatedMigration {
    /// Its dependencies as Django computes them: `[[APP, NAME], …]`
    /// (replacing what the file says; the dynamic finding is resolved).
    pub dependencies: Vec<(String, String)>,
}

/// Settings for one service.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// `false` for services that are not Django.
    #[serde(default)]
    pub django: Option<bool>,
    /// Path of the app repository, relative to the deploy repository root.
    #[serde(default)]
    pub repo: Option<String>,
    /// Template mapping a tag to a git revision: `{tag}` is replaced.
    #[serde(default, rename = "ref")]
    pub ref_template: Option<String>,
    /// `manage.py` path inside the app repository.
    #[serde(default)]
    pub manage_py: Option<String>,
    /// Settings module, when `manage.py` cannot tell.
    #[serde(default)]
    pub settings: Option<String>,
    /// Installed apps (labels or module paths), overriding `INSTALLED_APPS`.
    #[serde(default)]
    pub installed_apps: Option<Vec<String>>,
    /// Migrations directories of the repository whose apps are not installed
    /// in this deployment (test or example apps): their new migrations are
    /// not planned and do not block.
    #[serde(default)]
    pub not_installed: Option<Vec<String>>,
    /// Migrations modules by app label, like Django's `MIGRATION_MODULES`
    /// (`null`: the app has no migrations); they override and add to what
    /// the settings say, at both revisions (`newer:` / `older:` change keys
    /// for one of them).
    #[serde(default)]
    pub migration_modules: Option<BTreeMap<String, Option<String>>>,
    /// What differs at the newer revision of a pair (the one deployed now,
    /// migrated from): replaces the keys above for that revision only.
    #[serde(default)]
    pub newer: Option<SideConfig>,
    /// What differs at the older revision of a pair (the one rolled back
    /// to): replaces the keys above for that revision only.
    #[serde(default)]
    pub older: Option<SideConfig>,
    /// Per migration (`APP.NAME`), what tagback cannot read from its file:
    /// the dependencies a migration computes in `__init__` or at run time.
    #[serde(default)]
    pub migrations: Option<BTreeMap<String, StatedMigration>>,
    /// Command running manage.py inside the container.
    #[serde(default)]
    pub command: Option<String>,
    /// Rollback strategy.
    #[serde(default)]
    pub strategy: Option<Strategy>,
    /// The file's `acknowledge:` list (top level), carried with each
    /// service's settings by [`Config::service`].
    #[serde(skip)]
    pub acknowledge: Vec<crate::finding::Acknowledgement>,
    /// The deploy's pins (`requirements.txt`, `uv.lock`, `poetry.lock`),
    /// relative to the app repository; default: the usual names.
    #[serde(default)]
    pub requirements: Option<String>,
    /// The Python version of the service's image (`"3.12"`, `"3.12.7"`):
    /// the pins' environment markers are decided for it (default: for every
    /// Linux CPython the pins allow).
    #[serde(default)]
    pub python: Option<String>,
    /// A local directory of wheels and sdists, searched before any index.
    #[serde(default)]
    pub wheelhouse: Option<String>,
    /// Where a changed package's files are looked for, in this order
    /// (default `[wheelhouse, index, image]`); a source left out is not used.
    #[serde(default)]
    pub package_sources: Option<Vec<PackageSource>>,
}

/// `newer:` / `older:` of a service: how one revision of a pair differs
/// from what the service's keys say (a settings module renamed between
/// releases, `MIGRATION_MODULES` changed).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SideConfig {
    /// `manage.py` at this revision, where it moved between releases
    /// (replaces `manage_py:`).
    #[serde(default)]
    pub manage_py: Option<String>,
    /// Settings module at this revision (replaces `settings:`).
    #[serde(default)]
    pub settings: Option<String>,
    /// Installed apps at this revision (replaces `installed_apps:`).
    #[serde(default)]
    pub installed_apps: Option<Vec<String>>,
    /// Migrations directories not installed at this revision (replaces
    /// `not_installed:`).
    #[serde(default)]
    pub not_installed: Option<Vec<String>>,
    /// Migrations modules at this revision: each key replaces the same key
    /// of the service's `migration_modules:` (the other keys stay).
    #[serde(default)]
    pub migration_modules: Option<BTreeMap<String, Option<String>>>,
    /// The image's Python version at this revision (replaces `python:`).
    #[serde(default)]
    pub python: Option<String>,
    /// The deploy's pins at this revision (replaces `requirements:`).
    #[serde(default)]
    pub requirements: Option<String>,
}

impl crate::django::ProjectOptions {
    /// The options one revision of a pair is read with: `newer` for the
    /// revision migrated from (the first of `load_pair`), else the older;
    /// what `newer:` / `older:` say replaces the service's keys.
    pub fn side(&self, newer: bool) -> crate::django::ProjectOptions {
        let over = &self.sides[usize::from(!newer)];
        let mut opts = self.clone();
        if let Some(m) = &over.manage_py {
            opts.manage_py = Some(m.clone());
        }
        if let Some(s) = &over.settings {
            opts.settings = Some(s.clone());
        }
        if let Some(r) = &over.requirements {
            opts.requirements = Some(r.clone());
        }
        if let Some(a) = &over.installed_apps {
            opts.installed_apps = Some(a.clone());
        }
        if let Some(n) = &over.not_installed {
            opts.not_installed = n.clone();
        }
        if let Some(p) = &over.python {
            opts.python = Some(p.clone());
        }
        if let Some(m) = &over.migration_modules {
            opts.migration_modules.extend(m.clone());
        }
        opts.sides = Default::default();
        opts
    }
}

/// One place the files of a package version come from (`package_sources:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PackageSource {
    /// The wheelhouse directories, then the archive cache (`.git/tagback/packages`).
    Wheelhouse,
    /// The package index pip or uv would use (`PIP_INDEX_URL`, …).
    Index,
    /// The service's Docker image at each revision, when it is local: the
    /// package as installed in its site-packages (read with `docker image save`).
    Image,
}

impl PackageSource {
    /// The default order.
    pub const DEFAULT: [PackageSource; 3] = [
        PackageSource::Wheelhouse,
        PackageSource::Index,
        PackageSource::Image,
    ];

    /// The name in `.tagback.yml`.
    pub fn as_str(self) -> &'static str {
        match self {
            PackageSource::Wheelhouse => "wheelhouse",
            PackageSource::Index => "index",
            PackageSource::Image => "image",
        }
    }
}

/// The file given with `--config`, read once; it replaces every
/// repository's own `.tagback.yml` for the whole run.
static OVERRIDE: std::sync::OnceLock<Config> = std::sync::OnceLock::new();

/// Use `path` instead of any repository's `.tagback.yml` (the `--config`
/// flag). Errors name the file; a second call keeps the first file.
pub fn use_file(path: &std::path::Path) -> Result<()> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let config = Config::parse(&text)
        .map_err(|e| Error::input(format!("{} (--config): {e}", path.display())))?;
    let _ = OVERRIDE.set(config);
    Ok(())
}

impl ServiceConfig {
    /// Apply what the configuration says about a computed plan: the
    /// `command:` that runs manage.py, and the acknowledged warnings.
    pub fn finish(&self, plan: &mut crate::plan::Plan) {
        plan.use_manage_command(self.command.as_deref());
        plan.acknowledge(&self.acknowledge);
    }

    /// How to find and read the service's Django project.
    pub fn project_options(&self) -> crate::django::ProjectOptions {
        crate::django::ProjectOptions {
            manage_py: self.manage_py.clone(),
            settings: self.settings.clone(),
            installed_apps: self.installed_apps.clone(),
            not_installed: self.not_installed.clone().unwrap_or_default(),
            requirements: self.requirements.clone(),
            python: self.python.clone(),
            wheelhouse: self.wheelhouse.clone(),
            package_sources: self
                .package_sources
                .clone()
                .unwrap_or_else(|| PackageSource::DEFAULT.to_vec()),
            images: [None, None],
            migration_modules: self.migration_modules.clone().unwrap_or_default(),
            sides: [
                self.newer.clone().unwrap_or_default(),
                self.older.clone().unwrap_or_default(),
            ],
            stated_dependencies: self
                .migrations
                .iter()
                .flatten()
                .map(|(k, m)| (k.clone(), m.dependencies.clone()))
                .collect(),
        }
    }
}

impl Config {
    /// Read `.tagback.yml` from a source (a revision, the image's files),
    /// or the `--config` file; the default config when absent.
    pub fn load(src: &dyn ProjectSource) -> Result<Config> {
        if let Some(c) = OVERRIDE.get() {
            return Ok(c.clone());
        }
        let Some(text) = src.read_text(FILE_NAME)? else {
            return Ok(Config::default());
        };
        Config::parse(&text)
            .map_err(|e| Error::input(format!("{FILE_NAME} at {}: {e}", src.label())))
    }

    /// Parse the file's text.
    pub fn parse(text: &str) -> Result<Config, String> {
        if text.trim().is_empty() {
            return Ok(Config::default());
        }
        let config: Config =
            serde_saphyr::from_str(text).map_err(|e| crate::stack::compose::yaml_error(&e))?;
        for (i, a) in config.acknowledge.iter().enumerate() {
            if let Some(why) = a.invalid() {
                return Err(format!("acknowledge[{i}] ({}): {why}", a.migration));
            }
        }
        for (name, service) in &config.services {
            if let Some(sources) = &service.package_sources {
                check_sources(sources)
                    .map_err(|e| format!("services.{name}.package_sources: {e}"))?;
            }
        }
        Ok(config)
    }

    /// The settings for a service (defaults when not configured).
    pub fn service(&self, name: &str) -> ServiceConfig {
        self.with_globals(self.services.get(name).cloned().unwrap_or_default())
    }

    /// A service's settings with what the file says for every service.
    fn with_globals(&self, service: ServiceConfig) -> ServiceConfig {
        ServiceConfig {
            acknowledge: self.acknowledge.clone(),
            ..service
        }
    }

    /// The settings `plan --repo` uses: the named service's, else those of
    /// the only service that is not `django: false`, else the defaults.
    /// Several Django services and no name: an error that lists them.
    pub fn plan_service(&self, name: Option<&str>) -> Result<ServiceConfig, String> {
        if let Some(n) = name {
            return self
                .services
                .get(n)
                .cloned()
                .map(|s| self.with_globals(s))
                .ok_or_else(|| format!("{FILE_NAME} has no service {n:?}"));
        }
        let django: Vec<&String> = self
            .services
            .iter()
            .filter(|(_, s)| s.django != Some(false))
            .map(|(n, _)| n)
            .collect();
        match django.as_slice() {
            [] => Ok(self.with_globals(ServiceConfig::default())),
            [one] => Ok(self.with_globals(self.services[*one].clone())),
            many => Err(format!(
                "{FILE_NAME} configures several Django services ({}); say which with --service",
                many.iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }
}

impl Config {
    /// The settings the guard reads the code with: those of `--service`, of
    /// the only Django service, or — with several Django services and no
    /// name — theirs when they all read the code alike (manage.py, settings,
    /// installed apps, migrations modules, stated dependencies); otherwise
    /// the same error as `plan --repo`'s.
    pub fn guard_service(&self, name: Option<&str>) -> Result<ServiceConfig, String> {
        self.plan_service(name).or_else(|e| {
            let mut django = self.services.values().filter(|s| s.django != Some(false));
            let first = django.next().ok_or_else(|| e.clone())?;
            let reads = |s: &ServiceConfig| {
                let o = s.project_options();
                (
                    o.manage_py,
                    o.settings,
                    o.installed_apps,
                    o.not_installed,
                    o.migration_modules,
                    o.stated_dependencies,
                    s.newer.clone(),
                    s.older.clone(),
                )
            };
            let want = reads(first);
            if django.all(|s| reads(s) == want) {
                Ok(self.with_globals(first.clone()))
            } else {
                Err(format!(
                    "{e} (they read the code differently: pass --service NAME to the guard)"
                ))
            }
        })
    }
}

/// `package_sources:` names at least one source, each once.
fn check_sources(sources: &[PackageSource]) -> Result<(), String> {
    if sources.is_empty() {
        return Err(
            "is empty: name at least one of wheelhouse, index, image (or leave the key out for all three)"
                .to_string(),
        );
    }
    for (i, s) in sources.iter().enumerate() {
        if sources[..i].contains(s) {
            return Err(format!("names {} twice", s.as_str()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_sources_are_an_order_of_known_sources() {
        let c =
            Config::parse("services:\n  web:\n    package_sources: [image, wheelhouse]\n").unwrap();
        assert_eq!(
            c.service("web").project_options().package_sources,
            [PackageSource::Image, PackageSource::Wheelhouse]
        );
        assert_eq!(
            c.service("other").project_options().package_sources,
            PackageSource::DEFAULT
        );
        for (yaml, says) in [
            ("[]", "is empty"),
            ("[index, index]", "names index twice"),
            ("[images]", "unknown variant"),
        ] {
            let e = Config::parse(&format!("services:\n  web:\n    package_sources: {yaml}\n"))
                .unwrap_err();
            assert!(e.contains(says), "{yaml}: {e}");
        }
    }

    #[test]
    fn parses_example() {
        let c = Config::parse(
            "stack: shop\nservices:\n  web:\n    ref: \"release-{tag}\"\n    strategy: job\n  nginx:\n    django: false\n",
        )
        .unwrap();
        assert_eq!(c.stack.as_deref(), Some("shop"));
        assert_eq!(
            c.service("web").ref_template.as_deref(),
            Some("release-{tag}")
        );
        assert_eq!(c.service("web").strategy, Some(Strategy::Job));
        assert_eq!(c.service("nginx").django, Some(false));
        assert!(c.service("other").django.is_none());
    }

    #[test]
    fn acknowledgements_are_only_for_warnings_with_a_reason() {
        let ok = Config::parse(
            "acknowledge:\n  - code: data-loss\n    migration: shop.0003_badge\n    reason: column unused since 2025\n",
        )
        .unwrap();
        assert_eq!(ok.acknowledge.len(), 1);
        for (yaml, says) in [
            (
                "code: irreversible\n    migration: shop.0003_x\n    reason: r",
                "blocks the downgrade",
            ),
            (
                "code: assumed-external-apps\n    migration: shop.0003_x\n    reason: r",
                "only `data-loss`",
            ),
            (
                "code: data-loss\n    migration: shop\n    reason: r",
                "not APP.NAME",
            ),
            (
                "code: data-loss\n    migration: shop.0003_x\n    reason: ' '",
                "has no reason",
            ),
            (
                "code: data-los\n    migration: shop.0003_x\n    reason: r",
                "unknown variant",
            ),
        ] {
            let e = Config::parse(&format!("acknowledge:\n  - {yaml}\n")).unwrap_err();
            assert!(e.contains(says), "{yaml}: {e}");
        }
    }

    #[test]
    fn newer_and_older_replace_keys_for_their_revision() {
        let c = Config::parse(
            "services:\n  web:\n    settings: config.settings\n    not_installed: [t/migrations]\n    migration_modules: {shop: shop.m, blog: null}\n    older:\n      settings: proj.settings\n      not_installed: []\n      migration_modules: {shop: shop.legacy}\n",
        )
        .unwrap();
        let opts = c.service("web").project_options();
        let (n, o) = (opts.side(true), opts.side(false));
        assert_eq!(n.settings.as_deref(), Some("config.settings"));
        assert_eq!(o.settings.as_deref(), Some("proj.settings"));
        assert_eq!(n.not_installed, ["t/migrations"]);
        assert!(o.not_installed.is_empty());
        assert_eq!(n.migration_modules["shop"].as_deref(), Some("shop.m"));
        assert_eq!(o.migration_modules["shop"].as_deref(), Some("shop.legacy"));
        assert_eq!(o.migration_modules["blog"], None);
        // manage.py and the pins that moved between releases (InvenTree
        // 0.15: under src/backend/).
        let c = Config::parse(
            "services:\n  web:\n    manage_py: InvenTree/manage.py\n    newer:\n      manage_py: src/backend/InvenTree/manage.py\n      requirements: src/backend/requirements.txt\n      python: \"3.11\"\n",
        )
        .unwrap();
        let opts = c.service("web").project_options();
        let (n, o) = (opts.side(true), opts.side(false));
        assert_eq!(
            n.manage_py.as_deref(),
            Some("src/backend/InvenTree/manage.py")
        );
        assert_eq!(o.manage_py.as_deref(), Some("InvenTree/manage.py"));
        assert_eq!(
            n.requirements.as_deref(),
            Some("src/backend/requirements.txt")
        );
        assert_eq!(o.requirements, None);
        assert_eq!(n.python.as_deref(), Some("3.11"));
        // What a revision cannot change is refused with its line.
        let e = Config::parse("services:\n  web:\n    newer:\n      command: x\n").unwrap_err();
        assert!(e.starts_with("line 4") && e.contains("command"), "{e}");
    }

    #[test]
    fn unknown_keys_are_errors() {
        assert!(Config::parse("services:\n  web:\n    refs: x\n").is_err());
    }

    #[test]
    fn r15_deep_nesting_is_an_error_with_its_line() {
        let n = 100_000;
        for deep in [
            format!("x: {}{}\n", "[".repeat(n), "]".repeat(n)),
            format!(
                "services:\n  web:\n    installed_apps: {}{}\n",
                "[".repeat(n),
                "]".repeat(n)
            ),
        ] {
            let e = Config::parse(&deep).unwrap_err();
            assert!(e.starts_with("line "), "{e}");
        }
    }
}
