"""The official Python SDK against three fgs nodes of one cluster (docs/cluster.md).

Starts three `fgs serve` nodes on loopback, each with its own port and node id, on a fresh
database of the PostgreSQL that `FGS_TEST_POSTGRES_URL` names and on the NATS that
`FGS_TEST_NATS_URL` names (scripts/test starts both), with the same credential. A function
created through node A is invoked through nodes B and C, and code updated through B is what A
answers within a second, all with the SDK unchanged. Without the engines the tests skip,
unless FGS_TEST_REQUIRE_ENGINES=1.

Each node has a data dir of its own: B and C fetch the code A stored from PostgreSQL.
"""

import base64
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.parse
import urllib.request

import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkfunctiongraph.v2 import (
    CreateFunctionRequest,
    CreateFunctionRequestBody,
    FuncCode,
    FunctionGraphClient,
    InvokeFunctionRequest,
    UpdateFunctionCodeRequest,
    UpdateFunctionCodeRequestBody,
)

from test_sdk import AK, PROJECT, SK, bootstrap, fgs_bin, zip_b64


def engines():
    pg, nats = os.environ.get("FGS_TEST_POSTGRES_URL"), os.environ.get("FGS_TEST_NATS_URL")
    if pg and nats:
        return pg, nats
    if os.environ.get("FGS_TEST_REQUIRE_ENGINES") == "1":
        pytest.fail("FGS_TEST_REQUIRE_ENGINES=1 but FGS_TEST_POSTGRES_URL or FGS_TEST_NATS_URL is not set")
    pytest.skip("FGS_TEST_POSTGRES_URL and FGS_TEST_NATS_URL are not set (scripts/test starts them)")


def with_db(url, db):
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path="/" + db))


def psql(url, sql):
    subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql], check=True)


def start_node(i, store, nats, data):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FGS_")}
    env.update(FGS_ACCESS_KEY=AK, FGS_SECRET_KEY=SK, FGS_PROJECT_ID=PROJECT)
    proc = subprocess.Popen(
        [fgs_bin(), "serve", "--listen", "127.0.0.1:0", "--data-dir", data, "--store", store,
         "--nats", nats, "--node-id", f"sdk-node-{i}", "--sandbox", "off"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env=env,
        text=True,
    )
    stderr = []
    threading.Thread(target=lambda: stderr.extend(proc.stderr), daemon=True).start()
    addr = None
    for line in proc.stdout:
        m = re.match(r"listening on (http://\S+)", line)
        if m:
            addr = m.group(1).rstrip("/")
            break
    if addr is None:
        proc.kill()
        pytest.fail(f"node {i} did not start:\n" + "".join(stderr))
    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
    for _ in range(300):
        try:
            with urllib.request.urlopen(addr + "/healthz", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            time.sleep(0.1)
    return proc, addr


@pytest.fixture(scope="module")
def nodes():
    pg, nats = engines()
    db = f"fgs_sdk_{os.getpid()}_{int(time.time() * 1000) % 1000000}"
    psql(pg, f"CREATE DATABASE {db}")
    data = tempfile.mkdtemp(prefix="fgs-sdk-cluster-")
    started = [start_node(i, with_db(pg, db), nats, os.path.join(data, f"d{i}")) for i in range(3)]
    yield [addr for _, addr in started]
    for proc, _ in started:
        proc.terminate()
    for proc, _ in started:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    shutil.rmtree(data, ignore_errors=True)
    psql(pg, f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")


def client(addr):
    return (
        FunctionGraphClient.new_builder()
        .with_credentials(BasicCredentials(AK, SK, PROJECT))
        .with_endpoints([addr])
        .build()
    )


def urn(name):
    return f"urn:fss:local:{PROJECT}:function:default:{name}:latest"


def version_on(c, name):
    r = c.invoke_function(
        InvokeFunctionRequest(function_urn=urn(name), x_cff_request_version="v1", body={"n": 1})
    )
    return r.result


def test_created_on_a_invoked_on_b_and_c_and_updated_on_b_answers_on_a(nodes):
    a, b, c = (client(n) for n in nodes)
    a.create_function(
        CreateFunctionRequest(
            body=CreateFunctionRequestBody(
                func_name="sdk-cluster",
                package="default",
                runtime="Custom",
                timeout=30,
                handler="bootstrap",
                memory_size=128,
                code_type="zip",
                code_filename="code.zip",
                func_code=FuncCode(file=zip_b64(bootstrap("v1"))),
            )
        )
    )
    for node in (b, c, a):
        assert '"version":"v1"' in version_on(node, "sdk-cluster")
    b.update_function_code(
        UpdateFunctionCodeRequest(
            function_urn=urn("sdk-cluster"),
            body=UpdateFunctionCodeRequestBody(
                code_type="zip",
                code_filename="code.zip",
                func_code=FuncCode(file=zip_b64(bootstrap("v2"))),
            ),
        )
    )
    updated = time.monotonic()
    while '"version":"v2"' not in version_on(a, "sdk-cluster"):
        assert time.monotonic() - updated < 5, "node A never answered the new code"
        time.sleep(0.01)
    took = time.monotonic() - updated
    print(f"update through node B answered by node A {took * 1000:.0f} ms later")
    assert took < 1.0
    assert '"version":"v2"' in version_on(c, "sdk-cluster")
