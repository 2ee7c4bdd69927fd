"""Images built for the user from a Dockerfile, with the real Docker daemon: built once per
content, rebuilt when the content changes (the older image untagged), target stages and build
arguments honoured, labelled, and a failing build reported with its log."""

from __future__ import annotations

import pytest
from conftest import require

import docker
from pytest_tcpcopy.backends.docker.build import BUILD_REPOSITORY, KEY_LABEL, BuildSpec, build_image
from pytest_tcpcopy.backends.docker.images import BASE_IMAGE, IMAGE_LABEL, image_exists
from pytest_tcpcopy.errors import SutError

DOCKERFILE = """\
ARG BASE_IMAGE
FROM ${BASE_IMAGE} AS base
COPY greeting.txt /greeting.txt
CMD ["cat", "/greeting.txt"]

FROM base AS loud
RUN tr a-z A-Z < /greeting.txt > /greeting.loud && mv /greeting.loud /greeting.txt

FROM base
"""


@pytest.fixture(scope="module")
def client():
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        require(False, f"a Docker daemon (run docker/ci-setup.sh as root): {exc}")
    require(image_exists(client, BASE_IMAGE), f"the base image {BASE_IMAGE} (run docker/ci-setup.sh as root)")
    return client


@pytest.fixture
def context(tmp_path, client):
    folder = tmp_path / "greeter"
    folder.mkdir()
    (folder / "Dockerfile").write_text(DOCKERFILE)
    (folder / "greeting.txt").write_text("hello from v1\n")
    (folder / ".dockerignore").write_text("notes.md\n")
    yield folder
    for image in client.images.list(filters={"label": IMAGE_LABEL}):
        if any(tag.startswith((f"{BUILD_REPOSITORY}/greeter", "pytest-tcpcopy-test/greeter")) for tag in image.tags):
            client.images.remove(image.id, force=True)


def spec_of(folder, target: str = "") -> BuildSpec:
    return BuildSpec.parse(f"build:{folder}" + (f":{target}" if target else ""), {"BASE_IMAGE": BASE_IMAGE})


def output_of(client, tag: str) -> str:
    out = client.containers.run(tag, remove=True, network_mode="none", labels={IMAGE_LABEL: "1"})
    return out.decode().strip()


def test_an_unchanged_context_is_built_once(client, context):
    said: list[str] = []
    spec = spec_of(context)
    tag = build_image(client, spec, log=said.append)
    assert tag.startswith(f"{BUILD_REPOSITORY}/greeter:") and any(line.startswith("building") for line in said)
    labels = client.images.get(tag).labels
    assert labels[IMAGE_LABEL] == "1" and labels[KEY_LABEL] == spec.key()
    assert output_of(client, tag) == "hello from v1"

    again: list[str] = []
    (context / "notes.md").write_text("ignored by .dockerignore: not part of the build\n")
    assert build_image(client, spec_of(context), log=again.append) == tag
    assert again == [f"image for {spec} is up to date: {tag}"]


def test_a_changed_file_builds_a_new_image_and_untags_the_old_one(client, context):
    first = build_image(client, spec_of(context), log=lambda _: None)
    (context / "greeting.txt").write_text("hello from v2\n")
    second = build_image(client, spec_of(context), log=lambda _: None)
    assert second != first and output_of(client, second) == "hello from v2"
    assert not image_exists(client, first)


def test_target_stage_build_args_and_a_stable_tag(client, context):
    loud = build_image(client, spec_of(context, "loud"), tag="pytest-tcpcopy-test/greeter:stable", log=lambda _: None)
    assert loud.startswith(f"{BUILD_REPOSITORY}/greeter-loud:")
    assert output_of(client, loud) == "HELLO FROM V1"
    assert client.images.get("pytest-tcpcopy-test/greeter:stable").id == client.images.get(loud).id
    plain = build_image(client, spec_of(context), log=lambda _: None)
    assert plain != loud and output_of(client, plain) == "hello from v1"
    other_args = BuildSpec.parse(f"build:{context}", {"BASE_IMAGE": BASE_IMAGE, "UNUSED": "1"})
    assert build_image(client, other_args, log=lambda _: None) not in (plain, loud)


def test_a_failing_build_says_what_failed_with_the_log_tail(client, context):
    (context / "Dockerfile").write_text(
        f"FROM {BASE_IMAGE}\nRUN echo 'compiling the frobnicator' && echo 'frobnicator: syntax error' >&2 && exit 3\n"
    )
    with pytest.raises(SutError) as failed:
        build_image(client, spec_of(context), log=lambda _: None)
    message = str(failed.value)
    assert message.startswith(f"building the image {context} failed:") and "returned a non-zero code: 3" in message
    assert "compiling the frobnicator" in failed.value.logs and "frobnicator: syntax error" in failed.value.logs
