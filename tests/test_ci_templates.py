"""The CI templates and workflow snippets are whole files CI accepts, and the package builds.

Every YAML file in ``ci/`` and every fenced ``yaml`` block in the README and ``docs/`` is parsed
and validated against the published GitHub Actions or GitLab CI schema, as vendored by
check-jsonschema (no download: the check runs offline). Beyond the schemas, each job must be
complete enough to run on a fresh runner, and pytest-agentspeed must be installed from a pinned
git URL or a wheel, never from an index that does not serve it. The last test builds the sdist
and the wheel and checks what they hold; ``.ci/run`` installs that wheel into a fresh virtual
environment and runs the example suite with it.
"""

from __future__ import annotations

import email
import os
import re
import shutil
import stat
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

import pytest_agentspeed
from pytest_agentspeed.outputs.benchmark_json import smaller_path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = {"github-actions.yml": "github", "gitlab-ci.yml": "gitlab"}
#: Workflows that keep each main-branch run's figures in a benchmark-history tool
#: (``--agentspeed-benchmark-json``): one job each, on pushes to main.
HISTORY = {"github-action-benchmark.yml": "github", "bencher.yml": "github"}
SCHEMAS = {"github": "vendor.github-workflows", "gitlab": "vendor.gitlab-ci"}
#: Documents whose fenced ``yaml`` blocks are whole CI files, and how many each holds: a block
#: that loses its ``yaml`` tag (and with it this check) changes the count.
SNIPPET_COUNTS = {"docs/ci.md": 1, "docs/scaling.md": 1}
PLACEHOLDER_GUARD = "set AGENTSPEED_PACKAGE to a pinned pytest-agentspeed"


def yaml_snippets(document: Path) -> list[str]:
    """The fenced ```yaml blocks of a markdown document."""
    return re.findall(r"^```yaml\n(.*?)^```$", document.read_text(), flags=re.S | re.M)


def kind_of(data: dict[str, Any]) -> str:
    """A GitHub Actions workflow has ``jobs``; anything else is taken for a .gitlab-ci.yml."""
    return "github" if "jobs" in data else "gitlab"


def all_ci_files() -> list[tuple[str, str]]:
    """(label, text) of every template and every documented snippet."""
    files = [(f"ci/{name}", (ROOT / "ci" / name).read_text()) for name in TEMPLATES | HISTORY]
    for document in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for i, text in enumerate(yaml_snippets(document)):
            files.append((f"{document.relative_to(ROOT)}#{i + 1}", text))
    return files


def validate(kind: str, files: list[Path]) -> subprocess.CompletedProcess[str]:
    """check-jsonschema with its vendored schema; a proxy that refuses proves no download."""
    env = {**os.environ, "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9"}
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", SCHEMAS[kind]]
        + [str(f) for f in files],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def write_by_kind(tmp_path: Path, files: list[tuple[str, str]]) -> dict[str, list[Path]]:
    by_kind: dict[str, list[Path]] = {"github": [], "gitlab": []}
    for i, (label, text) in enumerate(files):
        data = yaml.safe_load(text)
        assert isinstance(data, dict), f"{label}: not a YAML mapping"
        path = tmp_path / f"{i}-{re.sub(r'[^A-Za-z0-9.]+', '-', label)}.yml"
        path.write_text(text)
        by_kind[kind_of(data)].append(path)
    return by_kind


def test_documents_hold_the_expected_snippets() -> None:
    counts = {
        str(d.relative_to(ROOT)): len(yaml_snippets(d))
        for d in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    }
    assert {name: n for name, n in counts.items() if n} == SNIPPET_COUNTS


def test_templates_and_snippets_pass_the_published_schemas(tmp_path: Path) -> None:
    by_kind = write_by_kind(tmp_path, all_ci_files())
    # Both templates, the two history workflows, plus the two GitHub workflows in docs/ci.md
    # and docs/scaling.md.
    assert {k: len(v) for k, v in by_kind.items()} == {"github": 5, "gitlab": 1}
    for kind, files in by_kind.items():
        result = validate(kind, files)
        assert result.returncode == 0, f"{kind}:\n{result.stdout}{result.stderr}"


@pytest.mark.parametrize(
    ("name", "old", "new", "error"),
    [
        ("github-actions.yml", "    runs-on: ubuntu-latest\n", "", "'runs-on' is a required"),
        ("gitlab-ci.yml", "  script:\n", "  scripts:\n", "'scripts' was unexpected"),
    ],
)
def test_the_schema_check_rejects_a_broken_template(
    tmp_path: Path, name: str, old: str, new: str, error: str
) -> None:
    """The check above can fail: the same call on a broken template exits 1 and says why."""
    text = (ROOT / "ci" / name).read_text()
    assert old in text
    broken = tmp_path / name
    broken.write_text(text.replace(old, new))
    result = validate(TEMPLATES[name], [broken])
    assert result.returncode == 1
    assert error in result.stdout


