//! What one run shares between the two revisions it reads, and what runs
//! share through the parse cache: parsed Python files, settings reads, app
//! resolutions by tree id, and the project records of earlier runs.

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use super::apps::resolve_app;
use super::records::{self, PROJECTS_FILE};
use super::settings::{self, Footprint, ReadContext, SettingsRead};
use super::{App, Project, join, top_of_module};
use crate::django::cache::{AppMemo, DiskCache};
use crate::django::python::{self, Stmt};
use crate::error::{Error, Result};
use crate::source::ProjectSource;

/// App resolutions, shared between the revisions of one run and kept on disk
/// between runs: an entry whose top-level package directory has the same tree
/// id resolves the same way, and a migrations directory exists or not the same
/// way when its top-level directory has the same tree id. A warm run of a
/// project with hundreds of apps reads no app directory at all.
#[derive(Default)]
pub struct Resolutions {
    /// Loaded from disk on first use (a warm run rarely needs it).
    memo: std::cell::OnceCell<std::cell::RefCell<AppMemo>>,
    disk: Option<DiskCache>,
    /// Python files parsed in this run, by blob id (settings and app
    /// configs are mostly the same blobs at both revisions).
    parsed: std::cell::RefCell<BTreeMap<git2::Oid, Rc<Vec<Stmt>>>>,
    /// Settings read in this run or by earlier runs.
    pub(super) settings: std::cell::RefCell<Vec<Rc<SettingsRead>>>,
    /// Projects resolved by earlier runs (from the on-disk cache).
    pub(super) records: Vec<records::Record>,
    /// Top-level entries the settings being read have looked at.
    pub(super) touched: std::cell::RefCell<BTreeSet<String>>,
}

/// The top-level entry of the repository a path lies below.
fn top_of(path: &str) -> &str {
    path.split('/').next().unwrap_or(path)
}

impl Resolutions {
    /// Resolutions backed by the on-disk cache.
    pub fn with_disk(disk: DiskCache) -> Resolutions {
        let records = disk
            .read(PROJECTS_FILE)
            .and_then(|t| records::decode(&t))
            .unwrap_or_default();
        let settings = records.iter().map(|r| r.settings.clone()).collect();
        Resolutions {
            memo: std::cell::OnceCell::new(),
            disk: Some(disk),
            parsed: Default::default(),
            settings: std::cell::RefCell::new(settings),
            records,
            touched: Default::default(),
        }
    }

    /// Write what this run resolved back to the cache (best effort): the
    /// app resolutions, and the projects of this run (most recent first).
    pub fn save(&self, projects: &[&Project]) {
        let Some(disk) = &self.disk else {
            return;
        };
        if let Some(memo) = self.memo.get() {
            disk.put_app_memo(&memo.borrow());
        }
        if let Some(records) = records::merge(&self.records, projects) {
            disk.write(PROJECTS_FILE, &records::encode(&records));
        }
    }

    fn app_memo(&self) -> &std::cell::RefCell<AppMemo> {
        self.memo.get_or_init(|| {
            std::cell::RefCell::new(self.disk.as_ref().map(|d| d.app_memo()).unwrap_or_default())
        })
    }

    /// The settings of `src`: reused from an earlier revision of this run
    /// (or a cached record) when every top-level entry that read looked at
    /// is identical, else read, with the entries it touched as its footprint.
    pub(super) fn settings(
        &self,
        src: &dyn ProjectSource,
        opts: &super::ProjectOptions,
        root: &str,
        manage_py: &str,
    ) -> Result<Rc<SettingsRead>> {
        let opts_key = settings::opts_key(opts);
        let cached = self
            .settings
            .borrow()
            .iter()
            .find(|read| read.still_valid(src, &opts_key, manage_py))
            .cloned();
        if let Some(read) = cached {
            return Ok(read);
        }
        self.touched.borrow_mut().clear();
        let mut read = settings::read_settings(src, opts, self, root, manage_py)?;
        let touched = std::mem::take(&mut *self.touched.borrow_mut());
        read.footprint = Self::footprint(src, &touched);
        let read = Rc::new(read);
        self.settings.borrow_mut().push(read.clone());
        Ok(read)
    }

    /// The ids of a footprint's entries in `src` (`None` for sources whose
    /// entries have no ids without reading, as the working tree).
    pub(super) fn footprint(src: &dyn ProjectSource, tops: &BTreeSet<String>) -> Option<Footprint> {
        tops.iter()
            .map(|t| Some((t.clone(), src.entry_id(t)?)))
            .collect()
    }

    /// Read and parse a Python file of `src`, once per blob; errors name
    /// file, revision and line.
    pub(super) fn python(&self, src: &dyn ProjectSource, file: &str) -> Result<Rc<Vec<Stmt>>> {
        let (oid, text) = src
            .read_text_with_id(file)?
            .unwrap_or((git2::Oid::ZERO_SHA1, String::new()));
        if let Some(stmts) = self.parsed.borrow().get(&oid) {
            return Ok(stmts.clone());
        }
        let stmts = python::parse_module(&text).map_err(|e| {
            Error::input(format!(
                "{file} at {} line {}: invalid Python: {}",
                src.label(),
                e.line,
                e.message
            ))
        })?;
        let stmts = std::rc::Rc::new(stmts);
        self.parsed.borrow_mut().insert(oid, stmts.clone());
        Ok(stmts)
    }

    pub(super) fn app(&self, src: &dyn ProjectSource, root: &str, entry: &str) -> Result<App> {
        let top = join(root, top_of_module(entry));
        let Some(oid) = src.tree_id(&top) else {
            return resolve_app(src, root, entry, &|f| self.python(src, f));
        };
        let key = (root.to_string(), entry.to_string(), oid);
        if let Some((label, name, label_from_path)) = self.app_memo().borrow_mut().app(&key) {
            return Ok(App {
                label,
                name,
                migrations_dir: None,
                migrations_module: None,
                label_from_path,
            });
        }
        let app = resolve_app(src, root, entry, &|f| self.python(src, f))?;
        self.app_memo().borrow_mut().add_app(
            key,
            (app.label.clone(), app.name.clone(), app.label_from_path),
        );
        Ok(app)
    }

    /// Whether the migrations directory `dir` (of module `module`) exists.
    pub(super) fn dir_exists(
        &self,
        src: &dyn ProjectSource,
        root: &str,
        module: &str,
        dir: &str,
    ) -> Result<bool> {
        let top = join(root, top_of_module(module));
        let Some(oid) = src.tree_id(&top) else {
            return src.dir_exists(dir);
        };
        let key = (dir.to_string(), oid);
        if let Some(e) = self.app_memo().borrow_mut().dir(&key) {
            return Ok(e);
        }
        let e = src.dir_exists(dir)?;
        self.app_memo().borrow_mut().add_dir(key, e);
        Ok(e)
    }
}

impl ReadContext for Resolutions {
    fn python(&self, src: &dyn ProjectSource, file: &str) -> Result<Rc<Vec<Stmt>>> {
        Resolutions::python(self, src, file)
    }

    /// Record that the settings being read depend on the top-level entry of
    /// `path` (a repository path, existing or not).
    fn touch(&self, path: &str) {
        let top = top_of(path);
        if !self.touched.borrow().contains(top) {
            self.touched.borrow_mut().insert(top.to_string());
        }
    }
}
