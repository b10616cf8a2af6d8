"""Image functions (issue 18, docs/images.md) through the official SDK: an image built here (the
e2e tests' static server, tests/e2e/src/images/srv.c, compiled with gcc -static, in two layers
written as an OCI image layout), pushed with skopeo to a registry on a loopback port
(FGS_TEST_REGISTRY, which scripts/test starts, or a docker-registry started here), then a
`Custom Image` function created with the SDK's CustomImage, invoked, updated with the same tag
after the tag was pushed again, and a missing image refused. Skipped without root, gcc, skopeo
or a registry, unless FGS_TEST_REQUIRE_ENGINES=1.
"""

import gzip
import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import tarfile
import tempfile
import threading
import time
import urllib.request
import re

import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkfunctiongraph.v2 import (
    CreateFunctionRequest,
    CreateFunctionRequestBody,
    CustomImage,
    FunctionGraphClient,
    InvokeFunctionRequest,
    UpdateFunctionConfigRequest,
    UpdateFunctionConfigRequestBody,
)

from test_sdk import AK, PROJECT, REPO, SK, fgs_bin, urn

SRV_C = REPO / "tests" / "e2e" / "src" / "images" / "srv.c"


def missing():
    if os.geteuid() != 0:
        return "an image function's root is an overlay: needs root"
    for tool in ("gcc", "skopeo"):
        if not shutil.which(tool):
            return f"{tool} is not installed"
    if not os.environ.get("FGS_TEST_REGISTRY") and not shutil.which("docker-registry"):
        return "docker-registry is not installed and FGS_TEST_REGISTRY is unset"
    return None


