"""The host's pip settings carried into job image builds (workbench.jobs.pip_settings), read
from real config files and environment variables in tmp folders, the generated Dockerfile and
build context they make, and pip's failures (real pip output, from real pip against loopback)
said in one line."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from workbench.config import DockerSection
from workbench.jobs import images, pip_settings
from workbench.project import Project


def _conf(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def dirs(tmp_path: Path) -> dict[str, Path]:
    return {k: tmp_path / k for k in ("etc", "home", "venv")}


def _host(dirs: dict[str, Path], **env: str) -> pip_settings.HostPip:
    return pip_settings.host(
        {"VIRTUAL_ENV": str(dirs["venv"]), **env}, dirs["home"], "/nonexistent", dirs["etc"]
    )


def test_config_files_are_read_in_pips_order_the_later_winning(dirs: dict[str, Path]) -> None:
    _conf(dirs["etc"] / "xdg/pip/pip.conf", "[global]\nindex-url = https://xdg/simple\n")
    _conf(
        dirs["etc"] / "pip.conf",
        "[global]\nindex-url = https://etc/simple\ncert = /etc/ca.pem\n",
    )
    _conf(dirs["home"] / ".pip/pip.conf", "[global]\ntrusted-host = legacy.example\n")
    _conf(
        dirs["home"] / ".config/pip/pip.conf",
        "[global]\nextra_index_url = https://a/simple\n  https://b/simple\n"
        "trusted-host = user.example\n",
    )
    _conf(
        dirs["venv"] / "pip.conf",
        "[global]\nfind-links = /wheels\n[install]\nindex-url = https://venv/simple\n",
    )
    got = _host(dirs)
    assert got.values == {
        "index-url": "https://venv/simple",  # [install] of the venv's file: the last word
        "cert": "/etc/ca.pem",
        "trusted-host": "user.example",  # ~/.config/pip after the legacy ~/.pip
        "extra-index-url": "https://a/simple\nhttps://b/simple",
        "find-links": "/wheels",
    }
    assert got.many("extra-index-url") == ["https://a/simple", "https://b/simple"]
    assert got.where["index-url"] == str(dirs["venv"] / "pip.conf")
    assert got.where["cert"] == str(dirs["etc"] / "pip.conf")


def test_pip_variables_win_and_pip_config_file_replaces_the_users_files(
    dirs: dict[str, Path], tmp_path: Path
) -> None:
    _conf(dirs["home"] / ".config/pip/pip.conf", "[global]\nindex-url = https://user/simple\n")
    _conf(dirs["etc"] / "pip.conf", "[global]\ntrusted-host = etc.example\n")
    own = _conf(tmp_path / "own.conf", "[global]\nfind-links = /own-wheels\n")
    got = _host(dirs, PIP_CONFIG_FILE=str(own), PIP_TRUSTED_HOST="env.example")
    assert got.values == {"find-links": "/own-wheels", "trusted-host": "env.example"}
    assert got.where == {"find-links": str(own), "trusted-host": "PIP_TRUSTED_HOST"}
    assert _host(dirs, PIP_CONFIG_FILE=os.devnull).values == {}  # pip reads no file at all


def test_a_broken_config_file_is_skipped(dirs: dict[str, Path]) -> None:
    _conf(dirs["etc"] / "pip.conf", "this is [not ini\n")
    _conf(dirs["venv"] / "pip.conf", "[global]\ncert = /ca.pem\n")
    assert _host(dirs).values == {"cert": "/ca.pem"}


def test_the_ca_bundle_pip_would_use(tmp_path: Path) -> None:
    files = {k: _conf(tmp_path / f"{k}.pem", "PEM") for k in ("cert", "requests", "ssl", "sys")}
    cert = pip_settings.HostPip({"cert": str(files["cert"])}, {"cert": "/etc/pip.conf"})
    env = {"REQUESTS_CA_BUNDLE": str(files["requests"]), "SSL_CERT_FILE": str(files["ssl"])}
    none = pip_settings.HostPip()
    assert pip_settings.host_ca(cert, env, files["sys"]) == (files["cert"], "/etc/pip.conf")
    assert pip_settings.host_ca(none, env, files["sys"]) == (
        files["requests"],
        "REQUESTS_CA_BUNDLE",
    )
    assert pip_settings.host_ca(none, {"SSL_CERT_FILE": str(files["ssl"])}, files["sys"])
    got = pip_settings.host_ca(none, {"SSL_CERT_FILE": str(tmp_path / "gone")}, files["sys"])
    assert got == (files["sys"], "the system's CA bundle")  # a missing file is passed over
    assert pip_settings.host_ca(none, {}, tmp_path / "no-system-bundle") is None


def _wheel(folder: Path, name: str, size: int = 10) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(b"w" * size)
    return path


def test_plan_carries_the_hosts_settings_and_copies_the_wheels_the_image_installs(
    tmp_path: Path,
) -> None:
    wheels = tmp_path / "wheels"
    polars = _wheel(wheels, "polars-1.0-py3-none-any.whl")  # a job dependency
    numpy = _wheel(wheels, "numpy-2.0-cp311-cp311-linux_x86_64.whl")  # lightgbm needs it
    _wheel(wheels, "acme_own-0.1.tar.gz")  # named in the project's requirements
    _wheel(wheels, "torch-9.0-cp311-none-any.whl")  # nothing the image installs
    ca = _conf(tmp_path / "ca.pem", "PEM")
    host = pip_settings.HostPip(
        {
            "index-url": "https://proxy.example/simple",
            "extra-index-url": f"https://extra.example/simple {(tmp_path / 'mirror').as_uri()}",
            "trusted-host": "proxy.example extra.example",
            "find-links": f"https://links.example/wheels {wheels.as_uri()}",
            "cert": str(ca),
        },
        {"cert": "PIP_CERT"},
    )
    plan = pip_settings.plan(
        DockerSection(), tmp_path, lambda: ["polars", "lightgbm", "acme-own"], host, env={}
    )
    assert plan.ca == ca
    assert set(plan.files) == {
        "pipfiles/polars-1.0-py3-none-any.whl",
        "pipfiles/numpy-2.0-cp311-cp311-linux_x86_64.whl",
        "pipfiles/acme_own-0.1.tar.gz",
    }
    assert plan.files["pipfiles/polars-1.0-py3-none-any.whl"] == polars
    assert plan.files["pipfiles/numpy-2.0-cp311-cp311-linux_x86_64.whl"] == numpy
    ca_in = pip_settings.CA_IN_IMAGE
    assert plan.env == [
        "PIP_INDEX_URL=https://proxy.example/simple",
        'PIP_EXTRA_INDEX_URL="https://extra.example/simple"',  # the local mirror left out
        'PIP_TRUSTED_HOST="proxy.example extra.example"',
        f'PIP_FIND_LINKS="https://links.example/wheels {pip_settings.FILES_IN_IMAGE}"',
        f"PIP_CERT={ca_in}",
        f"SSL_CERT_FILE={ca_in}",
        f"REQUESTS_CA_BUNDLE={ca_in}",
    ]
    said = "\n".join(plan.notes)
    assert f"trusts the host's CA bundle {ca} (PIP_CERT)" in said
    assert f"not carried into the build: index {(tmp_path / 'mirror').as_uri()}" in said
    assert f"find-links {wheels}: 3 file(s)" in said and "1 it does not install" in said


def test_docker_settings_win_and_host_pip_false_carries_nothing(tmp_path: Path) -> None:
    own_ca = _conf(tmp_path / "proxy-ca.pem", "PEM")
    host = pip_settings.HostPip(
        {"index-url": "https://host/simple", "extra-index-url": "https://hx/simple"},
        {},
    )
    cfg = DockerSection(
        ca_bundle="proxy-ca.pem",
        index_url="https://mine/simple",
        extra_index_urls=["https://m1/simple", "https://m2/simple"],
    )
    plan = pip_settings.plan(cfg, tmp_path, list, host, env={})
    assert plan.ca == own_ca and not plan.notes
    assert plan.env[:2] == [
        "PIP_INDEX_URL=https://mine/simple",
        'PIP_EXTRA_INDEX_URL="https://m1/simple https://m2/simple"',
    ]
    off = pip_settings.plan(DockerSection(host_pip=False), tmp_path, list, host, env={})
    assert off.env == [] and off.ca is None and off.files == {} and off.notes == []
    with pytest.raises(Exception, match=r"\[docker\].ca_bundle: no such file"):
        pip_settings.plan(DockerSection(ca_bundle="gone.pem"), tmp_path, list, host, env={})


def test_find_links_over_the_size_cap_are_left_out_and_said(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wheels = tmp_path / "wheels"
    _wheel(wheels, "polars-1.0-py3-none-any.whl", 600)
    _wheel(wheels, "pyarrow-1.0-py3-none-any.whl", 600)
    monkeypatch.setattr(pip_settings, "MAX_LOCAL_FILES", 1000)
    host = pip_settings.HostPip({"find-links": str(wheels)}, {})
    plan = pip_settings.plan(
        DockerSection(host_pip=True), tmp_path, lambda: ["polars", "pyarrow"], host, env={}
    )
    assert list(plan.files) == ["pipfiles/polars-1.0-py3-none-any.whl"]
    assert "1 left out (over 0 MiB in all)" in plan.notes[-1]


def test_the_generated_dockerfile_and_context_carry_the_hosts_pip(
    sample_project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wheels = tmp_path / "wheels"
    _wheel(wheels, "lightgbm-4.0-py3-none-manylinux_x86_64.whl")
    ca = _conf(tmp_path / "host-ca.pem", "HOST CA")
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_INDEX_URL", "https://proxy.example/simple")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    monkeypatch.setenv("PIP_CERT", str(ca))
    for var in ("PIP_EXTRA_INDEX_URL", "PIP_TRUSTED_HOST"):
        monkeypatch.delenv(var, raising=False)
    files, own = images._context(sample_project)
    text = files["Dockerfile"].decode()
    assert not own and files["ca.pem"] == b"HOST CA"
    assert files["pipfiles/lightgbm-4.0-py3-none-manylinux_x86_64.whl"] == b"w" * 10
    lines = text.splitlines()
    env = next(line for line in lines if line.startswith("ENV PIP_"))
    assert "PIP_INDEX_URL=https://proxy.example/simple" in env
    assert f'PIP_FIND_LINKS="{pip_settings.FILES_IN_IMAGE}"' in env
    assert f"PIP_CERT={pip_settings.CA_IN_IMAGE}" in env
    first_install = next(i for i, line in enumerate(lines) if "pip install" in line)
    assert lines.index(f"COPY ca.pem {pip_settings.CA_IN_IMAGE}") < first_install
    assert lines.index(f"COPY pipfiles {pip_settings.FILES_IN_IMAGE}") < first_install
    tag = images.image_tag(sample_project, files)
    monkeypatch.setenv("PIP_INDEX_URL", "https://other.example/simple")  # another image
    assert images.image_tag(sample_project, images._context(sample_project)[0]) != tag
    # opting out: [docker] host_pip = false builds as before, with nothing of the host's
    toml = sample_project.root / "workbench.toml"
    toml.write_text(toml.read_text() + "\n[docker]\nhost_pip = false\n")
    files, _ = images._context(Project.load(sample_project.root))
    assert "ca.pem" not in files and not any(f.startswith("pipfiles/") for f in files)
    assert "PIP_INDEX_URL" not in files["Dockerfile"].decode()


# --- pip's failures ------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Plain(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def plain_http() -> Iterator[int]:
    """A real HTTP server on loopback: spoken to with https://, pip meets an SSL error."""
    server = HTTPServer(("127.0.0.1", 0), _Plain)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