def steps_using(job: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [s for s in job["steps"] if str(s.get("uses", "")).startswith(f"{action}@")]


#: A step that runs the tool: pytest with the plugin, or the agentspeed command.
RUNS = r"^\s*(pytest|agentspeed) "


def installs_agentspeed(command: str) -> bool:
    """A pip install of pytest-agentspeed, from the pinned variable or a built wheel."""
    return bool(
        re.search(r"pip install (\"\$AGENTSPEED_PACKAGE\"|\S*pytest_agentspeed-\S*\.whl)", command)
    )


@pytest.mark.parametrize("label", [label for label, _ in all_ci_files()])
def test_every_job_is_complete(label: str) -> None:
    """Each job runs on a fresh runner: it gets a machine, the code, Python and the package."""
    data = yaml.safe_load(dict(all_ci_files())[label])
    if kind_of(data) == "github":
        for name, job in data["jobs"].items():
            where = f"{label} job {name}"
            assert job["runs-on"] == "ubuntu-latest", where
            steps = job["steps"]
            found = {
                "checkout": steps_using(job, "actions/checkout"),
                "setup-python": steps_using(job, "actions/setup-python"),
                "install": [s for s in steps if installs_agentspeed(str(s.get("run", "")))],
                "run": [s for s in steps if re.search(RUNS, str(s.get("run", "")), re.M)],
                "upload": steps_using(job, "actions/upload-artifact"),
            }
            assert all(found.values()), f"{where}: no {[k for k, v in found.items() if not v]}"
            order = [steps.index(matches[0]) for matches in found.values()]
            assert order == sorted(order), f"{where}: steps out of order {order}"
        needs = {name: job.get("needs") for name, job in data["jobs"].items()}
        if "gate" in needs:  # the sharded workflow: the gate merges the shards' run files
            assert needs["gate"] == "speed"
            gate = data["jobs"]["gate"]
            download = gate["steps"].index(steps_using(gate, "actions/download-artifact")[0])
            runs = [str(s.get("run", "")) for s in gate["steps"]]
            merge = next(i for i, r in enumerate(runs) if r.startswith("agentspeed merge"))
            compare = next(i for i, r in enumerate(runs) if r.startswith("agentspeed compare"))
            assert download < merge < compare
    else:
        base = data[".agentspeed"]
        assert base["image"] == "python:3.11"
        assert any(installs_agentspeed(c) for c in base["before_script"])
        jobs = {k: v for k, v in data.items() if k.startswith("agentspeed-")}
        assert sorted(jobs) == ["agentspeed-ab", "agentspeed-baseline", "agentspeed-save-baseline"]
        for name, job in jobs.items():
            assert job["extends"] == ".agentspeed", name
            assert "before_script" not in job, f"{name} would skip the install"
            assert re.match(r"pytest \"\$TASKS\"", job["script"][0]), name
            assert "agentspeed-run.json" in (job.get("artifacts") or base["artifacts"])["paths"]


def job_commands(name: str) -> dict[str, str]:
    """Each job's shell commands, joined; GitLab's jobs named as GitHub's."""
    data = yaml.safe_load((ROOT / "ci" / name).read_text())
    if TEMPLATES[name] == "github":
        return {
            job_name: " ".join(str(step.get("run", "")) for step in job["steps"])
            for job_name, job in data["jobs"].items()
        }
    return {
        job_name.removeprefix("agentspeed-"): " ".join(job["script"])
        for job_name, job in data.items()
        if job_name.startswith("agentspeed-")
    }


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_templates_compare_on_pull_requests_and_save_on_main(name: str) -> None:
    """The paired job, the stored-baseline job and the job that saves the baseline."""
    commands = job_commands(name)
    assert sorted(commands) == ["ab", "baseline", "save-baseline"]
    assert commands["ab"].count("--agentspeed-endpoint") == 2
    assert '--agentspeed-endpoint "$CANDIDATE"' in commands["baseline"]
    assert "--agentspeed-compare main" in commands["baseline"]
    assert '--agentspeed-endpoint "$CURRENT"' in commands["save-baseline"]
    assert "--agentspeed-save main" in commands["save-baseline"]
    for command in commands.values():
        # the table for the job summary / log, the report and the run file kept as artifacts
        assert "--agentspeed-markdown agentspeed.md" in command
        assert "--agentspeed-html agentspeed-report.html" in command
        assert "--agentspeed-json agentspeed-run.json" in command


def history_job(name: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    """A history workflow's triggers, its one job, and the pytest command it runs."""
    workflow = yaml.safe_load((ROOT / "ci" / name).read_text())
    (job,) = workflow["jobs"].values()
    (command,) = [str(s["run"]) for s in job["steps"] if re.match(RUNS, str(s.get("run", "")))]
    return workflow[True], job, command  # YAML 1.1, which PyYAML reads, spells true "on"


def option_value(command: str, option: str) -> str:
    match = re.search(rf"{option} (\S+)", command)
    assert match, f"no {option} in {command!r}"
    return match.group(1)


def test_github_action_benchmark_charts_both_files_the_run_writes() -> None:
    """Each push to main: the action is called once per direction, on the file
    --agentspeed-benchmark-json writes and on its smaller-is-better sibling."""
    triggers, job, command = history_job("github-action-benchmark.yml")
    assert triggers["push"] == {"branches": ["main"]}
    path = Path(option_value(command, "--agentspeed-benchmark-json"))
    assert "--agentspeed-benchmark-format" not in command  # the default: github-action-benchmark
    charted = {
        step["with"]["tool"]: step["with"]["output-file-path"]
        for step in steps_using(job, "benchmark-action/github-action-benchmark")
    }
    assert charted == {
        "customBiggerIsBetter": str(path),
        "customSmallerIsBetter": str(smaller_path(path)),
    }
    for step in steps_using(job, "benchmark-action/github-action-benchmark"):
        assert step["with"]["auto-push"] is True
        assert step["with"]["github-token"] == "${{ secrets.GITHUB_TOKEN }}"
    kept = steps_using(job, "actions/upload-artifact")[0]["with"]["path"].split()
    assert {str(path), str(smaller_path(path))} <= set(kept)


def test_bencher_sends_the_file_the_run_writes() -> None:
    triggers, job, command = history_job("bencher.yml")
    assert triggers["push"] == {"branches": ["main"]}
    assert option_value(command, "--agentspeed-benchmark-format") == "bencher"
    path = option_value(command, "--agentspeed-benchmark-json")
    assert steps_using(job, "bencherdev/bencher")
    (send,) = [str(s["run"]) for s in job["steps"] if str(s.get("run", "")).startswith("bencher ")]
    assert option_value(send, "--adapter") == "json"
    assert option_value(send, "--file") == path
    step = next(s for s in job["steps"] if str(s.get("run", "")).startswith("bencher "))
    assert step["env"]["BENCHER_API_TOKEN"] == "${{ secrets.BENCHER_API_TOKEN }}"


def test_github_saves_the_baseline_only_on_main_when_asked() -> None:
    workflow = yaml.safe_load((ROOT / "ci" / "github-actions.yml").read_text())
    triggers = workflow[True]  # YAML 1.1, which PyYAML reads, spells true "on"
    assert "pull_request" in triggers
    assert triggers["workflow_dispatch"]["inputs"]["save_baseline"]["type"] == "boolean"
    jobs = workflow["jobs"]
    assert jobs["ab"]["if"] == jobs["baseline"]["if"] == "${{ !inputs.save_baseline }}"
    assert jobs["save-baseline"]["if"] == (
        "${{ inputs.save_baseline && github.ref == 'refs/heads/main' }}"
    )
    saved = steps_using(jobs["save-baseline"], "actions/upload-artifact")[0]["with"]
    assert saved["path"] == ".agentspeed/baselines/main.json"
    assert saved["include-hidden-files"] is True  # upload-artifact skips dot-directories


def test_gitlab_saves_the_baseline_by_hand_on_the_default_branch() -> None:
    pipeline = yaml.safe_load((ROOT / "ci" / "gitlab-ci.yml").read_text())
    job = pipeline["agentspeed-save-baseline"]
    assert job["rules"] == [
        {"if": "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH", "when": "manual", "allow_failure": True}
    ]
    assert ".agentspeed/baselines/main.json" in job["artifacts"]["paths"]
    assert job["artifacts"]["when"] == "always"


def test_nothing_installs_pytest_agentspeed_from_an_index() -> None:
    """No index serves pytest-agentspeed: every install names a pinned git URL or a wheel."""
    documents = [ROOT / "README.md", *(ROOT / "docs").glob("*.md"), *(ROOT / "ci").glob("*")]
    for document in documents:
        for line in document.read_text().splitlines():
            if re.search(r"pip install\b.*\bpytest-agentspeed\b", line):
                assert "@ git+https://" in line, f"{document.name}: {line.strip()}"
    for label, text in all_ci_files():
        data = yaml.safe_load(text)
        variables = data.get("env") or data.get("variables") or {}
        if "AGENTSPEED_PACKAGE" in variables:
            assert re.fullmatch(
                r"pytest-agentspeed @ git\+https://github\.com/OWNER/pytest-agentspeed@REF",
                variables["AGENTSPEED_PACKAGE"],
            ), label


def install_scripts(name: str) -> list[str]:
    data = yaml.safe_load((ROOT / "ci" / name).read_text())
    if (TEMPLATES | HISTORY)[name] == "gitlab":
        return ["\n".join(data[".agentspeed"]["before_script"])]
    return [
        step["run"]
        for job in data["jobs"].values()
        for step in job["steps"]
        if installs_agentspeed(str(step.get("run", "")))
    ]


@pytest.mark.parametrize("name", sorted(TEMPLATES | HISTORY))
def test_the_install_step_refuses_placeholders_and_installs_the_pin(
    tmp_path: Path, name: str
) -> None:
    """Run each install step's shell: placeholders stop it; a pin reaches pip unchanged."""
    fake = tmp_path / "bin" / "python"
    fake.parent.mkdir()
    fake.write_text('#!/bin/sh\nprintf "%s\\n" "$@" > "$(dirname "$0")/../args"\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    data = yaml.safe_load((ROOT / "ci" / name).read_text())
    placeholder = (data.get("env") or data["variables"])["AGENTSPEED_PACKAGE"]
    pinned = "pytest-agentspeed @ git+https://github.com/acme/pytest-agentspeed@v0.1.0"
    scripts = install_scripts(name)
    assert len(scripts) == (3 if TEMPLATES.get(name) == "github" else 1)
    for script in scripts:
        env = {"PATH": f"{fake.parent}:/usr/bin:/bin"}
        refused = subprocess.run(
            ["bash", "-ec", script],
            env={**env, "AGENTSPEED_PACKAGE": placeholder},
            capture_output=True,
            text=True,
            check=False,
        )
        assert refused.returncode == 1
        assert PLACEHOLDER_GUARD in refused.stdout
        assert not (tmp_path / "args").exists()
        subprocess.run(
            ["bash", "-ec", script], env={**env, "AGENTSPEED_PACKAGE": pinned}, check=True
        )
        args = (tmp_path / "args").read_text().splitlines()
        assert args == ["-m", "pip", "install", pinned]
        (tmp_path / "args").unlink()


def test_sdist_and_wheel_hold_the_package(tmp_path: Path) -> None:
    """`python -m build` (the wheel built from the sdist) packs data files, license, readme."""
    source = tmp_path / "src"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(".*", "__pycache__", "build", "dist", "*.egg-info"),
    )
    out = tmp_path / "dist"
    result = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(source)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    version = pytest_agentspeed.__version__
    sdist = out / f"pytest_agentspeed-{version}.tar.gz"
    wheel = out / f"pytest_agentspeed-{version}-py3-none-any.whl"
    assert sorted(p.name for p in out.iterdir()) == sorted([sdist.name, wheel.name])

    with tarfile.open(sdist) as tar:
        in_sdist = {n.removeprefix(f"pytest_agentspeed-{version}/") for n in tar.getnames()}
    package_files = {
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "pytest_agentspeed").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert {"README.md", "LICENSE", "pyproject.toml"} <= in_sdist
    assert package_files <= in_sdist, sorted(package_files - in_sdist)

    with zipfile.ZipFile(wheel) as whl:
        in_wheel = set(whl.namelist())
        dist_info = f"pytest_agentspeed-{version}.dist-info"
        metadata = email.message_from_string(whl.read(f"{dist_info}/METADATA").decode())
        entry_points = whl.read(f"{dist_info}/entry_points.txt").decode()
    assert package_files <= in_wheel, sorted(package_files - in_wheel)
    assert {
        "pytest_agentspeed/py.typed",
        "pytest_agentspeed/outputs/templates/report.html.j2",
        f"{dist_info}/licenses/LICENSE",
    } <= in_wheel
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert metadata["Name"] == "pytest-agentspeed"
    assert metadata["Version"] == version
    assert metadata["Summary"] == project["description"]
    assert metadata["License-Expression"] == "MIT"
    assert metadata["License-File"] == "LICENSE"
    assert metadata["Requires-Python"] == ">=3.11"
    assert metadata["Description-Content-Type"] == "text/markdown"
    assert metadata.get_payload().strip() == (ROOT / "README.md").read_text().strip()
    requires = metadata.get_all("Requires-Dist") or []
    runtime = {r.replace(" ", "") for r in requires if "extra ==" not in r}
    assert len(runtime) == len(project["dependencies"])
    assert "Typing :: Typed" in (metadata.get_all("Classifier") or [])
    assert "[pytest11]\nagentspeed = pytest_agentspeed.edge.plugin" in entry_points
    assert "[console_scripts]\nagentspeed = pytest_agentspeed.cli:main" in entry_points
