//! Release consistency: every file that names the version tagback ships as
//! (the action's defaults, the pre-commit image hook, the GitLab template,
//! the README's snippets, the CHANGELOG) names Cargo.toml's, and the names
//! cargo-binstall and the action download are the ones the release packs.

use std::path::Path;

fn read(rel: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(rel))
        .unwrap_or_else(|e| panic!("{rel}: {e}"))
}

const VERSION: &str = env!("CARGO_PKG_VERSION");

#[test]
fn every_shipped_file_names_the_crate_version() {
    let image = format!("ghcr.io/tagback/tagback:{VERSION}");
    let cases = [
        ("action.yml", format!("default: \"{VERSION}\"")),
        ("action.yml", format!("default: {image}")),
        (
            ".pre-commit-hooks.yaml",
            format!("entry: {image} hook pre-commit"),
        ),
        (
            "docs/examples/gitlab-ci.yml",
            format!("TAGBACK_VERSION: \"{VERSION}\""),
        ),
        (
            "docs/examples/gitlab-ci.yml",
            format!("tagback/v{VERSION}/docs/examples/gitlab-ci.yml"),
        ),
        (
            "docs/examples/github-workflow.yml",
            format!("uses: tagback/tagback@v{VERSION}"),
        ),
        (
            "docs/examples/github-workflow-image.yml",
            format!("image: {image}"),
        ),
        ("README.md", format!("rev: v{VERSION}")),
        ("README.md", format!("uses: tagback/tagback@v{VERSION}")),
        ("README.md", format!("v={VERSION} ")),
        ("CHANGELOG.md", format!("## [{VERSION}]")),
    ];
    for (file, needle) in cases {
        assert!(
            read(file).contains(&needle),
            "{file} does not contain {needle:?}"
        );
    }
}

#[test]
fn binstall_and_the_action_download_what_the_release_packs() {
    let cargo = read("Cargo.toml");
    let pack = read("scripts/package-release.sh");
    let install = read("scripts/action/install.sh");
    assert!(pack.contains("name=tagback-v$version-$target"));
    assert!(
        pack.contains("\"$dist/$name.tar.gz\" \"$name\""),
        "archive holds NAME/"
    );
    assert!(install.contains("name=tagback-v$version-$target"));
    assert!(install.contains("mv \"$dir/$name/tagback\""));
    assert!(cargo.contains(
        "pkg-url = \"{ repo }/releases/download/v{ version }/tagback-v{ version }-{ target }.tar.gz\""
    ));
    assert!(cargo.contains("bin-dir = \"tagback-v{ version }-{ target }/{ bin }{ binary-ext }\""));
    for target in ["x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu"] {
        assert!(read(".github/workflows/release.yml").contains(&format!("target: {target}")));
    }
}

#[test]
fn the_action_uploads_the_directory_it_writes_and_it_is_not_hidden() {
    let action = read("action.yml");
    // upload-artifact@v4 drops hidden files unless told otherwise.
    assert!(
        action.contains("&& 'tagback-rollback' ||"),
        "run step's artifact dir"
    );
    assert!(
        action.contains("path: ${{ inputs.working-directory }}/tagback-rollback/"),
        "upload step's path"
    );
    assert!(action.contains("if: always() && inputs.rollback-artifact == 'true'"));
}