def _pip_fails(index: str, tmp_path: Path) -> list[str]:
    cmd = [sys.executable, "-m", "pip", "download", "--isolated", "--no-deps", "--no-cache-dir"]
    cmd += ["--index-url", index, "--retries", "1", "--timeout", "3", "-d", str(tmp_path)]
    env = {**os.environ, "PIP_CONFIG_FILE": os.devnull, "PIP_FIND_LINKS": ""}
    proc = subprocess.run(
        [*cmd, "nosuch-workbench-pkg==1.0"], capture_output=True, text=True, env=env, timeout=60
    )
    assert proc.returncode != 0
    return (proc.stdout + proc.stderr).splitlines()


def test_pips_real_failures_are_recognised(plain_http: int, tmp_path: Path) -> None:
    refused = pip_settings.unreachable_index(
        _pip_fails(f"http://127.0.0.1:{_free_port()}/simple", tmp_path)
    )
    assert refused is not None and "Connection refused" in refused and len(refused) <= 160
    ssl = pip_settings.unreachable_index(
        _pip_fails(f"https://127.0.0.1:{plain_http}/simple", tmp_path)
    )
    assert ssl is not None and ssl.startswith("Could not fetch URL") and "ssl" in ssl.lower()
    missing = pip_settings.unreachable_index(
        ["Step 4/9 : RUN pip install mlflow==3.17.2", "ERROR: No matching distribution found "
         "for mlflow==3.17.2"]
    )  # fmt: skip
    assert missing == "No matching distribution found for mlflow==3.17.2"
    assert pip_settings.unreachable_index(["gcc: error: no such file", "make: *** 1"]) is None


