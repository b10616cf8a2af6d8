//! TIMER triggers (SPEC.md 4): the `event_data` of one timer and the event it fires with. The
//! scheduler that fires them is [`scheduler`].

mod scheduler;

use serde_json::{json, Value};

pub use scheduler::{
    Clock, Fire, Scheduler, SystemClock, Timer, TimerHandle, TimerStore, TokioClock,
};

use crate::schedule::{event_time, Schedule};
use crate::{name_ok, opt_str, Shown, TriggerError, TriggerType};

/// The longest `user_event` kept [FGS]: FunctionGraph publishes no limit.
pub const USER_EVENT_MAX: usize = 4096;

/// A TIMER trigger's `event_data`: `name`, `schedule_type`, `schedule`, `user_event`.
#[derive(Debug, Clone)]
pub struct TimerConfig {
    pub name: String,
    pub schedule_type: String,
    pub schedule: String,
    pub user_event: String,
    pub parsed: Schedule,
}

impl TriggerType for TimerConfig {
    const CODE: &'static str = "TIMER";

    fn parse(v: &Value) -> Result<TimerConfig, TriggerError> {
        let name = opt_str(v, "name")?.unwrap_or_default();
        if !name_ok(name, 64) {
            return Err(TriggerError::field(
                "name",
                format!("{name:?}: use 1-64 letters, digits, '-' or '_', starting with a letter"),
            ));
        }
        let schedule_type = opt_str(v, "schedule_type")?
            .ok_or_else(|| TriggerError::field("schedule_type", "required: Rate or Cron"))?;
        let schedule = opt_str(v, "schedule")?
            .filter(|s| !s.is_empty())
            .ok_or_else(|| TriggerError::field("schedule", "required"))?;
        let parsed = Schedule::parse(schedule_type, schedule)?;
        let user_event = opt_str(v, "user_event")?.unwrap_or_default();
        if user_event.len() > USER_EVENT_MAX {
            return Err(TriggerError::field(
                "user_event",
                format!("over {USER_EVENT_MAX} bytes"),
            ));
        }
        Ok(TimerConfig {
            name: name.to_string(),
            schedule_type: schedule_type.to_string(),
            schedule: schedule.to_string(),
            user_event: user_event.to_string(),
            parsed,
        })
    }

    fn stored(&self) -> Value {
        json!({
            "name": self.name,
            "schedule_type": self.schedule_type,
            "schedule": self.schedule,
            "user_event": self.user_event,
        })
    }

    fn shown(&self, _ctx: &Shown<'_>) -> Value {
        self.stored()
    }
}

/// The event a timer fires with (SPEC.md 4): `time` is the planned firing, not the moment the
/// invocation happened to start.
pub fn timer_event(name: &str, user_event: &str, due_ms: i64) -> Value {
    json!({
        "version": "v1.0",
        "time": event_time(due_ms),
        "trigger_type": "TIMER",
        "trigger_name": name,
        "user_event": user_event,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_round_trips() {
        let v = json!({"name": "Timer-1", "schedule_type": "Rate", "schedule": "3m", "user_event": "hi"});
        let t = TimerConfig::parse(&v).unwrap();
        assert_eq!(t.stored(), v);
        let again = TimerConfig::parse(&t.stored()).unwrap();
        assert_eq!(again.stored(), v);
        let v = json!({"name": "t", "schedule_type": "Cron", "schedule": "@every 1h30m"});
        assert_eq!(TimerConfig::parse(&v).unwrap().user_event, "");
    }

    #[test]
    fn refusals_name_the_field() {
        let cases = [
            (json!({"schedule_type": "Rate", "schedule": "3m"}), "name"),
            (
                json!({"name": "1bad", "schedule_type": "Rate", "schedule": "3m"}),
                "name",
            ),
            (json!({"name": "t", "schedule": "3m"}), "schedule_type"),
            (json!({"name": "t", "schedule_type": "Rate"}), "schedule"),
            (
                json!({"name": "t", "schedule_type": "Rate", "schedule": 3}),
                "schedule",
            ),
            (
                json!({"name": "t", "schedule_type": "Rate", "schedule": "3m", "user_event": "x".repeat(5000)}),
                "user_event",
            ),
        ];
        for (v, field) in cases {
            match TimerConfig::parse(&v) {
                Err(TriggerError::Field { field: f, .. }) => assert_eq!(f, field, "{v}"),
                other => panic!("{v}: {other:?}"),
            }
        }
        let v = json!({"name": "t", "schedule_type": "Rate", "schedule": "0m"});
        assert!(matches!(
            TimerConfig::parse(&v),
            Err(TriggerError::Schedule(_))
        ));
    }

    #[test]
    fn event_shape() {
        let e = timer_event("Timer_001", "payload", 1_527_813_000_000);
        assert_eq!(
            e,
            json!({"version": "v1.0", "time": "2018-06-01T00:30:00+00:00", "trigger_type": "TIMER",
                   "trigger_name": "Timer_001", "user_event": "payload"})
        );
    }
}
