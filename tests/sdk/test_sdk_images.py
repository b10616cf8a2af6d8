"""Image functions (issue 18, docs/images.md) through the official SDK: an image built here (the
e2e tests' static server, tests/e2e/src/images/srv.c, compiled with gcc -static, in two layers
written as an OCI image layout), pushed with skopeo to a registry on a loopback port
(FGS_TEST_REGISTRY, which scripts/test starts, or a docker-registry started here), then a
`Custom Image` function created with the SDK's CustomImage, invoked, updated with the same tag
after the tag was pushed again, and a missing image refused. Skipped without root, gcc, skopeo
or a registry, unless FGS_TEST_REQUIRE_ENGINES=1.
"""

import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.request

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

import oci
from test_sdk import AK, PROJECT, SK, fgs_bin, urn


@pytest.fixture(scope="module")
def registry():
    why = oci.missing()
    if why:
        if os.environ.get("FGS_TEST_REQUIRE_ENGINES") == "1":
            pytest.fail(f"image tests cannot run: {why}")
        pytest.skip(why)
    reg = oci.Registry()
    yield reg.addr
    reg.stop()


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
    return oci.server_binary(str(tmp_path_factory.mktemp("srv")))


def push(registry, srv, repo, tag, version):
    return oci.push(registry, oci.base_layers(srv, version), repo, tag)


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
