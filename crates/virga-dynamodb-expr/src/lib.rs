//! DynamoDB's data model and expression language for Virga: attribute values
//! with exact decimal numbers, DynamoDB's item-size accounting, an
//! order-preserving key encoding, and the condition/filter, update, projection
//! and key condition expressions (plus the legacy parameters they replaced),
//! with AWS's ValidationException messages.
//!
//! Everything is parsed once per request into a tree that is evaluated per item
//! without further lookups.

mod number;
mod reserved;
mod value;

pub mod expr;
pub mod legacy;

pub use expr::condition::{parse_condition, CmpOp, Condition};
pub use expr::key::{parse_key_condition, KeyCondition, RangeCondition};
pub use expr::projection::{parse_projection, project};
pub use expr::update::{parse_update, Update};
pub use expr::{ExprError, Path, PathElem, Substitutions};
pub use legacy::{
    condition_from_expected, condition_from_filter, key_condition_from_key_conditions,
    projection_from_attributes_to_get, update_from_attribute_updates,
};
pub use number::Number;
pub use reserved::is_reserved_word;
pub use value::{
    compare, item_from_json, item_size, item_to_json, key_bytes, key_bytes_into, key_prefix_bytes,
    AttrValue, Item,
};
