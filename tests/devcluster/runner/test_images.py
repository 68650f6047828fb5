"""images: reference parsing, the packaged table, lookup and the kubelet's argv rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from devcluster.runner.images import (
    ImageEntry,
    ImageNotInTable,
    ImageRef,
    ImageTable,
    InvalidImageName,
    parse_image,
)

PY = "/opt/venv/bin/python"
DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("image", "want"),
    [
        ("python", ImageRef("python", None, None)),
        ("python:3.11", ImageRef("python", "3.11", None)),
        ("docker.io/library/python:3.11", ImageRef("python", "3.11", None)),
        ("library/python:3.11-slim", ImageRef("python", "3.11-slim", None)),
        ("index.docker.io/library/python", ImageRef("python", None, None)),
        ("docker.io/modelfleet/model-server:1.2", ImageRef("modelfleet/model-server", "1.2", None)),
        ("modelfleet/model-server", ImageRef("modelfleet/model-server", None, None)),
        ("registry.example/ns/repo:tag", ImageRef("registry.example/ns/repo", "tag", None)),
        ("localhost:5000/repo:v1", ImageRef("localhost:5000/repo", "v1", None)),
        ("localhost/repo", ImageRef("localhost/repo", None, None)),
        (
            "registry.example:5000/library/python",
            ImageRef("registry.example:5000/library/python", None, None),
        ),
        (f"repo@{DIGEST}", ImageRef("repo", None, DIGEST)),
        (f"python:3.11@{DIGEST}", ImageRef("python", "3.11", DIGEST)),
        (
            f"registry.example:5000/a/b@{DIGEST}",
            ImageRef("registry.example:5000/a/b", None, DIGEST),
        ),
    ],
)
def test_parse_image(image: str, want: ImageRef) -> None:
    assert parse_image(image) == want


@pytest.mark.parametrize(
    "image",
    [
        "",
        "Python:3.11",
        "python:",
        "python:bad tag",
        "repo@sha256:xyz",
        "a//b",
        "/python",
        "py thon",
    ],
)
def test_parse_image_rejects(image: str) -> None:
    with pytest.raises(InvalidImageName) as info:
        parse_image(image)
    assert info.value.reason == "InvalidImageName"
    assert f'"{image}"' in str(info.value)


@pytest.fixture(scope="module")
def table() -> ImageTable:
    return ImageTable.load()


def test_packaged_table(table: ImageTable) -> None:
    assert table.source == "devcluster/runner/images.yaml"
    assert [(e.repository, e.tags, e.entrypoint, e.cmd) for e in table.entries] == [
        ("modelfleet/model-server", (), ("{python}", "-m", "serving"), ()),
        ("modelfleet/trainer", (), ("{python}", "-m", "tuning.trainer_entrypoint"), ()),
        ("python", ("3.11", "3.11-slim"), (), ("{python}",)),
    ]


def test_packaged_table_file_is_next_to_the_module() -> None:
    import devcluster.runner.images as mod

    assert (Path(mod.__file__).parent / "images.yaml").is_file()


@pytest.mark.parametrize(
    ("image", "repository"),
    [
        ("modelfleet/model-server", "modelfleet/model-server"),
        ("modelfleet/model-server:0.1.0", "modelfleet/model-server"),
        ("docker.io/modelfleet/model-server:1.2", "modelfleet/model-server"),
        (f"modelfleet/model-server@{DIGEST}", "modelfleet/model-server"),
        ("modelfleet/trainer:latest", "modelfleet/trainer"),
        ("python:3.11", "python"),
        ("python:3.11-slim", "python"),
        ("docker.io/library/python:3.11", "python"),
        (f"python:3.11@{DIGEST}", "python"),
    ],
)
def test_lookup(table: ImageTable, image: str, repository: str) -> None:
    assert table.lookup(image).repository == repository


KNOWN = "modelfleet/model-server, modelfleet/trainer, python:3.11, python:3.11-slim"


@pytest.mark.parametrize(
    "image",
    [
        "nginx:1.27",
        "python:3.12",
        "python",
        f"python@{DIGEST}",
        "registry.example/modelfleet/trainer",
        "modelfleet/other",
    ],
)
def test_lookup_unknown(table: ImageTable, image: str) -> None:
    with pytest.raises(ImageNotInTable) as info:
        table.lookup(image)
    assert str(info.value) == (
        f'image "{image}" is not in the local runner\'s image table '
        "(devcluster/runner/images.yaml); add an entry mapping its repository to a command, "
        f"or use one of: {KNOWN}"
    )
    assert info.value.reason == "ErrImagePull"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "table.yaml"
    path.write_text(text)
    return path


def test_custom_table_and_tag_specific_entry_wins(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
version: 1
images:
  - repository: docker.io/library/busybox
    entrypoint: ["sh"]
    cmd: []
  - repository: busybox
    tags: ["special"]
    entrypoint: ["special"]
    cmd: []
""",
    )
    t = ImageTable.load(path)
    assert t.lookup("busybox:1.36") == ImageEntry("busybox", (), ("sh",), ())
    assert t.lookup("busybox:special").entrypoint == ("special",)
    with pytest.raises(ImageNotInTable, match=f"\\({path}\\)"):
        t.lookup("nginx")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version: 2\nimages: []\n", "unsupported image table version 2"),
        ("images: []\n", "unsupported image table version None"),
        ("- a\n", "expected a mapping"),
        ("version: 1\nimages: {}\n", "'images' must be a list"),
        ("version: 1\nextra: 1\nimages: []\n", "unknown top-level keys: extra"),
        (
            "version: 1\nimages: [{entrypoint: [], cmd: []}]\n",
            "images[0]: 'repository' must be a non-empty string",
        ),
        (
            "version: 1\nimages: [{repository: x, cmd: []}]\n",
            "images[0] (x): 'entrypoint' is required",
        ),
        (
            "version: 1\nimages: [{repository: x, entrypoint: sh, cmd: []}]\n",
            "images[0] (x): entrypoint must be a list of strings",
        ),
        (
            "version: 1\nimages: [{repository: x, entrypoint: [1], cmd: []}]\n",
            "images[0] (x): entrypoint must be a list of strings",
        ),
        (
            "version: 1\nimages: [{repository: x, entrypoint: [], cmd: [], bogus: 1}]\n",
            "images[0] (x): unknown keys: bogus",
        ),
        (
            "version: 1\nimages: [{repository: 'x:1', entrypoint: [], cmd: []}]\n",
            "images[0] (x:1): 'repository' must not carry a tag",
        ),
        (
            "version: 1\nimages: [{repository: X, entrypoint: [], cmd: []}]\n",
            'images[0] (X): image "X" is not a valid image reference',
        ),
        (
            "version: 1\nimages: [{repository: x, tags: [], entrypoint: [], cmd: []}]\n",
            "images[0] (x): 'tags' must not be empty",
        ),
        ("version: 1\nimages: [\n", "not valid YAML"),
    ],
)
def test_bad_tables(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ValueError) as info:
        ImageTable.load(path)
    assert str(info.value).startswith(f"{path}: ")
    assert message in str(info.value)


