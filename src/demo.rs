//! `tagback demo`: the main job on an embedded example. It builds a throw-away
//! git repository from files embedded in the binary (a Django shop with two
//! apps at `v1` and `v2`, and a Swarm stack file moving `shop:2` back to
//! `shop:1`), then shows what `check`, `plan` and `script` say.

use std::io::Write;
use std::path::Path;

use crate::deploy::{self, Request};
use crate::error::{Error, Result};
use crate::git::Repo;
use crate::git::write::Builder;
use crate::{Outcome, report};

/// The example project: `(path, contents)`, paths starting with `v1/` or `v2/`.
const FILES: &[(&str, &str)] = &[
    (
        "v1/accounts/__init__.py",
        include_str!("../fixtures/demo/v1/accounts/__init__.py"),
    ),
    (
        "v1/accounts/apps.py",
        include_str!("../fixtures/demo/v1/accounts/apps.py"),
    ),
    (
        "v1/accounts/migrations/0001_initial.py",
        include_str!("../fixtures/demo/v1/accounts/migrations/0001_initial.py"),
    ),
    (
        "v1/accounts/migrations/__init__.py",
        include_str!("../fixtures/demo/v1/accounts/migrations/__init__.py"),
    ),
    (
        "v1/accounts/models.py",
        include_str!("../fixtures/demo/v1/accounts/models.py"),
    ),
    (
        "v1/manage.py",
        include_str!("../fixtures/demo/v1/manage.py"),
    ),
    (
        "v1/shop/__init__.py",
        include_str!("../fixtures/demo/v1/shop/__init__.py"),
    ),
    (
        "v1/shop/migrations/0001_initial.py",
        include_str!("../fixtures/demo/v1/shop/migrations/0001_initial.py"),
    ),
    (
        "v1/shop/migrations/0002_product_sku.py",
        include_str!("../fixtures/demo/v1/shop/migrations/0002_product_sku.py"),
    ),
    (
        "v1/shop/migrations/__init__.py",
        include_str!("../fixtures/demo/v1/shop/migrations/__init__.py"),
    ),
    (
        "v1/shop/models.py",
        include_str!("../fixtures/demo/v1/shop/models.py"),
    ),
    (
        "v1/shopsite/__init__.py",
        include_str!("../fixtures/demo/v1/shopsite/__init__.py"),
    ),
    (
        "v1/shopsite/settings.py",
        include_str!("../fixtures/demo/v1/shopsite/settings.py"),
    ),
    (
        "v1/shopsite/urls.py",
        include_str!("../fixtures/demo/v1/shopsite/urls.py"),
    ),
    (
        "v2/accounts/__init__.py",
        include_str!("../fixtures/demo/v2/accounts/__init__.py"),
    ),
    (
        "v2/accounts/apps.py",
        include_str!("../fixtures/demo/v2/accounts/apps.py"),
    ),
    (
        "v2/accounts/migrations/0001_initial.py",
        include_str!("../fixtures/demo/v2/accounts/migrations/0001_initial.py"),
    ),
    (
        "v2/accounts/migrations/0002_badge.py",
        include_str!("../fixtures/demo/v2/accounts/migrations/0002_badge.py"),
    ),
    (
        "v2/accounts/migrations/0003_normalize_nicknames.py",
        include_str!("../fixtures/demo/v2/accounts/migrations/0003_normalize_nicknames.py"),
    ),
    (
        "v2/accounts/migrations/__init__.py",
        include_str!("../fixtures/demo/v2/accounts/migrations/__init__.py"),
    ),
    (
        "v2/accounts/models.py",
        include_str!("../fixtures/demo/v2/accounts/models.py"),
    ),
    (
        "v2/manage.py",
        include_str!("../fixtures/demo/v2/manage.py"),
    ),
    (
        "v2/shop/__init__.py",
        include_str!("../fixtures/demo/v2/shop/__init__.py"),
    ),
    (
        "v2/shop/migrations/0001_initial.py",
        include_str!("../fixtures/demo/v2/shop/migrations/0001_initial.py"),
    ),
    (
        "v2/shop/migrations/0002_product_sku.py",
        include_str!("../fixtures/demo/v2/shop/migrations/0002_product_sku.py"),
    ),
    (
        "v2/shop/migrations/0003_order_badge.py",
        include_str!("../fixtures/demo/v2/shop/migrations/0003_order_badge.py"),
    ),
    (
        "v2/shop/migrations/0004_order_code.py",
        include_str!("../fixtures/demo/v2/shop/migrations/0004_order_code.py"),
    ),
    (
        "v2/shop/migrations/__init__.py",
        include_str!("../fixtures/demo/v2/shop/migrations/__init__.py"),
    ),
    (
        "v2/shop/models.py",
        include_str!("../fixtures/demo/v2/shop/models.py"),
    ),
    (
        "v2/shopsite/__init__.py",
        include_str!("../fixtures/demo/v2/shopsite/__init__.py"),
    ),
    (
        "v2/shopsite/settings.py",
        include_str!("../fixtures/demo/v2/shopsite/settings.py"),
    ),
    (
        "v2/shopsite/urls.py",
        include_str!("../fixtures/demo/v2/shopsite/urls.py"),
    ),
];