@pytest.fixture(scope="module")
def registry():
    why = missing()
    if why:
        if os.environ.get("FGS_TEST_REQUIRE_ENGINES") == "1":
            pytest.fail(f"image tests cannot run: {why}")
        pytest.skip(why)
    if os.environ.get("FGS_TEST_REGISTRY"):
        yield os.environ["FGS_TEST_REGISTRY"]
        return
    d = tempfile.mkdtemp(prefix="fgs-sdk-registry-")
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    addr = f"127.0.0.1:{s.getsockname()[1]}"
    s.close()
    cfg = os.path.join(d, "config.yml")
    with open(cfg, "w") as f:
        f.write(f"version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {d}/data\nhttp:\n  addr: {addr}\n")
    proc = subprocess.Popen(["docker-registry", "serve", cfg], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            socket.create_connection(tuple(addr.split(":")), timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    yield addr
    proc.kill()
    proc.wait()
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def server(registry):
    data = tempfile.mkdtemp(prefix="fgs-sdk-img-")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FGS_")}
    env.update(FGS_ACCESS_KEY=AK, FGS_SECRET_KEY=SK, FGS_PROJECT_ID=PROJECT, FGS_INSECURE_REGISTRIES=registry)
    proc = subprocess.Popen(
        [fgs_bin(), "serve", "--listen", "127.0.0.1:0", "--data-dir", os.path.join(data, "d")],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, env=env, text=True,
    )
    addr = None
    for line in proc.stdout:
        m = re.match(r"listening on (http://\S+)", line)
        if m:
            addr = m.group(1).rstrip("/")
            break
    assert addr, "fgs serve did not start"
    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
    for _ in range(300):
        try:
            with urllib.request.urlopen(addr + "/healthz", timeout=2):
                break
        except OSError:
            time.sleep(0.1)
    yield addr
    proc.terminate()
    proc.wait(timeout=30)
    shutil.rmtree(data, ignore_errors=True)


@pytest.fixture(scope="module")
def client(server):
    return (
        FunctionGraphClient.new_builder()
        .with_credentials(BasicCredentials(AK, SK, PROJECT))
        .with_endpoints([server])
        .build()
    )


@pytest.fixture(scope="module")
def srv_binary(tmp_path_factory):
    out = tmp_path_factory.mktemp("srv") / "srv"
    subprocess.run(["gcc", "-static", "-O1", "-o", str(out), str(SRV_C)], check=True)
    return out.read_bytes()


def layer(entries):
    """A gzip layer of (path, bytes or None for a directory, mode); and its diff_id."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as t:
        for path, data, mode in entries:
            info = tarfile.TarInfo(path)
            info.mode = mode
            if data is None:
                info.type = tarfile.DIRTYPE
                t.addfile(info)
            else:
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
    tar = raw.getvalue()
    return gzip.compress(tar), "sha256:" + hashlib.sha256(tar).hexdigest()


def push(registry, srv, repo, tag, version):
    layers = [
        layer([("bin", None, 0o755), ("bin/srv", srv, 0o755), ("etc", None, 0o755),
               ("etc/version", version.encode(), 0o644), ("etc/gone", b"x", 0o644),
               ("scratch", None, 0o777)]),
        layer([("etc/.wh.gone", b"", 0o644)]),
    ]
    d = tempfile.mkdtemp(prefix="fgs-sdk-oci-")
    blobs = os.path.join(d, "blobs", "sha256")
    os.makedirs(blobs)

    def put(b, media):
        digest = hashlib.sha256(b).hexdigest()
        with open(os.path.join(blobs, digest), "wb") as f:
            f.write(b)
        return {"mediaType": media, "digest": "sha256:" + digest, "size": len(b)}

    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/bin", "FOO=from-image"], "Cmd": ["/bin/srv"]},
        "rootfs": {"type": "layers", "diff_ids": [l[1] for l in layers]},
    }).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": put(config, "application/vnd.oci.image.config.v1+json"),
        "layers": [put(l[0], "application/vnd.oci.image.layer.v1.tar+gzip") for l in layers],
    }).encode()
    m = put(manifest, "application/vnd.oci.image.manifest.v1+json")
    m["annotations"] = {"org.opencontainers.image.ref.name": tag}
    with open(os.path.join(d, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [m]}, f)
    with open(os.path.join(d, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')
    ref = f"{registry}/{repo}:{tag}"
    subprocess.run(["skopeo", "--insecure-policy", "copy", "--quiet", "--dest-tls-verify=false",
                    f"oci:{d}:{tag}", f"docker://{ref}"], check=True)
    shutil.rmtree(d, ignore_errors=True)
    return ref


def invoke(client, name):
    out = client.invoke_function(
        InvokeFunctionRequest(function_urn=urn(name), x_cff_request_version="v1", body={"op": "info"})
    )
    return json.loads(out.result)


def test_image_function_through_the_sdk(client, registry, srv_binary):
    image = push(registry, srv_binary, "sdk/event", "latest", "v1")
    body = CreateFunctionRequestBody(
        func_name="sdk-image", package="default", runtime="Custom Image", handler="-",
        timeout=30, memory_size=128, code_type="Custom-Image-Swr",
        custom_image=CustomImage(enabled=True, image=image),
        initializer_handler="init", initializer_timeout=10,
        user_data=json.dumps({"FOO": "from-function"}),
    )
    created = client.create_function(CreateFunctionRequest(body=body))
    assert created.runtime == "Custom Image"
    assert created.custom_image.image == image and created.custom_image.uid == "1003"
    v = invoke(client, "sdk-image")
    assert (v["uid"], v["gid"], v["inited"], v["version"], v["gone"]) == (1003, 1003, True, "v1", False), v
    assert v["foo"] == "from-function", v

    # The tag pushed again runs once the function is updated with it.
    push(registry, srv_binary, "sdk/event", "latest", "v2")
    assert invoke(client, "sdk-image")["version"] == "v1"
    client.update_function_config(UpdateFunctionConfigRequest(
        function_urn=urn("sdk-image"),
        body=UpdateFunctionConfigRequestBody(
            func_name="sdk-image", runtime="Custom Image", timeout=30, memory_size=128, handler="-",
            custom_image=CustomImage(enabled=True, image=image, uid="1500", gid="1500"),
        ),
    ))
    v = invoke(client, "sdk-image")
    assert (v["version"], v["uid"]) == ("v2", 1500), v


def test_missing_image_names_the_registry_answer(client, registry):
    body = CreateFunctionRequestBody(
        func_name="sdk-noimage", package="default", runtime="Custom Image", handler="-",
        timeout=30, memory_size=128, custom_image=CustomImage(enabled=True, image=f"{registry}/sdk/none:v1"),
    )
    with pytest.raises(ClientRequestException) as e:
        client.create_function(CreateFunctionRequest(body=body))
    assert e.value.status_code == 400 and e.value.error_code == "FSS.0400"
    assert "MANIFEST_UNKNOWN" in e.value.error_msg or "NAME_UNKNOWN" in e.value.error_msg
