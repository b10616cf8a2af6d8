//! Query parameters of the list routes (async invocations, invocation logs): an empty value
//! counts as absent.

use std::collections::HashMap;

use crate::error::{ApiError, ApiResult};

pub(crate) struct ListParams<'a>(pub &'a HashMap<String, String>);

impl<'a> ListParams<'a> {
    pub fn get(&self, k: &str) -> Option<&'a String> {
        self.0.get(k).filter(|v| !v.is_empty())
    }

    /// A whole number, `default` when absent.
    pub fn num(&self, k: &str, default: u64) -> ApiResult<u64> {
        self.get(k).map_or(Ok(default), |v| {
            v.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("{k} {v:?} is not a number")))
        })
    }

    /// A time in Unix milliseconds, given as such or in RFC 3339.
    pub fn time(&self, k: &str) -> ApiResult<Option<i64>> {
        self.get(k).map(|s| parse_time(s)).transpose()
    }
}

fn parse_time(s: &str) -> ApiResult<i64> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    time::OffsetDateTime::parse(s, &Rfc3339)
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
        .map_err(|_| {
            ApiError::bad_request(format!(
                "time {s:?} is invalid: use RFC 3339 or Unix milliseconds"
            ))
        })
}
