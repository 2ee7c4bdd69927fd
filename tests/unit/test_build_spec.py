"""``build:PATH[:TARGET]`` references and what a build reads (the Docker side is in
tests/e2e/test_build_image.py)."""

from __future__ import annotations

import pytest

from pytest_tcpcopy.backends.docker.build import BUILD_REPOSITORY, BuildSpec, base_images, context_files
from pytest_tcpcopy.errors import UsageError


@pytest.fixture
def context(tmp_path):
    app = tmp_path / "My App"
    app.mkdir()
    (app / "Dockerfile").write_text("FROM scratch\n")
    (app / "api.Dockerfile").write_text("FROM scratch\n")
    return app


def test_a_folder_a_target_and_build_args(context):
    spec = BuildSpec.parse(f"build:{context}:release", {"RELEASE": "v2", "BASE": "img:1"})
    assert spec.context == context and spec.dockerfile == context / "Dockerfile"
    assert spec.target == "release" and spec.buildargs == (("BASE", "img:1"), ("RELEASE", "v2"))
    assert str(spec) == f"{context} (target release)"
    assert spec.repository() == f"{BUILD_REPOSITORY}/my-app-release"


def test_a_dockerfile_names_its_folder_as_the_context(context):
    spec = BuildSpec.parse("api.Dockerfile", base=context)
    assert (spec.context, spec.dockerfile, spec.target) == (context, context / "api.Dockerfile", None)
    assert str(spec) == str(context / "api.Dockerfile")


def test_relative_paths_are_taken_from_the_base(context, monkeypatch):
    assert BuildSpec.parse("build:My App", base=context.parent).context == context
    monkeypatch.chdir(context.parent)
    assert BuildSpec.parse("build:My App").context == context


def test_the_key_ignores_argument_order_but_not_values(context):
    one = BuildSpec.parse(f"build:{context}", {"A": "1", "B": "2"})
    assert one.key() == BuildSpec.parse(f"build:{context}", {"B": "2", "A": "1"}).key()
    assert one.key() != BuildSpec.parse(f"build:{context}", {"A": "1", "B": "3"}).key()
    assert one.key() != BuildSpec.parse(f"build:{context}:x", {"A": "1", "B": "2"}).key()


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("build:", "expected build:PATH"),
        ("build:nowhere", "neither a build context folder nor a Dockerfile"),
        ("build:empty", "has no Dockerfile"),
        ("build:My App:bad target!", "is not a build stage name"),
    ],
)
def test_bad_references_say_what_is_wrong(context, ref, message):
    (context.parent / "empty").mkdir()
    with pytest.raises(UsageError, match=message):
        BuildSpec.parse(ref, base=context.parent)


def test_from_lines_with_arguments_defaults_and_stages(context):
    (context / "Dockerfile").write_text(
        "# syntax comment\n"
        "ARG BASE_IMAGE=python:3.11-slim\n"
        "ARG TOOLS\n"
        "FROM ${BASE_IMAGE} AS build\n"
        "RUN echo \\\n"
        "    FROM not-an-image\n"
        "FROM --platform=linux/amd64 $TOOLS AS tools\n"
        "FROM build\n"
        "FROM scratch\n"
    )
    assert base_images(BuildSpec.parse(str(context))) == ["python:3.11-slim"]  # $TOOLS: not given, no default
    given = BuildSpec.parse(str(context), {"BASE_IMAGE": "local/base:1", "TOOLS": "tools:2"})
    assert base_images(given) == ["local/base:1", "tools:2"]


def test_dockerignore_selects_the_context_files(context):
    (context / "app.py").write_text("print()\n")
    (context / "cache").mkdir()
    (context / "cache" / "big.bin").write_bytes(b"x")
    assert "cache/big.bin" in context_files(BuildSpec.parse(str(context)))
    (context / ".dockerignore").write_text("# comment\ncache\n")
    files = context_files(BuildSpec.parse(str(context)))
    assert "app.py" in files and "Dockerfile" in files and not any(f.startswith("cache") for f in files)
