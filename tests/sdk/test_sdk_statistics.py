"""The statistics endpoints through the official Python SDK (docs/metrics.md): the SDK's models
(ListFunctionStatisticsResponse, ListStatisticsResponse) deserialize what fgs answers, and the
counts follow known traffic."""

from huaweicloudsdkfunctiongraph.v2 import (
    InvokeFunctionRequest,
    ListFunctionStatisticsRequest,
    ListStatisticsRequest,
)

from test_sdk import client, create, server, urn  # noqa: F401 (pytest fixtures)


def test_function_and_project_statistics(client):
    create(client, "sdk-stats")
    for _ in range(3):
        client.invoke_function(InvokeFunctionRequest(function_urn=urn("sdk-stats"), body={}))
    st = client.list_function_statistics(
        ListFunctionStatisticsRequest(func_urn=urn("sdk-stats"), period="5")
    )
    assert sum(p.value for p in st.count) == 3
    assert sum(p.value for p in st.fail_count) == 0
    assert all(p.timestamp > 0 for p in st.count)
    assert max(p.value for p in st.max_duration) > 0
    assert len(st.reserved_instance_num) == 1

    proj = client.list_statistics(ListStatisticsRequest(filter="monitor_data", period="5"))
    assert sum(p.value for p in proj.statistics.count) >= 3
    month = client.list_statistics(ListStatisticsRequest(filter="monthly_report", option="0"))
    assert len(month.count) == 1 and month.count[0].value >= 3
    assert month.gbs[0].value > 0
