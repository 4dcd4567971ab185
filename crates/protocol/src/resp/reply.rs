//! A store [`Reply`] as a RESP frame: one meaning, written the way Redis clients expect it.

use kvs_store::{Reply, Value};

use super::Frame;

impl From<Reply> for Frame {
    fn from(reply: Reply) -> Self {
        match reply {
            Reply::Value(entry) => match entry.value {
                Value::String(bytes) => Frame::Bulk(bytes),
                Value::Collection(_) => {
                    Frame::Error(kvs_store::CommandError::WrongType.to_string())
                }
            },
            Reply::NotFound | Reply::Nil | Reply::ConditionFailed { .. } => Frame::Null,
            Reply::Stored { .. } | Reply::Ok => Frame::ok(),
            Reply::Deleted(_) | Reply::ExpirySet { .. } => Frame::Integer(1),
            Reply::Page(page) => {
                Frame::Array(page.keys.into_iter().map(|k| Frame::Bulk(k.key)).collect())
            }
            Reply::Count(n) => Frame::Integer(i64::try_from(n).unwrap_or(i64::MAX)),
            Reply::Integer(n) => Frame::Integer(n),
            Reply::Bulk(b) => Frame::Bulk(b),
            Reply::Status(s) => Frame::Simple(s.to_owned()),
            Reply::Array(items) => Frame::Array(items.into_iter().map(Frame::from).collect()),
            Reply::Map(pairs) => Frame::Map(
                pairs
                    .into_iter()
                    .map(|(k, v)| (Frame::from(k), Frame::from(v)))
                    .collect(),
            ),
            Reply::Pairs(pairs) => Frame::Pairs(
                pairs
                    .into_iter()
                    .map(|(k, v)| (Frame::from(k), Frame::from(v)))
                    .collect(),
            ),
            Reply::Grouped(pairs) => Frame::Grouped(
                pairs
                    .into_iter()
                    .map(|(k, v)| (Frame::from(k), Frame::from(v)))
                    .collect(),
            ),
            Reply::Set(items) => Frame::Set(items.into_iter().map(Frame::from).collect()),
            Reply::Double(d) => Frame::Double(d.0),
            Reply::NilArray => Frame::NullArray,
            Reply::Error(e) => Frame::Error(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kvs_store::CommandError;

    #[test]
    fn replies_map_to_redis_shapes() {
        assert_eq!(Frame::from(Reply::Nil), Frame::Null);
        assert_eq!(
            Frame::from(Reply::ConditionFailed { current: Some(3) }),
            Frame::Null
        );
        assert_eq!(Frame::from(Reply::Count(7)), Frame::Integer(7));
        assert_eq!(
            Frame::from(Reply::Status("string")),
            Frame::Simple("string".into())
        );
        assert_eq!(
            Frame::from(Reply::Error(CommandError::Syntax)),
            Frame::Error("ERR syntax error".into())
        );
        assert_eq!(
            Frame::from(Reply::Array(vec![Reply::Nil, Reply::Integer(1)])),
            Frame::Array(vec![Frame::Null, Frame::Integer(1)])
        );
    }
}
