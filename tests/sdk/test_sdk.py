"""The official Huawei Cloud Python SDK (`huaweicloudsdkfunctiongraph`) against a real fgs.

SPEC.md 2: every call the official SDK can make for the implemented operations must work against
fgs unchanged. This file starts its own `fgs serve` (the binary from `$FGS_BIN`, else
`target/debug/fgs`) on a free port with a temp data dir, and drives it with the SDK only.

Run it with `scripts/test`, or alone: `.venv/bin/python -m pytest tests/sdk -q`.
"""

import base64
import io
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkfunctiongraph.v2 import (
    CreateFunctionRequest,
    CreateFunctionRequestBody,
    DeleteFunctionRequest,
    FuncCode,
    FunctionGraphClient,
    InvokeFunctionRequest,
    ListFunctionsRequest,
    ShowFunctionCodeRequest,
    ShowFunctionConfigRequest,
    UpdateFunctionCodeRequest,
    UpdateFunctionCodeRequestBody,
    UpdateFunctionConfigRequest,
    UpdateFunctionConfigRequestBody,
)

REPO = Path(__file__).resolve().parents[2]
AK = "SDKTESTACCESSKEY01"
SK = "sdk-test-secret-key-0123456789"
PROJECT = "5dk7e57000000000000000000000cafe"

# A Custom runtime (SPEC.md 4) in POSIX sh + curl: echoes the event, tagged with its version, and
# raises a function error for {"op":"error"}.
BOOTSTRAP = r"""#!/bin/sh
API="http://${RUNTIME_API_ADDR}/v1/runtime"
T="${TMPDIR:-/tmp}/sdk.$$"
while :; do
  : >"$T.ev"
  curl -sS -D "$T.h" -o "$T.ev" "$API/invocation/request" || exit 1
  RID=$(sed -n 's/^[Xx]-[Cc][Ff][Ff]-[Rr][Ee][Qq][Uu][Ee][Ss][Tt]-[Ii][Dd]:[[:space:]]*//p' "$T.h" | tr -d '\r\n')
  echo "sdk-fixture handling $RID"
  if grep -q '"op": *"error"' "$T.ev"; then
    printf '{"errorType":"SdkError","errorMessage":"asked to fail"}' >"$T.out"; kind=error
  else
    printf '{"version":"VERSION","greeting":"%s","event":%s}' "${GREETING:-}" "$(cat "$T.ev")" >"$T.out"; kind=response
  fi
  curl -sS -X POST -H 'Content-Type: application/json' --data-binary @"$T.out" \
    "$API/invocation/$kind/$RID" >/dev/null || exit 1
done
"""


def bootstrap(version):
    return BOOTSTRAP.replace("VERSION", version)


def zip_b64(script):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        info = zipfile.ZipInfo("bootstrap")
        info.external_attr = (0o100755 << 16)
        info.compress_type = zipfile.ZIP_DEFLATED
        z.writestr(info, script)
    return base64.b64encode(buf.getvalue()).decode()


def fgs_bin():
    path = os.environ.get("FGS_BIN") or str(REPO / "target" / "debug" / "fgs")
    if not os.path.exists(path):
        pytest.fail(f"{path} does not exist: run `cargo build -p fgs` first (scripts/test does)")
    return path


