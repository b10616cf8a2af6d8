"""Versions, aliases, async invocation and dependencies through the official SDK (SPEC.md 2, 3).

Shares the server, client and helpers of test_sdk.py.
"""

import base64
import io
import json
import time
import zipfile

import pytest
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkfunctiongraph.v2 import (
    AsyncInvokeFunctionRequest,
    CreateDependencyRequestBody,
    CreateDependencyVersionRequest,
    CreateFunctionVersionRequest,
    CreateFunctionVersionRequestBody,
    CreateVersionAliasRequest,
    CreateVersionAliasRequestBody,
    DeleteDependencyVersionRequest,
    FuncAsyncDestinationConfig,
    InvokeFunctionRequest,
    ListAsyncInvocationsRequest,
    ListDependenciesRequest,
    ListFunctionVersionsRequest,
    ListVersionAliasesRequest,
    ShowFunctionAsyncInvokeConfigRequest,
    UpdateFunctionAsyncInvokeConfigRequest,
    UpdateFunctionAsyncInvokeConfigRequestBody,
    UpdateFunctionConfigRequest,
    UpdateFunctionConfigRequestBody,
)

from test_sdk import PROJECT, client, create, server, urn  # noqa: F401 (pytest fixtures)


def qualified(name, q):
    return f"urn:fss:local:{PROJECT}:function:default:{name}:{q}"


def greeting(client, name_urn):
    r = client.invoke_function(InvokeFunctionRequest(
        function_urn=name_urn, x_cff_request_version="v1", body={}))
    return json.loads(r.result)["greeting"]


def set_greeting(client, name, g):
    client.update_function_config(UpdateFunctionConfigRequest(
        function_urn=urn(name),
        body=UpdateFunctionConfigRequestBody(
            func_name=name, runtime="Custom", timeout=30, handler="bootstrap", memory_size=128,
            user_data=json.dumps({"GREETING": g}))))


def test_versions_and_aliases(client):
    create(client, "sdk-flows", user_data=json.dumps({"GREETING": "one"}))
    v1 = client.create_function_version(CreateFunctionVersionRequest(
        function_urn=urn("sdk-flows"),
        body=CreateFunctionVersionRequestBody(version="v1", description="first")))
    assert v1.version == "v1"
    assert v1.func_urn == qualified("sdk-flows", "v1")
    with pytest.raises(ClientRequestException) as e:
        client.create_function_version(CreateFunctionVersionRequest(
            function_urn=urn("sdk-flows"), body=CreateFunctionVersionRequestBody(version="v1b")))
    assert e.value.error_code == "FSS.1016"

    set_greeting(client, "sdk-flows", "two")
    client.create_function_version(CreateFunctionVersionRequest(
        function_urn=urn("sdk-flows"), body=CreateFunctionVersionRequestBody(version="v2")))
    versions = client.list_function_versions(ListFunctionVersionsRequest(function_urn=urn("sdk-flows")))
    assert [v.version for v in versions.versions] == ["latest", "v1", "v2"]
    assert greeting(client, qualified("sdk-flows", "v1")) == "one"
    assert greeting(client, qualified("sdk-flows", "v2")) == "two"

    alias = client.create_version_alias(CreateVersionAliasRequest(
        function_urn=urn("sdk-flows"),
        body=CreateVersionAliasRequestBody(name="prod", version="v1",
                                           additional_version_weights={"v2": 50})))
    assert alias.alias_urn == qualified("sdk-flows", "!prod")
    seen = {greeting(client, qualified("sdk-flows", "!prod")) for _ in range(40)}
    assert seen == {"one", "two"}, seen
    aliases = client.list_version_aliases(ListVersionAliasesRequest(function_urn=urn("sdk-flows")))
    assert [a.name for a in aliases.body] == ["prod"]


def test_async_invocation_and_config(client):
    create(client, "sdk-async")
    cfg = client.update_function_async_invoke_config(UpdateFunctionAsyncInvokeConfigRequest(
        function_urn=urn("sdk-async"),
        body=UpdateFunctionAsyncInvokeConfigRequestBody(
            max_async_event_age_in_seconds=600, max_async_retry_attempts=2,
            destination_config=FuncAsyncDestinationConfig())))
    assert cfg.max_async_retry_attempts == 2
    shown = client.show_function_async_invoke_config(
        ShowFunctionAsyncInvokeConfigRequest(function_urn=urn("sdk-async")))
    assert shown.max_async_event_age_in_seconds == 600

    ids = [client.async_invoke_function(AsyncInvokeFunctionRequest(
        function_urn=urn("sdk-async"), body={"n": i})).request_id for i in range(5)]
    deadline = time.time() + 30
    while time.time() < deadline:
        r = client.list_async_invocations(ListAsyncInvocationsRequest(
            function_urn=urn("sdk-async"), status="SUCCESS", limit="100"))
        if r.count == 5:
            break
        time.sleep(0.2)
    assert r.count == 5
    assert {i.request_id for i in r.invocations} == set(ids)
    with pytest.raises(ClientRequestException) as e:
        client.async_invoke_function(AsyncInvokeFunctionRequest(function_urn=urn("nope"), body={}))
    assert e.value.status_code == 404 and e.value.error_code == "FSS.1051"


def test_dependencies(client):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("python/sdkdep.py", "X = 1\n")
    body = CreateDependencyRequestBody(
        depend_file=base64.b64encode(buf.getvalue()).decode(), depend_type="zip",
        runtime="Custom", name="sdk-dep", description="from the SDK")
    d = client.create_dependency_version(CreateDependencyVersionRequest(body=body))
    assert d.version == 1 and d.name == "sdk-dep"
    listed = client.list_dependencies(ListDependenciesRequest())
    assert any(x.name == "sdk-dep" for x in listed.dependencies)
    create(client, "sdk-withdep", depend_version_list=[d.id])
    with pytest.raises(ClientRequestException) as e:
        client.delete_dependency_version(DeleteDependencyVersionRequest(depend_id=d.dep_id, version="1"))
    assert e.value.status_code == 400