def _c(image: str, **kw: Any) -> dict[str, Any]:
    return {"name": "main", "image": image, **kw}


@pytest.fixture(scope="module")
def rules_table(tmp_path_factory: pytest.TempPathFactory) -> ImageTable:
    path = tmp_path_factory.mktemp("t") / "t.yaml"
    path.write_text("""
version: 1
images:
  - repository: both
    entrypoint: ["{python}", "-m", "app"]
    cmd: ["--port", "80"]
  - repository: none
    entrypoint: []
    cmd: []
""")
    return ImageTable.load(path)


@pytest.mark.parametrize(
    ("kw", "want"),
    [
        ({}, [PY, "-m", "app", "--port", "80"]),
        ({"args": ["--port", "9"]}, [PY, "-m", "app", "--port", "9"]),
        ({"command": ["/bin/run"]}, ["/bin/run"]),
        ({"command": ["/bin/run", "-x"], "args": ["a", "b"]}, ["/bin/run", "-x", "a", "b"]),
        ({"command": [], "args": []}, [PY, "-m", "app", "--port", "80"]),
    ],
)
def test_argv_command_args_rules(rules_table: ImageTable, kw: dict, want: list[str]) -> None:
    assert rules_table.argv(_c("both:1", **kw), {}, python=PY) == want


def test_argv_expands_command_and_args_only(rules_table: ImageTable) -> None:
    env = {"PORT": "8080", "NAME": "m"}
    c = _c("both", command=["$(NAME)", "$$(NAME)"], args=["--port=$(PORT)", "$(UNSET)"])
    assert rules_table.argv(c, env, python=PY) == ["m", "$(NAME)", "--port=8080", "$(UNSET)"]
    assert rules_table.argv(_c("both", args=["$(PORT)"]), env, python=PY) == [
        PY,
        "-m",
        "app",
        "8080",
    ]


def test_argv_empty_is_an_error(rules_table: ImageTable) -> None:
    with pytest.raises(
        ValueError, match='container "main": image "none:1" has no entrypoint or cmd'
    ):
        rules_table.argv(_c("none:1"), {}, python=PY)
    assert rules_table.argv(_c("none:1", args=["x"]), {}, python=PY) == ["x"]


def test_argv_packaged_images(table: ImageTable) -> None:
    assert table.argv(_c("modelfleet/model-server:0.1.0"), {}, python=PY) == [PY, "-m", "serving"]
    assert table.argv(_c("modelfleet/trainer"), {}, python=PY) == [
        PY,
        "-m",
        "tuning.trainer_entrypoint",
    ]
    assert table.argv(_c("python:3.11-slim"), {}, python=PY) == [PY]


def test_argv_default_python_is_sys_executable(table: ImageTable) -> None:
    import sys

    assert table.argv(_c("python:3.11"), {}) == [sys.executable]


@pytest.mark.parametrize(
    "argv0", ["python", "python3", "python3.11", "/usr/local/bin/python3", "/usr/local/bin/python"]
)
def test_argv_python_alias_for_python_images(table: ImageTable, argv0: str) -> None:
    c = _c("python:3.11", command=[argv0, "-c", "print($(X))"])
    assert table.argv(c, {"X": "1"}, python=PY) == [PY, "-c", "print(1)"]
    c = _c("python:3.11", args=[argv0, "-V"])  # args replace CMD; entrypoint is empty
    assert table.argv(c, {}, python=PY) == [PY, "-V"]


def test_argv_python_alias_only_for_python_images(table: ImageTable) -> None:
    c = _c("modelfleet/model-server", command=["python", "-m", "serving"])
    assert table.argv(c, {}, python=PY) == ["python", "-m", "serving"]
    c = _c("python:3.11", command=["python2", "-V"])
    assert table.argv(c, {}, python=PY) == ["python2", "-V"]
    c = _c("python:3.11", command=["sh", "-c", "python"])
    assert table.argv(c, {}, python=PY) == ["sh", "-c", "python"]


def test_argv_unknown_image(table: ImageTable) -> None:
    with pytest.raises(ImageNotInTable, match='image "nginx:1.27" is not in'):
        table.argv(_c("nginx:1.27"), {})
