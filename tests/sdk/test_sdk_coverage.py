"""Every operation of the official SDK's FunctionGraph client against a real fgs (issue 20).

The operations are enumerated from `FunctionGraphClient` itself, so a new SDK release adds its
cases by itself. Each is called with valid inputs (`INPUTS` below; an operation it does not name
gets its path parameters filled by name and an empty body). None may answer "no such API path"
or 405. An implemented one must deserialize into its response model without losing a field of
the JSON fgs sent; one fgs does not provide must answer 501 `FSS.0501` naming the operation.
docs/api.md's coverage table must say the same of each operation. The table is printed
(`pytest -s`).
"""

import base64
import inspect
import io
import json
import re
import time
import zipfile

import pytest
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException, ServerResponseException
import huaweicloudsdkfunctiongraph.v2 as v2
from huaweicloudsdkfunctiongraph.v2 import FunctionGraphClient

from test_sdk import REPO, PROJECT, client, create, server, urn  # noqa: F401 (pytest fixtures)


def operations():
    """Every operation of the client: the methods with an `_<name>_http_info` beside them."""
    return sorted(
        name
        for name, _ in inspect.getmembers(FunctionGraphClient, inspect.isfunction)
        if not name.startswith("_") and hasattr(FunctionGraphClient, f"_{name}_http_info")
    )


def pascal(op):
    return "".join(w.capitalize() for w in op.split("_"))


def http_of(op):
    src = inspect.getsource(getattr(FunctionGraphClient, f"_{op}_http_info"))
    method = re.search(r'"method": "(\w+)"', src).group(1)
    path = re.search(r'"resource_path": "([^"]+)"', src).group(1)
    return method, path


def b64(data):
    return base64.b64encode(data).decode()


def a_zip():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("lib/cov.txt", "coverage\n")
    return b64(buf.getvalue())


class Ctx:
    """What the inputs refer to, made once through the SDK: a function with a version, an
    alias, a test event, a timer trigger, and a dependency."""

    def __init__(self, client):
        self.client = client
        self.n = 0
        self.fn = self.function()
        self.urn = urn(self.fn)
        client.create_function_version(v2.CreateFunctionVersionRequest(
            function_urn=self.urn, body=v2.CreateFunctionVersionRequestBody(version="v1")))
        client.create_version_alias(v2.CreateVersionAliasRequest(
            function_urn=self.urn, body=v2.CreateVersionAliasRequestBody(name="live", version="v1")))
        self.event_id = self.event(self.urn)
        self.trigger_id = self.trigger(self.urn)
        d = client.create_dependency_version(v2.CreateDependencyVersionRequest(
            body=v2.CreateDependencyRequestBody(depend_file=a_zip(), depend_type="zip",
                                                runtime="Custom", name="cov-dep")))
        self.dep_id, self.dep_version = d.dep_id, str(d.version)

    def function(self, **extra):
        """A fresh function of its own, for operations that use one up."""
        self.n += 1
        name = f"cov-{self.n}"
        create(self.client, name, **extra)
        return name

    def event(self, function_urn):
        return self.client.create_event(v2.CreateEventRequest(
            function_urn=function_urn,
            body=v2.CreateEventRequestBody(name=f"ev{self.n}", content=b64(b'{"k":1}')))).id

    def trigger(self, function_urn):
        body = v2.CreateFunctionTriggerRequestBody(
            trigger_type_code="TIMER", trigger_status="DISABLED",
            event_data=v2.TriggerEventDataRequestBody(
                name=f"cov_timer{self.n}", schedule_type="Rate", schedule="1h"))
        return self.client.create_function_trigger(
            v2.CreateFunctionTriggerRequest(function_urn=function_urn, body=body)).trigger_id


def exported(ctx):
    """The export of the context's function: a zip of its configuration and code."""
    return ctx.client.export_function(v2.ExportFunctionRequest(
        function_urn=ctx.urn, config=True, code=True)).raw_content


def disabled(ctx):
    u = own(ctx)
    ctx.client.update_function_max_instance_config(v2.UpdateFunctionMaxInstanceConfigRequest(
        function_urn=u, body=v2.UpdateFunctionMaxInstanceConfigRequestBody(max_instance_num=0)))
    return u


