"""PHP and Go functions (issue 21) created and invoked through the official SDK, and C# refused
as the cloud's names are known but not served here. A language whose toolchain is missing is
skipped, saying so. Shares the server, client and helpers of test_sdk.py and test_sdk_compat.py.
"""

import json
import os
import shutil
import subprocess

import pytest
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException

from test_sdk import client, server  # noqa: F401 (pytest fixtures)
from test_sdk_compat import FIXTURES, create, invoke, zip_dir


def test_php_function(client):
    if not shutil.which("php"):
        pytest.skip("php is not installed on this host")
    create(client, "sdk-php", "PHP8.3", "index.handler", zip_dir(FIXTURES / "runtimes" / "inline" / "php"))
    out = invoke(client, "sdk-php", {"name": "sdk"})
    assert json.loads(out.result) == {"hello": "sdk"}


def test_go_function(client, tmp_path):
    if not shutil.which("go"):
        pytest.skip("go is not installed on this host")
    code = tmp_path / "code"
    code.mkdir()
    subprocess.run(
        ["go", "build", "-o", str(code / "handler"), str(FIXTURES / "go" / "main.go")],
        check=True,
        env={**os.environ, "CGO_ENABLED": "0", "GO111MODULE": "off"},
    )
    create(client, "sdk-go", "Go1.x", "handler", zip_dir(code, executable=("handler",)))
    out = json.loads(invoke(client, "sdk-go", {"n": 1}).result)
    assert out["event"] == {"n": 1} and out["func"] == "sdk-go"


def test_csharp_is_refused_naming_what_is_missing(client):
    with pytest.raises(ClientRequestException) as e:
        create(client, "sdk-cs", "C#(.NET Core 6.0)", "a.b", zip_dir(FIXTURES / "runtimes" / "inline" / "php"))
    assert e.value.status_code == 400
    assert e.value.error_code == "FSS.1005"
    assert ".NET Core runtime" in e.value.error_msg
