//! Removing a static member from a consumer group by its `group.instance.id`, at once: KIP-345's
//! LeaveGroup (v3+) naming the instance, what Java's `Admin.removeMembersFromConsumerGroup`
//! sends. librdkafka has no call for it (a pull request was still open in late 2025), so the
//! two requests (FindCoordinator, LeaveGroup) are encoded with `kafka-protocol` and sent over a
//! plain connection. The group then rebalances without waiting for the member's session to
//! expire (`cluster.lapse`, `src/cluster/lapse.rs`).
//!
//! Plaintext listeners only: with `security.protocol` other than `plaintext` the caller does
//! not use it (the session timeout applies, as before).

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::{
    ApiKey, FindCoordinatorRequest, FindCoordinatorResponse, GroupId, LeaveGroupRequest,
    LeaveGroupResponse, RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

/// FindCoordinator v3: one key, flexible encoding (Kafka 2.4+; v4 batches keys).
const FIND_COORDINATOR_VERSION: i16 = 3;
/// LeaveGroup v4: members by instance id (v3+), flexible encoding (Kafka 2.4+).
const LEAVE_GROUP_VERSION: i16 = 4;
/// Kafka's error codes this caller tells apart.
const NONE: i16 = 0;
const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
const COORDINATOR_NOT_AVAILABLE: i16 = 15;
const NOT_COORDINATOR: i16 = 16;
const UNKNOWN_MEMBER_ID: i16 = 25;

#[derive(Debug, thiserror::Error)]
pub enum RemoveError {
    #[error("no broker of {0} reachable: {1}")]
    Unreachable(String, std::io::Error),
    #[error("the coordinator of group {group} is not ready (error {code})")]
    CoordinatorNotReady { group: String, code: i16 },
    #[error("group {group}: Kafka error {code} removing {instance}")]
    Kafka {
        group: String,
        instance: String,
        code: i16,
    },
    #[error("talking to {0}: {1}")]
    Io(String, std::io::Error),
    #[error("reading a Kafka response: {0}")]
    Protocol(String),
}

impl RemoveError {
    /// Worth trying again shortly (a coordinator moving or loading).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            RemoveError::CoordinatorNotReady { .. } | RemoveError::Io(..)
        )
    }
}

/// What the group said.
#[derive(Debug, PartialEq, Eq)]
pub enum Removed {
    /// The member was in the group and is out now (a rebalance follows).
    Removed,
    /// No such member (already gone: its session expired, another instance removed it).
    NotAMember,
}

/// Removes the static member `instance` from `group`; `bootstrap` is `kafka.brokers`.
pub fn remove_static_member(
    bootstrap: &str,
    group: &str,
    instance: &str,
    client_id: &str,
    timeout: Duration,
) -> Result<Removed, RemoveError> {
    let mut conn = connect_any(bootstrap, timeout)?;
    let find = FindCoordinatorRequest::default()
        .with_key(StrBytes::from_string(group.to_string()))
        .with_key_type(0);
    let resp: FindCoordinatorResponse = call(
        &mut conn,
        ApiKey::FindCoordinator,
        FIND_COORDINATOR_VERSION,
        &find,
        client_id,
    )?;
    match resp.error_code {
        NONE => {}
        code @ (COORDINATOR_LOAD_IN_PROGRESS | COORDINATOR_NOT_AVAILABLE | NOT_COORDINATOR) => {
            return Err(RemoveError::CoordinatorNotReady {
                group: group.into(),
                code,
            })
        }
        code => {
            return Err(RemoveError::Kafka {
                group: group.into(),
                instance: instance.into(),
                code,
            })
        }
    }
    let coordinator = format!("{}:{}", resp.host.as_str(), resp.port);
    let mut conn = connect_any(&coordinator, timeout)?;
    let leave = LeaveGroupRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
        .with_members(vec![MemberIdentity::default()
            .with_member_id(StrBytes::from_static_str(""))
            .with_group_instance_id(Some(StrBytes::from_string(
                instance.to_string(),
            )))]);
    let resp: LeaveGroupResponse = call(
        &mut conn,
        ApiKey::LeaveGroup,
        LEAVE_GROUP_VERSION,
        &leave,
        client_id,
    )?;
    let code = match resp.error_code {
        NONE => resp.members.first().map_or(NONE, |m| m.error_code),
        top => top,
    };
    match code {
        NONE => Ok(Removed::Removed),
        UNKNOWN_MEMBER_ID => Ok(Removed::NotAMember),
        code @ (COORDINATOR_LOAD_IN_PROGRESS | COORDINATOR_NOT_AVAILABLE | NOT_COORDINATOR) => {
            Err(RemoveError::CoordinatorNotReady {
                group: group.into(),
                code,
            })
        }
        code => Err(RemoveError::Kafka {
            group: group.into(),
            instance: instance.into(),
            code,
        }),
    }
}

/// The first of the comma-separated `host:port`s that accepts a connection.
fn connect_any(brokers: &str, timeout: Duration) -> Result<TcpStream, RemoveError> {
    let mut last = std::io::Error::other("no address");
    for b in brokers.split(',').map(str::trim).filter(|b| !b.is_empty()) {
        let addrs = match b.to_socket_addrs() {
            Ok(a) => a,
            Err(e) => {
                last = e;
                continue;
            }
        };
        for a in addrs {
            match TcpStream::connect_timeout(&a, timeout) {
                Ok(s) => {
                    let _ = s.set_read_timeout(Some(timeout));
                    let _ = s.set_write_timeout(Some(timeout));
                    let _ = s.set_nodelay(true);
                    return Ok(s);
                }
                Err(e) => last = e,
            }
        }
    }
    Err(RemoveError::Unreachable(brokers.to_string(), last))
}

/// One request and its response on `conn` (size-prefixed frames).
fn call<Req: Encodable, Resp: Decodable>(
    conn: &mut TcpStream,
    key: ApiKey,
    version: i16,
    request: &Req,
    client_id: &str,
) -> Result<Resp, RemoveError> {
    let peer = conn.peer_addr().map(|a| a.to_string()).unwrap_or_default();
    let io = |e| RemoveError::Io(peer.clone(), e);
    let protocol = |e: anyhow::Error| RemoveError::Protocol(e.to_string());
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(1)
        .with_client_id(Some(StrBytes::from_string(client_id.to_string())));
    let mut body = BytesMut::new();
    header
        .encode(&mut body, key.request_header_version(version))
        .map_err(protocol)?;
    request.encode(&mut body, version).map_err(protocol)?;
    let mut frame = BytesMut::with_capacity(body.len() + 4);
    frame.put_i32(body.len() as i32);
    frame.extend_from_slice(&body);
    conn.write_all(&frame).map_err(io)?;
    let mut size = [0u8; 4];
    conn.read_exact(&mut size).map_err(io)?;
    let size = i32::from_be_bytes(size);
    if !(0..=16 << 20).contains(&size) {
        return Err(RemoveError::Protocol(format!("a frame of {size} bytes")));
    }
    let mut buf = vec![0u8; size as usize];
    conn.read_exact(&mut buf).map_err(io)?;
    let mut buf = Bytes::from(buf);
    let _header =
        ResponseHeader::decode(&mut buf, key.response_header_version(version)).map_err(protocol)?;
    let resp = Resp::decode(&mut buf, version).map_err(protocol)?;
    if buf.has_remaining() {
        tracing::debug!(left = buf.remaining(), "bytes left after a Kafka response");
    }
    Ok(resp)
}