@pytest.fixture(scope="module")
def server():
    data = tempfile.mkdtemp(prefix="fgs-sdk-")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FGS_")}
    env.update(FGS_ACCESS_KEY=AK, FGS_SECRET_KEY=SK, FGS_PROJECT_ID=PROJECT)
    proc = subprocess.Popen(
        [fgs_bin(), "serve", "--listen", "127.0.0.1:0", "--data-dir", os.path.join(data, "d")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env=env,
        text=True,
    )
    stderr = []
    threading.Thread(target=lambda: stderr.extend(proc.stderr), daemon=True).start()
    addr = None
    deadline = time.monotonic() + 60
    for line in proc.stdout:
        m = re.match(r"listening on (http://\S+)", line)
        if m:
            addr = m.group(1).rstrip("/")
            break
        if time.monotonic() > deadline:
            break
    if addr is None:
        proc.kill()
        pytest.fail("fgs serve did not start:\n" + "".join(stderr))
    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
    for _ in range(300):
        try:
            with urllib.request.urlopen(addr + "/healthz", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            time.sleep(0.1)
    yield addr
    proc.terminate()
    try:
        code = proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        code = None
    shutil.rmtree(data, ignore_errors=True)
    assert code == 0, "fgs did not stop cleanly:\n" + "".join(stderr[-50:])


@pytest.fixture(scope="module")
def client(server):
    return (
        FunctionGraphClient.new_builder()
        .with_credentials(BasicCredentials(AK, SK, PROJECT))
        .with_endpoints([server])
        .build()
    )


def urn(name):
    return f"urn:fss:local:{PROJECT}:function:default:{name}:latest"


def create(client, name, code_type="inline", **extra):
    if code_type == "inline":
        code = FuncCode(file=base64.b64encode(bootstrap("v1").encode()).decode())
    else:
        code = FuncCode(file=zip_b64(bootstrap("v1")))
        extra.setdefault("code_filename", "code.zip")
    body = CreateFunctionRequestBody(
        func_name=name,
        package="default",
        runtime="Custom",
        timeout=30,
        handler="bootstrap",
        memory_size=128,
        code_type=code_type,
        func_code=code,
        **extra,
    )
    return client.create_function(CreateFunctionRequest(body=body))


def test_create_show_list(client):
    r = create(client, "sdk-inline", description="from the SDK")
    assert r.func_urn == urn("sdk-inline")
    assert r.runtime == "Custom"
    assert r.memory_size == 128
    assert r.code_type == "inline"
    assert r.description == "from the SDK"
    assert len(r.digest) == 128

    z = create(client, "sdk-zip", code_type="zip", user_data=json.dumps({"GREETING": "hi"}))
    assert z.code_type == "zip"
    assert z.code_filename == "code.zip"

    cfg = client.show_function_config(ShowFunctionConfigRequest(function_urn=urn("sdk-zip")))
    assert cfg.func_name == "sdk-zip"
    assert json.loads(cfg.user_data) == {"GREETING": "hi"}
    # The shortened forms of SPEC.md 1 work through the SDK too.
    assert client.show_function_config(ShowFunctionConfigRequest(function_urn="sdk-zip")).func_urn == urn("sdk-zip")

    names = set()
    marker = "0"
    for _ in range(10):
        page = client.list_functions(ListFunctionsRequest(marker=marker, maxitems="1"))
        assert len(page.functions) <= 1
        names.update(f.func_name for f in page.functions)
        if not page.functions or page.next_marker >= page.count:
            break
        marker = str(page.next_marker)
    assert {"sdk-inline", "sdk-zip"} <= names


def test_update_config_and_code(client):
    create(client, "sdk-upd")
    body = UpdateFunctionConfigRequestBody(
        func_name="sdk-upd",
        runtime="Custom",
        timeout=60,
        handler="bootstrap",
        memory_size=256,
        user_data=json.dumps({"GREETING": "updated"}),
    )
    r = client.update_function_config(UpdateFunctionConfigRequest(function_urn=urn("sdk-upd"), body=body))
    assert r.memory_size == 256
    assert r.timeout == 60

    code = client.show_function_code(ShowFunctionCodeRequest(function_urn=urn("sdk-upd")))
    assert code.code_type == "inline"
    old_digest = code.digest

    new = UpdateFunctionCodeRequestBody(
        code_type="zip", code_filename="v2.zip", func_code=FuncCode(file=zip_b64(bootstrap("v2")))
    )
    r = client.update_function_code(UpdateFunctionCodeRequest(function_urn=urn("sdk-upd"), body=new))
    assert r.digest != old_digest
    code = client.show_function_code(ShowFunctionCodeRequest(function_urn=urn("sdk-upd")))
    assert code.code_filename == "v2.zip"

    out = client.invoke_function(
        InvokeFunctionRequest(function_urn=urn("sdk-upd"), x_cff_request_version="v1", body={"n": 1})
    )
    result = json.loads(out.result)
    assert result == {"version": "v2", "greeting": "updated", "event": {"n": 1}}


def test_invoke_v1_with_log(client):
    create(client, "sdk-inv")
    r = client.invoke_function(
        InvokeFunctionRequest(
            function_urn=urn("sdk-inv"),
            x_cff_request_version="v1",
            x_cff_log_type="tail",
            body={"hello": "sdk"},
        )
    )
    assert r.request_id
    assert r.x_cff_request_id == r.request_id
    assert json.loads(r.result)["event"] == {"hello": "sdk"}
    log = base64.b64decode(r.log).decode()
    assert f"sdk-fixture handling {r.request_id}" in log


def test_invoke_v0(client):
    create(client, "sdk-v0")
    r = client.invoke_function(InvokeFunctionRequest(function_urn=urn("sdk-v0"), body={"v0": True}))
    assert r.x_cff_request_id
    # v0 answers the function's result as-is; the SDK keeps it as the raw body.
    assert json.loads(r.raw_content)["event"] == {"v0": True}


def test_function_error_v1(client):
    create(client, "sdk-err")
    r = client.invoke_function(
        InvokeFunctionRequest(function_urn=urn("sdk-err"), x_cff_request_version="v1", body={"op": "error"})
    )
    assert "asked to fail" in r.result


def test_delete_and_errors(client):
    create(client, "sdk-del")
    client.delete_function(DeleteFunctionRequest(function_urn=urn("sdk-del")))
    with pytest.raises(ClientRequestException) as e:
        client.show_function_config(ShowFunctionConfigRequest(function_urn=urn("sdk-del")))
    assert e.value.status_code == 404
    assert e.value.error_code == "FSS.1051"
    assert e.value.error_msg

    with pytest.raises(ClientRequestException) as e:
        create(client, "sdk-inline-dup")
        create(client, "sdk-inline-dup")
    assert e.value.status_code == 409
    assert e.value.error_code == "FSS.1061"

    with pytest.raises(ClientRequestException) as e:
        create(client, "9-bad-name")
    assert e.value.status_code == 400
    assert e.value.error_code == "FSS.1002"


def test_wrong_secret_is_refused(server):
    bad = (
        FunctionGraphClient.new_builder()
        .with_credentials(BasicCredentials(AK, "wrong-secret", PROJECT))
        .with_endpoints([server])
        .build()
    )
    with pytest.raises(ClientRequestException) as e:
        bad.list_functions(ListFunctionsRequest())
    assert e.value.status_code == 401
    assert e.value.error_code == "FSS.0401"
