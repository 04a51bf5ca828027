//! [`MorangoValue`](crate::MorangoValue) for the field types Django's encoder knows.