def waiting(ctx, function_urn):
    """The id of an async event of a disabled function, once the dispatcher has put it back
    to wait."""
    rid = ctx.client.async_invoke_function(
        v2.AsyncInvokeFunctionRequest(function_urn=function_urn, body={})).request_id
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = ctx.client.list_async_invocations(v2.ListAsyncInvocationsRequest(
            function_urn=function_urn, request_id=rid)).invocations
        if found and found[0].status == "WAIT":
            break
        time.sleep(0.05)
    return rid


def own(ctx):
    return urn(ctx.function())


TAGS = {"tags": [{"key": "team", "value": "cov"}]}

# Valid inputs of each operation, as the request's keyword arguments.
INPUTS = {
    "async_invoke_function": lambda c: dict(function_urn=c.urn, body={"k": 1}),
    "batch_delete_function_triggers": lambda c: dict(function_urn=(u := own(c)), _=c.trigger(u)),
    # A disabled function's events wait in the queue, where they can be cancelled.
    "cancel_async_invocation": lambda c: dict(function_urn=(u := disabled(c)), body={
        "request_id": waiting(c, u)}),
    "create_dependency_version": lambda c: dict(body=v2.CreateDependencyRequestBody(
        depend_file=a_zip(), depend_type="zip", runtime="Custom", name="cov-dep2")),
    "create_event": lambda c: dict(function_urn=own(c), body=v2.CreateEventRequestBody(
        name="created", content=b64(b"{}"))),
    "create_function": lambda c: dict(body=v2.CreateFunctionRequestBody(
        func_name="cov-created", package="default", runtime="Custom", handler="bootstrap",
        memory_size=128, timeout=30, code_type="inline",
        func_code=v2.FuncCode(file=b64(b"#!/bin/sh\n")))),
    "create_function_trigger": lambda c: dict(
        function_urn=own(c), body=v2.CreateFunctionTriggerRequestBody(
            trigger_type_code="TIMER", trigger_status="DISABLED",
            event_data=v2.TriggerEventDataRequestBody(
                name="created_timer", schedule_type="Rate", schedule="2h"))),
    "create_function_version": lambda c: dict(
        function_urn=own(c), body=v2.CreateFunctionVersionRequestBody(version="v9")),
    "create_tags": lambda c: dict(resource_type="functions", resource_id=own(c), body=TAGS),
    "create_version_alias": lambda c: dict(
        function_urn=c.urn, body=v2.CreateVersionAliasRequestBody(name="other", version="v1")),
    "delete_dependency_version": lambda c: dict(depend_id=(d := c.client.create_dependency_version(
        v2.CreateDependencyVersionRequest(body=v2.CreateDependencyRequestBody(
            depend_file=a_zip(), depend_type="zip", runtime="Custom", name="cov-gone")))).dep_id,
        version=str(d.version)),
    "delete_event": lambda c: dict(function_urn=(u := own(c)), event_id=c.event(u)),
    "delete_function": lambda c: dict(function_urn=own(c)),
    "delete_function_async_invoke_config": lambda c: dict(function_urn=own(c)),
    "delete_function_trigger": lambda c: dict(
        function_urn=(u := own(c)), trigger_type_code="TIMER", trigger_id=c.trigger(u)),
    "delete_tags": lambda c: dict(resource_type="functions", resource_id=c.urn, body=TAGS),
    "delete_version_alias": lambda c: dict(function_urn=(u := own(c)), alias_name=(
        c.client.create_function_version(v2.CreateFunctionVersionRequest(
            function_urn=u, body=v2.CreateFunctionVersionRequestBody(version="v1"))),
        c.client.create_version_alias(v2.CreateVersionAliasRequest(
            function_urn=u, body=v2.CreateVersionAliasRequestBody(name="gone", version="v1"))),
    )[1].name),
    "enable_async_status_log": lambda c: {},
    "enable_lts_logs": lambda c: {},
    "export_function": lambda c: dict(function_urn=c.urn, type="code"),
    "import_function": lambda c: dict(body={
        "func_name": "cov-imported", "file_name": "cov.zip", "file_type": "zip",
        "file_code": b64(exported(c)), "package": "default"}),
    "invoke_function": lambda c: dict(function_urn=c.urn, body={"k": 1}),
    "list_active_async_invocations": lambda c: dict(function_urn=c.urn),
    "list_async_invocations": lambda c: dict(function_urn=c.urn),
    "list_dependencies": lambda c: {},
    "list_dependency_version": lambda c: dict(depend_id=c.dep_id),
    "list_events": lambda c: dict(function_urn=c.urn),
    "list_function_as_metric": lambda c: dict(type="failcount", start_time="0", end_time="0", limit="10"),
    "list_function_async_invoke_config": lambda c: dict(function_urn=c.urn),
    "list_function_reserved_instances": lambda c: {},
    "list_function_statistics": lambda c: dict(func_urn=c.urn, period="5"),
    "list_function_tags": lambda c: dict(resource_type="functions", resource_id=c.urn),
    "list_function_template": lambda c: {},
    "list_function_triggers": lambda c: dict(function_urn=c.urn),
    "list_function_versions": lambda c: dict(function_urn=c.urn),
    "list_functions": lambda c: {},
    "list_quotas": lambda c: {},
    "list_reserved_instance_configs": lambda c: dict(function_urn=c.urn),
    "list_statistics": lambda c: dict(filter="monitor_data", period="5"),
    "list_version_aliases": lambda c: dict(function_urn=c.urn),
    "show_dependency_version": lambda c: dict(depend_id=c.dep_id, version=c.dep_version),
    "show_event": lambda c: dict(function_urn=c.urn, event_id=c.event_id),
    "show_func_reserved_instance_metrics": lambda c: dict(func_urn=c.urn),
    "show_function_async_invoke_config": lambda c: dict(function_urn=(
        u := own(c), c.client.update_function_async_invoke_config(
            v2.UpdateFunctionAsyncInvokeConfigRequest(
                function_urn=u, body=v2.UpdateFunctionAsyncInvokeConfigRequestBody(
                    max_async_retry_attempts=1))))[0]),
    "show_function_code": lambda c: dict(function_urn=c.urn),
    "show_function_config": lambda c: dict(function_urn=c.urn),
    "show_function_metrics": lambda c: dict(func_urn=c.urn, period="5"),
    "show_function_template": lambda c: dict(template_id="hello-python"),
    "show_function_trigger": lambda c: dict(
        function_urn=c.urn, trigger_type_code="TIMER", trigger_id=c.trigger_id),
    "show_lts_log_details": lambda c: dict(function_urn=c.urn),
    "show_project_async_status_log_info": lambda c: {},
    "show_project_tags_list": lambda c: dict(resource_type="functions"),
    "show_res_instance_info": lambda c: dict(
        resource_type="functions", action="filter",
        body={"tags": [{"key": "team", "values": ["cov"]}]}),
    "show_tracing": lambda c: dict(function_urn=c.urn),
    "show_version_alias": lambda c: dict(function_urn=c.urn, alias_name="live"),
    "update_event": lambda c: dict(function_urn=c.urn, event_id=c.event_id,
                                   body=v2.UpdateEventRequestBody(content=b64(b'{"k":2}'))),
    "update_function_async_invoke_config": lambda c: dict(
        function_urn=c.urn, body=v2.UpdateFunctionAsyncInvokeConfigRequestBody(
            max_async_event_age_in_seconds=600, max_async_retry_attempts=1)),
    "update_function_code": lambda c: dict(function_urn=own(c), body=v2.UpdateFunctionCodeRequestBody(
        code_type="inline", func_code=v2.FuncCode(file=b64(b"#!/bin/sh\n")))),
    "update_function_collect_state": lambda c: dict(func_urn=c.urn, state="true"),
    "update_function_config": lambda c: dict(function_urn=urn(n := c.function()), body=v2.UpdateFunctionConfigRequestBody(
        func_name=n, runtime="Custom", handler="bootstrap", memory_size=256, timeout=10)),
    "update_function_max_instance_config": lambda c: dict(
        function_urn=own(c), body=v2.UpdateFunctionMaxInstanceConfigRequestBody(max_instance_num=5)),
    "update_function_reserved_instances_count": lambda c: dict(
        function_urn=own(c), body=v2.UpdateFunctionReservedInstancesCountRequestBody(count=0)),
    "update_tracing": lambda c: dict(function_urn=c.urn, body={"tracing_ak": "", "tracing_sk": ""}),
    "update_trigger": lambda c: dict(
        function_urn=c.urn, trigger_type_code="TIMER", trigger_id=c.trigger_id,
        body=v2.UpdateTriggerRequestBody(trigger_status="DISABLED")),
    "update_version_alias": lambda c: dict(
        function_urn=c.urn, alias_name="live",
        body=v2.UpdateVersionAliasRequestBody(version="v1")),
}

