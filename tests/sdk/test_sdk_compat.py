"""FunctionGraph code that runs unchanged (issue 17), created and invoked through the official SDK.

Uses the fixtures of tests/e2e/fixtures (runtimes/ and compat/), each written as such published
code is. Shares the server, client and helpers of test_sdk.py.
"""

import base64
import io
import json
import zipfile

import pytest
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkfunctiongraph.v2 import (
    CreateFunctionRequest,
    CreateFunctionRequestBody,
    FuncCode,
    InvokeFunctionRequest,
)

from test_sdk import REPO, client, server, urn  # noqa: F401 (pytest fixtures)

FIXTURES = REPO / "tests" / "e2e" / "fixtures"


def zip_dir(root, executable=()):
    """The files under `root` as a zip, base64; `executable` names get mode 755."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            name = str(path.relative_to(root))
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o100755 if name in executable else 0o100644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, path.read_bytes())
    return base64.b64encode(buf.getvalue()).decode()


def create(client, name, runtime, handler, code, **extra):
    body = CreateFunctionRequestBody(
        func_name=name,
        package="default",
        runtime=runtime,
        timeout=30,
        handler=handler,
        memory_size=256,
        code_type="zip",
        code_filename="code.zip",
        func_code=FuncCode(file=code),
        **extra,
    )
    return client.create_function(CreateFunctionRequest(body=body))


def invoke(client, name, event, log=False):
    return client.invoke_function(
        InvokeFunctionRequest(
            function_urn=urn(name),
            x_cff_request_version="v1",
            x_cff_log_type="tail" if log else None,
            body=event,
        )
    )


def test_old_runtime_names_run(client):
    code = FIXTURES / "runtimes" / "old_runtime_names"
    for name, runtime, lang in [
        ("sdk-node610", "Node.js6.10", "nodejs"),
        ("sdk-py27", "Python2.7", "python"),
    ]:
        r = create(client, name, runtime, "index.handler", zip_dir(code / lang))
        assert r.runtime == runtime
        out = invoke(client, name, {"n": 21}, log=True)
        assert json.loads(out.result) == {"double": 42}
        assert "runs on" in base64.b64decode(out.log).decode()


def test_runtime_log_level_is_the_users(client):
    code = FIXTURES / "runtimes" / "runtime_log_level" / "python"
    user_data = json.dumps({"RUNTIME_LOG_LEVEL": "DEBUG", "FGS_REGION": "here"})
    create(client, "sdk-loglevel", "Python3.10", "index.handler", zip_dir(code), user_data=user_data)
    out = json.loads(invoke(client, "sdk-loglevel", {}).result)
    assert out == {"env": "DEBUG", "user_data": "DEBUG", "fgs_region": "here"}


def test_slash_handler_and_dotdot(client):
    code = zip_dir(FIXTURES / "runtimes" / "slash_handler" / "python")
    create(client, "sdk-slash", "Python3.10", "src/index.handler", code)
    out = json.loads(invoke(client, "sdk-slash", {"name": "sdk"}).result)
    assert out == {"hello": "sdk", "helper": "from src/util"}
    with pytest.raises(ClientRequestException) as e:
        create(client, "sdk-dotdot", "Python3.10", "../index.handler", code)
    assert e.value.status_code == 400
    assert e.value.error_code == "FSS.1003"
    assert "'..' is not allowed" in e.value.error_msg


def test_interpreter_paths_from_an_http_bootstrap(client):
    code = zip_dir(FIXTURES / "compat" / "runtime_paths")
    create(client, "sdk-paths", "http", "bootstrap", code)
    out = json.loads(invoke(client, "sdk-paths", {"httpMethod": "GET", "path": "/", "body": ""}).result)
    assert out["statusCode"] == 200, out
    found = dict(line.split(" ", 1) for line in out["body"].splitlines())
    # The bootstrap served with nodejs12.13's path; every name was asked.
    assert found["nodejs12.13"][0].isdigit(), found
    assert len(found) == 13, found


def test_sh_bootstrap_with_pipefail(client):
    code = zip_dir(FIXTURES / "compat" / "custom_sh", executable=("bootstrap",))
    create(client, "sdk-sh", "Custom", "bootstrap", code)
    out = invoke(client, "sdk-sh", {"hello": "sdk"}).result
    assert out.startswith("Echoing request: "), out
    assert out.endswith("pipefail=on"), out


def test_stack_trace_paths_are_the_instances(client):
    code = zip_dir(FIXTURES / "compat" / "stack_trace")
    create(client, "sdk-trace", "Python3.10", "index.handler", code)
    out = json.loads(invoke(client, "sdk-trace", {}).result)
    trace = "\n".join(out["stackTrace"])
    assert "/opt/function/runtime/python3.10/rtsp/python/lib/" in trace, trace
    assert "/opt/function/code/index.py" in trace, trace
