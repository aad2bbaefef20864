"""The artifact store a lab's workers fetch from: served by the harness (artifacts only),
or put in the lab's store by its upload command."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from harness.errors import InfraError
from harness.lava.store import ArtifactStore, serving


def _run_dir(root):
    art = root / "runs" / "arm32-highmem-ci--boot" / "20261203-x" / "lava" / "artifacts"
    art.mkdir(parents=True)
    (art / "zImage").write_bytes(b"kernel")
    (art.parent.parent / "console.log").write_text("secret-ish console\n")
    return art


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, b""


def test_served_store_serves_artifacts_and_nothing_else(tmp_path):
    art = _run_dir(tmp_path)
    with serving(tmp_path, ("127.0.0.1", 0)) as port:
        store = ArtifactStore(f"http://127.0.0.1:{port}", root=tmp_path)
        url = store.url_for(art, "20261203-x")
        assert (
            url == f"http://127.0.0.1:{port}/runs/arm32-highmem-ci--boot/20261203-x/lava/artifacts"
        )
        assert _get(f"{url}/zImage") == (200, b"kernel")
        base = f"http://127.0.0.1:{port}"
        assert _get(f"{base}/runs/arm32-highmem-ci--boot/20261203-x/console.log")[0] == 404
        assert _get(f"{url}/")[0] == 404  # no listings
        assert _get(f"{url}/../../console.log")[0] == 404
    with pytest.raises(InfraError, match="not under"):
        store.url_for(tmp_path.parent / "elsewhere", "x")


def test_upload_store_runs_the_labs_command_without_a_shell(tmp_path):
    art = _run_dir(tmp_path / "night")
    dest = tmp_path / "store"
    dest.mkdir()
    store = ArtifactStore(
        "https://store.lab/harness/{name}/", upload=f"cp -r {{dir}} {dest}/{{name}}"
    )
    assert store.url_for(art, "run 1") == "https://store.lab/harness/run 1"
    store.publish(art, "run 1")  # a name with a space stays one word
    assert (dest / "run 1" / "zImage").read_bytes() == b"kernel"
    spec = ArtifactStore.from_spec(store.to_spec())
    assert spec == store


def test_a_failed_upload_is_an_infra_error_with_its_last_words(tmp_path):
    art = _run_dir(tmp_path)
    store = ArtifactStore("https://store.lab/", upload="ls /nonexistent-store/{name}")
    with pytest.raises(InfraError, match=r"artifacts upload: ls exited 2: .*nonexistent-store"):
        store.publish(art, "r")
    with pytest.raises(InfraError, match="no-such-uploader not found"):
        ArtifactStore("https://s/", upload="no-such-uploader {dir}").publish(art, "r")


def test_serving_on_a_taken_port_says_so(tmp_path):
    with serving(tmp_path, ("127.0.0.1", 0)) as port:
        with pytest.raises(InfraError, match=f"cannot serve artifacts on 127.0.0.1:{port}"):
            with serving(tmp_path, ("127.0.0.1", port)):
                pass