def test_a_failed_pip_step_is_one_line_naming_the_setting_and_the_log(
    sample_project: Project,
) -> None:
    lines = [
        "Step 3/9 : RUN pip install x",
        "WARNING: Retrying (Retry(total=0)) after connection broken by 'SSLError(cert)': /s/",
        "Successfully installed x",  # an earlier step's trouble is not this step's
        "Step 4/9 : RUN /opt/workbench/bin/pip install mlflow==3.17.2",
        "ERROR: Could not find a version that satisfies the requirement mlflow==3.17.2",
        "ERROR: No matching distribution found for mlflow==3.17.2",
    ]
    error = "The command '/bin/sh -c /opt/workbench/bin/pip install mlflow==3.17.2' returned 1"
    tag = "workbench-job/p:0123456789abcdef"
    msg = images._build_error(sample_project, tag, lines, error, None)
    log = sample_project.store / "builds" / "0123456789abcdef.log"
    assert msg == (
        "image build failed: pip could not reach the package index from inside the build, or "
        "found no such version there (No matching distribution found for mlflow==3.17.2); set "
        "[docker].ca_bundle (the CA bundle of your proxy), or [docker].index_url / "
        f"extra_index_urls to an index the build can reach (build log: {log})"
    )
    assert "\n" not in msg and log.read_text().splitlines() == [*lines, error]
    other = images._build_error(sample_project, tag, ["Step 2/9 : RUN false"], "exit 1", None)
    assert other == f"image build failed: exit 1 (build log: {log})"
    own = images._build_error(sample_project, tag, lines, error, None, own=True)
    assert "the project's Dockerfile sets pip's index" in own and "[docker]" not in own
    plan = pip_settings.BuildPip(ca=Path("/etc/ssl/certs/ca-certificates.crt"))
    said = images._build_error(sample_project, tag, lines, error, plan)
    assert "[docker].ca_bundle (the build trusted /etc/ssl/certs/ca-certificates.crt)" in said
