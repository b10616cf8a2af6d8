# An APIG-triggered function: the event describes the HTTP request, the result is the response.
import json


def handler(event, context):
    name = (event.get("queryStringParameters") or {}).get("name", "world")
    return {
        "statusCode": 200,
        "isBase64Encoded": False,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps({"message": "hello " + name, "path": event.get("path")}),
    }
