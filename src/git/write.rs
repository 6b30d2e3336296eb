//! Writing repositories: used by `tagback demo` to build its example and by
//! tests to build deterministic fixture repositories (fixed dates and identity).

use std::path::Path;

use git2::{IndexAddOption, Repository, Signature, Time};

use crate::error::{Error, Result};

/// A repository being built commit by commit.
pub struct Builder {
    repo: Repository,
    clock: i64,
}

fn git_err(context: &str) -> impl FnOnce(git2::Error) -> Error + '_ {
    move |source| Error::Git {
        context: context.to_string(),
        source,
    }
}

impl Builder {
    /// `git init` in `dir`.
    pub fn init(dir: &Path) -> Result<Builder> {
        let repo = Repository::init(dir).map_err(git_err("initialising the repository"))?;
        Ok(Builder {
            repo,
            clock: 1_700_000_000,
        })
    }

    /// Write a file into the working tree (creating directories).
    pub fn write(&self, path: &str, contents: &str) -> Result<()> {
        let root = self.repo.workdir().expect("non-bare");
        let full = root.join(path);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        std::fs::write(&full, contents).map_err(|e| Error::io(&full, e))
    }

    /// Remove a path from the working tree.
    pub fn remove(&self, path: &str) -> Result<()> {
        let full = self.repo.workdir().expect("non-bare").join(path);
        if full.is_dir() {
            std::fs::remove_dir_all(&full).map_err(|e| Error::io(&full, e))
        } else {
            std::fs::remove_file(&full).map_err(|e| Error::io(&full, e))
        }
    }

    /// Stage everything and commit with a fixed identity and increasing date;
    /// optionally tag the commit.
    pub fn commit(&mut self, message: &str, tag: Option<&str>) -> Result<git2::Oid> {
        let mut index = self.repo.index().map_err(git_err("opening the index"))?;
        index
            .add_all(["*"], IndexAddOption::DEFAULT, None)
            .map_err(git_err("staging files"))?;
        index
            .update_all(["*"], None)
            .map_err(git_err("staging removals"))?;
        index.write().map_err(git_err("writing the index"))?;
        let tree_id = index.write_tree().map_err(git_err("writing the tree"))?;
        let tree = self
            .repo
            .find_tree(tree_id)
            .map_err(git_err("reading the tree"))?;
        self.clock += 60;
        let sig = Signature::new("tagback", "tagback@example.com", &Time::new(self.clock, 0))
            .map_err(git_err("signature"))?;
        let parent = self.repo.head().ok().and_then(|h| h.peel_to_commit().ok());
        let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
        let oid = self
            .repo
            .commit(Some("HEAD"), &sig, &sig, message, &tree, &parents)
            .map_err(git_err("committing"))?;
        if let Some(t) = tag {
            let obj = self
                .repo
                .find_object(oid, None)
                .map_err(git_err("finding the commit"))?;
            self.repo
                .tag_lightweight(t, &obj, true)
                .map_err(git_err("tagging"))?;
        }
        Ok(oid)
    }
}
