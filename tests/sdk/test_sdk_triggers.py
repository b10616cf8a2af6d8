"""Triggers and test events through the official Python SDK (SPEC.md 2), against a real fgs
started by the fixtures of test_sdk.py."""

import base64
import json
import time
import urllib.error
import urllib.request

import pytest
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkfunctiongraph.v2 import (
    BatchDeleteFunctionTriggersRequest,
    CreateEventRequest,
    CreateEventRequestBody,
    CreateFunctionTriggerRequest,
    CreateFunctionTriggerRequestBody,
    DeleteEventRequest,
    DeleteFunctionTriggerRequest,
    ListAsyncInvocationsRequest,
    ListEventsRequest,
    ListFunctionTriggersRequest,
    ShowEventRequest,
    ShowFunctionTriggerRequest,
    TriggerEventDataRequestBody,
    UpdateEventRequest,
    UpdateEventRequestBody,
    UpdateTriggerRequest,
    UpdateTriggerRequestBody,
)

from test_sdk import client, create, server, urn  # noqa: F401 (pytest fixtures)


def test_timer_trigger_crud_and_firing(client):
    create(client, "sdk-timer")
    body = CreateFunctionTriggerRequestBody(
        trigger_type_code="TIMER",
        trigger_status="ACTIVE",
        event_data=TriggerEventDataRequestBody(
            name="sdk_timer", schedule_type="Cron", schedule="*/1 * * * * *", user_event="from sdk"
        ),
    )
    t = client.create_function_trigger(
        CreateFunctionTriggerRequest(function_urn=urn("sdk-timer"), body=body)
    )
    assert t.status_code == 201
    assert t.trigger_type_code == "TIMER"
    assert t.trigger_status == "ACTIVE"
    assert t.event_data.schedule == "*/1 * * * * *"
    assert t.event_data.user_event == "from sdk"

    listed = client.list_function_triggers(ListFunctionTriggersRequest(function_urn=urn("sdk-timer")))
    assert [x.trigger_id for x in listed.body] == [t.trigger_id]
    shown = client.show_function_trigger(
        ShowFunctionTriggerRequest(
            function_urn=urn("sdk-timer"), trigger_type_code="TIMER", trigger_id=t.trigger_id
        )
    )
    assert shown.event_data.name == "sdk_timer"

    # Firings are async invocations of the function.
    deadline = time.monotonic() + 20
    count = 0
    while time.monotonic() < deadline and count < 2:
        time.sleep(0.5)
        count = client.list_async_invocations(
            ListAsyncInvocationsRequest(function_urn=urn("sdk-timer"))
        ).count
    assert count >= 2

    up = client.update_trigger(
        UpdateTriggerRequest(
            function_urn=urn("sdk-timer"),
            trigger_type_code="TIMER",
            trigger_id=t.trigger_id,
            body=UpdateTriggerRequestBody(trigger_status="DISABLED"),
        )
    )
    assert up.trigger_status == "DISABLED"

    client.delete_function_trigger(
        DeleteFunctionTriggerRequest(
            function_urn=urn("sdk-timer"), trigger_type_code="TIMER", trigger_id=t.trigger_id
        )
    )
    with pytest.raises(ClientRequestException) as e:
        client.show_function_trigger(
            ShowFunctionTriggerRequest(
                function_urn=urn("sdk-timer"), trigger_type_code="TIMER", trigger_id=t.trigger_id
            )
        )
    assert e.value.status_code == 404

    with pytest.raises(ClientRequestException) as e:
        client.create_function_trigger(
            CreateFunctionTriggerRequest(function_urn=urn("sdk-missing"), body=body)
        )
    assert (e.value.status_code, e.value.error_code) == (404, "FSS.1051")


def test_apig_trigger_route(client, server):
    create(client, "sdk-apig")
    body = CreateFunctionTriggerRequestBody(
        trigger_type_code="APIG",
        trigger_status="ACTIVE",
        event_data=TriggerEventDataRequestBody(
            name="sdk_api",
            path="/sdk/hello",
            req_method="GET",
            match_mode="NORMAL",
            auth="NONE",
            type=1,
            protocol="HTTPS",
            group_id="group-1",
            env_name="RELEASE",
            env_id="DEFAULT_ENVIRONMENT_RELEASE_ID",
        ),
    )
    t = client.create_function_trigger(
        CreateFunctionTriggerRequest(function_urn=urn("sdk-apig"), body=body)
    )
    assert t.status_code == 201
    url = t.event_data.invoke_url
    assert url.startswith(server + "/apig/") and url.endswith("/sdk/hello"), url
    # The SDK fixture function does not answer an APIG response: fgs says so with a 502.
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(url + "?q=1", timeout=60)
    assert e.value.code == 502
    assert json.loads(e.value.read())["error_code"] == "FSS.0502"

    client.batch_delete_function_triggers(
        BatchDeleteFunctionTriggersRequest(function_urn=urn("sdk-apig"))
    )
    listed = client.list_function_triggers(ListFunctionTriggersRequest(function_urn=urn("sdk-apig")))
    assert not listed.body


def test_test_events(client):
    create(client, "sdk-events")
    content = base64.b64encode(json.dumps({"k": "v"}).encode()).decode()
    ev = client.create_event(
        CreateEventRequest(
            function_urn=urn("sdk-events"),
            body=CreateEventRequestBody(name="event-1", content=content),
        )
    )
    assert ev.name == "event-1" and ev.id
    listed = client.list_events(ListEventsRequest(function_urn=urn("sdk-events")))
    assert listed.count == 1
    assert listed.events[0].id == ev.id
    shown = client.show_event(ShowEventRequest(function_urn=urn("sdk-events"), event_id=ev.id))
    assert shown.content == content
    other = base64.b64encode(b'{"k":2}').decode()
    up = client.update_event(
        UpdateEventRequest(
            function_urn=urn("sdk-events"), event_id=ev.id, body=UpdateEventRequestBody(content=other)
        )
    )
    assert up.id == ev.id
    assert (
        client.show_event(ShowEventRequest(function_urn=urn("sdk-events"), event_id=ev.id)).content
        == other
    )
    client.delete_event(DeleteEventRequest(function_urn=urn("sdk-events"), event_id=ev.id))
    with pytest.raises(ClientRequestException) as e:
        client.show_event(ShowEventRequest(function_urn=urn("sdk-events"), event_id=ev.id))
    assert e.value.status_code == 404