# Path parameters of operations INPUTS does not name (those fgs does not provide, and those a
# newer SDK adds), by name.
GENERIC = {
    "function_urn": lambda c: c.urn,
    "func_urn": lambda c: c.urn,
    "resource_type": lambda c: "functions",
    "resource_id": lambda c: c.urn,
    "period": lambda c: "5",
}


def inputs(op, ctx):
    if op in INPUTS:
        kw = INPUTS[op](ctx)
        kw.pop("_", None)
        return kw
    _, path = http_of(op)
    kw = {}
    for name in re.findall(r"\{(\w+)\}", path):
        if name != "project_id":
            kw[name] = GENERIC.get(name, lambda c: "cov")(ctx)
    fields = getattr(v2, pascal(op) + "Request").openapi_types
    if "body" in fields:
        kw["body"] = {}
    return kw


def lost_fields(raw, model, where="$", extra=None):
    """The JSON members of `raw` that the deserialized `model` declares and holds no value
    for. Members the model does not declare (fgs's function object carries fields some of
    FunctionGraph's response models leave out) go to `extra`."""
    extra = [] if extra is None else extra
    if raw is None:
        return []
    if isinstance(raw, list):
        if not isinstance(model, list):
            return [f"{where}: a list became {type(model).__name__}"]
        return [x for r, m in zip(raw, model) for x in lost_fields(r, m, f"{where}[]", extra)]
    if not isinstance(raw, dict) or not hasattr(model, "attribute_map"):
        return []
    by_json = {j: a for a, j in model.attribute_map.items()}
    lost = []
    for key, value in raw.items():
        attr = by_json.get(key)
        if attr is None:
            extra.append(f"{where}.{key}")
        elif value is not None and getattr(model, attr) is None:
            lost.append(f"{where}.{key}: dropped")
        else:
            lost.extend(lost_fields(value, getattr(model, attr), f"{where}.{key}", extra))
    return lost


