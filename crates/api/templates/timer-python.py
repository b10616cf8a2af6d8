# A timer-triggered function: the event names the timer and carries its user_event.
def handler(event, context):
    print("timer", event.get("trigger_name"), "fired at", event.get("time"))
    return {"user_event": event.get("user_event")}
