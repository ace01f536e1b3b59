//! A local Lambda platform for the release binaries: what AWS does around a function, played
//! over the same wire protocols. `runtime` hosts function processes behind the Lambda Runtime
//! API; `gateway` turns HTTP requests into API Gateway HTTP API (payload 2.0) events; `poller`
//! is the SQS event source mapping (receive a batch, invoke, delete what was not reported as
//! failed); `aws_proxy` stands between the functions and the AWS endpoint to inject AWS faults.

pub mod aws_proxy;
pub mod gateway;
pub mod poller;
pub mod runtime;