def call(client, op, ctx):
    """(status, error code or None, message or lost fields, members beyond the model)."""
    request = getattr(v2, pascal(op) + "Request")(**inputs(op, ctx))
    try:
        resp = getattr(client, op)(request)
    except (ClientRequestException, ServerResponseException) as e:
        return e.status_code, e.error_code, e.error_msg, []
    try:
        raw = json.loads(resp.raw_content) if resp.raw_content else None
    except ValueError:
        raw = None  # not JSON (an exported zip): no model to lose fields of
    extra = []
    if "body" in resp.attribute_map.values() and isinstance(raw, list):
        lost = lost_fields(raw, resp.body, extra=extra)
    elif op == "invoke_function":
        lost = []  # the body is the function's own result, not a model of the API
    else:
        lost = lost_fields(raw, resp, extra=extra)
    return resp.status_code, None, lost, sorted(set(extra))


def documented():
    """docs/api.md's coverage table: operation name -> its row."""
    rows = {}
    for line in (REPO / "docs" / "api.md").read_text().splitlines():
        m = re.match(r"\| `(\w+)` \|", line)
        if m:
            rows[m.group(1)] = line
    return rows


def test_every_sdk_operation_answers(client):
    ctx = Ctx(client)
    ops = operations()
    assert len(ops) >= 92, ops
    docs = documented()
    table, failures = [], []
    for op in ops:
        status, code, detail, extra = call(client, op, ctx)
        name = pascal(op)
        method, path = http_of(op)
        if code is None:
            verdict = "implemented"
            if detail:
                failures.append(f"{name}: fields lost in the response model: {detail}")
        elif status == 501 and code == "FSS.0501" and name in detail:
            verdict = "501"
        else:
            verdict = f"{status} {code}"
            failures.append(f"{name} ({method} {path}): {status} {code} {detail}")
        row = docs.get(name)
        if row is None:
            failures.append(f"{name}: not in docs/api.md's coverage table")
        elif (verdict == "501") != ("| 501" in row):
            failures.append(f"{name}: docs/api.md says otherwise: {row}")
        table.append((name, method, path, verdict, len(extra)))
    print(f"\n{'operation':36} {'method':6} {'path':70} {'answer':11} members beyond the model")
    for row in table:
        print(f"{row[0]:36} {row[1]:6} {row[2]:70} {row[3]:11} {row[4] or ''}")
    done = sum(1 for r in table if r[3] == "implemented")
    print(f"{done} of {len(table)} implemented, {len(table) - done} answer 501")
    assert not failures, "\n".join(failures)
