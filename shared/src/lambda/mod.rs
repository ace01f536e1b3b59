//! Lambda-facing helpers shared by the functions: the SQS partial-batch runner.

pub mod sqs_batch;
