//! The CI templates (action.yml, the GitLab template, the examples in ci/examples) checked
//! against the schemas their platforms publish, offline: check-jsonschema's vendored GitHub and
//! GitLab schemas, kubernetes-validate's Kubernetes schemas (both installed by `cargo xtask
//! setup`). Each check is shown to fail on a broken copy. No root, engine or slim binary: the
//! templates are validated, not run (no GitHub or GitLab runner here).

mod support;

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

use support::*;

fn repo_file(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo_file(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A tool of the venv `cargo xtask setup` installs the schema checkers into.
fn tool(name: &str) -> PathBuf {
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let tool = Path::new(&home)
        .join(".cache/slim/check-jsonschema/bin")
        .join(name);
    assert!(
        tool.exists(),
        "{} is missing: run `cargo xtask setup`",
        tool.display()
    );
    tool
}

fn check_jsonschema(schema: &str, file: &Path) -> Output {
    Command::new(tool("check-jsonschema"))
        .args(["--builtin-schema", schema])
        .arg(file)
        .output()
        .expect("check-jsonschema runs")
}

fn kubernetes_validate(file: &Path) -> Output {
    Command::new(tool("kubernetes-validate"))
        .args(["--strict", "--kubernetes-version", "1.37.0"])
        .arg(file)
        .output()
        .expect("kubernetes-validate runs")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn assert_valid(what: &str, out: Output) {
    assert!(out.status.success(), "{what} is rejected:\n{}", text(&out));
    eprintln!("{what}: {}", text(&out).trim());
}

/// `out` failed, naming `expected` (the broken field) in its message.
fn assert_rejected(what: &str, out: Output, expected: &str) {
    let said = text(&out);
    assert!(!out.status.success(), "{what} is accepted:\n{said}");
    assert!(
        said.contains(expected),
        "{what}: no {expected:?} in:\n{said}"
    );
    eprintln!("{what}: rejected: {}", said.trim());
}

/// `original` with `from` replaced by `to` (which must occur), written to `dir/name`.
fn broken(dir: &TempDir, name: &str, original: &str, from: &str, to: &str) -> PathBuf {
    assert!(original.contains(from), "{from:?} is not in {name}");
    let path = dir.0.join(name);
    std::fs::write(&path, original.replacen(from, to, 1)).unwrap();
    path
}

#[test]
fn action_yml_follows_the_github_actions_schema() {
    let dir = TempDir::new("ci-action");
    assert_valid(
        "action.yml",
        check_jsonschema("vendor.github-actions", &repo_file("action.yml")),
    );
    let action = read("action.yml");
    let bad_runs = broken(
        &dir,
        "runs.yml",
        &action,
        "using: composite",
        "using: compost",
    );
    assert_rejected(
        "action.yml with runs.using: compost",
        check_jsonschema("vendor.github-actions", &bad_runs),
        "runs",
    );
    let no_shell = broken(&dir, "shell.yml", &action, "      shell: bash\n", "");
    assert_rejected(
        "action.yml with a run step without shell",
        check_jsonschema("vendor.github-actions", &no_shell),
        "shell",
    );
}

/// The action downloads what `cargo xtask dist` names, from the release page of the workspace's
/// `repository`, and its outputs come from report.json fields that exist.
#[test]
fn action_yml_downloads_the_dist_assets() {
    let action = read("action.yml");
    let dist = read("xtask/src/dist.rs");
    for asset in ["slim-x86_64-linux-musl", "slim-aarch64-linux-musl"] {
        assert!(
            dist.contains(&format!("\"{asset}\"")),
            "dist names no {asset}"
        );
        assert!(action.contains(asset), "action.yml does not fetch {asset}");
    }
    assert!(dist.contains("\"SHA256SUMS\"") && action.contains("SHA256SUMS"));
    let cargo = read("Cargo.toml");
    let repository = cargo
        .lines()
        .find_map(|l| l.strip_prefix("repository = "))
        .expect("Cargo.toml has a repository")
        .trim_matches('"');
    let releases = format!("default: {repository}/releases");
    assert!(action.contains(&releases), "action.yml lacks {releases}");
    let gitlab = read("ci/gitlab/slim.gitlab-ci.yml");
    assert!(gitlab.contains(&format!("SLIM_RELEASES: {repository}/releases")));
    for field in [
        ".target.size_bytes",
        ".slim.size_bytes",
        ".ratio",
        ".slim.id",
    ] {
        assert!(action.contains(field), "action.yml reads no {field}");
    }
}

#[test]
fn example_workflow_follows_the_github_workflows_schema() {
    let dir = TempDir::new("ci-workflow");
    let path = "ci/examples/github-matrix.yml";
    assert_valid(
        path,
        check_jsonschema("vendor.github-workflows", &repo_file(path)),
    );
    let workflow = read(path);
    let no_runner = broken(&dir, "w.yml", &workflow, "runs-on:", "runs_on:");
    assert_rejected(
        "the workflow with runs_on",
        check_jsonschema("vendor.github-workflows", &no_runner),
        "runs-on",
    );
    // Every input the example gives the action is one action.yml declares.
    let action = read("action.yml");
    for input in [
        "image",
        "tag",
        "http-probe-cmd-file",
        "args",
        "push",
        "output-dir",
        "artifact-name",
    ] {
        assert!(workflow.contains(&format!("          {input}: ")));
        assert!(
            action.contains(&format!("\n  {input}:\n")),
            "no input {input}"
        );
    }
}

/// The schema takes any hidden job (`.slim`) as it is, so the template is also checked as a
/// concrete job, and as a user's pipeline would use it (`extends: .slim`).
#[test]
fn gitlab_template_follows_the_gitlab_ci_schema() {
    let dir = TempDir::new("ci-gitlab");
    let path = "ci/gitlab/slim.gitlab-ci.yml";
    let template = read(path);
    assert_valid(path, check_jsonschema("vendor.gitlab-ci", &repo_file(path)));
    let concrete = broken(&dir, "job.yml", &template, "\n.slim:\n", "\nslim-job:\n");
    assert_valid(
        "the template as a concrete job",
        check_jsonschema("vendor.gitlab-ci", &concrete),
    );
    let user = dir.0.join("user.yml");
    std::fs::write(
        &user,
        format!(
            "{template}\nslim-app:\n  extends: .slim\n  variables:\n    \
             SLIM_IMAGE: registry.example.com/app:1.4\n    SLIM_PUSH: \"true\"\n"
        ),
    )
    .unwrap();
    assert_valid(
        "a pipeline extending .slim",
        check_jsonschema("vendor.gitlab-ci", &user),
    );
    let job = std::fs::read_to_string(&concrete).unwrap();
    let bad_when = broken(&dir, "when.yml", &job, "when: always", "when: sometimes");
    assert_rejected(
        "the job with artifacts.when: sometimes",
        check_jsonschema("vendor.gitlab-ci", &bad_when),
        "sometimes",
    );
    // GitLab takes SBOM reports as CycloneDX only: SPDX stays a plain artifact.
    let spdx_report = broken(
        &dir,
        "sbom.yml",
        &job,
        "    paths:\n",
        "    reports:\n      spdx: slim-out/sbom.spdx.json\n    paths:\n",
    );
    assert_rejected(
        "the job with artifacts.reports.spdx",
        check_jsonschema("vendor.gitlab-ci", &spdx_report),
        "spdx",
    );
}

#[test]
fn kubernetes_job_follows_the_kubernetes_schema() {
    let dir = TempDir::new("ci-k8s");
    let path = "ci/examples/kubernetes-job.yml";
    assert_valid(path, kubernetes_validate(&repo_file(path)));
    let job = read(path);
    let bad_field = broken(
        &dir,
        "field.yml",
        &job,
        "      hostPID: true",
        "      hostPid: true",
    );
    assert_rejected(
        "the Job with hostPid",
        kubernetes_validate(&bad_field),
        "hostPid",
    );
    let bad_type = broken(
        &dir,
        "type.yml",
        &job,
        "backoffLimit: 0",
        "backoffLimit: none",
    );
    assert_rejected(
        "the Job with backoffLimit: none",
        kubernetes_validate(&bad_type),
        "backoffLimit",
    );
}
