//! The operations of FunctionGraph's v2 API that fgs does not provide: each has its route and
//! answers HTTP 501 `FSS.0501` naming the operation (its name in FunctionGraph's API reference
//! and the official SDK) and why, so that a client learns what is missing instead of meeting a
//! `no such API path`. docs/api.md keeps the coverage table of every SDK operation.

use std::collections::BTreeMap;

use axum::routing::{on, MethodFilter, MethodRouter};

use crate::error::ApiError;
use crate::state::SharedState;

/// Why fgs does not answer an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// A FunctionGraph cloud service fgs has no counterpart of; the text names it.
    Cloud(&'static str),
}

/// One operation fgs does not provide.
#[derive(Debug, Clone, Copy)]
pub struct Missing {
    /// The operation's name in FunctionGraph's API reference (the SDK's `ShowWorkFlow`...).
    pub operation: &'static str,
    pub method: MethodFilter,
    /// Under `/v2/{project_id}`.
    pub path: &'static str,
    pub why: Why,
}

const APPS: Why = Why::Cloud("applications and their templates are FunctionGraph cloud services");
const VPC: Why = Why::Cloud("VPC endpoints belong to the cloud's network");
const BRIDGE: Why = Why::Cloud("the service bridge is a FunctionGraph cloud service");
const FLOWS: Why = Why::Cloud("workflows are a FunctionGraph cloud service");
const SNAPSHOTS: Why = Why::Cloud("function snapshots do not exist in fgs");

const fn m(operation: &'static str, method: MethodFilter, path: &'static str, why: Why) -> Missing {
    Missing {
        operation,
        method,
        path,
        why,
    }
}

use MethodFilter as M;

/// Every operation of the v2 API that fgs answers with 501.
#[rustfmt::skip]
pub const MISSING: &[Missing] = &[
    m("CreateFunctionApp", M::POST, "/fgs/applications", APPS),
    m("ListFunctionApplications", M::GET, "/fgs/applications", APPS),
    m("ShowFunctionApp", M::GET, "/fgs/applications/{id}", APPS),
    m("DeleteFunctionApp", M::DELETE, "/fgs/applications/{id}", APPS),
    m("ListAppTemplates", M::GET, "/fgs/application/templates", APPS),
    m("ShowAppTemplate", M::GET, "/fgs/application/templates/{id}", APPS),
    m("CreateVpcEndpoint", M::POST, "/fgs/vpc-endpoint", VPC),
    m("DeleteVpcEndpoint", M::DELETE, "/fgs/vpc-endpoint/{vpc}/{subnet}", VPC),
    m("ListBridgeFunctions", M::GET, "/fgs/functions/{urn}/servicebridge/relation", BRIDGE),
    m("ListBridgeVersions", M::GET, "/fgs/servicebridge/version", BRIDGE),
    m("CreateWorkflow", M::POST, "/fgs/workflows", FLOWS),
    m("ListWorkflow", M::GET, "/fgs/workflows", FLOWS),
    m("BatchDeleteWorkflows", M::DELETE, "/fgs/workflows", FLOWS),
    m("ShowWorkFlow", M::GET, "/fgs/workflows/{id}", FLOWS),
    m("UpdateWorkFlow", M::PUT, "/fgs/workflows/{id}", FLOWS),
    m("CreateCallbackWorkflow", M::POST, "/fgs/workflows/{id}/callback", FLOWS),
    m("StartWorkflowExecution", M::POST, "/fgs/workflows/{id}/executions", FLOWS),
    m("ListWorkflowExecutions", M::GET, "/fgs/workflows/{id}/executions", FLOWS),
    m("StartSyncWorkflowExecution", M::POST, "/fgs/workflows/{id}/sync-executions", FLOWS),
    m("ShowWorkflowExecution", M::GET, "/fgs/workflows/{id}/executions/{exec}", FLOWS),
    m("RetryWorkFlow", M::POST, "/fgs/workflows/{id}/executions/{exec}/retry", FLOWS),
    m("StopWorkFlow", M::POST, "/fgs/workflows/{id}/executions/{exec}/terminate", FLOWS),
    m("ShowWorkflowExecutionForPage", M::GET, "/fgs/workflows/{id}/executions-history", FLOWS),
    m("ShowTenantMetric", M::GET, "/fgs/workflow-statistic", FLOWS),
    m("ShowWorkFlowMetric", M::GET, "/fgs/workflow-statistic/{urn}", FLOWS),
    m("ShowFuncSnapshotState", M::GET, "/fgs/functions/{urn}/snapshots/{action}", SNAPSHOTS),
    m("UpdateFuncSnapshot", M::POST, "/fgs/functions/{urn}/snapshots/{action}", SNAPSHOTS),
];

impl Missing {
    fn error(&self) -> ApiError {
        let Why::Cloud(why) = self.why;
        ApiError::not_provided(format!(
            "{} ({} /v2/{{project_id}}{}) is not provided by fgs: {why}",
            self.operation,
            method_name(self.method),
            self.path
        ))
    }
}

fn method_name(m: MethodFilter) -> &'static str {
    [
        (MethodFilter::GET, "GET"),
        (MethodFilter::POST, "POST"),
        (MethodFilter::PUT, "PUT"),
        (MethodFilter::DELETE, "DELETE"),
    ]
    .into_iter()
    .find(|(f, _)| *f == m)
    .map_or("ANY", |(_, n)| n)
}

/// The routes of [`MISSING`], one method router a path under `/v2/{project_id}`.
pub fn routes() -> Vec<(&'static str, MethodRouter<SharedState>)> {
    let mut by_path: BTreeMap<&'static str, MethodRouter<SharedState>> = BTreeMap::new();
    for entry in MISSING {
        let answer = move || async move { entry.error() };
        let router = match by_path.remove(entry.path) {
            Some(r) => r.on(entry.method, answer),
            None => on(entry.method, answer),
        };
        by_path.insert(entry.path, router);
    }
    by_path.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_operation_is_listed_once_and_named_in_its_answer() {
        let mut names: Vec<&str> = MISSING.iter().map(|m| m.operation).collect();
        names.sort_unstable();
        let n = names.len();
        names.dedup();
        assert_eq!(names.len(), n, "an operation is listed twice");
        for entry in MISSING {
            let e = entry.error();
            assert_eq!(e.status, axum::http::StatusCode::NOT_IMPLEMENTED);
            assert_eq!(e.code, "FSS.0501");
            assert!(e.message.starts_with(entry.operation), "{}", e.message);
        }
    }

    #[test]
    fn one_path_and_method_is_one_operation() {
        let mut seen: Vec<(&str, &str)> = MISSING
            .iter()
            .map(|m| (m.path, method_name(m.method)))
            .collect();
        seen.sort_unstable();
        let n = seen.len();
        seen.dedup();
        assert_eq!(seen.len(), n);
        assert_eq!(
            routes().len(),
            seen.iter()
                .map(|s| s.0)
                .collect::<std::collections::BTreeSet<_>>()
                .len()
        );
    }
}
