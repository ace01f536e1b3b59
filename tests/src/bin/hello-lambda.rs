//! The baseline of the cold-start benchmark: the smallest `lambda_runtime` function (it echoes
//! its event), built with the same profile and runtime flavour as puente's functions. A
//! function's init is reported as a multiple of this binary's, measured in the same run.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        Ok::<Value, Error>(event.payload)
    }))
    .await
}
