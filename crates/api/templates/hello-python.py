# Hello world on Python: handler "index.handler".
import json


def handler(event, context):
    print("hello from Python, request", context.getRequestID())
    return {"message": "hello world", "event": event}