const STACK: &str = include_str!("../fixtures/demo/stack.yml");

fn io(e: std::io::Error) -> Error {
    Error::io("<stdout>", e)
}

/// Build the demo repository in `dir`: `v1` and `v2` tagged, the working tree
/// moving the stack back to `shop:1`.
pub fn build(dir: &Path) -> Result<()> {
    let mut b = Builder::init(dir)?;
    for version in ["v1", "v2"] {
        if version == "v2" {
            for (path, _) in FILES.iter().filter(|(p, _)| p.starts_with("v1/")) {
                let _ = b.remove(&path[3..]);
            }
        }
        for (path, text) in FILES.iter().filter(|(p, _)| p.starts_with(version)) {
            b.write(&path[3..], text)?;
        }
        b.write("stack.yml", &STACK.replace("${SHOP_TAG:-2}", &version[1..]))?;
        b.commit(&format!("shop {version}"), Some(version))?;
    }
    b.write("stack.yml", &STACK.replace("${SHOP_TAG:-2}", "1"))?;
    Ok(())
}

/// Run the demo, printing what a user would see.
pub fn run(keep: Option<&Path>, out: &mut dyn Write) -> Result<Outcome> {
    let tmp;
    let dir = match keep {
        Some(d) => {
            std::fs::create_dir_all(d).map_err(|e| Error::io(d, e))?;
            d.to_path_buf()
        }
        None => {
            tmp = tempfile::tempdir().map_err(|e| Error::io(std::env::temp_dir(), e))?;
            tmp.path().to_path_buf()
        }
    };
    build(&dir)?;
    let repo = Repo::open(&dir)?;
    writeln!(
        out,
        "tagback demo: a Django shop deployed as a Swarm stack ({}).",
        dir.display()
    )
    .map_err(io)?;
    writeln!(
        out,
        "The stack file moves `web` from shop:2 back to shop:1; v2 added migrations in two apps.\n"
    )
    .map_err(io)?;
    writeln!(
        out,
        "$ tagback check          # HEAD (shop:2) against the working tree (shop:1)"
    )
    .map_err(io)?;
    let req = Request {
        repo: &repo,
        from: repo.snapshot("HEAD")?,
        to: repo.worktree_snapshot(),
        files: Vec::new(),
        service: None,
        full: false,
    };
    let check = deploy::check(&req)?;
    report::check_text(&check, out)?;
    let Some(svc) = check.services.first() else {
        return Ok(Outcome::Safe);
    };
    if let Some(plan) = &svc.plan {
        writeln!(out, "\n$ tagback plan --from v2 --to v1 --format json").map_err(io)?;
        report::json(plan, out)?;
        let opts = crate::script::ScriptOptions {
            service: svc.service.clone(),
            stack: "shop".into(),
            from_image: crate::stack::ImageRef::parse(&svc.from_image).map_err(Error::input)?,
            to_image: crate::stack::ImageRef::parse(&svc.to_image).map_err(Error::input)?,
            strategy: crate::config::Strategy::Exec,
            manage: vec!["python".into(), "manage.py".into()],
            replicas: svc.replicas,
            compose_files: Vec::new(),
            project_dir: String::new(),
            record_args: ["record", "--service", "web"].map(String::from).to_vec(),
            allow_manual_steps: false,
        };
        let model = crate::script::build(plan, &opts, &|_, _| None)?;
        let text = crate::script::render::render(&model);
        let path = dir.join("rollback-web.sh");
        std::fs::write(&path, &text).map_err(|e| Error::io(&path, e))?;
        writeln!(
            out,
            "\n$ tagback script --service web -o rollback-web.sh   # header:"
        )
        .map_err(io)?;
        for line in text.lines().take_while(|l| l.starts_with('#')) {
            writeln!(out, "{line}").map_err(io)?;
        }
    }
    writeln!(out, "\nThe push is blocked (exit 1) until the backward migrations are recorded with `tagback record`.").map_err(io)?;
    Ok(Outcome::Safe)
}
