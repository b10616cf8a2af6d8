//! Timer schedules: any Rate or Cron text parses or is refused; a parsed one steps forward.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|s: &str| {
    for kind in ["Rate", "Cron"] {
        if let Ok(schedule) = fgs_triggers::Schedule::parse(kind, s) {
            let now = 1_800_000_000_000;
            if let Some(next) = schedule.next_after(now, None) {
                assert!(next > now, "{kind} {s:?} fires in the past");
            }
        }
    }
});
