//! Scalars with Infrahub's names: `GenericScalar` (any JSON) and `DateTime` (RFC 3339, UTC,
//! microseconds).

use async_graphql::{InputValueError, InputValueResult, Scalar, ScalarType, Value};
use infrastream_core::{Timestamp, format_timestamp, parse_timestamp};

/// Any JSON value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct GenericScalar(pub serde_json::Value);

#[Scalar(name = "GenericScalar")]
impl ScalarType for GenericScalar {
    fn parse(value: Value) -> InputValueResult<Self> {
        value
            .into_json()
            .map(GenericScalar)
            .map_err(InputValueError::custom)
    }

    fn to_value(&self) -> Value {
        Value::from_json(self.0.clone()).unwrap_or(Value::Null)
    }
}

/// A UTC timestamp written `2024-01-01T12:00:00.123456Z`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct DateTime(pub Timestamp);

#[Scalar(name = "DateTime")]
impl ScalarType for DateTime {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => parse_timestamp(s).map(DateTime).ok_or_else(|| {
                InputValueError::custom(format!("Invalid DateTime '{s}': expected RFC 3339"))
            }),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(format_timestamp(&self.0))
    }
}
