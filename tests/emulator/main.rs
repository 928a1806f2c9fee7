//! paved's AWS adapters against moto (started by `make test`, endpoint in PAVED_TEST_AWS_ENDPOINT).

mod deployments;
mod dynamodb;
mod env;
mod fleet;
mod iam;
mod transactions;
